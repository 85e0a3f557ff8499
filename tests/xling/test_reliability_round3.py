"""Reliability round 3 (issue 26): silent wrong results found by probing the commands and the API.

Each test goes through the command (``xling.cli.main``) or the public API, and failed on the code before its fix.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from xling.cli import main
from xling.data import DataError
from xling.datasets_io import load_panx


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- item 1: plain two-column CoNLL keeps text before ':' -------------------------------------


def test_plain_conll_keeps_text_before_a_colon(tmp_path):
    path = _write(tmp_path / "plain.conll", "Meet\tO\nat\tO\n10:30\tO\nhttp://x.org\tB-ORG\n1:1\tO\n:\tO\n")
    assert load_panx(path)["tokens"] == [["Meet", "at", "10:30", "http://x.org", "1:1", ":"]]


def test_panx_language_prefix_is_stripped_only_when_every_line_carries_it(tmp_path):
    panx = _write(tmp_path / "de.panx", "de:10:30\tO\nde:Berlin\tB-LOC\n\nde::\tO\n")
    assert load_panx(panx)["tokens"] == [["10:30", "Berlin"], [":"]]
    mixed = _write(tmp_path / "mixed.conll", "de:x\tO\nBerlin\tB-LOC\n")
    assert load_panx(mixed)["tokens"] == [["de:x", "Berlin"]]


# -- item 12 (reader part): BOM, tags with white space, IOB2 on parquet and hub tags ----------------


def test_bom_is_not_part_of_the_first_token(tmp_path):
    path = tmp_path / "bom.conll"
    path.write_bytes("\ufeffJohn\tB-PER\nran\tO\n".encode("utf-8"))
    assert load_panx(path)["tokens"] == [["John", "ran"]]
    path.write_bytes("\ufeffen:John\tB-PER\nen:ran\tO\n".encode("utf-8"))
    assert load_panx(path)["tokens"] == [["John", "ran"]]


def test_a_tag_with_white_space_is_refused(tmp_path):
    path = _write(tmp_path / "x.conll", "John\tB-PER X\n")
    with pytest.raises(DataError, match=rf"{path}:1: label 'B-PER X'"):
        load_panx(path)


def test_wikiann_parquet_and_hub_tags_get_the_iob2_check(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import ClassLabel, Dataset, Features, List, Value

    from xling.datasets_io import load_wikiann_parquet, tagged_rows

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": [["Juma", "anaishi"]], "ner_tags": [[2, 0]]}), path)  # I-PER after O is fine
    assert load_wikiann_parquet(path)["tags"] == [["I-PER", "O"]]
    pq.write_table(pa.table({"tokens": [["Juma"]], "ner_tags": [[0]]}), path)
    with pytest.raises(DataError, match="not an IOB2 tag"):
        load_wikiann_parquet(path, labels=["PER", "O"])
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=["O", "PERSON"]))})
    hub = Dataset.from_dict({"tokens": [["Juma"]], "ner_tags": [[1]]}, features=features)
    with pytest.raises(DataError, match="row 0: label 'PERSON' is not an IOB2 tag"):
        tagged_rows(hub, "wikiann/sw:test", iob2=True)
    assert tagged_rows(hub, "ud/sw:test")["tags"] == [["PERSON"]]  # POS: any tag without white space


# -- item 2: a word with no sub-token does not shift the predictions after it -------------------

#: Characters the XLM-R tokenizer gives no piece (and the tiny test tokenizer, trained the same way, neither).
NO_PIECE = [" ", "\u200b", "\u200c", "\u200e", "\u200f", "\ufeff", "\u00a0", "\u3000"]


@pytest.fixture(scope="module")
def ner_adapter(workspace, en_language_adapter, tmp_path_factory) -> Path:
    """A NER task adapter that finds some names (F1 > 0 on its training data), trained with `xling train-task`."""
    out = tmp_path_factory.mktemp("round3-ner")
    assert main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                 str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out),
                 "--max-steps", "40", "--batch-size", "8", "--learning-rate", "5e-3", "--cpu", "--save-steps", "40",
                 "--seed", "1"]) == 0
    return out / "adapter"


def _with_inserted(sentences: list[list[tuple[str, str]]], char: str) -> list[list[tuple[str, str]]]:
    """Each sentence with ``char`` (tagged O) as its second word."""
    return [s[:1] + [(char, "O")] + s[1:] for s in sentences]


def _sentences(path: Path) -> list[list[tuple[str, str]]]:
    data = load_panx(path)
    return [list(zip(tokens, tags)) for tokens, tags in zip(data["tokens"], data["tags"])]


def _write_conll(path: Path, sentences) -> Path:
    return _write(path, "\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n")


def _eval_f1(workspace, en_language_adapter, task_adapter, data: Path, out: Path) -> float:
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(task_adapter), "--lang-adapter",
                 str(en_language_adapter), "--lang", "en", "--data", str(data), "--output", str(out)]) == 0
    return json.loads(out.read_text())["f1"]


def test_eval_f1_is_unchanged_by_a_word_without_sub_tokens(workspace, en_language_adapter, ner_adapter, tmp_path):
    """`xling eval` (our adapter and its AdapterHub export): one U+200E word per sentence, identical input ids,
    so identical F1; before the fix every later prediction shifted one word left."""
    clean = _sentences(workspace["data"] / "en.panx")
    plain = _write_conll(tmp_path / "plain.conll", clean)
    marked = _write_conll(tmp_path / "lrm.conll", _with_inserted(clean, "\u200e"))
    assert main(["export", "--format", "adapterhub", "--adapter", str(ner_adapter), "--output-dir",
                 str(tmp_path / "ah")]) == 0
    for task_adapter in (ner_adapter, tmp_path / "ah"):
        f1 = _eval_f1(workspace, en_language_adapter, task_adapter, plain, tmp_path / "plain.json")
        assert f1 > 10, "the test needs an adapter that finds names"
        assert _eval_f1(workspace, en_language_adapter, task_adapter, marked, tmp_path / "lrm.json") == f1


def test_predictions_and_training_labels_are_aligned_by_word_index(workspace, en_language_adapter, ner_adapter):
    """Every character the tokenizer drops: the word gets 'O' and every other word keeps its prediction; the
    training features (input ids, labels) are those of the sentence without it."""
    from datasets import Dataset

    from xling.inference import load_task_model
    from xling.tasks import ner

    loaded = load_task_model(str(workspace["model"]), str(ner_adapter), str(en_language_adapter))
    labels = loaded.info["labels"]
    clean = _sentences(workspace["data"] / "en.panx")[:8]

    def rows(sentences):
        return Dataset.from_dict({"tokens": [[w for w, _ in s] for s in sentences],
                                  "tags": [[t for _, t in s] for s in sentences]})

    expected = ner.predict_first_subtokens(loaded.model, loaded.tokenizer, rows(clean), labels, 8, 128, "clean")
    clean_features = ner.build_features(rows(clean), loaded.tokenizer, labels)
    for char in NO_PIECE:
        inserted = rows(_with_inserted(clean, char))
        predicted = ner.predict_first_subtokens(loaded.model, loaded.tokenizer, inserted, labels, 8, 128, repr(char))
        assert predicted == [p[:1] + ["O"] + p[1:] for p in expected], f"{char!r} shifted the predictions"
        features = ner.build_features(inserted, loaded.tokenizer, labels)
        assert features["input_ids"] == clean_features["input_ids"]
        assert features["labels"] == clean_features["labels"], f"{char!r} shifted the training labels"


# -- item 3: resuming refuses a changed command ------------------------------------------------


def test_rerun_with_other_settings_into_the_same_output_dir_is_refused(workspace, tmp_path, capsys):
    """A run's checkpoints stay; a rerun that changes --text, --lang, --learning-rate or --batch-size is refused
    in one line naming the settings, and the published adapter is left alone; the same command still resumes."""
    out = tmp_path / "lang"
    command = ["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text",
               str(workspace["data"] / "sw.txt"), "--output-dir", str(out), "--max-steps", "2", "--save-steps", "1",
               "--batch-size", "4", "--cpu", "--learning-rate", "1e-3"]
    assert main(command) == 0
    published = (out / "adapter" / "adapter_model.safetensors").read_bytes()
    changes = {"--text": str(workspace["data"] / "en.txt"), "--lang": "en", "--learning-rate": "1e-2",
               "--batch-size": "2"}
    for flag, value in changes.items():
        changed = list(command)
        changed[changed.index(flag) + 1] = value
        capsys.readouterr()
        assert main(changed) == 1, f"{flag} changed, yet the run resumed"
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err and str(out / "checkpoints") in err, err
        assert "afresh" in err
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == published
    assert main(command[:-2] + ["--learning-rate", "0.001", "--save-steps", "2"]) == 0  # same run: resumes


# -- item 13: checkpoints hold the trainable tensors, the optimizer and the RNG state, not the model -----------


def test_checkpoints_hold_only_what_trains(workspace, tmp_path):
    """Every checkpoint is within 2x the adapter plus its optimizer state (it was 720 KB of frozen model beside a
    20 KB adapter); bitwise resume from such checkpoints is test_resume.py's SIGKILL test."""
    out = tmp_path / "lang"
    assert main(["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text",
                 str(workspace["data"] / "sw.txt"), "--output-dir", str(out), "--max-steps", "2", "--save-steps", "2",
                 "--batch-size", "4", "--cpu"]) == 0
    checkpoint = out / "checkpoints" / "checkpoint-2"
    adapter = (out / "adapter" / "adapter_model.safetensors").stat().st_size
    optimizer = (checkpoint / "optimizer.pt").stat().st_size
    total = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file())
    assert total <= 2 * (adapter + optimizer), (total, adapter, optimizer, sorted(p.name for p in checkpoint.iterdir()))
    assert not (checkpoint / "model.safetensors").exists()


