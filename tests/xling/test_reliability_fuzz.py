"""hypothesis fuzzing: random bytes, lines and JSON fed to the data readers and the adapter loaders.

Each reader either returns well-formed records or raises our own error type
(``DataError``, ``AdapterFormatError``, ``FingerprintMismatchError``) whose
message names the file; any other exception is a bug.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as save_safetensors_bytes

from adapter_core import AdapterFormatError, FingerprintMismatchError, load_adapter, madx_language, save_adapter
from xling.adapter_io import ADAPTERHUB_WEIGHTS, load_adapterhub_adapter, load_madx_adapter
from xling.data import DataError, read_text
from xling.datasets_io import load_choices, load_panx, load_squad, load_wikiann_parquet

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
OUR_ERRORS = (DataError, AdapterFormatError, FingerprintMismatchError)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def keyed(keys: list[str], value=json_values):
    """Dicts that use (some of) the format's own keys, so the fuzzer gets past the first check."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), value, max_size=len(keys) + 1)


panx_lines = st.lists(st.one_of(
    st.just(""), st.sampled_from(["en:john\tB-PER", "en:in\tO", "sw:x\tI-LOC", "en:\tO", ":\tO", "a\tb\tc"]),
    st.builds(lambda t, l: f"{t}\t{l}", st.text(max_size=6), st.sampled_from(["O", "B-X", "I-", "PER", ""])),
    st.text(max_size=10)), max_size=8)

squad_answer = keyed(["text", "answer_start"], st.text(max_size=5) | st.integers(-2, 12) | json_values)
squad_qa = keyed(["id", "question", "answers"], st.lists(squad_answer, max_size=2) | json_values)
squad_paragraph = keyed(["context", "qas"], st.lists(squad_qa, max_size=2) | st.text(max_size=12) | json_values)
squad_document = keyed(["data", "version"], st.lists(keyed(["paragraphs", "title"], st.lists(squad_paragraph, max_size=2)
                                                           | json_values), max_size=2) | json_values)

copa_record = keyed(["premise", "choice1", "choice2", "question", "label", "idx"],
                    st.sampled_from(["cause", "effect"]) | st.integers(-1, 3) | json_values)
siqa_record = keyed(["context", "question", "answerA", "answerB", "answerC", "label"],
                    st.text(max_size=5) | st.sampled_from(["1", "2", "3", "4", "x"]) | json_values)


def write(directory: str, name: str, data: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def expect_ours(call, check=None) -> None:
    """``call()`` raises one of our errors, or returns a result that ``check`` (which asserts) accepts."""
    try:
        result = call()
    except OUR_ERRORS:
        return
    if check is not None:
        check(result)


def check_lines(lines) -> None:
    assert lines and all(isinstance(line, str) and line.strip() == line and line for line in lines), lines


def check_sentences(sentences) -> None:
    """Tagged sentences: one non-empty token per tag, every tag IOB2 and without white space."""
    assert len(sentences) > 0 and {"tokens", "tags"} <= set(sentences.column_names)
    for sentence in sentences:
        assert len(sentence["tokens"]) == len(sentence["tags"]) > 0 and all(sentence["tokens"]), sentence
        assert all(t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2 and len(t.split()) == 1)
                   for t in sentence["tags"]), sentence


def check_questions(examples) -> None:
    """SQuAD rows: string fields, and every answer found in its context at its start."""
    assert len(examples) > 0 and "answers" in examples.column_names
    for e in examples:
        assert isinstance(e["question"], str) and isinstance(e["context"], str) and isinstance(e["id"], str)
        answers = e["answers"]
        assert answers["text"] and len(answers["text"]) == len(answers["answer_start"]), answers
        assert all(e["context"][s:s + len(a)] == a for a, s in zip(answers["text"], answers["answer_start"]))


