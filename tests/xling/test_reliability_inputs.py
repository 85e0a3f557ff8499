"""Bad input through the `xling` command: one line `xling: error: ...` naming the file and line (or key) and
what is wrong, exit status 1, no traceback, and no partial output left behind."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from xling.cli import main


def run_failing(capsys, args: list[str]) -> str:
    """Run the command, expect exit status 1 and a one-line error; return the error text."""
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("xling: error: ")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


def train_lang(workspace, out, text, *extra) -> list[str]:
    return ["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text", str(text), "--output-dir", str(out),
            "--max-steps", "1", "--cpu", *extra]


def train_task(model, adapter, train, out, task="ner", *extra) -> list[str]:
    return ["train-task", "--task", task, "--model", str(model), "--lang-adapter", str(adapter), "--train", str(train),
            "--output-dir", str(out), "--max-steps", "1", "--batch-size", "4", "--cpu", "--max-length", "64", *extra]


@pytest.fixture(scope="module")
def other_bases(workspace, tmp_path_factory):
    """The workspace base with its weights changed (another base), and a hidden-48 base with the same tokenizer."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    root = tmp_path_factory.mktemp("bases")
    changed = root / "changed"
    shutil.copytree(workspace["model"], changed)
    weights = load_file(str(changed / "model.safetensors"))
    weights = {k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}  # "further pre-trained"
    save_file(weights, str(changed / "model.safetensors"), metadata={"format": "pt"})
    config = XLMRobertaConfig.from_pretrained(workspace["model"])
    config.hidden_size, config.intermediate_size = 48, 96
    wide = root / "wide"
    XLMRobertaForMaskedLM(config).save_pretrained(wide)
    workspace["tokenizer"].save_pretrained(wide)
    return {"changed": changed, "wide": wide}


def test_empty_corpus_and_corpus_smaller_than_a_batch(workspace, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    assert f"{empty}: no text" in run_failing(capsys, train_lang(workspace, tmp_path / "a", empty))
    small = tmp_path / "small.txt"
    small.write_text("juma anaishi\nnairobi\n", encoding="utf-8")
    error = run_failing(capsys, train_lang(workspace, tmp_path / "b", small, "--batch-size", "4"))
    assert f"{small}: 2 training examples, fewer than one batch" in error
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_or_truncated_model_directory(workspace, tmp_path, capsys):
    text = workspace["data"] / "sw.txt"
    args = train_lang(workspace, tmp_path / "out", text)
    args[args.index("--model") + 1] = str(tmp_path / "nowhere")
    assert "model directory not found" in run_failing(capsys, args)
    broken = tmp_path / "broken"
    shutil.copytree(workspace["model"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    args[args.index("--model") + 1] = str(broken)
    assert f"{broken}: cannot load" in run_failing(capsys, args)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,content,expected", [
    ("missing-field.panx", "en:john\tB-PER\nen:lives\n", ":2: expected 'lang:token<TAB>label'"),
    ("bad-tag.panx", "en:john\tB-PER\n\nen:paris\tLOCATION\n", ":3: label 'LOCATION' is not an IOB2 tag"),
    ("span.squad.json", json.dumps({"data": [{"paragraphs": [{"context": "john lives in paris", "qas": [
        {"id": "q", "question": "where?", "answers": [{"text": "paris", "answer_start": 3}]}]}]}]}),
     "data[0].paragraphs[0].qas[0].answers[0]: answer 'paris' does not match the context at 3"),
    ("noquestion.squad.json", json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "answers": []}]}]}]}),
     "data[0].paragraphs[0].qas[0]: missing field 'question'"),
    ("label.xcopa.jsonl", json.dumps({"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0})
     + "\n" + json.dumps({"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 5}) + "\n",
     ":2: label 5 out of range for 2 choices"),
    ("field.xcopa.jsonl", json.dumps({"premise": "p", "choice1": "a", "question": "cause", "label": 0}) + "\n",
     ":1: missing field(s) choice2"),
])
def test_malformed_task_records(workspace, en_language_adapter, tmp_path, capsys, name, content, expected):
    task = {"panx": "ner", "json": "qa", "jsonl": "copa"}[name.rsplit(".", 1)[1]]
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    error = run_failing(capsys, train_task(workspace["model"], en_language_adapter, bad, tmp_path / "out", task))
    assert str(bad) in error and expected in error
    assert not (tmp_path / "out").exists()


def test_wikiann_parquet_label_out_of_range(workspace, en_language_adapter, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": [["juma", "anaishi"], ["nairobi"]], "ner_tags": [[1, 0], [7]]}), bad)
    error = run_failing(capsys, train_task(workspace["model"], en_language_adapter, bad, tmp_path / "out"))
    assert f"{bad}:row 1: label id 7 out of range 0..6" in error


def test_bad_dev_file_fails_before_training(workspace, en_language_adapter, tmp_path, capsys):
    dev = tmp_path / "dev.panx"
    dev.write_text("en:john\tPERSON\n", encoding="utf-8")
    args = train_task(workspace["model"], en_language_adapter, workspace["data"] / "en.panx", tmp_path / "out")
    error = run_failing(capsys, args + ["--dev", str(dev)])
    assert f"{dev}:1: label 'PERSON'" in error and not (tmp_path / "out").exists()


def test_adapter_for_another_base_is_refused_unless_forced(workspace, en_language_adapter, other_bases, tmp_path, capsys):
    args = train_task(other_bases["changed"], en_language_adapter, workspace["data"] / "en.panx", tmp_path / "out")
    error = run_failing(capsys, args)
    assert f"adapter {en_language_adapter} was trained on base sha256:" in error and "--force" in error
    assert not (tmp_path / "out").exists()
    assert main(args + ["--force"]) == 0
    assert (tmp_path / "out" / "adapter" / "task.json").is_file()


def test_adapter_that_does_not_fit_the_base_names_both_shapes(workspace, en_language_adapter, other_bases, tmp_path, capsys):
    train = workspace["data"] / "en.panx"
    error = run_failing(capsys, train_task(other_bases["wide"], en_language_adapter, train, tmp_path / "out", "ner", "--force"))
    assert "adapter hidden size 32, model hidden size 48" in error
    # one tensor reshaped inside an otherwise valid adapter
    edited = tmp_path / "edited"
    shutil.copytree(en_language_adapter, edited)
    tensors = load_file(str(edited / "adapter_model.safetensors"))
    tensors["layers.0.down.weight"] = torch.zeros(8, 32)
    save_file(tensors, str(edited / "adapter_model.safetensors"), metadata={"format": "pt"})
    error = run_failing(capsys, train_task(workspace["model"], edited, train, tmp_path / "out"))
    assert "layers.0.down.weight has shape (8, 32) in the adapter but (16, 32) in the host model" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["truncated_weights", "json_garbage", "json_not_utf8", "missing_weights"])
def test_corrupt_adapter_files(workspace, en_language_adapter, tmp_path, capsys, damage):
    broken = tmp_path / "broken"
    shutil.copytree(en_language_adapter, broken)
    weights, config = broken / "adapter_model.safetensors", broken / "adapter_config.json"
    if damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:100])
        expected = f"{weights}: truncated or corrupt safetensors file"
    elif damage == "json_garbage":
        config.write_text(config.read_text()[:40], encoding="utf-8")
        expected = f"{config}: invalid JSON at line"
    elif damage == "json_not_utf8":
        config.write_bytes(b"\xff\xfe{}")
        expected = f"{config}: not UTF-8 text"
    else:
        weights.unlink()
        expected = f"{weights}: missing"
    error = run_failing(capsys, train_task(workspace["model"], broken, workspace["data"] / "en.panx", tmp_path / "out"))
    assert expected in error and not (tmp_path / "out").exists()


