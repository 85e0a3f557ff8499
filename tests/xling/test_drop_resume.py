"""AdapterDrop in xling follows adapter_core's policy and the Trainer's step: a resumed robust run drops, step for
step, what the uninterrupted one dropped, and so ends with the same weights, bitwise."""

from __future__ import annotations

import logging
import shutil
from types import SimpleNamespace

import torch
from safetensors.torch import load_file
from transformers import XLMRobertaConfig, XLMRobertaModel

from adapter_core import AdapterDropConfig
from xling.attach import MadxHost
from xling.cli import main
from xling.drop import AdapterDrop, AdapterDropSteps

IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])


def tiny_host() -> MadxHost:
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    host = MadxHost(XLMRobertaModel(config).train())
    host.add_adapter("t", role="task")
    host.set_active("t")
    return host


def test_the_n_of_step_k_is_the_same_in_a_fresh_object_as_in_a_long_running_one():
    config = AdapterDropConfig(mode="robust", max_dropped=3, seed=4)
    long_running = AdapterDrop(tiny_host(), config)
    drawn = []
    for _ in range(25):  # used by hand, every training forward is the next step
        long_running.host.model(IDS)
        drawn.append(long_running.current)
    assert drawn == [config.training_dropped(step) for step in range(25)] and len(set(drawn)) == 4
    fresh = AdapterDrop(tiny_host(), AdapterDropConfig(mode="robust", max_dropped=3, seed=4))
    callback = AdapterDropSteps(fresh)
    for step in (17, 3, 17):
        callback.on_step_begin(None, SimpleNamespace(global_step=step), None)  # what the Trainer calls
        for _ in range(3):  # every micro-batch of one optimizer step drops the same n
            fresh.host.model(IDS)
            assert fresh.current == drawn[step]
            assert fresh.host.removed_layers == frozenset(range(drawn[step]))


def test_robust_drop_task_adapter_resume_equals_uninterrupted(workspace, en_language_adapter, tmp_path, caplog):
    """As test_reliability_training's resume test, with robust AdapterDrop on: the draws of steps 2 and 3 differ
    from those of steps 0 and 1, so a run whose draws started over on resuming would end elsewhere."""
    seed = 8
    policy = AdapterDropConfig(mode="robust", max_dropped=1, seed=seed)
    assert [policy.training_dropped(s) for s in (2, 3)] != [policy.training_dropped(s) for s in (0, 1)]
    caplog.set_level(logging.INFO, logger="xling.train")

    def args(out):
        return ["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out),
                "--max-steps", "4", "--save-steps", "2", "--batch-size", "4", "--cpu", "--max-length", "64",
                "--learning-rate", "1e-2", "--seed", str(seed), "--drop-max", "1"]

    assert main(args(tmp_path / "full")) == 0
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "checkpoint-2", tmp_path / "resumed" / "checkpoints" / "checkpoint-2")
    assert main(args(tmp_path / "resumed")) == 0
    assert "resuming from" in caplog.text
    for name in ("adapter_model.safetensors", "head.safetensors"):
        full = load_file(str(tmp_path / "full" / "adapter" / name))
        resumed = load_file(str(tmp_path / "resumed" / "adapter" / name))
        assert full.keys() == resumed.keys()
        different = [k for k in full if not torch.equal(full[k], resumed[k])]
        assert not different, f"{name}: resumed run differs in {different}"
