"""Nothing lost: deterministic MLM masking, task-adapter resume equal to an uninterrupted run, the frozen base never
written back, and adapter directories published whole or not at all."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file

from adapter_core import AdapterDropConfig
from xling.cli import main
from xling.train import MASKING_SEED, MaskingSeedDataset, SeededMaskingCollator, publish_directory


def test_masking_depends_only_on_seed_epoch_and_example(workspace):
    """An example's masks do not depend on its batch-mates, padding or global RNG; they change with the epoch."""
    tokenizer = workspace["tokenizer"]
    lines = (workspace["data"] / "sw.txt").read_text(encoding="utf-8").splitlines()[:6]
    features = [{"input_ids": ids} for ids in tokenizer(lines)["input_ids"]]
    dataset = MaskingSeedDataset(features, seed=3)
    collate = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=0.5, mask_replace_prob=0.8,
                                    random_replace_prob=0.1)

    def masked(indices):
        torch.manual_seed(len(indices))  # a different global RNG state for every call
        batch = collate([dataset[i] for i in indices])
        return {i: (batch["input_ids"][row, :len(features[i]["input_ids"])].tolist(),
                    batch["labels"][row, :len(features[i]["input_ids"])].tolist()) for row, i in enumerate(indices)}

    alone, together = masked([2]), masked([5, 2, 0])
    assert alone[2] == together[2]
    ids, labels = together[2]
    assert any(l != -100 for l in labels), "nothing was masked at 50%"
    assert all(l == -100 or l == original for l, original in zip(labels, features[2]["input_ids"]))
    assert "attention_mask" in collate([dataset[0]]) and MASKING_SEED not in collate([dataset[0]])
    epoch0 = masked(list(range(6)))
    dataset.set_epoch(1)
    assert masked(list(range(6))) != epoch0


@pytest.mark.parametrize("seed,extra", [(5, []), (8, ["--adapter-drop-mode", "robust", "--adapter-drop-layers", "1"])], ids=["plain", "robust-drop"])
def test_task_adapter_resume_equals_uninterrupted_and_base_is_untouched(workspace, en_language_adapter, tmp_path,
                                                                         tree_digest, caplog, seed, extra):
    """Re-running `xling train-task` on a checkpoint gives the uninterrupted run's adapter and head, bitwise.

    The run is interrupted by keeping only its step-2 checkpoint (exactly what a SIGKILL after that
    checkpoint leaves; the SIGKILL itself is exercised for train-lang in test_resume.py).  With robust
    AdapterDrop on, the n of steps 2 and 3 differ from those of steps 0 and 1 (seed 8), so a run whose
    draws started over on resuming (as xling's did before adapter_core.drop) would end elsewhere.
    """
    if extra:
        policy = AdapterDropConfig(mode="robust", max_dropped=1, seed=seed)
        assert [policy.training_dropped(s) for s in (2, 3)] != [policy.training_dropped(s) for s in (0, 1)]
    caplog.set_level(logging.INFO, logger="xling.train")
    base_before, lang_before = tree_digest(workspace["model"]), tree_digest(en_language_adapter)

    def args(out):
        return ["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out),
                "--max-steps", "4", "--save-steps", "2", "--batch-size", "4", "--cpu", "--max-length", "64",
                "--learning-rate", "1e-2", "--seed", str(seed), *extra]

    assert main(args(tmp_path / "full")) == 0
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "checkpoint-2", tmp_path / "resumed" / "checkpoints" / "checkpoint-2")
    assert main(args(tmp_path / "resumed")) == 0
    assert "resuming from" in caplog.text
    for name in ("adapter_model.safetensors", "head.safetensors"):
        full = load_file(str(tmp_path / "full" / "adapter" / name))
        resumed = load_file(str(tmp_path / "resumed" / "adapter" / name))
        assert full.keys() == resumed.keys()
        assert all(torch.equal(full[k], resumed[k]) for k in full), name
    # the frozen base and the frozen language adapter are never written back
    assert tree_digest(workspace["model"]) == base_before
    assert tree_digest(en_language_adapter) == lang_before


def test_publish_directory_is_all_or_nothing(tmp_path):
    target = tmp_path / "adapter"

    def fail(tmp):
        (tmp / "adapter_model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        publish_directory(target, fail)
    assert list(tmp_path.iterdir()) == []
    publish_directory(target, lambda tmp: (tmp / "a").write_text("1"))
    publish_directory(target, lambda tmp: (tmp / "b").write_text("2"))
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_published_directories_get_the_usual_permissions(tmp_path):
    """mkdtemp makes 0700 folders: every published model or adapter directory (import-e5, trim-vocab, MLM head,
    adapters) was unreadable to the group; publish_directory now gives the mode mkdir would."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    target = publish_directory(tmp_path / "out", lambda tmp: (tmp / "f.txt").write_text("x"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~mask
