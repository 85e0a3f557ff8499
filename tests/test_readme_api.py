"""The README's quick tour, run as it is written: the Python examples on tiny models built here, and every
command line of its shell examples parsed by the parser of the command it calls.

Each Python example is the fenced python block after its ``<!-- readme-api: NAME -->``
marker in README.md; the test sets the upper-case names it reads (paths),
executes it, then checks what it did.  The shell blocks follow ``<!-- readme-commands: NAME -->``.
A broken example fails here.
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
    from xling import AdapterModel

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
    fresh = AdapterModel.from_pretrained(ns["MODEL_DIR"])
    assert fresh.load_adapter(out / "sw-hub") == "sw_inv" and fresh.adapters["sw_inv"].role == "language"
    assert fresh.load_adapter(out / "ner") == "ner" and fresh.adapters["ner"].role == "task"
    fresh.set_active_adapters(Stack("sw_inv", "ner"))
    with torch.no_grad():
        assert torch.equal(fresh(**ns["batch"]).last_hidden_state, ns["adapted"])
    # bad input: one line each
    with pytest.raises(UnknownAdapterError) as info:
        model.set_active_adapters(Stack("sw_inv", "xx"))
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


def readme_commands(name: str) -> list[list[str]]:
    """The command lines of the shell block after ``<!-- readme-commands: name -->``, continuations joined,
    comments dropped, split as the shell would (variables left as written)."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- readme-commands: {re.escape(name)} -->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md has no bash block after <!-- readme-commands: {name} -->"
    return [shlex.split(line, comments=True) for line in match.group(1).replace("\\\n", " ").splitlines()
            if line.strip()]


def _parse_nmt(argv: list[str]):
    """Parse ``nmt VERB ...`` with the verb's own parser, stopping before it runs."""
    import argparse

    from nmt.cli import main

    original = argparse.ArgumentParser.parse_args

    class Parsed(Exception):
        pass

    def parse_then_stop(self, args=None, namespace=None):
        parsed = original(self, args, namespace)
        if self.prog == f"nmt {argv[0]}":
            raise Parsed(parsed)
        return parsed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        with pytest.raises(Parsed):
            main(argv)


def _parse_fairseq(program: str, argv: list[str]) -> None:
    from fairseq import options

    parser = options.get_training_parser() if program == "fairseq-train" else options.get_generation_parser()
    args = options.parse_args_and_arch(parser, argv)
    assert args.user_dir and args.task == "adapter_translation"


def test_readme_command_lines_parse():
    """Every flag of the quick tour's command lines exists and takes the value given (fairseq's own parsers
    for fairseq-train/-generate with the plugin; ours for nmt, xling)."""
    from xling.cli import build_parser

    user_dir = str(ROOT / "nmt")
    seen = set()
    for block in ("nmt", "xling"):
        for words in readme_commands(block):
            if words[0].startswith("USER_DIR="):
                continue
            words = [w.replace("$USER_DIR", user_dir) for w in words]
            program, argv = words[0], words[1:]
            seen.add(program)
            if program in ("fairseq-train", "fairseq-generate"):
                _parse_fairseq(program, argv)
            elif program == "nmt":
                _parse_nmt(argv)
            elif program == "xling":
                build_parser().parse_args(argv)
            else:
                raise AssertionError(f"README command {program!r} is not checked here")
    assert seen == {"fairseq-train", "fairseq-generate", "nmt", "xling"}
