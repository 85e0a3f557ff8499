"""nmt generate-many (every test sentence translated, one process for many directions) and nmt-relations."""

from __future__ import annotations

import json

import pytest
from nmt_helpers import LANG_FLAGS, USER_DIR

from nmt.generate_many import main as generate_many
from studies.nmt_relations import check
from studies.nmt_relations import main as relations_main

GEN_FLAGS = ["--user-dir", USER_DIR, *LANG_FLAGS, "--beam", "2", "--max-len-b", "5", "--cpu", "--num-workers", "0",
             "--max-tokens", "2000"]


def hypotheses(path) -> dict[int, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("H-"):
            key, _, text = line.partition("\t")[2].partition("\t")
            out[int(line.split("\t")[0][2:])] = text
    return out


def test_every_test_sentence_is_translated(nmt_run, tmp_path):
    # 12 test sentences: fairseq's default --required-batch-size-multiple 8 leaves out 12 mod 8 = 4 of them
    assert generate_many([str(nmt_run.data), "--path", str(nmt_run.base), "--directions", "en-de,en-fr",
                          "--output-dir", str(tmp_path / "all"), "--",
                          "--task", "translation_multi_simple_epoch", *GEN_FLAGS]) == 0
    for direction in ("en-de", "en-fr"):
        assert sorted(hypotheses(tmp_path / "all" / f"generate-{direction}.txt")) == list(range(12))
    assert generate_many([str(nmt_run.data), "--path", str(nmt_run.base), "--directions", "en-de",
                          "--output-dir", str(tmp_path / "eight"), "--", "--task", "translation_multi_simple_epoch",
                          "--required-batch-size-multiple", "8", *GEN_FLAGS]) == 0
    assert len(hypotheses(tmp_path / "eight" / "generate-en-de.txt")) == 8
    assert not list((tmp_path / "all").glob(".generate-*"))  # no temporary folder left behind


def test_adapter_model_leaves_directions_without_adapter_as_the_base(nmt_run, tmp_path):
    """R6's premise: a direction with no adapter of its own is translated exactly as the base does."""
    flags = [*GEN_FLAGS[:2], "--lang-pairs", "de-fr", *LANG_FLAGS[2:], *GEN_FLAGS[4:]]
    assert generate_many([str(nmt_run.data), "--path", str(nmt_run.base), "--directions", "de-fr",
                          "--output-dir", str(tmp_path / "base"), "--", "--task", "translation_multi_simple_epoch",
                          *flags]) == 0
    assert generate_many([str(nmt_run.data), "--path", str(nmt_run.pair), "--directions", "de-fr,en-de",
                          "--output-dir", str(tmp_path / "pair"), "--", "--task", "adapter_translation",
                          "--enable-lang-ids", "--missing-adapter", "identity", *flags]) == 0
    base = hypotheses(tmp_path / "base" / "generate-de-fr.txt")
    assert len(base) == 12 and hypotheses(tmp_path / "pair" / "generate-de-fr.txt") == base


def test_generate_many_refuses_missing_checkpoint(tmp_path, capsys):
    assert generate_many([str(tmp_path), "--path", str(tmp_path / "nope.pt"), "--directions", "en-de",
                          "--output-dir", str(tmp_path / "o")]) == 2
    assert "nope.pt: no such checkpoint" in capsys.readouterr().err


def _entry(tmp_path, system, direction, bleu, hyp="h", zero_shot=False, trainable=None, total=1000):
    path = tmp_path / f"{system}-{direction}.txt"
    path.write_text(hyp, encoding="utf-8")
    entry = {"bleu": bleu, "chrf": bleu, "hyp": str(path), "zero_shot": zero_shot}
    if trainable is not None:
        entry.update(trainable_parameters=trainable, total_parameters=total)
    return entry


def synthetic_report(tmp_path, pair_gain=2.0, full_high=14.5, lang_share=50):
    sup, zero = ["en-ar", "en-de", "en-fr"], ["de-fr"]
    report = {"copy": {d: _entry(tmp_path, "copy", d, 10.0, zero_shot=d in zero) for d in sup + zero},
              "base": {d: _entry(tmp_path, "base", d, 12.0, hyp=f"base {d}\n", trainable=1000)
                       for d in sup + zero}}
    for seed, delta in (("", 0.0), ("#2", 0.2)):
        report["pair_adapter" + seed] = {d: _entry(tmp_path, "pa" + seed, d, 12.0 + pair_gain + delta, trainable=40)
                                         for d in ("en-ar", "en-de")}
    report["full_finetune"] = {"en-de": _entry(tmp_path, "ft", "en-de", full_high, trainable=1000),
                               "en-ar": _entry(tmp_path, "ft", "en-ar", 15.0, trainable=1000)}
    for seed, delta in (("", 0.0), ("#2", 0.2)):
        report["lang_adapters" + seed] = {d: _entry(tmp_path, "la" + seed, d, 13.0 + delta, zero_shot=d in zero,
                                                    trainable=lang_share) for d in sup + zero}
    report["pair_adapter.others"] = {d: _entry(tmp_path, "pao", d, 12.0, hyp=f"base {d}\n", trainable=40)
                                     for d in ("en-de", "en-fr")}
    report["full_finetune.others"] = {d: _entry(tmp_path, "fto", d, 9.0, trainable=1000) for d in ("en-de", "en-fr")}
    return report


def statuses(results):
    return {r["relation"]: r["status"] for r in results}


def test_relations_pass_and_fail_on_the_figures(tmp_path):
    good = check(synthetic_report(tmp_path), ["en-ar", "en-de"], "en-de", "en-ar")
    assert statuses(good) == {f"R{i}": "PASS" for i in range(1, 7)}
    r2 = next(r for r in good if r["relation"] == "R2")["figures"]
    assert r2["en-de"]["seeds"] == 2 and r2["en-de"]["gain"] == pytest.approx(2.1)
    r6 = next(r for r in good if r["relation"] == "R6")["figures"]
    assert r6["full_finetune_mean_change"] == pytest.approx(-3.0)

    bad = synthetic_report(tmp_path, pair_gain=0.5, full_high=16.0, lang_share=150)
    bad["pair_adapter.others"]["en-fr"] = _entry(tmp_path, "pao2", "en-fr", 12.0, hyp="different\n", trainable=40)
    assert statuses(check(bad, ["en-ar", "en-de"], "en-de", "en-ar")) == {
        "R1": "PASS", "R2": "FAIL", "R3": "FAIL", "R4": "PASS", "R5": "FAIL", "R6": "FAIL"}

    del bad["full_finetune"], bad["lang_adapters"], bad["lang_adapters#2"]
    partial = statuses(check(bad, ["en-ar", "en-de"], "en-de", "en-ar"))
    assert partial["R3"] == "n/a" and partial["R4"] == "n/a"


def test_relations_need_a_margin_beyond_the_seed_spread(tmp_path):
    # R2: a gain of 2.1 over the base with seeds 2.0 apart (sd 1.41) passes; 5.0 apart (sd 3.54) fails
    report = synthetic_report(tmp_path)
    for pair in ("en-ar", "en-de"):
        report["pair_adapter#2"][pair]["bleu"] = 16.0
        report["pair_adapter"][pair]["bleu"] = 12.0  # mean 14.0: gain 2.0, sd 2.83
    r2 = next(r for r in check(report, ["en-ar", "en-de"], "en-de", "en-ar") if r["relation"] == "R2")
    assert r2["status"] == "FAIL" and r2["figures"]["en-de"]["spread"] == pytest.approx(2.828, abs=1e-3)
    # one seed of the pair adapters: no verdict, however large the gain
    report = synthetic_report(tmp_path, pair_gain=5.0)
    del report["pair_adapter#2"]
    assert statuses(check(report, ["en-ar", "en-de"], "en-de", "en-ar"))["R2"] == "n/a"
    # R4: a zero-shot gain of 1.1 with lang-adapter seeds 3 BLEU apart (sd 2.12) fails
    report = synthetic_report(tmp_path)
    for direction in report["lang_adapters#2"]:
        report["lang_adapters#2"][direction]["bleu"] = 15.5
        report["lang_adapters"][direction]["bleu"] = 12.5
    r4 = next(r for r in check(report, ["en-ar", "en-de"], "en-de", "en-ar") if r["relation"] == "R4")
    assert r4["status"] == "FAIL" and r4["figures"]["gain"] == pytest.approx(2.0)
    # R1 with one base seed needs 2 BLEU over copying; with two, more than the base seeds' spread
    report = synthetic_report(tmp_path)
    for entry in report["base"].values():
        entry["bleu"] = 11.9  # margin 1.9 < 2.0
    assert statuses(check(report, ["en-ar", "en-de"], "en-de", "en-ar"))["R1"] == "FAIL"
    report["base#2"] = {d: dict(e, bleu=11.5) for d, e in report["base"].items()}  # mean 11.7, margin 1.7, sd 0.28
    r1 = next(r for r in check(report, ["en-ar", "en-de"], "en-de", "en-ar") if r["relation"] == "R1")
    assert r1["status"] == "PASS" and r1["figures"]["margin_needed"] == pytest.approx(0.283, abs=1e-3)
    assert "base" not in r1["figures"] and r1["figures"]["mean"] == pytest.approx(11.7)  # no derived duplicates


def test_relations_flattening_and_cli(tmp_path, capsys):
    report = tmp_path / "nmt.json"
    report.write_text(json.dumps(synthetic_report(tmp_path)))
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"en-de": [{"update": 6000, "valid_loss": 5.0}, {"update": 8000, "valid_loss": 4.5}]}))
    args = ["--report", str(report), "--pairs", "en-ar,en-de", "--high-resource-pair", "en-de",
            "--forgetting-pair", "en-ar", "--output-dir", str(tmp_path / "out"), "--base-curve", str(curve)]
    assert relations_main(args + ["--strict"]) == 1  # the base had not flattened: R3 fails
    assert "R3 FAIL" in capsys.readouterr().out
    # a rate: 0.03 over 4,000 updates is flat (0.0075 per 1,000), 0.03 over 2,000 is not (0.015 per 1,000)
    curve.write_text(json.dumps({"en-de": [{"update": 4000, "valid_loss": 4.53}, {"update": 8000, "valid_loss": 4.5}]}))
    assert relations_main(args + ["--strict"]) == 0
    assert "**PASS**" in (tmp_path / "out" / "relations.md").read_text()
    curve.write_text(json.dumps({"en-de": [{"update": 6000, "valid_loss": 4.53}, {"update": 8000, "valid_loss": 4.5}]}))
    assert relations_main(args + ["--strict"]) == 1