# -- item 6: train-lang refuses a model without an MLM head ---------------------------------------


@pytest.fixture(scope="module")
def headless_model(workspace, tmp_path_factory) -> Path:
    """The workspace encoder saved as XLMRobertaModel: the same weights, no MLM head."""
    from transformers import XLMRobertaForMaskedLM

    out = tmp_path_factory.mktemp("headless") / "model"
    XLMRobertaForMaskedLM.from_pretrained(workspace["model"]).roberta.save_pretrained(out)
    workspace["tokenizer"].save_pretrained(out)
    return out


def test_train_lang_refuses_a_model_without_an_mlm_head(workspace, headless_model, tmp_path, capsys):
    out = tmp_path / "lang"
    assert main(["train-lang", "--model", str(headless_model), "--lang", "sw", "--text",
                 str(workspace["data"] / "sw.txt"), "--output-dir", str(out), "--max-steps", "2", "--batch-size", "4",
                 "--cpu"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and str(headless_model) in err[0] and "train-mlm-head" in err[0], err
    assert not (out / "adapter").exists()


# -- item 5: export never overwrites another adapter ---------------------------------------------


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_export_into_another_adapters_folder_is_refused(workspace, en_language_adapter, ner_adapter, tmp_path,
                                                        capsys):
    """`xling export --format adapterhub --output-dir <a language adapter's folder>` exited 0 and left that adapter
    unloadable; now it is refused in one line and the folder is untouched.  A rerun of the same export replaces
    its own folder."""
    from xling.adapter_model import AdapterModel

    before = _tree(en_language_adapter)
    assert main(["export", "--format", "adapterhub", "--adapter", str(ner_adapter), "--output-dir",
                 str(en_language_adapter)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(en_language_adapter) in err[0] and "another adapter" in err[0], err
    assert _tree(en_language_adapter) == before
    model = AdapterModel.from_pretrained(workspace["model"])
    assert model.load_adapter(en_language_adapter) == "en"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own file")
    assert main(["export", "--format", "adapterhub", "--adapter", str(en_language_adapter), "--output-dir",
                 str(tmp_path / "mine")]) == 1
    assert _tree(tmp_path / "mine") == {"notes.txt": b"my own file"}
    ah = tmp_path / "ah"
    for _ in range(2):  # the same export twice: the second replaces the first
        assert main(["export", "--format", "adapterhub", "--adapter", str(en_language_adapter), "--output-dir",
                     str(ah)]) == 0


def test_save_adapter_into_an_adapterhub_export_is_refused(workspace, en_language_adapter, tmp_path):
    """`AdapterModel.save_adapter` (ours) into an AdapterHub export merged both into one folder and broke both."""
    from xling.adapter_model import AdapterModel

    ah = tmp_path / "ah"
    assert main(["export", "--format", "adapterhub", "--adapter", str(en_language_adapter), "--output-dir",
                 str(ah)]) == 0
    before = _tree(ah)
    model = AdapterModel.from_pretrained(workspace["model"])
    model.add_adapter("sw", role="language")
    with pytest.raises(ValueError, match="another adapter"):
        model.save_adapter(name="sw", directory=ah)
    with pytest.raises(ValueError, match="another adapter"):
        model.save_adapter(name="sw", directory=ah, format="adapterhub")
    assert _tree(ah) == before
    assert model.load_adapter(ah, name="en_ah") == "en_ah"
    saved = model.save_adapter(name="sw", directory=tmp_path / "sw")
    assert model.save_adapter(name="sw", directory=saved) == saved  # saving the same adapter again replaces it


# -- item 7: the fingerprint depends on the encoder's weights, not on the head class that loaded them ---------

HEAD_CLASSES = ["AutoModel", "AutoModelForMaskedLM", "AutoModelForTokenClassification",
                "AutoModelForQuestionAnswering", "AutoModelForSequenceClassification", "AutoModelForMultipleChoice"]


@pytest.mark.parametrize("head_class", HEAD_CLASSES)
def test_an_adapter_trained_on_dir_loads_into_madx_model_of_every_head_class(workspace, en_language_adapter,
                                                                             head_class):
    """The README's ``AdapterModel.from_pretrained(DIR)`` (AutoModel) refused an adapter trained on DIR with
    FingerprintMismatchError: the parameter names lacked the ``roberta.`` prefix."""
    import transformers

    from adapter_core import read_adapter_config
    from xling.adapter_model import AdapterModel

    model = AdapterModel.from_pretrained(workspace["model"], model_class=getattr(transformers, head_class))
    assert model.host.base_fingerprint() == read_adapter_config(en_language_adapter)["base_fingerprint"]
    assert model.load_adapter(en_language_adapter) == "en"


# -- item 11: refused pickles are one line of ours, without torch's advice to turn safety off -----------------


class _Payload:
    """Pickles as a call of ``function(argument)``: what a malicious file runs under plain pickle."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def _evil(path: Path, marker: Path) -> None:
    import torch

    torch.save({"heads.ner.0.weight": torch.zeros(1), "x": _Payload(exec, f"open({str(marker)!r}, 'w').close()")}, path)


def _one_refusal(capsys, path: Path, marker: Path) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and str(path) in lines[0] and "refused" in lines[0] and "exec" in lines[0], err
    assert "weights_only" not in err and "safe_globals" not in err and not marker.exists()
    return lines[0]


def test_a_refused_adapterhub_head_is_one_line(workspace, en_language_adapter, ner_adapter, tmp_path, capsys):
    ah = tmp_path / "ah"
    assert main(["export", "--format", "adapterhub", "--adapter", str(ner_adapter), "--output-dir", str(ah)]) == 0
    marker = tmp_path / "payload-ran"
    _evil(ah / "pytorch_model_head.bin", marker)
    capsys.readouterr()
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(ah), "--lang-adapter",
                 str(en_language_adapter), "--lang", "en", "--data", str(workspace["data"] / "en.panx"), "--output",
                 str(tmp_path / "r.json")]) == 1
    _one_refusal(capsys, ah / "pytorch_model_head.bin", marker)
    assert not (tmp_path / "r.json").exists()


def test_a_refused_resume_checkpoint_is_one_line(workspace, tmp_path, capsys):
    out = tmp_path / "lang"
    command = ["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text",
               str(workspace["data"] / "sw.txt"), "--output-dir", str(out), "--max-steps", "2", "--save-steps", "1",
               "--batch-size", "4", "--cpu"]
    assert main(command) == 0
    marker = tmp_path / "payload-ran"
    _evil(out / "checkpoints" / "checkpoint-2" / "rng_state.pth", marker)
    capsys.readouterr()
    assert main(command) == 1
    line = _one_refusal(capsys, out / "checkpoints" / "checkpoint-2", marker)
    assert "to start afresh" in line


# -- item 8: --max-length and the model's position limit ---------------------------------------------------


def test_max_length_beyond_the_position_limit_is_cut_and_eval_uses_the_training_length(
        workspace, en_language_adapter, tmp_path, caplog, monkeypatch):
    """The tiny model takes 158 tokens (160 positions less RoBERTa's offset).  A sentence longer than that with
    --max-length 200 was a 70-line 'index out of bounds'; QA evaluation always used 384 (also out of bounds)."""
    import logging

    from xling.tasks import qa

    long_text = tmp_path / "long.txt"
    long_text.write_text("\n".join(" ".join(["juma anaishi nairobi"] * 80) for _ in range(4)) + "\n")
    caplog.set_level(logging.WARNING)
    assert main(["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text", str(long_text),
                 "--max-steps", "1", "--batch-size", "4", "--cpu", "--output-dir", str(tmp_path / "lang"),
                 "--max-length", "200"]) == 0
    assert "--max-length 200 is more than the model's 158 positions" in caplog.text
    train = ["train-task", "--task", "qa", "--model", str(workspace["model"]), "--lang-adapter",
             str(en_language_adapter), "--train", str(workspace["data"] / "en.squad.json"), "--max-steps", "1",
             "--batch-size", "4", "--cpu"]
    assert main(train + ["--output-dir", str(tmp_path / "qa"), "--max-length", "64"]) == 0
    used = []

    @functools.wraps(qa.evaluate)
    def evaluate(*args, **kwargs):
        used.append(kwargs.get("max_length"))
        return evaluate.__wrapped__(*args, **kwargs)

    monkeypatch.setattr(qa, "evaluate", evaluate)
    command = ["eval", "--model", str(workspace["model"]), "--task-adapter", str(tmp_path / "qa" / "adapter"),
               "--lang-adapter", str(en_language_adapter), "--lang", "en", "--data",
               str(workspace["data"] / "en.squad.json"), "--output", str(tmp_path / "r.json")]
    assert main(command) == 0
    info = tmp_path / "qa" / "adapter" / "task.json"
    document = json.loads(info.read_text())
    del document["max_length"]  # a task adapter from before: QA's default 384, cut to the position limit
    info.write_text(json.dumps(document))
    assert main(command) == 0
    assert used == [64, 158]


# -- item 12: xling report leaves out the source language the results record ---------------------------------


def test_report_average_leaves_out_the_recorded_source_language(tmp_path, capsys):
    files = []
    for lang, seed, f1 in (("en", 1, 90.0), ("sw", 1, 40.0), ("de", 1, 60.0), ("sw", 2, 44.0), ("de", 2, 62.0)):
        path = tmp_path / f"{lang}{seed}.json"
        path.write_text(json.dumps({"task": "ner", "language": lang, "seed": seed, "main_metric": "f1", "f1": f1,
                                    "source_language": "en"}))
        files.append(str(path))
    assert main(["report", *files, "--output-dir", str(tmp_path / "report")]) == 0
    summary = json.loads((tmp_path / "report" / "report.json").read_text())["ner"]
    assert summary["target_languages"] == ["de", "sw"] and summary["avg"]["mean"] == pytest.approx(51.5)


def test_export_into_a_file_path_is_one_line_without_a_hidden_temporary_path(en_language_adapter, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("mine")
    for target in (blocker, blocker / "sub"):
        capsys.readouterr()
        assert main(["export", "--format", "adapterhub", "--adapter", str(en_language_adapter), "--output-dir",
                     str(target)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(blocker) in err[0] and ".tmp" not in err[0] and "Errno" not in err[0], err
    assert blocker.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
