"""The README's "Python API" examples, run as they are written, on tiny models built here.

Each example is the fenced python block after its ``<!-- readme-api: NAME -->``
marker in README.md; the test sets the upper-case names it reads (paths),
executes it, then checks what it did.  A broken example fails here.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "adapterhub"


def readme_example(name: str) -> str:
    """The python block that follows ``<!-- readme-api: name -->`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- readme-api: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md has no python block after <!-- readme-api: {name} -->"
    return match.group(1)


def run_example(name: str, **variables) -> dict:
    namespace = dict(variables)
    exec(compile(readme_example(name), f"README.md[{name}]", "exec"), namespace)
    return namespace


def tiny_model_dir(directory: Path) -> Path:
    """AdapterHub's fixture base (XLM-R, hidden 32, 2 layers, 64 ids) with a small sentencepiece tokenizer."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    shutil.copytree(FIXTURES / "base", directory)
    corpus = directory.parent / "spm" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text("juma anaishi nairobi na anafanya kazi\nthe cat sat on a mat john lives in london\n" * 20)
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(corpus.parent / "sentencepiece.bpe"),
                                   vocab_size=40, model_type="unigram", hard_vocab_limit=False, minloglevel=2,
                                   num_threads=1)
    tokenizer = XLMRobertaTokenizer.from_pretrained(str(corpus.parent))
    assert len(tokenizer) <= 64
    tokenizer.save_pretrained(directory)
    return directory


def test_xling_example(tmp_path):
    from adapter_core import AdapterFormatError, Stack, UnknownAdapterError
    from xling import MadxModel

    out = tmp_path / "out"
    ns = run_example("xling", MODEL_DIR=tiny_model_dir(tmp_path / "model"), ADAPTERHUB_SW=FIXTURES / "sw_inv",
                     ADAPTERHUB_NER=FIXTURES / "ner", OUT=out)
    model, again = ns["model"], ns["again"]
    # activating the adapters changes the outputs; the reloaded model reproduces them (asserted in the example too)
    assert not torch.allclose(ns["plain"], ns["adapted"], atol=1e-2)
    assert again.active == Stack("sw_inv", "ner") and list(again.adapters) == ["sw_inv", "ner", "pos"]
    assert {n: i.role for n, i in again.adapters.items()} == {"sw_inv": "language", "ner": "task", "pos": "task"}
    # the adapters loaded through the API give AdapterHub's own hidden states (recorded by AdapterHub 1.3.0)
    expected = load_file(str(FIXTURES / "expected.safetensors"))
    with torch.no_grad():
        hidden = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state
    assert torch.allclose(hidden, expected["stack_sw_inv_ner.last_hidden_state"], atol=1e-5)
    # the files: ours, AdapterHub's, and a plain transformers model without adapter tensors
    assert {p.name for p in (out / "ner").iterdir()} == {"adapter_config.json", "adapter_model.safetensors"}
    assert (out / "sw-hub" / "pytorch_adapter.bin").is_file()
    assert not [k for k in load_file(str(out / "madx" / "model.safetensors")) if "madx" in k]
    # both saved adapters load into a fresh model and give the same outputs
    fresh = MadxModel.from_pretrained(ns["MODEL_DIR"])
    assert fresh.load_adapter(out / "sw-hub") == "sw_inv" and fresh.adapters["sw_inv"].role == "language"
    assert fresh.load_adapter(out / "ner") == "ner" and fresh.adapters["ner"].role == "task"
    fresh.set_active(Stack("sw_inv", "ner"))
    with torch.no_grad():
        assert torch.equal(fresh(**ns["batch"]).last_hidden_state, ns["adapted"])
    # bad input: one line each
    with pytest.raises(UnknownAdapterError) as info:
        model.set_active(Stack("sw_inv", "xx"))
    assert str(info.value) == "no adapter 'xx'; known: sw_inv, ner, pos"
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterFormatError, match="holds no adapter") as info:
        model.load_adapter(tmp_path / "empty")
    assert "\n" not in str(info.value)


def test_nmt_example(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "nmt"))
    try:
        from nmt_corpus import binarize, write_corpus
        from nmt_helpers import (LANG_FLAGS, SHAPE_FLAGS, TRAIN_FLAGS, TRAIN_PAIRS, USER_DIR, adapter_train_argv,
                                 run_train)
    finally:
        sys.path.remove(str(ROOT / "tests" / "nmt"))
    write_corpus(tmp_path / "raw", TRAIN_PAIRS, {"train": 40, "valid": 8})
    data = binarize(tmp_path / "raw", tmp_path / "bin", TRAIN_PAIRS, splits=("train", "valid"))
    run_train([str(data), "--user-dir", USER_DIR, "--task", "translation_multi_simple_epoch", *LANG_FLAGS,
               "--arch", "transformer", *SHAPE_FLAGS, *TRAIN_FLAGS, "--max-update", "1", "--save-dir",
               str(tmp_path / "base")])
    run_train(adapter_train_argv(data, tmp_path / "base", tmp_path / "pair", "--max-update", "1"))

    out = tmp_path / "out"
    ns = run_example("nmt", ADAPTER_CHECKPOINT=tmp_path / "pair" / "checkpoint_last.pt",
                     BASE_CHECKPOINT=tmp_path / "base" / "checkpoint_best.pt", OUT=out)
    assert ns["paths"] == [out / "adapters" / "en-de"]
    # the base with the exported en-de adapter holds exactly the adapter checkpoint's base and en-de tensors
    trained, rebuilt = ns["model"].state_dict(), ns["base"].state_dict()
    kept = {k for k in trained if ".adapters." not in k or ".adapters.en-de." in k}
    assert set(rebuilt) == kept and any(".adapters.en-de." in k for k in kept)
    assert all(torch.equal(rebuilt[k], trained[k]) for k in kept)
    assert not ns["base"].training
