"""README.md of ``recipes/nmt/base_levers.sh``: each lever against the reference base, on the directions both have.

    python studies/nmt_levers_summary.py --report reports/nmt_levers --checkpoints work/levers/checkpoints \\
        --supervised en-ar,en-de,en-es,en-fr,en-sv,en-uk --zero-shot de-fr,fr-de,uk-es

Reads ``nmt.json`` (``nmt report``) and each run's fairseq log (``<checkpoints>/<name>.log``: updates and
``train_wall``, the seconds spent in training steps), and writes ``README.md``: per variant, the mean BLEU
and chrF++ over the supervised (en→xx) and the zero-shot directions that variant was scored on, the
reference's mean over the same directions, and the difference.  A lever "wins" when both its supervised
and zero-shot means are above the reference's (one seed: differences under about 0.5 BLEU are noise).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

REFERENCE = "reference"
EPOCH_LINE = re.compile(r"\| train \| .*?num_updates (\d+).*?train_wall (\d+)")


def cost(log: Path) -> tuple[int | None, int | None]:
    """(updates, train_wall seconds) of a fairseq-train log, or Nones: the updates of the last end-of-epoch
    ``| train |`` line, and the sum of their ``train_wall`` (fairseq restarts that meter every epoch)."""
    try:
        found = EPOCH_LINE.findall(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None, None
    return (int(found[-1][0]), sum(int(wall) for _, wall in found)) if found else (None, None)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def rows(report: dict, checkpoints: Path, supervised: list[str], zero_shot: list[str]) -> list[dict]:
    """One row per system except the copy baseline; means over the directions it shares with the reference."""
    reference = report[REFERENCE]
    out = []
    for name, scores in report.items():
        if name == "copy":
            continue
        updates, wall = cost(checkpoints / f"{name}.log")
        row = {"variant": name, "updates": updates, "train_wall_s": wall}
        for part, directions in (("supervised", supervised), ("zero_shot", zero_shot)):
            shared = [d for d in directions if d in scores and d in reference]
            for metric in ("bleu", "chrf"):
                row[f"{part}_{metric}"] = mean([scores[d][metric] for d in shared])
                row[f"{part}_{metric}_reference"] = mean([reference[d][metric] for d in shared])
            row[f"{part}_directions"] = shared
        out.append(row)
    return out


def _fmt(value: float | None, signed: bool = False) -> str:
    return "–" if value is None else (f"{value:+.1f}" if signed else f"{value:.1f}")


def markdown(table: list[dict]) -> list[str]:
    lines = ["| variant | updates | train_wall (s) | en→xx BLEU | vs reference | en→xx chrF++ | vs reference "
             "| zero-shot BLEU | vs reference | directions (en→xx / zero-shot) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        diff = {key: (None if row[key] is None or row[f"{key}_reference"] is None else row[key] - row[f"{key}_reference"])
                for key in ("supervised_bleu", "supervised_chrf", "zero_shot_bleu")}
        lines.append(
            f"| {row['variant']} | {row['updates'] or '–'} | {row['train_wall_s'] or '–'} "
            f"| {_fmt(row['supervised_bleu'])} | {_fmt(diff['supervised_bleu'], True)} "
            f"| {_fmt(row['supervised_chrf'])} | {_fmt(diff['supervised_chrf'], True)} "
            f"| {_fmt(row['zero_shot_bleu'])} | {_fmt(diff['zero_shot_bleu'], True)} "
            f"| {len(row['supervised_directions'])} / {len(row['zero_shot_directions'])} |")
    return lines


TITLE = "Levers on the translation demo's base (`recipes/nmt/base_levers.sh`)"
INTRO = ("Each variant changes one thing in the default `make demo` base and is trained for about the same CPU time "
         "(`train_wall`: seconds in training steps, from fairseq's log); BLEU/chrF++ on the demo's gettext test sets, "
         "means over the directions the variant shares with the reference. One seed: differences under about 0.5 "
         "BLEU are within noise.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True, help="folder of nmt report's nmt.json; README.md goes here")
    parser.add_argument("--checkpoints", type=Path, required=True, help="folder of <variant>.log fairseq logs")
    parser.add_argument("--supervised", required=True, help="comma-separated en->xx directions to average")
    parser.add_argument("--zero-shot", required=True, help="comma-separated zero-shot directions to average")
    parser.add_argument("--title", default=TITLE, help="the README's heading")
    parser.add_argument("--intro", default=INTRO, help="the README's first paragraph (what was run)")
    args = parser.parse_args(argv)
    try:
        report = json.loads((args.report / "nmt.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        print(f"levers_summary: error: {err}", file=sys.stderr)
        return 1
    if REFERENCE not in report:
        print(f"levers_summary: error: {args.report / 'nmt.json'} has no '{REFERENCE}' system", file=sys.stderr)
        return 1
    table = rows(report, args.checkpoints, args.supervised.split(","), args.zero_shot.split(","))
    atomic_write_json(args.report / "levers.json", table)
    text = [f"# {args.title}", "", args.intro, "", *markdown(table), "",
            "Per direction: [`nmt.md`](nmt.md).", ""]
    atomic_write_text(args.report / "README.md", "\n".join(text))
    print(args.report / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
