"""recipes/nmt/domain_adaptation.sh end to end on a tiny corpus given as plain files and a tiny base, and the
summary's D1/D2 rules (they can fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt_corpus import render, sentences, write_corpus

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes" / "nmt"))
import domain_adaptation_summary as summary  # noqa: E402

BIN = Path(sys.executable).parent
TINY = ("--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
        "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32 --encoder-attention-heads 2 "
        "--decoder-attention-heads 2 --share-all-embeddings")


def _run(argv: list[str], env: dict, log: Path) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]


def test_recipe_runs_on_plain_files_and_reports_every_row(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    # a general corpus and a tiny base in the demo's layout (spm-bin folder + translation_multi_simple_epoch)
    write_corpus(tmp_path / "raw", ["en-de"], {"train": 300, "valid": 20, "test": 10})
    _run([str(BIN / "data-prep"), "spm-bin", "--raw-dir", str(tmp_path / "raw"), "--output-dir",
          str(tmp_path / "base_data"), "--vocab-size", "60"], env, tmp_path / "spm.log")
    user_dir = str(ROOT / "nmt")
    _run([str(BIN / "fairseq-train"), str(tmp_path / "base_data/bin"), "--user-dir", user_dir,
          "--task", "translation_multi_simple_epoch", "--lang-pairs", "en-de,de-en", "--langs", "de,en",
          "--encoder-langtok", "tgt", "--arch", "transformer", *TINY.split(), "--optimizer", "adam", "--lr", "0.01",
          "--max-tokens", "400", "--max-update", "6", "--cpu", "--disable-validation", "--no-epoch-checkpoints",
          "--num-workers", "0", "--save-dir", str(tmp_path / "base")], env, tmp_path / "base.log")
    # the in-domain corpus: plain aligned files, other words in the same languages
    data = sentences(80, seed=7)
    (tmp_path / "domain.en").write_text("".join(render("en", c[::-1]) + "\n" for c in data))
    (tmp_path / "domain.de").write_text("".join(render("de", c[::-1]) + "\n" for c in data))
    recipe_env = {**env, "BIN": str(BIN), "PAIR": "en-de", "SRC_FILE": str(tmp_path / "domain.en"),
                  "TGT_FILE": str(tmp_path / "domain.de"), "VALID_FRACTION": "0.15", "TEST_FRACTION": "0.15",
                  "BASE_DATA": str(tmp_path / "base_data"), "BASE_CKPT": str(tmp_path / "base/checkpoint_last.pt"),
                  "GENERAL_RAW": str(tmp_path / "raw"), "SHAPE_FLAGS": TINY, "SIZES": "20", "SEEDS": "1",
                  "UPDATES": "4", "VALID_EVERY": "2", "ADAPTER_DIM": "4", "MAX_TEST": "6",
                  "WORK_ROOT": str(tmp_path / "work"), "REPORT": str(tmp_path / "report")}
    _run(["bash", str(ROOT / "recipes/nmt/domain_adaptation.sh")], recipe_env, tmp_path / "recipe.log")
    found = json.loads((tmp_path / "report/domain_adaptation.json").read_text())
    pair = found["pairs"]["en-de"]
    assert pair["base"]["in_domain"]["segments"] == 6 and pair["base"]["general"]["segments"] == 10
    assert pair["copy"]["in_domain"]["segments"] == 6
    for system in ("domain_adapter", "full_finetune"):
        for size in ("20",):
            run = pair["runs"][system][size]["1"]
            assert set(run) == {"in_domain", "general", "best"}
            assert run["best"]["validations"] >= 2 and run["best"]["update"] in (2, 4)
    # the best checkpoint by validation loss is the one generated from
    work = tmp_path / "work/en-de"
    assert (work / "checkpoints/domain_adapter-20-s1/checkpoint_best.pt").is_file()
    assert sum(1 for _ in open(work / "raw-20/train.en-de.en")) == 20
    assert found["relations"]["D1"]["result"] == "n/a"  # one pair measured: D1 needs two
    assert found["relations"]["D2"]["result"] == "n/a"  # one size: D2 needs two (the rules: the test below)
    text = (tmp_path / "report/README.md").read_text()
    assert "**D1 n/a**" in text and "| 20 | domain adapter (1 seeds)" in text and "copy the source" in text
    assert (tmp_path / "report/gap_by_size.png").stat().st_size > 1000 and "![adapter minus full" in text
    # a second run resumes: no training and no generation is redone (generate() keeps a done marker)
    marker = work / "generate/domain_adapter-20-s1/done"
    before = marker.stat().st_mtime_ns
    _run(["bash", str(ROOT / "recipes/nmt/domain_adaptation.sh")], {**recipe_env, "D1_MIN_PAIRS": "1"},
         tmp_path / "recipe2.log")
    assert marker.stat().st_mtime_ns == before
    assert (tmp_path / "recipe2.log").read_text().count("done already") == 2
    assert json.loads((tmp_path / "report/domain_adaptation.json").read_text())["relations"]["D1"]["min_pairs"] == 1


def _pair(adapter: dict, full: dict) -> dict:
    runs = {"domain_adapter": {}, "full_finetune": {}}
    for system, values in (("domain_adapter", adapter), ("full_finetune", full)):
        for size, seeds in values.items():
            runs[system][size] = {str(i): {"in_domain": {"bleu": v}} for i, v in enumerate(seeds, 1)}
    return {"meta": {"sizes": list(adapter)}, "runs": runs}


def test_d1_and_d2_pass_only_with_margins_beyond_the_seed_spread():
    close = _pair({"1000": [20.0, 20.2, 19.8], "all": [22.0, 22.1, 21.9]},
                  {"1000": [19.0, 19.1, 18.9], "all": [22.4, 22.5, 22.3]})
    assert summary.relations({"en-de": close, "en-fr": close})["D1"]["result"] == "PASS"
    assert summary.relations({"en-de": close})["D1"]["result"] == "n/a"
    assert summary.relations({"en-de": close})["D2"]["result"] == "PASS"
    behind = _pair({"1000": [15.0, 15.2, 14.8], "all": [17.0, 17.1, 16.9]},
                   {"1000": [19.0, 19.1, 18.9], "all": [22.4, 22.5, 22.3]})
    found = summary.relations({"en-de": close, "en-fr": behind})
    assert found["D1"]["result"] == "FAIL" and found["D1"]["pairs_holding"] == 1
    # the demo's one pair, judged on itself (--min-pairs 1)
    assert summary.relations({"en-de": close}, min_pairs=1)["D1"]["result"] == "PASS"
    assert summary.relations({"en-de": behind}, min_pairs=1)["D1"]["result"] == "FAIL"
    # a D2 margin inside the spread does not count: noisy seeds
    noisy = _pair({"1000": [18.0, 22.0, 20.0], "all": [20.0, 20.0, 20.0]},
                  {"1000": [19.0, 19.0, 19.0], "all": [20.0, 20.0, 20.0]})
    d2 = summary.relations({"en-de": noisy})["D2"]
    assert d2["result"] == "FAIL" and d2["pairs"]["en-de"]["difference_small_minus_large"] == pytest.approx(1.0)


def test_demo_summary_shows_d1_and_d2_beside_the_other_relations(tmp_path):
    from studies.demo_summary import domain_relations, relation_figures, relations_table

    assert domain_relations(tmp_path / "absent.json") == []  # DEMO_DOMAIN_PAIR=none: no rows
    behind = _pair({"1000": [15.0, 15.2, 14.8], "all": [17.0, 17.1, 16.9]},
                   {"1000": [19.0, 19.1, 18.9], "all": [22.4, 22.5, 22.3]})
    path = tmp_path / "domain_adaptation.json"
    path.write_text(json.dumps({"relations": summary.relations({"en-de": behind}, min_pairs=1)}))
    rows = domain_relations(path)
    assert [(r["relation"], r["status"]) for r in rows] == [("D1", "FAIL"), ("D2", "PASS")]
    assert "judged on 1 pair" in rows[0]["claim"]
    assert "| D1 | **FAIL** |" in "\n".join(relations_table(rows))
    lines = relation_figures(rows)
    assert "1000: adapter − full -4.00 ± 0.10 BLEU over 3 seeds (fails)" in lines[0]
    assert "(adapter − full at 1000) − (at all) +1.40 ± 0.10 over 3 seeds (holds)" in lines[1]
