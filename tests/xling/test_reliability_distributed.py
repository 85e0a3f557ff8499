"""`xling train-lang`, then `xling train-task` on its adapter, under torchrun: 2 CPU processes (gloo), each rank on
its own shard of the data (different sentences and lengths), must neither hang nor crash; rank 0 writes each adapter
once, and every rank returns only after it exists.

Both commands run in one torchrun launch (a 3-line driver calling ``xling.cli.main``, which is what
``python -m xling`` runs), so that the two processes import transformers once: the test stays near 30 s on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).parents[2]


def test_torchrun_two_cpu_processes(workspace, tmp_path, tree_digest):
    base_before = tree_digest(workspace["model"])
    common = ["--max-steps", "3", "--save-steps", "2", "--batch-size", "4", "--cpu", "--learning-rate", "1e-3",
              "--max-length", "64"]
    lang = ["train-lang", "--model", str(workspace["model"]), "--lang", "en", "--text", str(workspace["data"] / "en.txt"),
            "--output-dir", str(tmp_path / "lang"), *common]
    task = ["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
            str(tmp_path / "lang" / "adapter"), "--train", str(workspace["data"] / "en.panx"),
            "--output-dir", str(tmp_path / "task"), *common]
    driver = tmp_path / "driver.py"
    driver.write_text(f"import sys\nfrom xling.cli import main\nsys.exit(main({lang!r}) or main({task!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(driver)]
    # a hang (a rank waiting for gradients or a barrier the other never reaches) shows up as a timeout
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert result.stdout.count("language adapter written to") == 2 and result.stdout.count("task adapter written to") == 2
    assert any(k.startswith("invertible.") for k in load_file(str(tmp_path / "lang" / "adapter" / "adapter_model.safetensors")))
    assert (tmp_path / "task" / "adapter" / "head.safetensors").is_file()
    for run in ("lang", "task"):
        checkpoint = tmp_path / run / "checkpoints" / "checkpoint-3"
        assert '"global_step": 3' in (checkpoint / "trainer_state.json").read_text()
        # each process ran on its own shard with its own RNG
        assert sorted(p.name for p in checkpoint.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
        assert not list((tmp_path / run).glob(".adapter*")), "temporary adapter directory left behind"
    assert tree_digest(workspace["model"]) == base_before
