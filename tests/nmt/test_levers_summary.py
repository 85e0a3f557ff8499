"""studies/nmt_levers_summary.py: each lever against the reference on the directions both were scored on."""

from __future__ import annotations

import json

from studies import nmt_levers_summary as levers_summary

EPOCH = ("2026-11-25 20:00:51 | INFO | train | epoch {e:03d} | loss 7.1 | nll_loss 6.2 | num_updates {u} "
         "| lr 0.001 | gnorm 0.3 | train_wall {w} | wall 700\n")


def scores(**bleu):
    return {d.replace("_", "-"): {"bleu": b, "chrf": 2 * b} for d, b in bleu.items()}


def test_means_on_shared_directions_costs_and_refusal(tmp_path, capsys):
    report = {"reference": scores(en_de=10.0, en_fr=20.0, en_ar=3.0, de_fr=8.0, uk_es=6.0),
              "fewer": scores(en_de=12.0, en_fr=23.0, de_fr=9.0),
              "copy": scores(en_de=1.0, en_fr=1.0, en_ar=1.0, de_fr=1.0, uk_es=1.0)}
    (tmp_path / "nmt.json").write_text(json.dumps(report))
    logs = tmp_path / "ckpt"
    logs.mkdir()
    (logs / "fewer.log").write_text(EPOCH.format(e=1, u=900, w=400) + "noise | train_inner | num_updates=950\n"
                                    + EPOCH.format(e=2, u=1500, w=260))
    argv = ["--report", str(tmp_path), "--checkpoints", str(logs), "--supervised", "en-de,en-fr,en-ar",
            "--zero-shot", "de-fr,uk-es"]
    assert levers_summary.main(argv) == 0
    table = {row["variant"]: row for row in json.loads((tmp_path / "levers.json").read_text())}
    assert set(table) == {"reference", "fewer"}
    fewer = table["fewer"]
    assert (fewer["updates"], fewer["train_wall_s"]) == (1500, 660)  # train_wall summed over the epochs
    assert fewer["supervised_directions"] == ["en-de", "en-fr"]      # en-ar was not scored for it
    assert fewer["supervised_bleu"] == 17.5 and fewer["supervised_bleu_reference"] == 15.0
    assert fewer["zero_shot_bleu"] == 9.0 and fewer["zero_shot_bleu_reference"] == 8.0
    assert table["reference"]["updates"] is None                      # no log: reported as "–"
    readme = (tmp_path / "README.md").read_text()
    assert "| fewer | 1500 | 660 | 17.5 | +2.5 | 35.0 | +5.0 | 9.0 | +1.0 | 2 / 1 |" in readme

    del report["reference"]
    (tmp_path / "nmt.json").write_text(json.dumps(report))
    assert levers_summary.main(argv) == 1
    assert "no 'reference' system" in capsys.readouterr().err