def check_choices(examples) -> None:
    """Multiple-choice rows: a label in range, non-empty string fields."""
    assert len(examples) > 0 and "choices" in examples.column_names
    for e in examples:
        assert isinstance(e["label"], int) and 0 <= e["label"] < len(e["choices"]), e
        assert all(isinstance(c, str) and c.strip() for c in [e["context"], e["question"], *e["choices"]]), e


def check_loaded_into(host):
    """The check of an adapter loader: the name it returns is an adapter now attached to ``host``."""
    def check(name) -> None:
        assert isinstance(name, str) and name in host.adapters, (name, list(host.adapters))
    return check


@FUZZ
@given(data=st.binary(max_size=200) | st.text(max_size=80).map(lambda t: t.encode("utf-8")))
def test_line_readers_on_random_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "f.txt", data)
        expect_ours(lambda: read_text(path), check_lines)
        expect_ours(lambda: load_panx(path), check_sentences)
        expect_ours(lambda: load_choices(path), check_choices)
        expect_ours(lambda: load_squad(path), check_questions)
        expect_ours(lambda: load_wikiann_parquet(write(tmp, "f.parquet", data)), check_sentences)


@FUZZ
@given(lines=panx_lines)
def test_panx_reader(lines):
    with tempfile.TemporaryDirectory() as tmp:
        expect_ours(lambda: load_panx(write(tmp, "x.panx", "\n".join(lines).encode("utf-8"))), check_sentences)


@FUZZ
@given(document=squad_document | json_values)
def test_squad_reader(document):
    with tempfile.TemporaryDirectory() as tmp:
        expect_ours(lambda: load_squad(write(tmp, "q.json", json.dumps(document).encode("utf-8"))), check_questions)


@FUZZ
@given(records=st.lists(copa_record | siqa_record | json_values, max_size=4),
       labels=st.none() | st.lists(st.sampled_from(["1", "2", "3", "0", "9", "x", "", "-1"]), max_size=4))
def test_choice_reader(records, labels):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "c.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))
        label_path = None if labels is None else write(tmp, "l.lst", "\n".join(labels).encode("utf-8"))
        expect_ours(lambda: load_choices(path, label_path), check_choices)


# -- adapter loaders -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=40, pad_token_id=1)
    return XLMRobertaForMaskedLM(config)


def fresh_host(model):
    from xling.attach import TransformersHost

    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    return TransformersHost(copy)


def valid_adapter_dir(tmp: str, host) -> Path:
    """A real adapter directory of ours, to corrupt one part of at a time."""
    name = "sw"
    host.add_adapter(name, role="language")
    from xling.adapter_io import save_madx_adapter

    return save_madx_adapter(host, name, Path(tmp) / "adapter")


@FUZZ
@given(config=st.binary(max_size=120) | json_values.map(lambda v: json.dumps(v).encode()),
       weights=st.binary(max_size=120))
def test_core_loader_on_random_files(config, weights):
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp, "adapter_config.json", config)
        write(tmp, "adapter_model.safetensors", weights)
        expect_ours(lambda: load_adapter(tmp, expected_fingerprint="sha256:x"))
        expect_ours(lambda: load_adapter(tmp, force=True))


@FUZZ
@given(part=st.sampled_from(["config", "base_fingerprint", "metadata", "name"]), value=json_values,
       cut=st.none() | st.integers(0, 400))
