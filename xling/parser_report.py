"""The table of ``xling train-parser`` runs: UAS/LAS per method and treebank, mean ± std over seeds, and relations.

A relation "A > B" holds only when the difference of the means exceeds the
larger of the two standard deviations (sample std over seeds); the other way
round it is reversed; in between it is "within spread".

    python -m xling.parser_report results/*.json --output table.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from adapter_core import atomic_write_text

from .parser_train import METHODS

RELATIONS = (("generated", "adapter"), ("generated", "full"), ("adapter", "full"))


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def relation(a: list[float], b: list[float]) -> str:
    """"holds", "reversed" or "within spread" for mean(a) > mean(b), judged against the larger std."""
    (ma, sa), (mb, sb) = _stats(a), _stats(b)
    spread = max(sa, sb)
    if ma - mb > spread:
        return "holds"
    if mb - ma > spread:
        return "reversed"
    return "within spread"


def summarize(results: list[dict]) -> str:
    """A markdown table (one row per method) and the relations between methods, on each treebank's LAS and UAS."""
    by_method: dict[str, list[dict]] = {}
    for result in results:
        by_method.setdefault(result["method"], []).append(result)
    methods = [m for m in METHODS if m in by_method]
    if not methods:
        raise ValueError("no results to summarise")
    treebanks = list(results[0]["scores"]) + ["mean"]

    def values(method: str, treebank: str, metric: str) -> list[float]:
        return [(r["mean"] if treebank == "mean" else r["scores"][treebank])[metric] for r in by_method[method]]

    header = ["method", "seeds", "trainable params", "adapter params"] + [f"{t} UAS" for t in treebanks] + \
             [f"{t} LAS" for t in treebanks] + ["s/step"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        runs = by_method[method]
        cells = [method, ", ".join(str(r["config"]["seed"]) for r in runs),
                 f"{runs[0]['trainable_parameters']:,}", f"{runs[0]['adapter_parameters']:,}"]
        for metric in ("uas", "las"):
            cells += ["{:.1f} ± {:.1f}".format(*_stats(values(method, t, metric))) for t in treebanks]
        cells.append(f"{statistics.fmean(r['seconds_per_step'] for r in runs):.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| relation | " + " | ".join(f"{t} LAS" for t in treebanks) + " | " +
              " | ".join(f"{t} UAS" for t in treebanks) + " |", "|---|" + "---|" * (2 * len(treebanks))]
    for a, b in RELATIONS:
        if a in by_method and b in by_method:
            cells = [relation(values(a, t, m), values(b, t, m)) for m in ("las", "uas") for t in treebanks]
            lines.append(f"| {a} > {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xling.parser_report", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="results JSON files of xling train-parser")
    parser.add_argument("--output", help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    try:
        results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.results]
        table = summarize(results)
    except (OSError, ValueError, KeyError) as err:
        print(f"parser_report: error: {err}", file=sys.stderr)
        return 1
    if args.output:
        atomic_write_text(Path(args.output), table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
