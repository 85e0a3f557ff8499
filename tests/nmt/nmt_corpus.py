"""A tiny synthetic 3-language parallel corpus, binarised with fairseq-preprocess.

"Languages" en, de, fr are deterministic word substitutions over one small
concept vocabulary (de also swaps each adjacent word pair), so a 2-layer
Transformer learns to translate them in seconds.
"""

from __future__ import annotations

import random
from pathlib import Path

LANGS = ("en", "de", "fr")
CONCEPTS = 12


def word(lang: str, concept: int) -> str:
    return f"{lang}{concept}"


def render(lang: str, concepts: list[int]) -> str:
    words = [word(lang, c) for c in concepts]
    if lang == "de":  # a little reordering, so the languages differ in more than their words
        for i in range(0, len(words) - 1, 2):
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def sentences(count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(CONCEPTS) for _ in range(rng.randint(2, 5))] for _ in range(count)]


def write_corpus(raw: Path, pairs: list[str], sizes: dict[str, int]) -> None:
    """raw/{split}.{src}-{tgt}.{lang} for every pair and split."""
    raw.mkdir(parents=True, exist_ok=True)
    for p, pair in enumerate(pairs):
        src, tgt = pair.split("-")
        for s, (split, count) in enumerate(sizes.items()):
            data = sentences(count, seed=100 * p + s)
            for lang in (src, tgt):
                text = "\n".join(render(lang, c) for c in data) + "\n"
                (raw / f"{split}.{pair}.{lang}").write_text(text, encoding="utf-8")


def binarize(raw: Path, out: Path, pairs: list[str], splits=("train", "valid", "test")) -> Path:
    """fairseq-preprocess every pair with one joined dictionary (all words of all languages)."""
    from fairseq import options
    from fairseq_cli import preprocess

    out.mkdir(parents=True, exist_ok=True)
    vocab = [word(lang, c) for lang in LANGS for c in range(CONCEPTS)]
    dict_path = out / "dict.txt"
    dict_path.write_text("".join(f"{w} 1\n" for w in vocab), encoding="utf-8")
    for pair in pairs:
        src, tgt = pair.split("-")
        args = ["--source-lang", src, "--target-lang", tgt, "--destdir", str(out), "--workers", "1",
                "--srcdict", str(dict_path), "--tgtdict", str(dict_path)]
        for split in splits:
            args += [f"--{'valid' if split == 'valid' else split}pref", str(raw / f"{split}.{pair}")]
        preprocess.main(options.get_preprocessing_parser().parse_args(args))  # fairseq-preprocess, in-process
    for lang in LANGS:
        (out / f"dict.{lang}.txt").write_text(dict_path.read_text(encoding="utf-8"), encoding="utf-8")
    return out