def test_our_loader_on_corrupted_adapter(tiny_model, part, value, cut):
    """One of our adapter dirs with one JSON entry replaced by junk, or its safetensors cut short."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = valid_adapter_dir(tmp, fresh_host(tiny_model))
        document = json.loads((directory / "adapter_config.json").read_text())
        if cut is None:
            document[part] = value
            (directory / "adapter_config.json").write_text(json.dumps(document))
        else:
            weights = directory / "adapter_model.safetensors"
            weights.write_bytes(weights.read_bytes()[:cut])
        host = fresh_host(tiny_model)
        expect_ours(lambda: load_madx_adapter(host, directory, force=True), check_loaded_into(host))


@FUZZ
@given(shapes=st.dictionaries(st.sampled_from(["layers.0.down.weight", "layers.0.up.weight", "layers.9.up.bias", "x"]),
                              st.lists(st.integers(1, 5), min_size=1, max_size=2), max_size=3))
def test_our_loader_on_wrong_tensors(tiny_model, shapes):
    with tempfile.TemporaryDirectory() as tmp:
        tensors = {k: torch.zeros(s) for k, s in shapes.items()} or {"x": torch.zeros(1)}
        save_adapter(tmp, tensors, madx_language(16), "sha256:other", name="sw", metadata={"role": "language"})
        host = fresh_host(tiny_model)
        with pytest.raises(FingerprintMismatchError):
            load_madx_adapter(host, tmp)
        with pytest.raises(AdapterFormatError):
            load_madx_adapter(host, tmp, force=True)


@FUZZ
@given(config=st.binary(max_size=80) | keyed(["config", "hidden_size", "name"],
                                             keyed(["reduction_factor", "non_linearity", "inv_adapter", "scaling"])
                                             | st.sampled_from(["pfeiffer", "seq_bn_inv", "houlsby"]) | json_values
                                             ).map(lambda d: json.dumps(d).encode()),
       weights=st.binary(max_size=120), state=st.none() | st.dictionaries(
           st.sampled_from(["roberta.encoder.layer.0.output.adapters.sw.adapter_up.weight",
                            "invertible_adapters.sw.F.0.weight", "other"]),
           st.lists(st.integers(1, 17), min_size=1, max_size=2), max_size=2))
def test_adapterhub_loader(tiny_model, config, weights, state):
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp, "adapter_config.json", config)
        if state is None:
            write(tmp, ADAPTERHUB_WEIGHTS, weights)
        else:
            torch.save({k: torch.zeros(s) for k, s in state.items()}, Path(tmp) / ADAPTERHUB_WEIGHTS)
        host = fresh_host(tiny_model)
        expect_ours(lambda: load_adapterhub_adapter(host, tmp), check_loaded_into(host))


# -- the checks above can fail: a broken loader fails them -----------------------------


def _rows(**columns):
    from datasets import Dataset

    return Dataset.from_dict(columns)


BROKEN_LOADERS = {
    # a tag with no IOB2 prefix, one tag short
    "load_panx": (test_panx_reader, lambda path: _rows(tokens=[["a", "b"]], tags=[["PER"]], origin=["x"])),
    # an answer that is not at its answer_start
    "load_squad": (test_squad_reader, lambda path: _rows(id=["q"], context=["abc"], question=["?"],
                                                         answers=[{"text": ["c"], "answer_start": [0]}])),
    # a label out of range
    "load_choices": (test_choice_reader, lambda path, labels=None: _rows(
        context=["c"], question=["q"], choices=[["a", "b"]], label=[2], origin=["x"])),
    # an empty line
    "read_text": (test_line_readers_on_random_bytes, lambda path: [""]),
    # a name that is not attached to the host
    "load_madx_adapter": (test_our_loader_on_corrupted_adapter, lambda host, directory, force=False: "ghost"),
    "load_adapterhub_adapter": (test_adapterhub_loader, lambda host, directory: "ghost"),
}


@pytest.mark.parametrize("loader", sorted(BROKEN_LOADERS))
def test_a_broken_loader_fails_the_fuzz_checks(loader, monkeypatch, request):
    """Each fuzz test above, with its loader replaced by one that returns a wrong result, fails."""
    fuzz_test, broken = BROKEN_LOADERS[loader]
    monkeypatch.setattr(sys.modules[__name__], loader, broken)
    arguments = {"tiny_model": request.getfixturevalue("tiny_model")} if "tiny_model" in \
        fuzz_test.hypothesis.inner_test.__code__.co_varnames else {}
    with pytest.raises(AssertionError):
        fuzz_test(**arguments)
