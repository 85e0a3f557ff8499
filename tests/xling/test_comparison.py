"""studies.xling_comparison (the four rows, the report), studies.xling_task_subsets, the demo's MAD-X summary, and bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studies import xling_comparison as comparison
from studies import xling_comparison_report as comparison_report
from xling.cli import main as xling_main
from studies.xling_task_subsets import extract_text, subsample

from test_tasks_cls_pos import common, write_classification



def squad_file(path: Path, paragraphs: int) -> Path:
    data = [{"context": f"context number {i} says paris", "qas": [
        {"id": f"q{i}-{j}", "question": f"question {i} {j}?", "answers": [{"text": "paris", "answer_start": 22 + len(str(i))}]}
        for j in range(2)]} for i in range(paragraphs)]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": data}]}), encoding="utf-8")
    return path


def test_subsample_is_fixed_and_its_rest_text_leaves_out_every_evaluated_context(tmp_path):
    source = squad_file(tmp_path / "qa.json", 10)
    first = subsample(str(source), 5, 0, str(tmp_path / "a.json"), str(tmp_path / "rest.txt"))
    subsample(str(source), 5, 0, str(tmp_path / "b.json"))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()  # same seed, same subset
    chosen = json.loads((tmp_path / "a.json").read_text())["data"][0]["paragraphs"]
    contexts = {p["context"] for p in chosen}
    rest = set((tmp_path / "rest.txt").read_text(encoding="utf-8").splitlines())
    assert first["chosen"] == sum(len(p["qas"]) for p in chosen) == 5
    assert rest and not rest & contexts and len(rest) + len(contexts) == 10
    jsonl = write_classification(tmp_path / "cls.jsonl", 12, 1)
    assert extract_text([str(jsonl), str(source)], str(tmp_path / "text.txt"), max_lines=6, questions=True) == 6


def record(task, row, lang, seed, value, size="all"):
    return {"task": task, "row": row, "language": lang, "seed": seed, "train_size": size, "main_metric": "accuracy",
            "accuracy": value}


def test_summary_averages_per_seed_and_gives_the_verdicts(tmp_path):
    records = [record("cls", "majority", lang, None, 40.0) for lang in ("en", "de", "pl")]
    for seed, (de, pl, swap) in {1: (60, 50, 2), 2: (62, 52, 1), 3: (58, 54, 3)}.items():
        records += [record("cls", "no_swap", "de", seed, de), record("cls", "no_swap", "pl", seed, pl),
                    record("cls", "madx", "de", seed, de + swap), record("cls", "madx", "pl", seed, pl + swap),
                    record("cls", "full", "de", seed, 41.0 + seed), record("cls", "full", "pl", seed, 37.0)]
    block = comparison_report.summarise(records, "en")["cls"]["sizes"]["all"]
    assert block["rows"]["no_swap"]["avg"]["values"] == [55.0, 57.0, 56.0]
    assert block["swap_gain"]["mean"] == pytest.approx(2.0) and block["swap_gain"]["verdict"] == "helps"
    assert block["beats_baseline"]["madx"]["beats_baseline"] is True
    full = block["beats_baseline"]["full"]  # per-seed averages 39.5, 40, 40.5 against 40
    assert full["beats_baseline"] is False and full["margin"] == pytest.approx(0.0)
    for r in records:
        path = tmp_path / "results" / r["task"] / r["row"] / "nall" / f"{r['language']}-seed{r['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r))
    for r in records[:3]:  # a second training size for the learning curve
        path = tmp_path / "results" / "cls" / "majority" / "n100" / f"{r['language']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**r, "train_size": "100"}))
    comparison.write_report(str(tmp_path / "results"), str(tmp_path / "report"), "en")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| MAD-X (target language adapter swapped in) | – | 62.0 ± 0.8 | 54.0 ± 2.2 | 58.0 ± 0.8 | 3 |" in text
    assert list(json.loads((tmp_path / "report" / "report.json").read_text())["cls"]["sizes"]) == ["100", "all"]
    assert (tmp_path / "report" / "cls_bars.png").stat().st_size > 1000
    assert (tmp_path / "report" / "cls_curve.png").stat().st_size > 1000


def test_random_span_baseline_is_seeded(workspace):
    from xling.tasks import qa

    examples = qa.read(workspace["data"] / "en.squad.json")
    one, again = (comparison.random_span_scores(examples, examples, 1) for _ in range(2))
    assert one == again and one["span_words"] == 1 and 0 <= one["f1"] <= 100


def test_rows_of_a_tiny_model_and_the_demo_summary(workspace, en_language_adapter, tmp_path):
    train = write_classification(tmp_path / "train.jsonl", 24, 1)
    test = write_classification(tmp_path / "test.jsonl", 9, 2)
    assert xling_main(["train-task", "--task", "classification", "--lang-adapter", str(en_language_adapter),
                       "--train", str(train), *common(workspace, tmp_path / "task")]) == 0
    assert xling_main(["train-full", "--task", "classification", "--train", str(train),
                       *common(workspace, tmp_path / "full")]) == 0
    results, data = str(tmp_path / "results"), ["en=" + str(test), "sw=" + str(test)]
    args = ["--data", *data, "--train-size", "all", "--output-dir", results]
    assert comparison.main(["baseline", "--task", "classification", "--train", str(train), *args]) == 0
    assert comparison.main(["eval-adapter", "--model", str(workspace["model"]), "--task-adapter",
                            str(tmp_path / "task" / "adapter"), "--lang-adapters", f"en={en_language_adapter}",
                            f"sw={en_language_adapter}", "--max-length", "32", *args]) == 0
    assert comparison.main(["eval-full", "--model", str(tmp_path / "full" / "model"), "--task", "classification",
                            "--seed", "42", "--max-length", "32", *args]) == 0
    rows = sorted(str(p.relative_to(results)) for p in Path(results).rglob("*.json"))
    assert rows == ["classification/full/nall/en-seed42.json", "classification/full/nall/sw-seed42.json",
                    "classification/madx/nall/sw-seed42.json", "classification/majority/nall/en-seedNone.json",
                    "classification/majority/nall/sw-seedNone.json", "classification/no_swap/nall/en-seed42.json",
                    "classification/no_swap/nall/sw-seed42.json"]
    madx = json.loads(Path(results, "classification/madx/nall/sw-seed42.json").read_text())
    no_swap = json.loads(Path(results, "classification/no_swap/nall/sw-seed42.json").read_text())
    assert madx["accuracy"] == no_swap["accuracy"]  # the same adapter under two names: the same scores
    summary = comparison.write_report(results, str(tmp_path / "report"), "en")
    (tmp_path / "report" / "xling.json").write_text(json.dumps({"tasks": summary, "seconds": 75, "threads": 1}))
    from studies import demo_xling_summary as module
    lines = module.xling_markdown(tmp_path / "report")
    assert "This part took 1 min 15 s on 1 CPU thread(s)." in lines
    assert any(line.startswith("| majority baseline (QA: random span) |") for line in lines)
    assert any(line.startswith("| task adapter, source language adapter (no swap) |") for line in lines)
    assert module.xling_markdown(tmp_path)[0].startswith("MAD-X results unavailable: cannot read")


def test_comparison_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "results" / "cls" / "madx" / "nall" / "de-seed1.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"task": "cls"}')
    assert comparison.main(["report", "--results", str(tmp_path / "results"), "--output-dir", str(tmp_path / "r")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"studies.xling_comparison: error: report: {bad}: missing")
    assert not (tmp_path / "r" / "report.json").exists()
    assert comparison.main(["eval-full", "--model", str(tmp_path), "--task", "sentiment", "--seed", "1", "--data",
                            f"de={bad}", "--train-size", "all", "--output-dir", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.strip() == ("studies.xling_comparison: error: eval-full: unknown task 'sentiment'; "
                                               "known: ner, qa, copa, classification, pos")


def test_unknown_task_is_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit) as exit_info:
        xling_main(["train-task", "--task", "sentiment", "--model", "m", "--lang-adapter", "a", "--train", "t",
                    "--output-dir", "o"])
    assert exit_info.value.code == 2
    assert "argument --task: invalid choice: 'sentiment'" in capsys.readouterr().err.strip().splitlines()[-1]


def test_tokenizer_that_does_not_match_the_model_is_a_one_line_error(workspace, en_language_adapter, tmp_path, capsys):
    from transformers import AutoModelForMaskedLM

    model_dir = tmp_path / "trimmed-without-its-tokenizer"
    model = AutoModelForMaskedLM.from_pretrained(workspace["model"])
    model.resize_token_embeddings(len(workspace["tokenizer"]) - 10)  # as if trimmed, with the full tokenizer beside it
    model.save_pretrained(model_dir)
    for name in Path(workspace["model"]).iterdir():
        if "token" in name.name or name.suffix == ".model":
            shutil.copy(name, model_dir / name.name)
    train = write_classification(tmp_path / "train.jsonl", 24, 1)
    for args in (["train-lang", "--lang", "en", "--text", str(workspace["data"] / "en.txt"), "--output-dir", str(tmp_path / "l")],
                 ["train-task", "--task", "classification", "--lang-adapter", str(en_language_adapter), "--train",
                  str(train), "--output-dir", str(tmp_path / "t")]):
        capsys.readouterr()
        assert xling_main([*args, "--model", str(model_dir), "--max-steps", "1", "--batch-size", "8", "--cpu"]) == 1
        err = capsys.readouterr().err
        error = [line for line in err.splitlines() if line.startswith("xling: error: ")]  # progress bars aside
        assert "Traceback" not in err and len(error) == 1
        rows = len(workspace["tokenizer"]) - 10
        assert f"{model_dir}: the tokenizer does not match the model: {rows + 10} tokens, but the model's input " \
               f"embeddings have {rows} rows" in error[0], error
    assert not (tmp_path / "l" / "adapter").exists() and not (tmp_path / "t" / "adapter").exists()


def test_qa_question_longer_than_the_window_is_cut_not_a_tokenizer_panic(workspace):
    from xling.tasks import qa

    long = {"question": [" ".join(["where does john live ?"] * 30)], "context": ["john lives in london ."]}
    encoding = qa._windows(long, workspace["tokenizer"], 32, 128)  # stride 8, question cut to 16 tokens
    assert encoding["input_ids"] and all(len(ids) <= 32 for ids in encoding["input_ids"])
    assert 1 in encoding.sequence_ids(0)  # the context still has room in the window


def test_bare_task_row_trains_and_scores_without_a_language_adapter(workspace, tmp_path):
    train = write_classification(tmp_path / "train.jsonl", 24, 1)
    test = write_classification(tmp_path / "test.jsonl", 9, 2)
    assert xling_main(["train-task", "--task", "classification", "--lang-adapter", "none",
                       "--train", str(train), *common(workspace, tmp_path / "task")]) == 0
    info = json.loads((tmp_path / "task" / "adapter" / "task.json").read_text())
    assert info["source_language"] is None
    results = str(tmp_path / "results")
    assert comparison.main(["eval-adapter", "--model", str(workspace["model"]), "--task-adapter",
                            str(tmp_path / "task" / "adapter"), "--data", f"en={test}", f"sw={test}", "--max-length",
                            "32", "--train-size", "all", "--output-dir", results]) == 0
    rows = sorted(str(p.relative_to(results)) for p in Path(results).rglob("*.json"))
    assert rows == ["classification/bare_task/nall/en-seed42.json", "classification/bare_task/nall/sw-seed42.json"]
    record = json.loads(Path(results, rows[0]).read_text())
    assert record["language_adapter"] is None
    # The same adapter through xling eval --lang-adapter none: the same accuracy.
    assert xling_main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(tmp_path / "task" / "adapter"),
                       "--lang-adapter", "none", "--lang", "en", "--data", str(test), "--output",
                       str(tmp_path / "en.json")]) == 0
    assert json.loads((tmp_path / "en.json").read_text())["accuracy"] == record["accuracy"]
    summary = comparison.write_report(results, str(tmp_path / "report"), "en")
    assert "bare_task" in json.dumps(summary)


def test_demo_summary_tables_each_language_adapters_heldout_loss():
    from studies.demo_xling_summary import language_adapter_lines

    scores = {"en": {"settings": {"bare": {"loss": 6.9}, "en": {"loss": 5.7}}, "own": "en", "margin": 0.05,
                     "passes": True},
              "tr": {"settings": {"bare": {"loss": 7.96}, "en": {"loss": 9.41}, "tr": {"loss": 7.94}}, "own": "tr",
                     "margin": 0.05, "passes": False}}
    lines = language_adapter_lines(scores)
    assert "| text | bare | en | tr | own adapter trained |" in lines
    assert "| en | 6.900 | 5.700 | – | PASS (margin 0.05) |" in lines
    assert "| tr | 7.960 | 9.410 | 7.940 | FAIL (margin 0.05) |" in lines
    assert language_adapter_lines({}) == []


def test_one_seed_gives_no_verdict_however_large_the_margin():
    from studies.xling_comparison_report import _verdicts

    rows = {"majority": {"avg": {"mean": 40.0, "std": 0.0, "n": 1}}, "madx": {"avg": {"mean": 70.0, "std": 0.0, "n": 1}},
            "full": {"avg": {"mean": 70.0, "std": 1.0, "n": 3}}}
    verdicts = _verdicts(rows, {})["beats_baseline"]
    assert verdicts["madx"]["beats_baseline"] is None and verdicts["full"]["beats_baseline"] is True
