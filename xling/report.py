"""``xling report``: per-language table and bar chart, averaged over seeds and target languages.

Reads the JSON files that ``xling eval`` writes.  For each task, each
language gets mean ± std over seeds of the task's main metric; the "avg"
row is the mean over target languages (all but ``--source-language``, or the
source language the results record),
computed per seed and then summarised over seeds.  Writes ``report.json``,
``report.md`` and one ``<task>.png`` bar chart per task, atomically.
"""

from __future__ import annotations

import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

from adapter_core import atomic_write_bytes, atomic_write_json, atomic_write_text


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def load_results(paths: list[str]) -> list[dict]:
    results = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read results JSON ({err})") from None
        for key in ("task", "language", "main_metric"):
            if key not in record:
                raise ValueError(f"{path}: missing key {key!r}; is it a file written by 'xling eval'?")
        if record["main_metric"] not in record:
            raise ValueError(f"{path}: main metric {record['main_metric']!r} has no value")
        results.append(record)
    if not results:
        raise ValueError("no result files given")
    return results


def summarise(results: list[dict], source_language: str | None = None) -> dict:
    """{task: {"metric", "languages": {lang: mean/std/n}, "avg": mean/std/n}}.

    The average leaves out ``source_language``, or when it is not given the ``source_language`` that the
    task's results record (``xling eval`` writes the task adapter's training language)."""
    by_task: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    metric, recorded_sources = {}, defaultdict(set)
    for record in results:
        metric[record["task"]] = record["main_metric"]
        if isinstance(record.get("source_language"), str):
            recorded_sources[record["task"]].add(record["source_language"])
        seed = record.get("seed")
        by_task[record["task"]][record["language"]][seed] = float(record[record["main_metric"]])
    summary = {}
    for task, languages in by_task.items():
        table = {lang: _mean_std(list(seeds.values())) for lang, seeds in sorted(languages.items())}
        sources = {source_language} if source_language else recorded_sources[task]
        targets = [l for l in languages if l not in sources]
        seeds = sorted({s for l in targets for s in languages[l]}, key=str)
        per_seed = [statistics.fmean(languages[l][s] for l in targets if s in languages[l]) for s in seeds]
        summary[task] = {"metric": metric[task], "languages": table, "target_languages": sorted(targets),
                         "avg": _mean_std(per_seed) if per_seed else None}
    return summary


def markdown(summary: dict) -> str:
    lines = []
    for task, data in summary.items():
        lines += [f"## {task} ({data['metric']}, mean ± std over seeds)", "", "| language | score | seeds |", "|---|---|---|"]
        for lang, s in data["languages"].items():
            lines.append(f"| {lang} | {s['mean']:.2f} ± {s['std']:.2f} | {s['n']} |")
        if data["avg"]:
            lines.append(f"| **avg** (targets) | {data['avg']['mean']:.2f} ± {data['avg']['std']:.2f} | {data['avg']['n']} |")
        lines.append("")
    return "\n".join(lines)


def plot(task: str, data: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(data["languages"]) + (["avg"] if data["avg"] else [])
    stats = list(data["languages"].values()) + ([data["avg"]] if data["avg"] else [])
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(names) + 1), 3))
    ax.bar(names, [s["mean"] for s in stats], yerr=[s["std"] for s in stats], capsize=3, color="tab:blue")
    ax.set_ylabel(data["metric"])
    ax.set_title(f"{task}: zero-shot transfer with MAD-X")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_report(result_files: list[str], output_dir: str, source_language: str | None = None) -> dict:
    summary = summarise(load_results(result_files), source_language)
    out = Path(output_dir)
    atomic_write_json(out / "report.json", summary)
    atomic_write_text(out / "report.md", markdown(summary))
    for task, data in summary.items():
        atomic_write_bytes(out / f"{task}.png", plot(task, data))
    return summary
