"""`studies.xling_lr_sweep run` trains through xling.train's one pipeline (train_with_head), in both modes."""

from __future__ import annotations

import json

import pytest

from studies import xling_lr_sweep as lr_sweep
from xling import train


@pytest.mark.parametrize("mode,folder", [("adapter", "adapter"), ("full", "model")])
def test_run_one_trains_through_train_with_head_and_scores_the_dev_file(mode, folder, workspace, en_language_adapter,
                                                                        tmp_path, monkeypatch):
    real, folders = train.train_with_head, []

    def recording(setup, options, folder, build, dropper=None):
        folders.append((folder, options.learning_rate, options.max_steps))
        return real(setup, options, folder, build, dropper)

    monkeypatch.setattr(train, "train_with_head", recording)
    out = tmp_path / mode
    argv = ["run", "--mode", mode, "--task", "ner", "--model", str(workspace["model"]), "--train",
            str(workspace["data"] / "en.panx"), "--dev", str(workspace["data"] / "sw.panx"), "--learning-rate", "3e-3",
            "--output-dir", str(out), "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--cpu"]
    if mode == "adapter":
        argv += ["--lang-adapter", str(en_language_adapter)]
    assert lr_sweep.main(argv) == 0
    assert folders == [(folder, 3e-3, 2)] and (out / folder).is_dir()
    record = json.loads((out / "lr_result.json").read_text())
    assert record["mode"] == mode and record["learning_rate"] == 3e-3 and record["main_metric"] in record
