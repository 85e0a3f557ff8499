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

from xling.kinds import K_ADAPTER_KIND
from xling.data import DataError
from studies.xling_task_subsets import extract_text, subsample

#: The rows of the comparison, in table order (k_adapter*: ``eval-adapter`` of a K-adapter, ``xling.k_adapter``).
ROWS = ("majority", "bare_task", "bare_lora", "bare_prefix_tuning", "no_swap", "madx", "k_adapter", "k_adapter_madx",
        "full")
ROW_TITLES = {"majority": "majority baseline (QA: random span)",
              "bare_task": "task adapter on the bare encoder (no language adapter)",
              "bare_lora": "LoRA on the bare encoder (Hu et al. 2021; no language adapter)",
              "bare_prefix_tuning": "prefix tuning on the bare encoder (Li & Liang 2021; no language adapter)",
              "no_swap": "task adapter, source language adapter (no swap)",
              "madx": "MAD-X (target language adapter swapped in)",
              "k_adapter": "K-Adapter, source language adapter (no swap)",
              "k_adapter_madx": "K-Adapter, target language adapter swapped in", "full": "full fine-tuning"}
#: The rows ``eval-adapter`` writes for a task adapter and for a K-adapter: (source adapter, target's adapter).
ADAPTER_ROWS = {"task": ("no_swap", "madx"), K_ADAPTER_KIND: ("k_adapter", "k_adapter_madx")}
#: Titles of the majority row for the baselines that are not the majority class, by the records' ``baseline``.
BASELINE_TITLES = {"capitalised_words": "capitalised-words baseline (all O: F1 0)"}
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


# -- report --------------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def _size_key(size: str):
    return (1, 0) if size == "all" else (0, int(size)) if size.isdigit() else (2, size)


def load_records(results_dir: str) -> list[dict]:
    records = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read results JSON ({err})") from None
        missing = [k for k in ("task", "row", "language", "train_size", "main_metric") if k not in record]
        if missing or record.get("main_metric") not in record:
            raise ValueError(f"{path}: missing {', '.join(missing) or record.get('main_metric')!r}; "
                             "is it a file written by 'studies.xling_comparison'?")
        records.append(record)
    if not records:
        raise ValueError(f"{results_dir}: no result files")
    return records


def summarise(records: list[dict], source: str) -> dict:
    """{task: {metric, target_languages, sizes: {size: {rows, swap_gain, verdicts}}}}, every figure mean ± std over seeds.

    A row's ``avg`` is the mean over target languages computed per seed, then summarised over seeds.
    """
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict))))
    metric, baselines = {}, defaultdict(set)
    for r in records:
        metric[r["task"]] = r["main_metric"]
        if r["row"] == "majority" and r.get("baseline"):
            baselines[r["task"]].add(r["baseline"])
        table[r["task"]][r["train_size"]][r["row"]][r["language"]][r["seed"]] = float(r[r["main_metric"]])
    summary = {}
    for task, sizes in table.items():
        targets = sorted({lang for rows in sizes.values() for langs in rows.values() for lang in langs} - {source})
        out = {}
        for size in sorted(sizes, key=_size_key):
            rows, per_seed_avg = {}, {}
            for row in ROWS:
                if row not in sizes[size]:
                    continue
                langs = sizes[size][row]
                seeds = sorted({s for l in targets if l in langs for s in langs[l]}, key=str)
                per_seed_avg[row] = {s: statistics.fmean(langs[l][s] for l in targets if s in langs.get(l, {}))
                                     for s in seeds if all(s in langs.get(l, {}) for l in targets)}
                rows[row] = {"languages": {l: _stats(list(v.values())) for l, v in sorted(langs.items())},
                             "avg": _stats(list(per_seed_avg[row].values())) if per_seed_avg[row] else None}
            out[size] = {"rows": rows, **_verdicts(rows, per_seed_avg)}
        summary[task] = {"metric": metric[task], "source_language": source, "target_languages": targets, "sizes": out}
        if baselines[task]:
            summary[task]["baseline"] = ",".join(sorted(baselines[task]))
    return summary


def _verdicts(rows: dict, per_seed_avg: dict) -> dict:
    """Does each row's target average beat the baseline by more than the seed spread; does the swap help."""
    verdicts = {}
    base = rows.get("majority", {}).get("avg")
    for row in ROWS[1:]:
        avg = rows.get(row, {}).get("avg")
        if base and avg:
            margin, spread = avg["mean"] - base["mean"], avg["std"] + base["std"]
            # one seed has no spread: no verdict (None), however large the margin
            verdicts[row] = {"margin": margin, "spread": spread, "seeds": avg["n"],
                             "beats_baseline": margin > spread if avg["n"] >= 2 else None}
    result = {"beats_baseline": verdicts}
    madx, no_swap = per_seed_avg.get("madx", {}), per_seed_avg.get("no_swap", {})
    common = [s for s in madx if s in no_swap]
    if common:
        gain = _stats([madx[s] - no_swap[s] for s in common])
        gain["verdict"] = ("one seed: no spread to judge by" if gain["n"] < 2 else
                           "helps" if gain["mean"] > gain["std"] and gain["mean"] > 0 else
                           "hurts" if gain["mean"] < -gain["std"] and gain["mean"] < 0 else "no difference beyond the seed spread")
        result["swap_gain"] = gain
    full = per_seed_avg.get("full", {})
    common = [s for s in madx if s in full]
    if common:
        result["madx_minus_full"] = _stats([madx[s] - full[s] for s in common])
    k_adapter = per_seed_avg.get("k_adapter", {})
    common = [s for s in k_adapter if s in no_swap]
    if common:
        result["k_adapter_minus_no_swap"] = _stats([k_adapter[s] - no_swap[s] for s in common])
    return result


