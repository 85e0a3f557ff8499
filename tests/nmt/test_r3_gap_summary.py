"""studies/nmt_r3_gap_summary.py: pair adapter vs full fine-tuning per base checkpoint, and the gap R3 asks to close."""

from __future__ import annotations

import json

from studies import nmt_r3_gap_summary as r3_gap_summary

EPOCH = "2026-11-25 20:00:51 | INFO | train | epoch {e:03d} | loss {loss} | nll_loss 3.2 | num_updates 800 | wall 7\n"


def test_rows_gap_losses_and_refusal(tmp_path, capsys):
    report = {"base-2000": {"en-de": {"bleu": 10.0, "chrf": 30.0}},
              "pair_adapter-2000": {"en-de": {"bleu": 14.0, "chrf": 33.0}},
              "full_finetune-2000": {"en-de": {"bleu": 19.5, "chrf": 38.0}},
              "base-8000": {"en-de": {"bleu": 24.0, "chrf": 36.0}},
              "pair_adapter-8000": {"en-de": {"bleu": 26.0, "chrf": 38.0}},
              "pair_adapter_embeddings-8000": {"en-de": {"bleu": 27.5, "chrf": 39.0}},
              "copy": {"en-de": {"bleu": 14.2, "chrf": 21.5}}}
    (tmp_path / "nmt.json").write_text(json.dumps(report))
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"en-de": [{"update": 2000, "valid_loss": 5.9}, {"update": 8000, "valid_loss": 4.8}]}))
    logs = tmp_path / "ckpt"
    logs.mkdir()
    (logs / "pair_adapter-2000.log").write_text(EPOCH.format(e=1, loss=5.5) + EPOCH.format(e=2, loss=5.25))
    argv = ["--report", str(tmp_path), "--checkpoints", str(logs), "--pair", "en-de", "--base-curve", str(curve),
            "--updates", "800", "--pair-dim", "64"]
    assert r3_gap_summary.main(argv) == 0
    saved = json.loads((tmp_path / "r3_gap.json").read_text())
    first, last = saved["rows"]
    assert (first["base_updates"], last["base_updates"]) == (2000, 8000)   # numeric order, not text order
    assert first["gap_bleu"] == 5.5 and first["base_valid_loss"] == 5.9
    assert first["pair_adapter_train_loss"] == 5.25                      # the last epoch's loss
    assert last["full_finetune_bleu"] is None and last["gap_bleu"] is None  # a missing run is "–", never 0
    readme = (tmp_path / "README.md").read_text()
    assert "| 2000 | 5.900 | 10.0 / 30.0 | 14.0 / 33.0 | 19.5 / 38.0 | 5.5 | – / – | 5.25 / – / – |" in readme
    assert "| 8000 | 4.800 | 24.0 / 36.0 | 26.0 / 38.0 | – / – | – | 27.5 / 39.0 | – / – / – |" in readme
    assert (tmp_path / "r3_gap.png").stat().st_size > 0

    (tmp_path / "nmt.json").write_text(json.dumps({"copy": report["copy"]}))
    assert r3_gap_summary.main(argv) == 1
    assert "no base-<updates> system" in capsys.readouterr().err
