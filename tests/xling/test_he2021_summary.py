"""studies.xling_he2021_summary: He et al. (2021)'s claims from comparison records, with seed spreads."""

import json

import pytest

from studies.xling_he2021_summary import check, main, paired_gaps


def _write(folder, row, size, seed, score, lang="tr"):
    path = folder / "pos" / row / f"n{size}" / f"{lang}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"task": "pos", "row": row, "language": lang, "train_size": size, "seed": seed,
              "main_metric": "accuracy", "accuracy": score}
    path.write_text(json.dumps(record), encoding="utf-8")


def _results(tmp_path, gap_small, gap_large, noise=(0.0, 0.5, -0.5)):
    folder = tmp_path / "results"
    for size, gap in (("100", gap_small), ("all", gap_large)):
        for seed, wobble in zip((1, 2, 3), noise):
            _write(folder, "full", size, seed, 60.0)
            _write(folder, "bare_task", size, seed, 60.0 + gap + wobble)
    _write(folder, "full", "100", 1, 99.0, lang="en")  # another language: ignored
    return folder


def _series(adapter, full, sd=0.5):
    block = lambda means: {"learning_rates": [1e-4, 1e-3, 1e-2], "accuracy": means, "accuracy_std": [sd] * 3,
                           "accuracy_per_seed": [[m, m] for m in means]}
    return {"adapter": block(adapter), "full": block(full)}


def test_claims_pass_when_margins_exceed_the_spread(tmp_path):
    from studies.xling_comparison_report import load_records

    gaps = paired_gaps(load_records(str(_results(tmp_path, 5.0, 1.0))), "pos", "tr")
    assert gaps["100"]["mean"] == pytest.approx(5.0) and gaps["100"]["sd"] == pytest.approx(0.5)
    results = {r["claim"]: r["status"] for r in check(gaps, _series([70, 71, 69], [50, 65, 60]))}
    assert results == {"H1": "PASS", "H2": "PASS", "H3": "PASS"}


def test_claims_fail_or_give_no_verdict(tmp_path):
    from studies.xling_comparison_report import load_records

    # the lead is the same at both sizes, and the adapter is as rate-sensitive as full fine-tuning
    gaps = paired_gaps(load_records(str(_results(tmp_path, 2.0, 2.0))), "pos", "tr")
    results = {r["claim"]: r["status"] for r in check(gaps, _series([50, 65, 60], [60, 62, 61]))}
    assert results == {"H1": "PASS", "H2": "FAIL", "H3": "FAIL"}
    # full fine-tuning ahead at the smallest size: H1 fails; one seed: no verdict
    gaps = {"100": {"mean": -3.0, "sd": 0.5, "seeds": 3, "adapter": 60, "full": 63}}
    assert check(gaps, None)[0]["status"] == "FAIL"
    gaps = {"100": {"mean": 9.0, "sd": 0.0, "seeds": 1, "adapter": 69, "full": 60}}
    assert [r["status"] for r in check(gaps, None)] == ["n/a", "n/a", "n/a"]


def test_cli_writes_the_report_and_refuses_empty_results(tmp_path, capsys):
    folder = _results(tmp_path, 5.0, 1.0)
    series = tmp_path / "lr.json"
    series.write_text(json.dumps(_series([70, 71, 69], [50, 65, 60])), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["--results", str(folder), "--task", "pos", "--language", "tr", "--lr-sensitivity", str(series),
                 "--output-dir", str(out)]) == 0
    assert "**H3 PASS**" in (out / "he2021.md").read_text(encoding="utf-8")
    assert json.loads((out / "he2021.json").read_text())["gaps"]["all"]["mean"] == pytest.approx(1.0)
    assert main(["--results", str(folder), "--task", "ner", "--language", "tr", "--output-dir", str(out)]) == 1
    assert "no bare_task and full records for ner" in capsys.readouterr().err