def _cell(stats: dict | None) -> str:
    return "–" if not stats else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def markdown_lines(summary: dict) -> list[str]:
    """Per task and training size: a table (rows × languages + target average) and the verdicts."""
    lines = []
    for task, data in summary.items():
        langs = [data["source_language"]] + data["target_languages"]
        for size, block in data["sizes"].items():
            lines += [f"#### {task}: {data['metric']}, {data['source_language']} → "
                      f"{', '.join(data['target_languages'])}, {size} training examples", "",
                      "| row | " + " | ".join(f"{l} (source)" if i == 0 else l for i, l in enumerate(langs))
                      + " | avg targets | seeds |", "|---|" + "---:|" * (len(langs) + 2)]
            for row, stats in block["rows"].items():
                cells = [_cell(stats["languages"].get(l)) for l in langs]
                seeds = stats["avg"]["n"] if stats.get("avg") else 0
                title = BASELINE_TITLES.get(data.get("baseline"), ROW_TITLES[row]) if row == "majority" else ROW_TITLES[row]
                lines.append(f"| {title} | " + " | ".join(cells) + f" | {_cell(stats['avg'])} | {seeds} |")
            lines.append("")
            for row, v in block.get("beats_baseline", {}).items():
                if v["beats_baseline"] is None:
                    lines.append(f"- {row}: target average minus the baseline {v['margin']:+.1f}: one seed, no spread "
                                 "to judge by (no verdict)")
                    continue
                lines.append(f"- {row}: target average {'beats' if v['beats_baseline'] else 'does NOT beat'} the "
                             f"baseline by more than the seed spread (margin {v['margin']:+.1f}, spread {v['spread']:.1f})")
            if "swap_gain" in block:
                g = block["swap_gain"]
                lines.append(f"- swapping in the target language adapter: {g['mean']:+.1f} ± {g['std']:.1f} "
                             f"(paired over {g['n']} seeds): {g['verdict']}")
            if "madx_minus_full" in block:
                g = block["madx_minus_full"]
                lines.append(f"- MAD-X minus full fine-tuning: {g['mean']:+.1f} ± {g['std']:.1f}")
            if "k_adapter_minus_no_swap" in block:
                g = block["k_adapter_minus_no_swap"]
                lines.append(f"- K-Adapter minus the task adapter (both no swap): {g['mean']:+.1f} ± {g['std']:.1f} "
                             f"(paired over {g['n']} seeds)")
            lines.append("")
    return lines


def _bars(task: str, data: dict, size: str, path: Path) -> None:
    from xling.plots import _figure, _save

    plt = _figure()
    block = data["sizes"][size]["rows"]
    langs = [data["source_language"]] + data["target_languages"] + ["avg"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(langs), 3.6))
    width = 0.8 / max(1, len(block))
    for k, (row, stats) in enumerate(block.items()):
        values = [stats["languages"].get(l) if l != "avg" else stats["avg"] for l in langs]
        xs = [i + (k - (len(block) - 1) / 2) * width for i in range(len(langs))]
        ax.bar(xs, [v["mean"] if v else 0 for v in values], width, yerr=[v["std"] if v else 0 for v in values],
               capsize=2, label=row)
    ax.set_xticks(range(len(langs)), labels=langs)
    ax.set_ylabel(data["metric"])
    ax.set_title(f"{task}, {size} training examples (mean ± std over seeds)")
    ax.legend(fontsize=7)
    _save(plt, fig, path)


def _curve(task: str, data: dict, path: Path) -> None:
    from xling.plots import _figure, _save

    plt = _figure()
    sizes = list(data["sizes"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in ROWS:
        points = [(i, data["sizes"][s]["rows"][row]["avg"]) for i, s in enumerate(sizes)
                  if data["sizes"][s]["rows"].get(row, {}).get("avg")]
        if points:
            ax.errorbar([p[0] for p in points], [p[1]["mean"] for p in points], yerr=[p[1]["std"] for p in points],
                        marker="o", capsize=3, label=row)
    ax.set_xticks(range(len(sizes)), labels=sizes)
    ax.set_xlabel("training examples (source language)")
    ax.set_ylabel(f"{data['metric']}, average over {', '.join(data['target_languages'])}")
    ax.set_title(f"{task}: zero-shot learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(plt, fig, path)


def write_report(results_dir: str, output_dir: str, source: str, title: str = "MAD-X on multilingual-e5-small",
                 notes: list[str] | None = None) -> dict:
    """report.json, report.md, ``<task>_bars.png`` (largest size) and ``<task>_curve.png`` (with several sizes)."""
    summary = summarise(load_records(results_dir), source)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", *(notes or []), *([""] if notes else []), *markdown_lines(summary)]
    for task, data in summary.items():
        largest = list(data["sizes"])[-1]
        _bars(task, data, largest, out / f"{task}_bars.png")
        lines.append(f"![{task} per language]({task}_bars.png)")
        if len(data["sizes"]) > 1:
            _curve(task, data, out / f"{task}_curve.png")
            lines.append(f"![{task} learning curve]({task}_curve.png)")
        lines.append("")
    atomic_write_json(out / "report.json", summary)
    atomic_write_text(out / "report.md", "\n".join(lines))
    return summary


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
