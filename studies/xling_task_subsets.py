"""Fixed subsets of task files and their raw text, for the comparisons of ``studies.xling_comparison``.

- ``subsample``: a fixed random subset of a task file (jsonl for
  classification, SQuAD JSON for QA, PAN-X layout for POS/NER), and
  optionally the text of the *other* items, one per line, so that a language
  adapter trained on it never reads an evaluated item;
- ``extract_text``: the text of task files, one item per line (language
  adapter and vocabulary-trimming corpora).

Both are subcommands of ``studies.xling_comparison``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from adapter_core import atomic_write_text

from xling.data import DataError


def _kind(path: Path) -> str:
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.suffix == ".json":
        return "squad"
    return "panx"


def read_items(path: str | Path) -> tuple[str, list]:
    """(kind, items): jsonl lines, SQuAD (context, qa) pairs, or PAN-X sentence blocks (lists of lines)."""
    path = Path(path)
    kind = _kind(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if kind == "jsonl":
        items = [line for line in text.splitlines() if line.strip()]
    elif kind == "squad":
        try:
            data = json.loads(text)["data"]
            items = [(p["context"], qa) for article in data for p in article["paragraphs"] for qa in p["qas"]]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a SQuAD v1.1 file ({err})") from None
    else:
        items, block = [], []
        for line in text.splitlines():
            if line.strip():
                block.append(line)
            elif block:
                items.append(block)
                block = []
        if block:
            items.append(block)
    if not items:
        raise DataError(f"{path}: no items")
    return kind, items


def item_text(kind: str, item, questions: bool = False) -> str:
    """The raw text of an item: the review, the QA context (``questions``: the question), or the sentence's words."""
    if kind == "jsonl":
        return " ".join(json.loads(item)["text"].split())
    if kind == "squad":
        return " ".join((item[1]["question"] if questions else item[0]).split())
    return " ".join(line.split("\t")[0].split(":", 1)[-1] for line in item)


def write_items(kind: str, items: list, path: str | Path) -> None:
    if kind == "jsonl":
        body = "\n".join(items) + "\n"
    elif kind == "squad":
        paragraphs: dict[str, list] = {}
        for context, qa in items:
            paragraphs.setdefault(context, []).append(qa)
        body = json.dumps({"version": "1.1", "data": [{"title": "subsample", "paragraphs": [
            {"context": c, "qas": qas} for c, qas in paragraphs.items()]}]}, ensure_ascii=False)
    else:
        body = "".join("\n".join(block) + "\n\n" for block in items)
    atomic_write_text(path, body)


def subsample(path: str, size: int, seed: int, output: str, rest_text: str | None = None) -> dict:
    """A fixed random subset of ``size`` items (original order kept); ``rest_text``: the text of the others.

    For QA the rest excludes every context that a chosen question is about, so
    a language adapter trained on it never reads an evaluated paragraph.
    """
    kind, items = read_items(path)
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(size, len(items))))
    picked = [items[i] for i in chosen]
    write_items(kind, picked, output)
    report = {"input": str(path), "items": len(items), "chosen": len(picked), "seed": seed, "output": str(output)}
    if rest_text:
        chosen_set = set(chosen)
        used = {item_text(kind, it) for it in picked}
        rest = [item_text(kind, it) for i, it in enumerate(items) if i not in chosen_set]
        rest = list(dict.fromkeys(t for t in rest if t and t not in used))  # unique, evaluated text left out
        atomic_write_text(rest_text, "\n".join(rest) + "\n")
        report["rest_lines"] = len(rest)
    return report


def extract_text(paths: list[str], output: str, max_lines: int | None = None, questions: bool = False) -> int:
    """The unique texts of task files, interleaved file by file, at most ``max_lines`` (``questions``: QA questions too)."""
    per_file = []
    for path in paths:
        kind, items = read_items(path)
        texts = [item_text(kind, it) for it in items]
        if questions and kind == "squad":
            texts += [item_text(kind, it, questions=True) for it in items]
        per_file.append(list(dict.fromkeys(texts)))
    lines = [lst[i] for i in range(max(map(len, per_file))) for lst in per_file if i < len(lst)]
    lines = [line for line in lines if line][:max_lines]
    atomic_write_text(output, "\n".join(lines) + "\n")
    return len(lines)
