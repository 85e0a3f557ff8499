"""Learning-rate robustness (He et al. 2021): adapters vs full fine-tuning over a sweep of learning rates.

He et al. (2021), "On the Effectiveness of Adapter-based Tuning for
Pretrained Language Model Adaptation", find adapter tuning less sensitive to
the learning rate than full fine-tuning.  ``studies.xling_lr_sweep run``
trains one model (``--mode adapter``: a task adapter over a frozen language
adapter, as ``xling train-task``; ``--mode full``: every weight of the task
model, as ``xling train-full``) at one learning rate, scores it on a dev file and writes a JSON
record; ``studies.xling_lr_sweep plot`` draws the metric against the
learning rate, one line per mode.  ``recipes/xling/lr_sweep.sh`` runs the sweep.
``studies.xling_lr_sweep from-comparison`` draws the same plot from
``studies.xling_comparison`` results made at several pairs of rates (their
bare_task and full rows: ``recipes/xling/e5_he2021.sh``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

from xling.plots import lines_png


def run_one(args) -> dict:
    """Train one model at one learning rate (``xling.train``'s task-adapter or full fine-tuning training, both
    through ``train_with_head``), score it on the dev file and write ``lr_result.json``."""
    from xling.train import TrainOptions, train_full_model, train_task_adapter  # here: `plot` needs no transformers

    options = TrainOptions.from_args(args)
    if args.mode == "adapter":
        if not args.lang_adapter:
            raise ValueError("--mode adapter needs --lang-adapter")
        from xling.inference import evaluate_task_adapter

        out = train_task_adapter(args.model, args.task, args.lang_adapter, args.train, options,
                                 labels_file=args.train_labels)
        scores = evaluate_task_adapter(args.model, str(out), args.lang_adapter, args.dev, language="dev",
                                       labels_file=args.dev_labels, drop_layers=0)
    else:
        _, setup = train_full_model(args.model, args.task, args.train, options, args.train_labels)
        setup.model.eval()
        scores = setup.module.evaluate(setup.model, setup.tokenizer, setup.module.read(args.dev, args.dev_labels),
                                       setup.labels)
    record = {"mode": args.mode, "learning_rate": args.learning_rate, "seed": args.seed, "task": args.task, **scores}
    atomic_write_json(Path(args.output_dir) / "lr_result.json", record)
    return record


def plot_sweep(records: list[dict], path: str | Path, metric: str | None = None,
               title: str = "learning-rate robustness") -> dict:
    """Metric against learning rate (log scale), mean ± std over seeds, one line per mode; returns the series
    (the means, the stds and every seed's value)."""
    if not records:
        raise ValueError("no learning-rate results to plot")
    metric = metric or records[0].get("main_metric")
    if not metric:
        raise ValueError("give the metric to plot (the records name no main_metric)")
    grouped: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if metric not in record:
            raise ValueError(f"a {record.get('mode')} record at lr {record.get('learning_rate')} has no {metric!r}")
        grouped[record["mode"]][float(record["learning_rate"])].append(float(record[metric]))
    series = {mode: (sorted(by_lr), [statistics.fmean(by_lr[lr]) for lr in sorted(by_lr)])
              for mode, by_lr in sorted(grouped.items())}
    stds = {mode: [statistics.pstdev(by_lr[lr]) for lr in sorted(by_lr)] for mode, by_lr in grouped.items()}
    lines_png(series, path, title, "learning rate", f"{metric} (mean ± std over seeds)", log_x=True, errors=stds)
    return {mode: {"learning_rates": xs, metric: ys, f"{metric}_std": stds[mode],
                   f"{metric}_per_seed": [grouped[mode][lr] for lr in xs]} for mode, (xs, ys) in series.items()}


def records_from_comparison(specs: list[str], language: str, train_size: str) -> list[dict]:
    """Learning-rate records from ``studies.xling_comparison`` result folders, one per pair of rates, each given
    as ``DIR=ADAPTER_LR,FULL_LR``: its bare_task row (a task adapter on the bare encoder) is mode ``adapter`` at
    ADAPTER_LR, its full row mode ``full`` at FULL_LR; only ``language``'s records at ``train_size``."""
    from studies.xling_comparison_report import load_records

    records = []
    for spec in specs:
        folder, _, rates = spec.rpartition("=")
        if not folder or rates.count(",") != 1:
            raise ValueError(f"{spec!r}: give DIR=ADAPTER_LR,FULL_LR")
        modes = dict(zip(("bare_task", "full"), zip(("adapter", "full"), map(float, rates.split(",")))))
        for record in load_records(folder):
            if record["row"] in modes and record["language"] == language and record["train_size"] == str(train_size):
                mode, rate = modes[record["row"]]
                records.append({**record, "mode": mode, "learning_rate": rate})
    return records


def markdown_table(series: dict, metric: str) -> list[str]:
    """One row per mode and learning rate: mean ± std over seeds, and the seeds' values."""
    lines = ["| mode | learning rate | " + metric + " (mean ± std) | seeds |", "|---|---:|---:|---|"]
    for mode, block in series.items():
        for lr, mean, std, values in zip(block["learning_rates"], block[metric], block[f"{metric}_std"],
                                         block[f"{metric}_per_seed"]):
            lines.append(f"| {mode} | {lr:g} | {mean:.1f} ± {std:.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    return lines


def _read_records(paths: list[str]) -> list[dict]:
    records = []
    for path in paths:
        try:
            records.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read a learning-rate result ({err})") from None
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studies.xling_lr_sweep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and score one model at one learning rate")
    run.add_argument("--mode", required=True, choices=["adapter", "full"], help="adapter tuning or full fine-tuning")
    run.add_argument("--task", required=True, choices=["ner", "qa", "copa"], help="the task")
    run.add_argument("--model", required=True, help="local model directory")
    run.add_argument("--lang-adapter", help="--mode adapter: the source language adapter directory")
    run.add_argument("--train", required=True, help="training file")
    run.add_argument("--train-labels", help="SIQA: labels file of the training set")
    run.add_argument("--dev", required=True, help="dev file that is scored")
    run.add_argument("--dev-labels", help="SIQA: labels file of the dev set")
    run.add_argument("--learning-rate", type=float, required=True, help="the learning rate")
    run.add_argument("--output-dir", required=True, help="output directory (lr_result.json goes here)")
    run.add_argument("--batch-size", type=int, default=16, help="examples per step")
    run.add_argument("--epochs", type=float, default=1.0, help="training epochs (ignored with --max-steps)")
    run.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: use --epochs)")
    run.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps")
    run.add_argument("--max-length", type=int, default=256, help="longest input in tokens")
    run.add_argument("--seed", type=int, default=42, help="random seed")
    run.add_argument("--cpu", action="store_true", help="train on CPU even with a GPU")
    plot = sub.add_parser("plot", help="plot lr_result.json files")
    plot.add_argument("results", nargs="+", help="lr_result.json files")
    plot.add_argument("--output", required=True, help="PNG file")
    plot.add_argument("--metric", help="metric to plot (default: the records' main metric)")
    comp = sub.add_parser("from-comparison", help="plot the bare_task and full rows of studies.xling_comparison "
                          "results made at several learning rates (e.g. recipes/xling/e5_he2021.sh)")
    comp.add_argument("results", nargs="+", help="DIR=ADAPTER_LR,FULL_LR: a results folder and the rates of its "
                      "bare_task and full rows")
    comp.add_argument("--language", required=True, help="the language scored (e.g. the zero-shot target)")
    comp.add_argument("--train-size", default="all", help="the training size compared")
    comp.add_argument("--output", required=True, help="PNG file (its .json and .md beside it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            record = run_one(args)
            print(f"{args.mode} lr {args.learning_rate:g}: {record['main_metric']} {record[record['main_metric']]:.2f}")
        elif args.command == "plot":
            series = plot_sweep(_read_records(args.results), args.output, args.metric)
            atomic_write_json(Path(args.output).with_suffix(".json"), series)
            print(f"plot written to {args.output}")
        else:
            records = records_from_comparison(args.results, args.language, args.train_size)
            if not records:
                raise ValueError(f"no bare_task or full record for {args.language} at training size {args.train_size}")
            metric = records[0]["main_metric"]
            series = plot_sweep(records, args.output, metric, f"learning-rate sensitivity: {records[0]['task']}, "
                                f"{args.language}, {args.train_size} training examples")
            atomic_write_json(Path(args.output).with_suffix(".json"), series)
            atomic_write_text(Path(args.output).with_suffix(".md"), "\n".join(markdown_table(series, metric)) + "\n")
            print(f"plot written to {args.output}")
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"studies.xling_lr_sweep {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
