"""``studies.xling_he2021_summary``: He et al. (2021)'s two claims, checked on ``recipes/xling/e5_he2021.sh``'s runs.

    python -m studies.xling_he2021_summary --results work/he/results --task pos --language tr \\
        --lr-sensitivity reports/xling_e5_he2021/pos/lr_sensitivity.json --output-dir reports/xling_e5_he2021/pos

He, Liu, Ye, Chen, Zhao, Yu & Si (2021), "On the Effectiveness of Adapter-based Tuning for Pretrained
Language Model Adaptation" (ACL 2021; seed 002): adapter tuning beats full fine-tuning in low-resource and
cross-lingual settings, and is less sensitive to the learning rate.  From the bare_task (a task adapter on
the bare encoder) and full rows of ``studies.xling_comparison`` records, on the zero-shot target language:

* H1: at the smallest training size, the adapter beats full fine-tuning by more than the spread (the sample
  sd over seeds of the paired difference, adapter minus full, same seed);
* H2: the adapter's lead is larger at the smallest size than at the largest, by more than the combined
  spread (root of the summed squared sds of the two paired differences);
* H3: across the learning rates swept, the range (best minus worst of the per-rate means) is smaller for
  the adapter than for full fine-tuning, by more than the largest seed sd of any (mode, rate) cell.

One seed gives no verdict (n/a).  Writes ``he2021.json`` and ``he2021.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def paired_gaps(records: list[dict], task: str, language: str) -> dict[str, dict]:
    """training size -> {mean, sd, seeds, adapter, full}: adapter minus full on ``language``, paired by seed."""
    scores: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["task"] == task and r["language"] == language and r["row"] in ("bare_task", "full"):
            scores.setdefault(r["train_size"], {}).setdefault(r["row"], {})[r["seed"]] = r[r["main_metric"]]
    gaps = {}
    for size, rows in scores.items():
        seeds = sorted(set(rows.get("bare_task", {})) & set(rows.get("full", {})))
        if not seeds:
            continue
        diffs = [rows["bare_task"][s] - rows["full"][s] for s in seeds]
        gaps[size] = {"mean": statistics.fmean(diffs), "sd": _sd(diffs), "seeds": len(seeds),
                      "adapter": statistics.fmean(rows["bare_task"][s] for s in seeds),
                      "full": statistics.fmean(rows["full"][s] for s in seeds)}
    return gaps


def _size_order(size: str) -> float:
    return float("inf") if size == "all" else float(size)


def check(gaps: dict[str, dict], series: dict | None) -> list[dict]:
    results = []
    sizes = sorted(gaps, key=_size_order)
    small = gaps[sizes[0]] if sizes else None
    passed = None if small is None or small["seeds"] < 2 else small["mean"] > 0 and small["mean"] > small["sd"]
    results.append({"claim": "H1", "status": _status(passed),
                    "text": "at the smallest training size the adapter beats full fine-tuning by more than the spread",
                    "figures": {"size": sizes[0] if sizes else None, **(small or {})}})
    passed, figures = None, {}
    if len(sizes) >= 2:
        large = gaps[sizes[-1]]
        spread = (small["sd"] ** 2 + large["sd"] ** 2) ** 0.5
        figures = {"smallest": sizes[0], "largest": sizes[-1], "gap_smallest": small["mean"],
                   "gap_largest": large["mean"], "difference": small["mean"] - large["mean"], "spread": spread}
        if min(small["seeds"], large["seeds"]) >= 2:
            passed = figures["difference"] > spread
    results.append({"claim": "H2", "status": _status(passed),
                    "text": "the adapter's lead over full fine-tuning is larger at the smallest size than at the "
                            "largest, by more than the spread", "figures": figures})
    passed, figures = None, {}
    if series and {"adapter", "full"} <= set(series):
        metric = next(k for k in series["adapter"] if k not in ("learning_rates",) and not k.endswith(("_std", "_per_seed")))
        ranges = {mode: max(series[mode][metric]) - min(series[mode][metric]) for mode in ("adapter", "full")}
        largest_sd = max(max(series[mode][f"{metric}_std"]) for mode in ("adapter", "full"))
        seeds = min(len(v) for mode in ("adapter", "full") for v in series[mode][f"{metric}_per_seed"])
        figures = {"adapter_range": ranges["adapter"], "full_range": ranges["full"], "largest_cell_sd": largest_sd,
                   "adapter_rates": series["adapter"]["learning_rates"], "full_rates": series["full"]["learning_rates"]}
        if seeds >= 2:
            passed = ranges["full"] - ranges["adapter"] > largest_sd
    results.append({"claim": "H3", "status": _status(passed),
                    "text": "across the learning rates, the adapter's range is smaller than full fine-tuning's by "
                            "more than the largest seed sd", "figures": figures})
    return results


def _status(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def markdown(task: str, language: str, gaps: dict, results: list[dict]) -> str:
    lines = [f"### He et al. (2021) on {task}, {language} (zero-shot)", "",
             "| training size | task adapter (bare encoder) | full fine-tuning | adapter − full (paired) | seeds |",
             "|---|---:|---:|---:|---:|"]
    for size in sorted(gaps, key=_size_order):
        g = gaps[size]
        lines.append(f"| {size} | {g['adapter']:.1f} | {g['full']:.1f} | {g['mean']:+.1f} ± {g['sd']:.1f} | {g['seeds']} |")
    lines.append("")
    for r in results:
        shown = "; ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in r["figures"].items())
        lines.append(f"- **{r['claim']} {r['status']}**: {r['text']} ({shown})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="studies.xling_he2021_summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="studies.xling_comparison results folder (the curve's)")
    parser.add_argument("--task", required=True, help="the task (pos, ner, ...)")
    parser.add_argument("--language", required=True, help="the zero-shot target language")
    parser.add_argument("--lr-sensitivity", type=Path, help="lr_sensitivity.json of studies.xling_lr_sweep")
    parser.add_argument("--output-dir", type=Path, required=True, help="where he2021.json and he2021.md go")
    args = parser.parse_args(argv)
    from studies.xling_comparison_report import load_records

    try:
        gaps = paired_gaps(load_records(args.results), args.task, args.language)
        series = json.loads(args.lr_sensitivity.read_text(encoding="utf-8")) if args.lr_sensitivity else None
    except (OSError, ValueError, KeyError) as err:
        print(f"studies.xling_he2021_summary: error: {err}", file=sys.stderr)
        return 1
    if not gaps:
        print(f"studies.xling_he2021_summary: error: no bare_task and full records for {args.task} / {args.language} "
              f"in {args.results}", file=sys.stderr)
        return 1
    results = check(gaps, series)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output_dir / "he2021.json", {"gaps": gaps, "claims": results})
    text = markdown(args.task, args.language, gaps, results)
    atomic_write_text(args.output_dir / "he2021.md", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
