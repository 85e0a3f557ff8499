"""Resume after SIGKILL: re-running the same `xling train-lang` continues from the Trainer's last checkpoint
and ends with the same adapter as an uninterrupted run; the base model files stay byte-identical."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from xling.cli import main

ROOT = Path(__file__).parents[2]


def command(workspace, out: Path) -> list[str]:
    return [sys.executable, "-m", "xling", "train-lang", "--model", str(workspace["model"]), "--lang", "sw",
            "--text", str(workspace["data"] / "sw.txt"), "--output-dir", str(out), "--max-steps", "8",
            "--save-steps", "2", "--batch-size", "4", "--cpu", "--learning-rate", "1e-2", "--seed", "3"]


def test_sigkill_then_rerun_resumes_and_equals_an_uninterrupted_run(workspace, tmp_path, tree_digest, caplog):
    """Bitwise equal (torch.equal), not merely close: on CPU with one thread the resumed run performs the
    same float operations in the same order as the uninterrupted one, so any difference, even 1e-9, means
    some random draw (masking, dropout, data order) or optimizer state was not restored."""
    base_before = tree_digest(workspace["model"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen(command(workspace, tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    # while the victim starts: the uninterrupted run, in this process (one torch thread, like the victim)
    assert main(command(workspace, tmp_path / "full")[3:]) == 0
    checkpoint = tmp_path / "killed" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 180
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "adapter").exists(), "killed too late: training had finished"
    # the same command again (in this process, to save a second start-up of transformers)
    caplog.set_level(logging.INFO, logger="xling.train")
    assert main(command(workspace, tmp_path / "killed")[3:]) == 0
    assert "resuming from" in caplog.text and "checkpoint-" in caplog.text
    state = json.loads((tmp_path / "killed" / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    full_weights = load_file(str(tmp_path / "full" / "adapter" / "adapter_model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "adapter" / "adapter_model.safetensors"))
    assert full_weights.keys() == resumed.keys()
    different = [k for k in full_weights if not torch.equal(full_weights[k], resumed[k])]
    assert not different, f"resumed adapter differs in {different}"
    assert tree_digest(workspace["model"]) == base_before


def test_resume_skips_a_checkpoint_whose_save_was_cut_short(tmp_path):
    """A run killed while saving leaves checkpoint-N without trainer_state.json (transformers writes it last);
    resuming from it failed ("Can't find a valid checkpoint"): the newest complete one is used instead."""
    from xling.train import last_complete_checkpoint

    checkpoints = tmp_path / "checkpoints"
    for step, state in ((4, '{"global_step": 4}'), (6, None), (8, '{"global_st')):
        folder = checkpoints / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(checkpoints) == str(checkpoints / "checkpoint-4")
    assert last_complete_checkpoint(tmp_path / "none") is None