def test_corrupt_adapterhub_weights(workspace, tmp_path, capsys):
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "adapter_config.json").write_text(json.dumps({"config": "pfeiffer", "hidden_size": 32, "name": "sw"}))
    (hub / "pytorch_adapter.bin").write_bytes(b"PK\x03\x04 not a zip")
    error = run_failing(capsys, train_task(workspace["model"], hub, workspace["data"] / "en.panx", tmp_path / "out"))
    assert f"{hub / 'pytorch_adapter.bin'}: not readable (truncated or corrupt?)" in error  # adapter_core.io.describe_torch_load_error's line


def test_eval_with_corrupt_task_adapter_writes_no_results(workspace, en_language_adapter, tmp_path, capsys):
    task = tmp_path / "task"
    assert main(train_task(workspace["model"], en_language_adapter, workspace["data"] / "en.panx", task)) == 0
    results = tmp_path / "sw.json"
    args = ["eval", "--model", str(workspace["model"]), "--task-adapter", str(task / "adapter"), "--lang-adapter",
            str(en_language_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx"), "--output", str(results)]
    head = task / "adapter" / "head.safetensors"
    good_head = head.read_bytes()
    head.write_bytes(good_head[:50])
    assert f"{head}: missing or corrupt prediction head" in run_failing(capsys, args)
    head.write_bytes(good_head)
    info = task / "adapter" / "task.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "task": "sentiment"}), encoding="utf-8")
    assert f"{info}: unknown task 'sentiment'; known: ner, qa, copa, classification, pos" in run_failing(capsys, args)
    info.write_text("{", encoding="utf-8")
    assert f"{info}: invalid JSON at line 1" in run_failing(capsys, args)
    assert not results.exists()
    assert not list(tmp_path.glob(".sw.json*")), "temporary results file left behind"
