"""Language adapters give zero-shot de->fr; adapter training under fairseq DDP with 2 CPU processes."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt_corpus import render, sentences
from nmt_helpers import LANG_FLAGS, USER_DIR, adapter_train_argv, load, make_sample, route_of, run_train


def test_zero_shot_with_language_adapters(nmt_run):
    from fairseq import options
    from fairseq_cli import generate

    lang_dir = nmt_run.root / "lang"
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, lang_dir, "--adapters-by", "lang",
                                 "--max-epoch", "1"))
    checkpoint = lang_dir / "checkpoint_last.pt"
    task, model, _ = load(nmt_run.data, checkpoint, "de", "fr")
    assert model.adapter_keys("encoder") == ["de", "en", "fr"] == model.adapter_keys("decoder")
    route = route_of(model, make_sample(task, [("de", "fr", render("de", s)) for s in sentences(2, seed=4)]))
    assert route.keys("encoder") == ["de", "de"] and route.keys("decoder") == ["fr", "fr"]
    # de-fr was never trained, and is translated through fairseq-generate with the de and fr adapters.
    results = nmt_run.root / "zero_shot"
    args = options.parse_args_and_arch(options.get_generation_parser(), [
        str(nmt_run.data), "--user-dir", USER_DIR, "--task", "adapter_translation", *LANG_FLAGS, "-s", "de",
        "-t", "fr", "--path", str(checkpoint), "--gen-subset", "test", "--beam", "2", "--batch-size", "4", "--cpu",
        "--results-path", str(results)])
    generate.main(args)
    lines = (results / "generate-test.txt").read_text(encoding="utf-8").splitlines()
    hypotheses = [line.split("\t")[2].split() for line in lines if line.startswith("H-")]
    sources = [line for line in lines if line.startswith("S-")]
    assert len(hypotheses) == len(sources) > 0 and all(hypotheses)
    # A tiny base is often off-target zero-shot; it must still produce French for some sentences.
    assert any(w.startswith("fr") for h in hypotheses for w in h)


def test_ddp_backend_without_unused_parameter_handling_is_refused():
    from nmt.tasks import AdapterTranslationTask

    args = argparse.Namespace(distributed_world_size=2, ddp_backend="pytorch_ddp", find_unused_parameters=False)
    with pytest.raises(ValueError, match="--find-unused-parameters.*legacy_ddp"):
        AdapterTranslationTask._check_distributed(args)
    AdapterTranslationTask._check_distributed(argparse.Namespace(**{**vars(args), "ddp_backend": "legacy_ddp"}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_adapter_training_under_ddp_with_two_cpu_processes(nmt_run, tmp_path):
    """fairseq's own DDP (gloo, 2 processes); batches touch only some pairs' adapters."""
    save_dir = tmp_path / "ddp"
    argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, save_dir, "--max-update", "8", "--max-tokens", "60",
                              "--disable-validation", "--distributed-world-size", "2", "--distributed-backend", "gloo",
                              "--ddp-backend", "legacy_ddp", "--distributed-no-spawn",
                              "--distributed-init-method", f"tcp://127.0.0.1:{_free_port()}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(USER_DIR).parent)}
    script = "import sys; from fairseq_cli.train import cli_main; sys.argv = ['fairseq-train'] + sys.argv[1:]; cli_main()"
    ranks = [subprocess.Popen([sys.executable, "-c", script, *argv, "--distributed-rank", str(rank)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = [rank.communicate(timeout=240)[0] for rank in ranks]
    for rank, output in zip(ranks, outputs):
        assert rank.returncode == 0, output[-3000:]
    assert "num_updates 8" in outputs[0] or "num_updates=8" in outputs[0]
    base = torch.load(nmt_run.base, weights_only=True)["model"]
    trained = torch.load(save_dir / "checkpoint_last.pt", weights_only=True)["model"]
    assert all(torch.equal(tensor, trained[key]) for key, tensor in base.items())
    assert sum(trained[k].abs().sum() > 0 for k in trained if k.endswith("up.weight")) > 0
