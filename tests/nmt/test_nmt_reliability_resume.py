"""Resume after SIGKILL: fairseq adapter training picks up checkpoint_last.pt and ends where an unbroken run ends.

The interrupted training runs as a subprocess (``fairseq_cli.train.cli_main``, i.e. the
``fairseq-train`` command).  A test-only wrapper pauses it a few updates
*after* the mid-epoch checkpoint at update ``SAVE_EVERY``, so the SIGKILL
lands at a known point and those updates are lost; the same command is then
run again.  On CPU with fixed seeds the final adapter weights must be
bitwise those of an uninterrupted run, and the base checkpoint given to
``--finetune-from-model`` must keep its hash.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from nmt_helpers import USER_DIR, adapter_train_argv, run_train

SAVE_EVERY = 10        # --save-interval-updates: checkpoint_last.pt is written at update 10
KILL_AFTER = 14        # the run is killed at update 14, so updates 11..14 are lost
MAX_UPDATE = 50        # > one epoch (47 updates): the resumed run also crosses an epoch boundary

# fairseq-train, plus (only when NMT_TEST_PAUSE_AT is set) a pause after that update so the test can kill it.
TRAIN_SCRIPT = """
import os, sys, time
pause_at = int(os.environ.get("NMT_TEST_PAUSE_AT", "0"))
if pause_at:
    from fairseq.trainer import Trainer
    train_step = Trainer.train_step
    def paused_train_step(self, *args, **kwargs):
        output = train_step(self, *args, **kwargs)
        if self.get_num_updates() == pause_at:
            print("NMT_TEST_PAUSED", flush=True)
            time.sleep(600)
        return output
    Trainer.train_step = paused_train_step
from fairseq_cli.train import cli_main
sys.argv = ["fairseq-train"] + sys.argv[1:]
cli_main()
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train(argv: list[str], pause_at: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "NMT_TEST_PAUSE_AT": str(pause_at),
           "PYTHONPATH": str(Path(USER_DIR).parent)}
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=240)[0]
    assert process.returncode == 0, output[-3000:]
    return output


def _adapter_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)
    return {k: v for k, v in state["model"].items() if ".adapter_bank." in k}


def test_sigkill_mid_run_then_same_command_resumes_to_identical_adapters(nmt_run, tmp_path):
    base_hash = _sha256(nmt_run.base)
    options = ("--max-update", str(MAX_UPDATE), "--save-interval-updates", str(SAVE_EVERY), "--lr", "0.02",
               "--dropout", "0.1")  # with dropout, so the random state matters too
    straight_argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "straight", *options)
    resumed_argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "resumed", *options)
    victim = _train(resumed_argv, pause_at=KILL_AFTER)
    run_train(straight_argv)  # the uninterrupted reference, in-process while the victim runs
    seen = []
    for line in victim.stdout:
        seen.append(line)
        if "NMT_TEST_PAUSED" in line:
            break
    assert any("NMT_TEST_PAUSED" in line for line in seen), "".join(seen[-40:])
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    last = tmp_path / "resumed" / "checkpoint_last.pt"
    saved = torch.load(last, weights_only=True)
    assert saved["optimizer_history"][-1]["num_updates"] == SAVE_EVERY  # updates 11..14 were lost
    assert saved["extra_state"]["train_iterator"]["iterations_in_epoch"] == SAVE_EVERY

    output = _finish(_train(resumed_argv))  # the same command again
    assert f"Loaded checkpoint {last} (epoch 1 @ {SAVE_EVERY} updates)" in output, output[-3000:]

    expected = _adapter_state(tmp_path / "straight" / "checkpoint_last.pt")
    resumed = _adapter_state(last)
    assert torch.load(last, weights_only=True)["optimizer_history"][-1]["num_updates"] == MAX_UPDATE
    assert expected.keys() == resumed.keys() and len(expected) > 0
    changed = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not changed, f"adapter tensors differ after resume: {changed[:5]}"
    assert any(v.abs().sum() > 0 for k, v in resumed.items() if k.endswith("up.weight"))  # training happened
    assert _sha256(nmt_run.base) == base_hash  # the frozen base is never written back
