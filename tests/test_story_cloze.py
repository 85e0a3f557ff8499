"""The Story Cloze Test as xling's copa task: ``data-prep story-cloze`` on a hand-made TSV pair, the generic
multiple-choice record in ``choice_row``, and a tiny model trained and scored on it (task adapter and full)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from data_prep.cli import main as data_prep_main
from data_prep.story_cloze import HEADER, QUESTION
from xling.data import DataError
from xling.datasets_io import choice_row

HEAD = "\t".join(HEADER)


def _row(story: str, sentences: list[str], endings: tuple[str, str], answer: str) -> str:
    return "\t".join([story, *sentences, *endings, answer])


def _write_tsvs(folder: Path, val_extra: list[str] = ()) -> Path:
    """A val file of four stories (one shares its id with a test story, one its context) and a test file of two."""
    folder.mkdir(parents=True, exist_ok=True)
    val = [HEAD,
           _row("v1", ["Tom was hungry.", "He opened the fridge.", "It was empty.", "He went out."],
                ("He bought food.", "He flew to the moon."), "1"),
           _row("v2", ["Ann had a test.", "She studied all night.", "She slept little.", "She went to class."],
                ("She failed to wake.", "She passed the test."), "2"),
           _row("t1", ["A.", "B.", "C.", "D."], ("E.", "F."), "1"),  # a test story's id
           _row("v4", ["Sam got a dog.", "It barked.", "It ran.", "It slept."], ("It was calm.", "It flew."), "1"),
           *val_extra]
    test = [HEAD,
            _row("t1", ["Joe saw rain.", "He took a coat.", "He walked out.", "The rain stopped."],
                 ("He was dry.", "He was a fish."), "1"),
            _row("t2", ["Sam got a dog.", "It barked.", "It ran.", "It slept."], ("It was calm.", "It sang."), "2")]
    (folder / "cloze_test_spring2016_val.tsv").write_text("\r\n".join(val) + "\r\n", encoding="utf-8")
    (folder / "cloze_test_spring2016_test.tsv").write_text("\r\n".join(test) + "\r\n", encoding="utf-8")
    return folder


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_story_cloze_prepare(tmp_path, capsys):
    tsvs, out = _write_tsvs(tmp_path / "tsv"), tmp_path / "out"
    assert data_prep_main(["story-cloze", "--output-dir", str(out), "--tsv-dir", str(tsvs)]) == 0
    train, test = _jsonl(out / "train.en.jsonl"), _jsonl(out / "test.en.jsonl")
    assert [r["id"] for r in train] == ["v1", "v2"]  # t1 (test id) and v4 (test context) removed
    assert [r["id"] for r in test] == ["t1", "t2"]
    assert train[0] == {"context": "Tom was hungry. He opened the fridge. It was empty. He went out.",
                        "question": QUESTION, "choices": ["He bought food.", "He flew to the moon."], "label": 0,
                        "id": "v1"}
    assert train[1]["label"] == 1 and test[1]["label"] == 1  # AnswerRightEnding 2 -> label 1
    assert not {r["context"] for r in train} & {r["context"] for r in test}
    counts = json.loads((out / "story_cloze_counts.json").read_text())
    assert counts["counts"] == {"train": 2, "test": 2} and counts["removals"]["train_in_test"] == 2
    assert counts["labels"]["train"] == {"0": 1, "1": 1}
    text = (out / "text.en.txt").read_text(encoding="utf-8").splitlines()
    assert QUESTION in text and "He flew to the moon." in text and "It sang." in text
    for record in train + test:
        assert choice_row(record, "x")["choices"] == record["choices"]


@pytest.mark.parametrize("bad,line,message", [
    (_row("v5", ["a", "b", "c", "d"], ("e", "f"), "3"), 6, "AnswerRightEnding must be 1 or 2"),
    ("v5\tonly\tthree", 6, "expected 8 tab-separated fields"),
    (_row("v5", ["a", "", "c", "d"], ("e", "f"), "1"), 6, "empty field(s) InputSentence2"),
])
def test_story_cloze_malformed_row(tmp_path, capsys, bad, line, message):
    tsvs = _write_tsvs(tmp_path / "tsv", [bad])
    assert data_prep_main(["story-cloze", "--output-dir", str(tmp_path / "out"), "--tsv-dir", str(tsvs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"cloze_test_spring2016_val.tsv:{line}:" in err and message in err
    assert not (tmp_path / "out").exists()


GOOD = {"context": "Tom was hungry.", "question": QUESTION, "choices": ["He ate.", "He flew."], "label": 1, "id": "x"}


def test_choice_row_generic_form():
    row = choice_row(GOOD, "f:1")
    assert row == {"context": "Tom was hungry.", "question": QUESTION, "choices": ["He ate.", "He flew."], "label": 1,
                   "origin": "f:1"}
    assert choice_row({**GOOD, "choices": ["a", "b", "c"], "label": 2}, "f:1")["label"] == 2
    # the existing forms are unchanged
    copa = {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 1}
    assert choice_row(copa, "f:1")["question"] == "What was the cause?"


@pytest.mark.parametrize("change,message", [
    ({"choices": ["only one"]}, "at least 2"),
    ({"choices": "a b"}, "at least 2"),
    ({"choices": ["a", ""]}, "non-empty strings"),
    ({"choices": ["a", 3]}, "non-empty strings"),
    ({"label": 2}, "out of range"),
    ({"label": -1}, "out of range"),
    ({"label": "1"}, "must be an integer"),
    ({"label": True}, "must be an integer"),
    ({"context": " "}, "non-empty strings"),
    ({"question": None}, "non-empty strings"),
])
def test_choice_row_generic_form_rejects(change, message):
    with pytest.raises(DataError, match=f"^f:3: .*{message}"):
        choice_row({**GOOD, **change}, "f:3")


def test_choice_row_generic_form_missing_field():
    with pytest.raises(DataError, match="f:3: missing field.*label"):
        choice_row({k: v for k, v in GOOD.items() if k != "label"}, "f:3")


def _xling_test_helpers():
    """tests/xling/conftest.py's tiny XLM-R builders (it is not a conftest of this folder)."""
    spec = importlib.util.spec_from_file_location("xling_tiny_helpers", Path(__file__).parent / "xling" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny XLM-R (hidden 32, 2 layers) and generic-form train/test files where the right ending is fixed."""
    import torch
    from transformers import XLMRobertaForMaskedLM

    helpers = _xling_test_helpers()
    root = tmp_path_factory.mktemp("story-cloze")
    text = helpers.sentences(helpers.WORDS_EN, 80, 1) + [QUESTION]
    tokenizer = helpers.build_tokenizer(root / "spm", text)
    torch.manual_seed(0)
    XLMRobertaForMaskedLM(helpers.tiny_xlmr_config(len(tokenizer))).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    files = {}
    for split, n in (("train", 24), ("test", 8)):
        rows = []
        for i in range(n):
            good, bad = "the cat sat on the mat", "mary went to paris"
            rows.append({"context": text[i], "question": QUESTION, "choices": [good, bad] if i % 2 else [bad, good],
                         "label": 0 if i % 2 else 1, "id": f"{split}{i}"})
        files[split] = root / f"{split}.en.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"root": root, "model": root / "model", **files}


def test_copa_generic_trains_and_evaluates(tiny):
    from studies.xling_comparison import main as study_main
    from xling.cli import main as xling_main

    root, results = tiny["root"], tiny["root"] / "results"
    common = ["--task", "copa", "--model", str(tiny["model"]), "--train", str(tiny["train"]), "--max-steps", "3",
              "--batch-size", "8", "--cpu", "--save-steps", "100", "--max-length", "32", "--seed", "1"]
    assert xling_main(["train-task", *common, "--lang-adapter", "none", "--learning-rate", "1e-3",
                       "--output-dir", str(root / "bare")]) == 0
    assert xling_main(["train-full", *common, "--learning-rate", "5e-5", "--output-dir", str(root / "full")]) == 0
    data = ["--data", f"en={tiny['test']}", "--train-size", "all", "--max-length", "32", "--output-dir", str(results)]
    assert study_main(["eval-adapter", "--model", str(tiny["model"]), "--task-adapter", str(root / "bare" / "adapter"),
                       *data]) == 0
    assert study_main(["eval-full", "--model", str(root / "full" / "model"), "--task", "copa", "--seed", "1", *data]) == 0
    assert study_main(["baseline", "--task", "copa", "--train", str(tiny["train"]), "--data", f"en={tiny['test']}",
                       "--train-size", "all", "--output-dir", str(results)]) == 0
    for row, seed in (("bare_task", 1), ("full", 1), ("majority", None)):
        record = json.loads((results / "copa" / row / "nall" / f"en-seed{seed}.json").read_text())
        assert record["main_metric"] == "accuracy" and record["num_examples"] == 8
        assert 0.0 <= record["accuracy"] <= 100.0
    majority = json.loads((results / "copa" / "majority" / "nall" / "en-seedNone.json").read_text())
    assert majority["accuracy"] == 50.0 and majority["majority_label"] == 0  # a tie: the lowest index
    assert study_main(["report", "--results", str(results), "--output-dir", str(root / "report")]) == 0
    report = (root / "report" / "report.md").read_text()
    assert "#### copa: accuracy, en only, all training examples" in report and "task adapter on the bare encoder" in report
    assert "→" not in report  # one language: no arrow to an empty target list
