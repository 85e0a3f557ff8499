"""Sentence classification and POS tagging: train-task, eval, train-full, baseline and report through ``xling``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from xling.cli import main
from xling.metrics import macro_f1

GOOD, BAD = ["cat", "mat", "sat"], ["john", "london", "acme"]


def write_classification(path: Path, n: int, seed: int, labels=("positive", "negative", "neutral")) -> Path:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.sample(GOOD if label == "positive" else BAD, 2) + ["the", "on"]
        rows.append({"id": i, "text": " ".join(words), "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_pos(path: Path, lang: str, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    vocabulary = {"the": "DET", "a": "DET", "cat": "NOUN", "mat": "NOUN", "sat": "VERB", "on": "ADP", ".": "."}
    blocks = []
    for _ in range(n):
        words = rng.choices(list(vocabulary), k=rng.randint(3, 6))
        blocks.append("\n".join(f"{lang}:{w}\t{vocabulary[w]}" for w in words))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def common(workspace, out: Path) -> list[str]:
    return ["--model", str(workspace["model"]), "--output-dir", str(out), "--max-steps", "3", "--batch-size", "8", "--cpu",
            "--save-steps", "3", "--learning-rate", "1e-3", "--max-length", "32"]


@pytest.mark.parametrize("task,writer,metric", [
    ("classification", lambda p: write_classification(p, 24, 1), "accuracy"),
    ("pos", lambda p: write_pos(p, "en", 24, 2), "accuracy"),
])
def test_train_eval_report(workspace, en_language_adapter, tmp_path, task, writer, metric):
    train = writer(tmp_path / f"train.{task}")
    out = tmp_path / "task"
    assert main(["train-task", "--task", task, "--lang-adapter", str(en_language_adapter), "--train", str(train),
                 "--dev", str(train), *common(workspace, out)]) == 0
    info = json.loads((out / "adapter" / "task.json").read_text())
    expected = ["negative", "neutral", "positive"] if task == "classification" else [".", "ADP", "DET", "NOUN", "VERB"]
    assert info["task"] == task and info["labels"] == expected
    assert json.loads((out / "dev_results.json").read_text())["main_metric"] == metric
    result = tmp_path / "en.json"
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "en", "--data", str(train), "--output", str(result)]) == 0
    record = json.loads(result.read_text())
    assert record["task"] == task and 0.0 <= record[metric] <= 100.0 and record["num_examples"] == 24
    if task == "classification":
        assert 0.0 <= record["macro_f1"] <= 100.0
    baseline = tmp_path / "majority.json"
    assert main(["baseline", "--task", task, "--train", str(train), "--data", str(train), "--lang", "en",
                 "--output", str(baseline)]) == 0
    assert main(["report", str(result), str(baseline), "--output-dir", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(summary) == {task, f"{task}_majority"}


def test_train_full_classification(workspace, tmp_path):
    train = write_classification(tmp_path / "train.jsonl", 16, 3)
    out = tmp_path / "full"
    assert main(["train-full", "--task", "classification", "--train", str(train), "--dev", str(train),
                 *common(workspace, out)]) == 0
    assert json.loads((out / "dev_results.json").read_text())["num_examples"] == 16


def test_label_outside_the_training_labels_is_a_one_line_error(workspace, en_language_adapter, tmp_path, capsys):
    train = write_classification(tmp_path / "train.jsonl", 16, 4, labels=("positive", "negative"))
    out = tmp_path / "task"
    assert main(["train-task", "--task", "classification", "--lang-adapter", str(en_language_adapter),
                 "--train", str(train), *common(workspace, out)]) == 0
    data = write_classification(tmp_path / "de.jsonl", 6, 5)  # line 3 is "neutral"
    rc = main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
               str(en_language_adapter), "--lang", "de", "--data", str(data), "--output", str(tmp_path / "de.json")])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert rc == 1 and len(errors) == 1 and errors[0].startswith("xling: error: eval: ")
    assert f"{data}:3: label 'neutral' is not in the task's label set" in errors[0]
    assert not (tmp_path / "de.json").exists()


def test_pos_tag_outside_the_training_tags_names_its_line(tmp_path, capsys):
    train = write_pos(tmp_path / "train.pos", "en", 6, 6)
    data = tmp_path / "tr.pos"
    data.write_text("tr:bir\tDET\ntr:kedi\tNOUN\n\ntr:hey\tX\n", encoding="utf-8")
    rc = main(["baseline", "--task", "pos", "--train", str(train), "--data", str(data), "--lang", "tr",
               "--output", str(tmp_path / "r.json")])
    assert rc == 1 and f"{data}:4: tag 'X' is not in the task's tag set" in capsys.readouterr().err


def test_majority_baseline_values(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"t{i}", "label": l}) + "\n" for i, l in enumerate("aabbbc")))
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"text": f"t{i}", "label": l}) + "\n" for i, l in enumerate("bbac")))
    output = tmp_path / "r.json"
    assert main(["baseline", "--task", "classification", "--train", str(train), "--data", str(data), "--lang", "de",
                 "--output", str(output)]) == 0
    record = json.loads(output.read_text())
    assert record["majority_label"] == "b" and record["accuracy"] == pytest.approx(50.0)
    assert record["macro_f1"] == pytest.approx(100 * macro_f1(list("bbac"), list("bbbb")))  # (0 + 2/3 + 0) / 3
    assert record["task"] == "classification_majority" and record["language"] == "de"
    pos_train = tmp_path / "train.pos"
    pos_train.write_text("en:a\tDET\nen:b\tNOUN\nen:c\tNOUN\n\nen:d\tVERB\n")
    assert main(["baseline", "--task", "pos", "--train", str(pos_train), "--data", str(pos_train), "--lang", "en",
                 "--output", str(output)]) == 0
    assert json.loads(output.read_text())["accuracy"] == pytest.approx(50.0)


def test_macro_f1_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = random.Random(0)
    gold = [rng.choice("abcd") for _ in range(200)]
    pred = [g if rng.random() < 0.6 else rng.choice("abce") for g in gold]
    assert macro_f1(gold, pred) == pytest.approx(sklearn.f1_score(gold, pred, average="macro"))
