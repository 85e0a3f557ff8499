"""Side-by-side comparison of MAD-X against its baselines, per task, target language and training size.

Pfeiffer et al. (2020, MAD-X) evaluate a task adapter trained on English
with the target language's adapter (and invertible adapter) swapped in.
He et al. (2021) claim adapters beat full fine-tuning on small training sets
and across languages.  To test both on a real encoder every task and target
language gets four rows, each a mean ± std over seeds:

- ``majority``: the most frequent training label (classification, POS); for
  QA, which has no classes, a random span of the training set's median
  answer length (in words), one draw per seed; for NER, where the majority
  tag O scores entity F1 0 (recorded beside it as ``all_o_f1``), every
  capitalised word but a sentence's first tagged as a name
  (``xling.tasks.ner.capitalised_baseline``);
- ``no_swap``: the task adapter over the *source* language adapter;
- ``madx``: the same task adapter over the *target* language adapter;
- ``full``: the encoder fully fine-tuned on the same data and steps.

Results live in ``RESULTS/<task>/<row>/n<size>/<lang>-seed<seed>.json``
(the same records as ``xling eval``, plus ``row`` and ``train_size``).
Subcommands (``studies.xling_comparison ...``):

- ``subsample`` and ``text``: fixed subsets of task files and their text
  (``studies.xling_task_subsets``);
- ``eval-adapter``: the no_swap and madx rows of one task adapter, in one
  process (the model is loaded once, the language adapters swapped);
- ``eval-full``: the full row of a fully fine-tuned model;
- ``baseline``: the majority / random-span / capitalised-words row;
- ``report``: JSON, Markdown, bar charts per language and learning curves
  (``studies.xling_comparison_report``).

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
from pathlib import Path

from adapter_core import atomic_write_json

from xling.kinds import K_ADAPTER_KIND
from xling.data import DataError
from studies.xling_comparison_report import markdown_lines, write_report
from studies.xling_task_subsets import extract_text, subsample

#: The rows ``eval-adapter`` writes for a task adapter and for a K-adapter: (source adapter, target's adapter).
ADAPTER_ROWS = {"task": ("no_swap", "madx"), K_ADAPTER_KIND: ("k_adapter", "k_adapter_madx")}
#: The row of a task module on the bare encoder by its ``--adapter-kind`` (the other kinds: bare_task).
BARE_ROWS = {"lora": "bare_lora", "prefix_tuning": "bare_prefix_tuning"}


# -- scoring: the four rows ----------------------------------------------------------------


def _pairs(values: list[str], what: str) -> dict[str, str]:
    """``lang=path`` pairs of the command line as a dict."""
    pairs = {}
    for value in values:
        lang, sep, path = value.partition("=")
        if not sep or not lang or not path:
            raise ValueError(f"{what}: expected LANG=PATH, got {value!r}")
        pairs[lang] = path
    return pairs


def _record(path: Path, task: str, row: str, lang: str, seed, train_size: str, data: str, scores: dict, **extra) -> dict:
    record = {"task": task, "row": row, "language": lang, "seed": seed, "train_size": str(train_size),
              "data": str(data), **extra, **scores}
    atomic_write_json(path, record)
    print(f"{task} {row} n={train_size} {lang} seed {seed}: {record['main_metric']} {record[record['main_metric']]:.2f}")
    return record


def _result_path(out_dir: str, task: str, row: str, train_size: str, lang: str, seed) -> Path:
    return Path(out_dir) / task / row / f"n{train_size}" / f"{lang}-seed{seed}.json"


def _score(module, model, tokenizer, data: str, labels: list[str], batch_size: int, max_length: int) -> dict:
    import torch

    with torch.inference_mode():
        return module.evaluate(model, tokenizer, module.read(data), labels, batch_size=batch_size, max_length=max_length)


def eval_adapter(model_dir: str, task_adapter: str, lang_adapters: dict[str, str], data: dict[str, str], source: str,
                 out_dir: str, train_size: str, max_length: int, batch_size: int = 32) -> list[dict]:
    """no_swap (source language adapter) and madx (each target's own adapter) rows of one task adapter; for a
    K-adapter, which reads the encoder from beside it, the rows k_adapter and k_adapter_madx."""
    from adapter_core import Stack

    from xling.adapter_io import load_madx_adapter
    from xling.inference import load_task_model, task_adapter_info

    if (Path(task_adapter) / "task.json").is_file() and task_adapter_info(task_adapter).get("source_language", "") is None:
        return _eval_bare_task(model_dir, task_adapter, data, out_dir, train_size, max_length, batch_size)
    if source not in lang_adapters:
        raise ValueError(f"no language adapter given for the source language {source!r}")
    missing = sorted(set(data) - set(lang_adapters))
    if missing:
        raise ValueError(f"no language adapter given for {', '.join(missing)}")
    loaded = load_task_model(model_dir, task_adapter, lang_adapters[source])
    info, above = loaded.info, loaded.setup.names[1:]  # the task adapter (none for a K-adapter) over the language's
    if above and loaded.host.adapters[above[-1]].config.kind in BARE_ROWS:
        raise ValueError(f"{task_adapter}: LoRA and prefix tuning have rows on the bare encoder only "
                         f"({', '.join(BARE_ROWS.values())}); train them with --lang-adapter none")
    source_row, target_row = ADAPTER_ROWS[K_ADAPTER_KIND if info.get("adapter_kind") == K_ADAPTER_KIND else "task"]
    names = {source: loaded.setup.names[0]}
    for lang in data:
        if lang != source:
            names[lang] = load_madx_adapter(loaded.host, lang_adapters[lang], name=f"lang_{lang}")
    records = []
    for lang, path in data.items():
        rows = [source_row] if lang == source else [source_row, target_row]
        for row in rows:
            adapter = lang_adapters[source] if row == source_row else lang_adapters[lang]
            loaded.host.set_active(Stack(names[source] if row == source_row else names[lang], *above))
            scores = _score(loaded.module, loaded.model, loaded.tokenizer, path, info["labels"], batch_size, max_length)
            records.append(_record(_result_path(out_dir, info["task"], row, train_size, lang, info.get("seed")),
                                   info["task"], row, lang, info.get("seed"), train_size, path, scores,
                                   language_adapter=str(adapter), task_adapter=str(task_adapter)))
    return records


def _eval_bare_task(model_dir: str, task_adapter: str, data: dict[str, str], out_dir: str, train_size: str,
                    max_length: int, batch_size: int) -> list[dict]:
    """The bare_task row (bare_lora, bare_prefix_tuning: ``BARE_ROWS``): a task adapter trained without a language
    adapter, on every language's data."""
    from xling.inference import load_task_model

    loaded = load_task_model(model_dir, task_adapter, None)
    info, records = loaded.info, []
    row = BARE_ROWS.get(loaded.host.adapters[loaded.setup.names[-1]].config.kind, "bare_task")
    for lang, path in data.items():
        scores = _score(loaded.module, loaded.model, loaded.tokenizer, path, info["labels"], batch_size, max_length)
        records.append(_record(_result_path(out_dir, info["task"], row, train_size, lang, info.get("seed")),
                               info["task"], row, lang, info.get("seed"), train_size, path, scores,
                               language_adapter=None, task_adapter=str(task_adapter)))
    return records


def eval_full(model_dir: str, task: str, data: dict[str, str], seed: int, out_dir: str, train_size: str,
              max_length: int, batch_size: int = 32) -> list[dict]:
    """The full row: a model written by ``xling train-full`` (OUT/model) on each language's data."""
    from transformers import AutoTokenizer

    from xling.tasks import TASKS, LABELLED_HEAD_TASKS
    from xling.train import from_model_dir

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    module = TASKS[task]
    model = from_model_dir(module.MODEL_CLASS, model_dir).eval()
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    labels = ([model.config.id2label[i] for i in range(model.config.num_labels)] if task in LABELLED_HEAD_TASKS
              else module.label_list([]))
    return [_record(_result_path(out_dir, task, "full", train_size, lang, seed), task, "full", lang, seed, train_size,
                    path, _score(module, model, tokenizer, path, labels, batch_size, max_length), model=str(model_dir))
            for lang, path in data.items()]


def random_span_scores(train, examples, seed: int) -> dict:
    """QA baseline: a span of the training answers' median length (words) at a random word of each context."""
    from xling.metrics import squad_scores

    length = max(1, int(statistics.median(len(answers["text"][0].split()) for answers in train["answers"])))
    rng = random.Random(seed)
    predictions = {}
    for qid, context in zip(examples["id"], examples["context"]):
        words = context.split()
        start = rng.randrange(max(1, len(words) - length + 1))
        predictions[qid] = " ".join(words[start:start + length])
    gold = {qid: answers["text"] for qid, answers in zip(examples["id"], examples["answers"])}
    scores = squad_scores(predictions, gold)
    return {**scores, "num_examples": len(examples), "main_metric": "f1", "span_words": length}


def baseline(task: str, train: str, data: dict[str, str], out_dir: str, train_size: str, seeds: list[int]) -> list[dict]:
    """The majority row (classification, POS), capitalised-words row (NER; deterministic, seed None) or random-span
    row (QA: one per seed)."""
    from xling.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    module = TASKS[task]
    train_examples = module.read(train)
    records = []
    for lang, path in data.items():
        examples = module.read(path)
        if task == "qa":
            for seed in seeds:
                records.append(_record(_result_path(out_dir, task, "majority", train_size, lang, seed), task, "majority",
                                       lang, seed, train_size, path, random_span_scores(train_examples, examples, seed),
                                       baseline="random_span"))
        elif task == "ner":  # all O (the majority tag) scores F1 0: recorded, but the row is capitalised words
            scores = {**module.capitalised_baseline(train_examples, examples),
                      "all_o_f1": module.majority_baseline(train_examples, examples)["f1"]}
            records.append(_record(_result_path(out_dir, task, "majority", train_size, lang, None), task, "majority",
                                   lang, None, train_size, path, scores, baseline="capitalised_words"))
        elif hasattr(module, "majority_baseline"):
            records.append(_record(_result_path(out_dir, task, "majority", train_size, lang, None), task, "majority",
                                   lang, None, train_size, path, module.majority_baseline(train_examples, examples),
                                   baseline="majority_class"))
        else:
            raise ValueError(f"task {task!r} has no majority baseline")
    return records


# -- command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studies.xling_comparison", description=__doc__.split("\n\n")[0])
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
    ev = sub.add_parser("eval-adapter", help="no_swap and madx rows of one task adapter")
    ev.add_argument("--model", required=True, help="base model directory")
    ev.add_argument("--task-adapter", required=True, help="xling train-task's OUT/adapter")
    ev.add_argument("--lang-adapters", nargs="+", default=[], help="LANG=DIR language adapters (source and targets; "
                    "none for a task adapter trained on the bare encoder: its bare_task row)")
    ev.add_argument("--data", required=True, nargs="+", help="LANG=FILE evaluation files")
    ev.add_argument("--source-language", default="en", help="the language the task adapter was trained on")
    full = sub.add_parser("eval-full", help="full row: a fully fine-tuned model (xling train-full's OUT/model)")
    full.add_argument("--model", required=True, help="the fine-tuned model directory")
    full.add_argument("--task", required=True, help="the task")
    full.add_argument("--seed", type=int, required=True, help="the seed it was trained with (recorded)")
    full.add_argument("--data", required=True, nargs="+", help="LANG=FILE evaluation files")
    base = sub.add_parser("baseline", help="majority row (QA: random span; NER: capitalised words)")
    base.add_argument("--task", required=True, help="the task")
    base.add_argument("--train", required=True, help="training file")
    base.add_argument("--data", required=True, nargs="+", help="LANG=FILE evaluation files")
    base.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="QA: seeds of the random spans")
    for p in (ev, full, base):
        p.add_argument("--train-size", required=True, help="training examples of the run (a number or 'all'; recorded)")
        p.add_argument("--output-dir", required=True, help="results folder: <task>/<row>/n<size>/<lang>-seed<seed>.json")
    for p in (ev, full):
        p.add_argument("--max-length", type=int, default=128, help="longest input in tokens (as in training)")
        p.add_argument("--batch-size", type=int, default=32, help="examples per batch")
    rep = sub.add_parser("report", help="report.json, report.md and plots from a results folder")
    rep.add_argument("--results", required=True, help="results folder")
    rep.add_argument("--output-dir", required=True, help="report folder")
    rep.add_argument("--source-language", default="en", help="left out of the target averages")
    rep.add_argument("--title", default="MAD-X on multilingual-e5-small", help="the report's heading")
    rep.add_argument("--note", action="append", default=[], help="a paragraph under the heading (repeatable)")
    return parser


def run(args) -> None:
    if args.command == "subsample":
        print(json.dumps(subsample(args.input, args.size, args.seed, args.output, args.rest_text)))
    elif args.command == "text":
        print(f"{extract_text(args.input, args.output, args.max_lines, args.questions)} lines -> {args.output}")
    elif args.command == "eval-adapter":
        eval_adapter(args.model, args.task_adapter, _pairs(args.lang_adapters, "--lang-adapters"),
                     _pairs(args.data, "--data"), args.source_language, args.output_dir, args.train_size,
                     args.max_length, args.batch_size)
    elif args.command == "eval-full":
        eval_full(args.model, args.task, _pairs(args.data, "--data"), args.seed, args.output_dir, args.train_size,
                  args.max_length, args.batch_size)
    elif args.command == "baseline":
        baseline(args.task, args.train, _pairs(args.data, "--data"), args.output_dir, args.train_size, args.seeds)
    elif args.command == "report":
        summary = write_report(args.results, args.output_dir, args.source_language, args.title, args.note)
        print("\n".join(markdown_lines(summary)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (DataError, OSError, KeyError, ValueError) as err:
        print(f"studies.xling_comparison: error: {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
