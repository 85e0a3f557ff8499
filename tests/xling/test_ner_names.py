"""Proper-name recognition (one type, NAME): the capitalised-words baseline, the ner task through studies.xling_comparison
on the tiny model, and the e5 recipes' NER wiring (recipes/xling/e5_ner.sh, e5_common.sh)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from studies import xling_comparison as comparison
from xling.cli import main as xling_main
from datasets import Dataset
from xling.tasks import ner

from test_tasks_cls_pos import common

ROOT = Path(__file__).resolve().parents[2]
NAMES = [["John"], ["London"], ["Acme", "Corp"], ["Mary"]]
FILLER = "the cat sat on a mat and works for".split()


def write_names(path: Path, lang: str, n: int, seed: int) -> Path:
    """PAN-X sentences of lowercase filler words with one NAME each (sometimes the sentence's first word)."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(n):
        words = [(w, "O") for w in rng.sample(FILLER, 4)]
        at = rng.randint(0, len(words))
        words[at:at] = [(w, ("I-" if i else "B-") + "NAME") for i, w in enumerate(rng.choice(NAMES))]
        blocks.append("\n".join(f"{lang}:{w}\t{t}" for w, t in words))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def sentences(*lines: str) -> Dataset:
    """Sentences in the NER columns, each written "word/TAG word/TAG"."""
    rows = [[pair.rsplit("/", 1) for pair in line.split()] for line in lines]
    return Dataset.from_dict({"tokens": [[w for w, _ in r] for r in rows], "tags": [[t for _, t in r] for r in rows]})


def test_capitalised_tags_skip_the_first_word_and_join_runs():
    assert ner.capitalised_tags(["The", "jury", "met", "Ivan", "Allen", "Jr.", "and", "I", "."], "NAME") == \
        ["O", "O", "O", "B-NAME", "I-NAME", "I-NAME", "O", "B-NAME", "O"]
    assert ner.capitalised_tags(["``", "Only", "Atlanta", "''"], "PER") == ["O", "O", "B-PER", "O"]
    assert ner.capitalised_tags(["W", "Łodzi", "mieszka", "Jan"], "NAME") == ["O", "B-NAME", "O", "B-NAME"]


def test_capitalised_baseline_scores_against_the_gold_entities():
    train = sentences("Ivan/B-NAME Allen/I-NAME met/O Mary/B-NAME", "Acme/B-ORG Corp/I-ORG")
    test = sentences("Yesterday/O John/B-NAME Smith/I-NAME met/O mary/B-NAME",  # found: John Smith; missed: mary
                     "Paris/B-NAME is/O Big/O")  # missed: Paris (first word); wrong: Big
    scores = ner.capitalised_baseline(train, test)
    assert scores["entity_type"] == "NAME"  # the most frequent type in training (2 NAME, 1 ORG)
    assert scores["precision"] == pytest.approx(50.0) and scores["recall"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(40.0) and scores["main_metric"] == "f1"
    assert ner.majority_baseline(train, test)["f1"] == 0.0
    with pytest.raises(ValueError, match="no entity"):
        ner.capitalised_baseline(sentences("a/O b/O"), test)


def test_ner_rows_of_a_tiny_model(workspace, en_language_adapter, tmp_path):
    train = write_names(tmp_path / "train.en.panx", "en", 24, 1)
    test_en, test_pl = write_names(tmp_path / "test.en.panx", "en", 8, 2), write_names(tmp_path / "test.pl.panx", "pl", 8, 3)
    assert xling_main(["train-task", "--task", "ner", "--lang-adapter", str(en_language_adapter), "--train", str(train),
                       *common(workspace, tmp_path / "task")]) == 0
    assert json.loads((tmp_path / "task" / "adapter" / "task.json").read_text())["labels"] == ["O", "B-NAME", "I-NAME"]
    assert xling_main(["train-full", "--task", "ner", "--train", str(train), *common(workspace, tmp_path / "full")]) == 0
    results = str(tmp_path / "results")
    args = ["--data", f"en={test_en}", f"pl={test_pl}", "--train-size", "all", "--output-dir", results]
    assert comparison.main(["baseline", "--task", "ner", "--train", str(train), *args]) == 0
    assert comparison.main(["eval-adapter", "--model", str(workspace["model"]), "--task-adapter",
                            str(tmp_path / "task" / "adapter"), "--lang-adapters", f"en={en_language_adapter}",
                            f"pl={en_language_adapter}", "--max-length", "32", *args]) == 0
    assert comparison.main(["eval-full", "--model", str(tmp_path / "full" / "model"), "--task", "ner",
                            "--seed", "42", "--max-length", "32", *args]) == 0
    rows = sorted(str(p.relative_to(results)) for p in Path(results).rglob("*.json"))
    assert rows == ["ner/full/nall/en-seed42.json", "ner/full/nall/pl-seed42.json", "ner/madx/nall/pl-seed42.json",
                    "ner/majority/nall/en-seedNone.json", "ner/majority/nall/pl-seedNone.json",
                    "ner/no_swap/nall/en-seed42.json", "ner/no_swap/nall/pl-seed42.json"]
    base = json.loads(Path(results, "ner/majority/nall/pl-seedNone.json").read_text())
    expected = ner.capitalised_baseline(ner.read(train), ner.read(test_pl))
    assert base["baseline"] == "capitalised_words" and base["main_metric"] == "f1" and base["all_o_f1"] == 0.0
    assert base["f1"] == pytest.approx(expected["f1"]) and 0 < base["f1"] < 100  # some names open their sentence
    madx = json.loads(Path(results, "ner/madx/nall/pl-seed42.json").read_text())
    no_swap = json.loads(Path(results, "ner/no_swap/nall/pl-seed42.json").read_text())
    assert madx["main_metric"] == "f1" and madx["f1"] == no_swap["f1"]  # the same adapter under two names
    summary = comparison.write_report(results, str(tmp_path / "report"), "en")
    assert summary["ner"]["baseline"] == "capitalised_words" and summary["ner"]["target_languages"] == ["pl"]
    text = (tmp_path / "report" / "report.md").read_text()
    en = json.loads(Path(results, "ner/majority/nall/en-seedNone.json").read_text())["f1"]
    assert (f"| capitalised-words baseline (all O: F1 0) | {en:.1f} ± 0.0 | {base['f1']:.1f} ± 0.0 | "
            f"{base['f1']:.1f} ± 0.0 | 1 |") in text


def test_recipes_wire_ner_and_pass_trim_extra_only_when_set(tmp_path):
    for name in ("e5_common.sh", "e5_ner.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "recipes" / "xling" / name)], check=True)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for tool in ("xling", "python"):  # stand-ins that only record their arguments
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n', encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    base = tmp_path / "base"
    (base / "mono" / "lang").mkdir(parents=True)
    for name in ("mono/lang/en.txt", "mono/trim-tasks.txt"):
        (base / name).write_text("x\n", encoding="utf-8")
    script = (f'set -euo pipefail; source "{ROOT}/recipes/xling/e5_common.sh"; prepare_encoder; '
              f'TRIM_EXTRA="{tmp_path}/a.txt {tmp_path}/b.txt"; prepare_encoder; train_file ner all')
    env = {**os.environ, "BIN": str(bin_dir), "BASE": str(base)}
    env.pop("TRIM_EXTRA", None)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{base}/data/ner.trainall.en.panx"
    trims = [line.split() for line in calls.read_text().splitlines() if line.startswith("xling trim-vocab")]
    mono = base / "mono"
    assert trims[0] == ["xling", "trim-vocab", "--model", f"{base}/e5-full", "--text", f"{mono}/lang/en.txt",
                        f"{mono}/trim-tasks.txt", "--output-dir", f"{base}/e5-trim"]  # as before TRIM_EXTRA existed
    assert trims[1][6:10] == [f"{mono}/trim-tasks.txt", f"{tmp_path}/a.txt", f"{tmp_path}/b.txt", "--output-dir"]


def test_pos_only_base_fetches_no_bigbench(tmp_path):
    """BIGBENCH=0 (PyPI no longer serves bigbench==1.0.0): POS data only, en's text is Brown's train split alone."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for tool in ("xling", "python", "data-prep"):  # stand-ins that only record their arguments
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n', encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    base = tmp_path / "base"
    script = f'set -euo pipefail; source "{ROOT}/recipes/xling/e5_common.sh"; prepare_data; mono_text; trim_encoder'
    env = {**os.environ, "BIN": str(bin_dir), "BASE": str(base), "BIGBENCH": "0"}
    env.pop("TRIM_EXTRA", None)
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert not any("bigbench" in line or "multiemo" in line or "squad" in line for line in lines), lines
    assert f"data-prep pos --output-dir {base}/pos" in lines
    text = [line.split() for line in lines if " text " in line]
    assert [line[line.index("--input") + 1:line.index("--output")] for line in text][:2] == [
        [f"{base}/pos/train.en.pos"], [f"{base}/pos/train.tr.pos"]]
    assert any(line.startswith("xling trim-vocab") for line in lines)
