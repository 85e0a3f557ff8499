"""Side-by-side comparison of MAD-X against its baselines, per task, target language and training size.

Pfeiffer et al. (2020, MAD-X) evaluate a task adapter trained on English
with the target language's adapter (and invertible adapter) swapped in.
He et al. (2021) claim adapters beat full fine-tuning on small training sets
and across languages.  To test both on a real encoder every task and target
language gets four rows, each a mean ± std over seeds:

- ``majority``: the most frequent training label (classification, POS); for
  QA, which has no classes, a random span of the training set's median
  answer length (in words), one draw per seed;
- ``no_swap``: the task adapter over the *source* language adapter;
- ``madx``: the same task adapter over the *target* language adapter;
- ``full``: the encoder fully fine-tuned on the same data and steps.

Results live in ``RESULTS/<task>/<row>/n<size>/<lang>-seed<seed>.json``
(the same records as ``xling eval``, plus ``row`` and ``train_size``).
Subcommands (``python -m xling.comparison ...``):

- ``subsample``: a fixed random subset of a task file (jsonl, SQuAD JSON,
  PAN-X/POS), and optionally the text of the *other* items, one per line (so
  a language adapter never sees the evaluated items);
- ``text``: the text of task files, one item per line (language adapter and
  vocabulary-trimming corpora);
- ``eval-adapter``: the no_swap and madx rows of one task adapter, in one
  process (the model is loaded once, the language adapters swapped);
- ``eval-full``: the full row of a fully fine-tuned model;
- ``baseline``: the majority / random-span row;
- ``report``: JSON, Markdown, bar charts per language and learning curves.

Deviation from ``xling eval``: the scoring here truncates inputs at the
training ``--max-length`` (``xling eval`` uses the task's default, 128
tokens for classification and POS, 384 for QA), so that train and test see
the same lengths; QA windows use a doc stride of a quarter of that length.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

from .data import DataError

#: The rows of the comparison, in table order.
ROWS = ("majority", "no_swap", "madx", "full")
ROW_TITLES = {"majority": "majority baseline", "no_swap": "task adapter, source language adapter (no swap)",
              "madx": "MAD-X (target language adapter swapped in)", "full": "full fine-tuning"}


# -- task files: read, subsample, text -------------------------------------------------


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


# -- command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xling.comparison", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("subsample", help="a fixed random subset of a task file")
    sample.add_argument("--input", required=True, help="jsonl (classification), SQuAD JSON (QA) or PAN-X/POS file")
    sample.add_argument("--size", type=int, required=True, help="items kept (questions for QA, sentences, lines)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draw")
    sample.add_argument("--output", required=True, help="the subset, in the input's format")
    sample.add_argument("--rest-text", help="also write the text of the items not kept, one per line")
    text = sub.add_parser("text", help="the text of task files, one item per line")
    text.add_argument("--input", required=True, nargs="+", help="task files")
    text.add_argument("--output", required=True, help="text file")
    text.add_argument("--max-lines", type=int, help="keep the first N lines (files interleaved)")
    text.add_argument("--questions", action="store_true", help="QA: the questions too (for vocabulary trimming)")
    return parser


def run(args) -> None:
    if args.command == "subsample":
        print(json.dumps(subsample(args.input, args.size, args.seed, args.output, args.rest_text)))
    elif args.command == "text":
        print(f"{extract_text(args.input, args.output, args.max_lines, args.questions)} lines -> {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (DataError, OSError, KeyError, ValueError) as err:
        print(f"xling.comparison: error: {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
