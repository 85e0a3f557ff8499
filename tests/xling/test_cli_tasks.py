"""Each task trains and evaluates end to end through the ``xling`` command on files in the real formats."""

from __future__ import annotations

import json

import pytest

from xling.cli import main


@pytest.fixture(scope="module")
def lang_adapters(workspace):
    """Language adapters for en (source) and sw (target), trained with `xling train-lang`."""
    root, model, data = workspace["root"], workspace["model"], workspace["data"]
    out = {}
    for lang in ("en", "sw"):
        rc = main(["train-lang", "--model", str(model), "--lang", lang, "--text", str(data / f"{lang}.txt"),
                   "--output-dir", str(root / f"lang-{lang}"), "--max-steps", "4", "--batch-size", "8", "--cpu",
                   "--save-steps", "2", "--learning-rate", "1e-3"])
        assert rc == 0
        out[lang] = root / f"lang-{lang}" / "adapter"
    return out


@pytest.mark.parametrize("task,train,evaluate,extra", [
    ("ner", "en.panx", "sw.panx", []),
    ("qa", "en.squad.json", "en.squad.json", []),
    ("copa", "siqa.jsonl", "en.copa.jsonl", ["--train-labels"]),
])
def test_task_end_to_end(workspace, lang_adapters, task, train, evaluate, extra):
    root, model, data = workspace["root"], workspace["model"], workspace["data"]
    out = root / f"task-{task}"
    args = ["train-task", "--task", task, "--model", str(model), "--lang-adapter", str(lang_adapters["en"]),
            "--train", str(data / train), "--output-dir", str(out), "--max-steps", "6", "--batch-size", "8",
            "--cpu", "--save-steps", "3", "--learning-rate", "1e-3", "--max-length", "64"]
    if extra:
        args += [extra[0], str(data / "siqa-labels.lst")]
    assert main(args) == 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "adapter" / "head.safetensors").is_file()
    results = root / f"{task}-sw.json"
    assert main(["eval", "--model", str(model), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(lang_adapters["sw"]), "--lang", "sw", "--data", str(data / evaluate), "--output", str(results)]) == 0
    record = json.loads(results.read_text())
    assert record["task"] == task and record["language"] == "sw"
    metric = record["main_metric"]
    assert 0.0 <= record[metric] <= 100.0 and record["num_examples"] > 0


def test_report_mean_std(tmp_path, capsys):
    files = []
    for seed, scores in ((1, {"en": 80.0, "sw": 40.0, "de": 60.0}), (2, {"en": 90.0, "sw": 50.0, "de": 80.0})):
        for lang, score in scores.items():
            path = tmp_path / f"{lang}-{seed}.json"
            path.write_text(json.dumps({"task": "ner", "language": lang, "seed": seed, "f1": score, "main_metric": "f1"}))
            files.append(str(path))
    assert main(["report", *files, "--output-dir", str(tmp_path / "report"), "--source-language", "en"]) == 0
    summary = json.loads((tmp_path / "report" / "report.json").read_text())["ner"]
    assert summary["languages"]["sw"]["mean"] == pytest.approx(45.0)
    assert summary["languages"]["sw"]["std"] == pytest.approx(5.0)
    # average over targets (sw, de) per seed: 50 and 65 -> 57.5 ± 7.5
    assert summary["avg"]["mean"] == pytest.approx(57.5) and summary["avg"]["std"] == pytest.approx(7.5)
    assert (tmp_path / "report" / "ner.png").read_bytes()[:4] == b"\x89PNG"
    assert "57.50 ± 7.50" in (tmp_path / "report" / "report.md").read_text()


def test_bad_input_is_a_clear_error(workspace, tmp_path, capsys):
    bad = tmp_path / "bad.panx"
    bad.write_text("en:john\tB-PER\nen:lives\n", encoding="utf-8")
    rc = main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter", str(tmp_path),
               "--train", str(bad), "--output-dir", str(tmp_path / "out"), "--cpu"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "lang:token<TAB>label" in err
    assert not (tmp_path / "out").exists()
