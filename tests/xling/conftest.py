"""Tiny XLM-R (hidden 32, 2 layers) with a sentencepiece tokenizer trained here, and tiny task files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS_EN = "the cat sat on a mat john lives in london and works for acme corp mary went to paris".split()
WORDS_SW = "paka ameketi juu ya mkeka juma anaishi nairobi na anafanya kazi kwa kampuni amina".split()
PEOPLE, PLACES, ORGS = ["john", "mary", "juma", "amina"], ["london", "paris", "nairobi"], ["acme", "kampuni"]


def sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(n)]


def build_tokenizer(directory: Path, text: list[str]):
    """Train a unigram sentencepiece model and load it as XLM-R's tokenizer (the transformers 5 way)."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(text) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(directory / "sentencepiece.bpe"),
                                   vocab_size=120, model_type="unigram", hard_vocab_limit=False,
                                   minloglevel=2, num_threads=1)
    # XLMRobertaTokenizer(vocab_file=...) silently ignores the file (5-token vocabulary);
    # from_pretrained(dir) converts sentencepiece.bpe.model (through protobuf).
    return XLMRobertaTokenizer.from_pretrained(str(directory))


def ner_sentence(rng: random.Random, filler: list[str]) -> list[tuple[str, str]]:
    tokens = [(w, "O") for w in rng.sample(filler, 3)]
    tokens.insert(rng.randint(0, 3), (rng.choice(PEOPLE), "B-PER"))
    tokens.insert(rng.randint(0, 4), (rng.choice(PLACES), "B-LOC"))
    if rng.random() < 0.5:
        tokens += [(rng.choice(ORGS), "B-ORG"), ("corp", "I-ORG")]
    return tokens


def write_panx(path: Path, lang: str, n: int, seed: int, filler: list[str]) -> None:
    rng = random.Random(seed)
    blocks = ["\n".join(f"{lang}:{w}\t{t}" for w, t in ner_sentence(rng, filler)) for _ in range(n)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def write_squad(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        context = f"{' '.join(rng.sample(WORDS_EN, 4))} {person} lives in {place} . {' '.join(rng.sample(WORDS_EN, 5))}"
        paragraphs.append({"context": context, "qas": [
            {"id": f"q{i}", "question": f"where does {person} live ?",
             "answers": [{"text": place, "answer_start": context.index(f"in {place}") + 3}]}]})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")


def write_copa(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.randint(0, 1)
        good, bad = "the cat sat on the mat", "mary went to paris"
        choices = [good, bad] if label == 0 else [bad, good]
        rows.append({"premise": "john lives in london", "choice1": choices[0], "choice2": choices[1],
                     "question": rng.choice(["cause", "effect"]), "label": label, "idx": i})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_siqa(path: Path, labels: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    rows, golds = [], []
    for _ in range(n):
        gold = rng.randint(1, 3)
        answers = ["mary went to paris", "the mat", "acme corp"]
        answers[gold - 1] = "the cat sat on the mat"
        rows.append({"context": "john lives in london", "question": "what happened ?",
                     "answerA": answers[0], "answerB": answers[1], "answerC": answers[2]})
        golds.append(str(gold))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    labels.write_text("\n".join(golds) + "\n", encoding="utf-8")


def tiny_xlmr_config(vocab_size: int):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=160, layer_norm_eps=1e-5,
                            pad_token_id=1, bos_token_id=0, eos_token_id=2)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> dict:
    """A tiny XLM-R model directory (MLM head + tokenizer) and task files in their real formats."""
    import torch
    from transformers import XLMRobertaForMaskedLM

    root = tmp_path_factory.mktemp("xling")
    en, sw = sentences(WORDS_EN, 120, 1), sentences(WORDS_SW, 120, 2)
    tokenizer = build_tokenizer(root / "spm", en + sw + ["corp where does live what happened ? ."])
    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(tiny_xlmr_config(len(tokenizer)))
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = root / "data"
    data.mkdir()
    (data / "en.txt").write_text("\n".join(en) + "\n", encoding="utf-8")
    (data / "sw.txt").write_text("\n".join(sw) + "\n", encoding="utf-8")
    write_panx(data / "en.panx", "en", 48, 3, WORDS_EN[:8])
    write_panx(data / "sw.panx", "sw", 16, 4, WORDS_SW[:8])
    write_squad(data / "en.squad.json", 24, 5)
    write_copa(data / "en.copa.jsonl", 24, 6)
    write_siqa(data / "siqa.jsonl", data / "siqa-labels.lst", 12, 7)
    return {"root": root, "model": model_dir, "data": data, "tokenizer": tokenizer}


def _tree_digest(directory: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory).rglob("*")) if p.is_file()}


@pytest.fixture
def tree_digest():
    """sha256 of every file under a directory (to check that training never writes the frozen base back)."""
    return _tree_digest


@pytest.fixture(scope="session")
def en_language_adapter(workspace) -> Path:
    """A small English language adapter, trained in-process with `xling train-lang` (2 steps)."""
    from xling.cli import main

    out = workspace["root"] / "reliability-lang-en"
    assert main(["train-lang", "--model", str(workspace["model"]), "--lang", "en", "--text",
                 str(workspace["data"] / "en.txt"), "--output-dir", str(out), "--max-steps", "2", "--batch-size", "8",
                 "--cpu", "--save-steps", "2", "--learning-rate", "1e-3"]) == 0
    return out / "adapter"
