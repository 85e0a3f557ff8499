"""The report of ``studies.xling_comparison``: result records into tables, verdicts and plots.

``load_records`` reads a results folder (``<task>/<row>/n<size>/<lang>-seed<seed>.json``), ``summarise`` gives every
row's mean ± std over seeds per language and over the target languages (averaged per seed first), and ``_verdicts``
decides, per task and size, whether each row beats the baseline by more than the seed spread and whether swapping in
the target language adapter helps (Pfeiffer et al. 2020).  ``write_report`` writes report.json, report.md and the
plots; ``studies.xling_comparison report`` calls it.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

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
#: Titles of the majority row for the baselines that are not the majority class, by the records' ``baseline``.
BASELINE_TITLES = {"capitalised_words": "capitalised-words baseline (all O: F1 0)"}



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
            # a one-language task (e.g. Story Cloze, English only) has no targets: no arrow, no empty list
            languages = (f"{data['source_language']} → {', '.join(data['target_languages'])}"
                         if data["target_languages"] else f"{data['source_language']} only")
            lines += [f"#### {task}: {data['metric']}, {languages}, {size} training examples", "",
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
