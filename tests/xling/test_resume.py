"""Resume after SIGKILL: re-running the same `xling train-lang` continues from the Trainer's last checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).parents[2]


def command(workspace, out: Path) -> list[str]:
    return [sys.executable, "-m", "xling", "train-lang", "--model", str(workspace["model"]), "--lang", "sw",
            "--text", str(workspace["data"] / "sw.txt"), "--output", str(out), "--max-steps", "8",
            "--save-steps", "2", "--batch-size", "4", "--cpu", "--learning-rate", "1e-2", "--seed", "3"]


def test_sigkill_then_rerun_resumes_from_the_last_checkpoint(workspace, tmp_path):
    """The re-run resumes from the checkpoint the killed run left and finishes the same adapter.

    Not checked yet (issue 7 asks for it): equal final weights.  After resume
    the MLM masking draws differ from the uninterrupted run's.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(command(workspace, tmp_path / "full"), check=True, env=env, capture_output=True)
    victim = subprocess.Popen(command(workspace, tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 120
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "adapter").exists(), "killed too late: training had finished"
    result = subprocess.run(command(workspace, tmp_path / "killed"), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stderr
    full = load_file(str(tmp_path / "full" / "adapter" / "adapter_model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "adapter" / "adapter_model.safetensors"))
    assert full.keys() == resumed.keys()
    import json

    state = json.loads((tmp_path / "killed" / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["global_step"] == 8
    assert all(full[k].shape == resumed[k].shape for k in full)
    assert "resuming from" in result.stderr and "checkpoint-" in result.stderr
