"""A token-tagging task made from gettext strings, for the MAD-X smoke run of ``make demo``.

Real MAD-X NER uses WikiANN.  Offline, the catalogs' own strings give a
tagging task with labels that carry across languages without any
annotation: command-line options (``--verbose``, ``-n``) and printf/brace
placeholders (``%s``, ``%1$d``, ``{0}``) stay the same in every translation.
Tokens are whitespace-split; labels are ``B-OPT``/``B-PH``/``O``.  Output is
the XTREME PAN-X layout (``lang:token<TAB>label``, blank line between
sentences) that ``xling train-task --task ner`` reads.

This is a surface-pattern task: a smoke test that the task adapter trains,
stacks on a language adapter and survives the zero-shot language swap, not a
benchmark of cross-lingual transfer.

    data-prep tagging --gettext-dir data/gettext --langs en,de,ar --output-dir data/tagging
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from adapter_core.io import atomic_write_text

from .common import text_file_lines

OPTION = re.compile(r"^[\"'(\[]*(--?[A-Za-z][\w-]*)(=\S*)?[\"'),.:;\]]*$")
PLACEHOLDER = re.compile(r"%(\d+\$)?[-+ #0]*\d*(\.\d+)?[hlLqjzt]*[diouxXeEfFgGcsp]|\{\d*\}|\$\{?\w+\}?")
LABELS = ("O", "B-OPT", "B-PH")


def tag_token(token: str) -> str:
    """The label of one whitespace token."""
    if OPTION.match(token):
        return "B-OPT"
    if PLACEHOLDER.search(token):
        return "B-PH"
    return "O"


def tagged_sentences(lines: list[str], max_tokens: int = 40) -> list[list[tuple[str, str]]]:
    """Tagged token lists for lines with at least one entity and at most ``max_tokens`` tokens."""
    sentences = []
    for line in lines:
        tokens = line.split()
        if not tokens or len(tokens) > max_tokens:
            continue
        labels = [tag_token(t) for t in tokens]
        if any(label != "O" for label in labels):
            sentences.append(list(zip(tokens, labels)))
    return sentences


def panx_text(lang: str, sentences: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{lang}:{token}\t{label}" for token, label in s) for s in sentences) + "\n"


def side_lines(gettext_dir: Path, splits: tuple[str, ...], lang: str) -> list[str]:
    """The ``lang`` side of every ``<split>.en-xx`` direction (English: the en side of all of them)."""
    lines: list[str] = []
    for split in splits:
        pattern = f"{split}.en-*.{lang}"
        for path in sorted(gettext_dir.glob(pattern)):
            lines.extend(text_file_lines(path)[0])
    if not lines:
        raise FileNotFoundError(f"no {'/'.join(splits)}.en-*.{lang} files in {gettext_dir}: run `data-prep gettext` first")
    return list(dict.fromkeys(lines))  # de-duplicated, order kept


def prepare(gettext_dir: str | Path, langs: list[str], out_dir: str | Path, max_train: int = 2000,
            max_test: int = 400, source_lang: str = "en", seed: int = 0) -> dict:
    """Write ``train.<source>.panx`` and ``test.<lang>.panx`` for every language.

    The task adapter trains on the source language only, so a target
    language's test set may draw on all of its strings (train, valid and
    test splits of the translation data: none of them was ever labelled for
    training); the source language's test set uses its valid and test splits.
    """
    gettext_dir, out_dir = Path(gettext_dir), Path(out_dir)
    rng = random.Random(seed)
    report = {"labels": list(LABELS), "source_language": source_lang, "languages": {}}
    for lang in dict.fromkeys([source_lang, *langs]):
        plan = [("test", ("valid", "test") if lang == source_lang else ("train", "valid", "test"), max_test)]
        if lang == source_lang:
            plan.insert(0, ("train", ("train",), max_train))
        counts = {}
        for name, splits, cap in plan:
            sentences = tagged_sentences(side_lines(gettext_dir, splits, lang))
            rng.shuffle(sentences)
            sentences = sentences[:cap]
            if not sentences:
                raise ValueError(f"{gettext_dir}: no {name} sentences with an option or placeholder for {lang!r}")
            atomic_write_text(out_dir / f"{name}.{lang}.panx", panx_text(lang, sentences))
            counts[name] = len(sentences)
        report["languages"][lang] = counts
    return report
