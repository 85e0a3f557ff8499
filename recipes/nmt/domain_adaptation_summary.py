"""Summary of ``recipes/nmt/domain_adaptation.sh`` over every pair: the table, D1 and D2 (PASS / FAIL / n/a).

    python recipes/nmt/domain_adaptation_summary.py --work-root work/domain --output-dir reports/nmt_domain_adaptation

Reads, for each ``<work-root>/<pair>/meta.json`` the recipe wrote, the ``nmt generate-many`` outputs (every test
sentence: it passes --required-batch-size-multiple 1) under
``<pair>/generate/`` (``base``, ``domain_adapter-<size>-s<seed>``, ``full_finetune-<size>-s<seed>``, each also
``.general``) and the training logs (the best in-domain validation loss and its update), scores them with
``nmt.report.score`` (sacreBLEU BLEU and chrF++, with signatures) against the raw test files, and adds the
copy-the-source baseline.  Writes ``domain_adaptation.json`` and ``README.md`` (``--notes FILE`` is appended).

The relations, over seeds (a relation holds only when its margin exceeds the spread over seeds):

* **D1** (Bapna & Firat 2019): at a (pair, size), with d_s = adapter_s - full_s (BLEU, seed s), the margin is
  mean(d) + 0.5; it holds when the margin is positive and larger than sd(d) (sample standard deviation;
  0 with one seed).  D1 passes when it holds at one size or more on at least two pairs; n/a when fewer than two
  pairs were measured.  ``--min-pairs 1`` judges a one-pair run (the demo's) on its one pair, and says so.
* **D2** (He et al. 2021): on a pair with two sizes or more, q_s = d_s(smallest size) - d_s(largest size); it
  holds when mean(q) is positive and larger than sd(q).  D2 passes when it holds on every pair measured at two
  sizes or more; n/a when no pair was.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text
from nmt.report import load_direction, score, text_lines

VALID_LINE = re.compile(r"valid on 'valid' subset \| loss ([0-9.]+) .*?\| num_updates (\d+)")
TRAINED = ("domain_adapter", "full_finetune")
D1_TOLERANCE = 0.5


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def best_validation(log: Path) -> dict | None:
    """The lowest in-domain validation loss of a run and its update, from the fairseq-train log."""
    try:
        found = [(float(loss), int(update)) for loss, update in VALID_LINE.findall(log.read_text(errors="replace"))]
    except OSError:
        return None
    if not found:
        return None
    loss, update = min(found)
    return {"valid_loss": loss, "update": update, "validations": len(found)}


def size_key(size: str) -> float:
    return float("inf") if size == "all" else float(size)


def score_pair(folder: Path) -> dict:
    """Scores of every system of one pair: {"meta", "copy", "base", "runs": {system: {size: {seed: ...}}}}."""
    meta = json.loads((folder / "meta.json").read_text())
    src, tgt = meta["pair"].split("-")
    generated = folder / "generate"
    raws = {"in_domain": Path(meta["in_domain_raw"]), "general": Path(meta["general_raw"])}

    def scores(system: str) -> dict | None:
        out = {}
        for test, suffix in (("in_domain", ""), ("general", ".general")):
            path = generated / f"{system}{suffix}" / f"generate-{meta['pair']}.txt"
            if not path.is_file():
                return None
            found = load_direction(path, src, tgt, raws[test])
            out[test] = score(found["hyp"], found["ref"], tgt)
        return out

    copy = {}
    for test, raw in raws.items():
        found = copy_baseline(raw, meta["pair"], src, tgt)
        copy[test] = score(found[0], found[1], tgt)
    result = {"meta": meta, "copy": copy, "base": scores("base"), "runs": {}}
    for system in TRAINED:
        for size in meta["sizes"]:
            for seed in meta["seeds"]:
                found = scores(f"{system}-{size}-s{seed}")
                if found is None:
                    continue
                found["best"] = best_validation(folder / "checkpoints" / f"{system}-{size}-s{seed}.log")
                result["runs"].setdefault(system, {}).setdefault(size, {})[seed] = found
    return result


def copy_baseline(raw: Path, pair: str, src: str, tgt: str) -> tuple[list[str], list[str]]:
    """The copy baseline: each source sentence as its own hypothesis, and the references."""
    return text_lines(raw / f"test.{pair}.{src}"), text_lines(raw / f"test.{pair}.{tgt}")


def seed_values(runs: dict, system: str, size: str, test: str = "in_domain", metric: str = "bleu") -> dict:
    return {seed: run[test][metric] for seed, run in runs.get(system, {}).get(size, {}).items()}


def paired_differences(runs: dict, size: str) -> list[float]:
    """adapter - full fine-tuning in-domain BLEU, seed by seed (seeds both systems ran)."""
    adapter, full = seed_values(runs, "domain_adapter", size), seed_values(runs, "full_finetune", size)
    return [adapter[s] - full[s] for s in sorted(set(adapter) & set(full))]


def relations(pairs: dict, min_pairs: int = 2) -> dict:
    """D1 (passes when it holds on ``min_pairs`` pairs or more) and D2 with their figures (module docstring)."""
    d1_pairs = {}
    for pair, result in pairs.items():
        per_size = {}
        for size in result["meta"]["sizes"]:
            diffs = paired_differences(result["runs"], size)
            if not diffs:
                continue
            margin, sd = statistics.mean(diffs) + D1_TOLERANCE, spread(diffs)
            per_size[size] = {"adapter_minus_full": round(statistics.mean(diffs), 3), "sd": round(sd, 3),
                              "seeds": len(diffs), "margin": round(margin, 3), "holds": margin > 0 and margin > sd}
        if per_size:
            d1_pairs[pair] = {"sizes": per_size, "holds": any(v["holds"] for v in per_size.values())}
    holding = sum(v["holds"] for v in d1_pairs.values())
    d1 = {"pairs": d1_pairs, "pairs_holding": holding, "min_pairs": min_pairs,
          "result": "n/a" if len(d1_pairs) < min_pairs else ("PASS" if holding >= min_pairs else "FAIL")}
    d2_pairs = {}
    for pair, result in pairs.items():
        sizes = sorted((s for s in result["meta"]["sizes"] if paired_differences(result["runs"], s)), key=size_key)
        if len(sizes) < 2:
            continue
        small, large = sizes[0], sizes[-1]
        adapter = {k: seed_values(result["runs"], "domain_adapter", k) for k in (small, large)}
        full = {k: seed_values(result["runs"], "full_finetune", k) for k in (small, large)}
        seeds = sorted(set(adapter[small]) & set(full[small]) & set(adapter[large]) & set(full[large]))
        q = [(adapter[small][s] - full[small][s]) - (adapter[large][s] - full[large][s]) for s in seeds]
        margin, sd = statistics.mean(q), spread(q)
        d2_pairs[pair] = {"smallest": small, "largest": large, "difference_small_minus_large": round(margin, 3),
                          "sd": round(sd, 3), "seeds": len(q), "holds": margin > 0 and margin > sd}
    d2 = {"pairs": d2_pairs,
          "result": "n/a" if not d2_pairs else ("PASS" if all(v["holds"] for v in d2_pairs.values()) else "FAIL")}
    return {"D1": d1, "D2": d2}


def plot_gaps(pairs: dict, path: Path) -> Path | None:
    """adapter − full fine-tuning (in-domain BLEU, mean ± sd over seeds) against the in-domain size, one line a
    pair, with D1's −0.5 line: D1 asks for points on or above it, D2 for a line that falls from left to right."""
    from nmt.inspect_model import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for index, (pair, result) in enumerate(pairs.items()):
        sizes = sorted((s for s in result["meta"]["sizes"] if paired_differences(result["runs"], s)), key=size_key)
        if not sizes:
            continue
        diffs = [paired_differences(result["runs"], s) for s in sizes]
        xs = [k + 0.06 * (index - (len(pairs) - 1) / 2) for k in range(len(sizes))]  # side by side, not on top
        ax.errorbar(xs, [statistics.mean(d) for d in diffs], yerr=[spread(d) for d in diffs], marker="o", capsize=3,
                    label=pair)
        ax.set_xticks(range(len(sizes)), labels=sizes)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(-D1_TOLERANCE, color="grey", linestyle="--", linewidth=1, label="D1: full − 0.5")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("in-domain training pairs")
    ax.set_ylabel("domain adapter − full fine-tuning (BLEU)")
    ax.set_title("Domain adaptation: adapter minus full fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.mean(values):.1f} ± {spread(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def table(pair: str, result: dict) -> list[str]:
    meta = result["meta"]
    base, copy = result["base"], result["copy"]
    lines = [f"### {pair}", "",
             "| in-domain size | system | in-domain BLEU | in-domain chrF++ | general BLEU | best valid loss (update) |",
             "|---|---|---:|---:|---:|---|"]
    if base:
        lines.append(f"| – | base | {base['in_domain']['bleu']:.1f} | {base['in_domain']['chrf']:.1f} "
                     f"| {base['general']['bleu']:.1f} | – |")
    lines.append(f"| – | copy the source | {copy['in_domain']['bleu']:.1f} | {copy['in_domain']['chrf']:.1f} "
                 f"| {copy['general']['bleu']:.1f} | – |")
    for size in sorted(meta["sizes"], key=size_key):
        for system in TRAINED:
            runs = result["runs"].get(system, {}).get(size, {})
            if not runs:
                continue
            bests = [run["best"] for run in runs.values() if run.get("best")]
            best = "; ".join(f"{b['valid_loss']:.2f} ({b['update']})" for b in bests) or "–"
            label = "domain adapter" if system == "domain_adapter" else "full fine-tuning"
            lines.append(f"| {size} | {label} ({len(runs)} seeds) "
                         f"| {_mean_sd([r['in_domain']['bleu'] for r in runs.values()])} "
                         f"| {_mean_sd([r['in_domain']['chrf'] for r in runs.values()])} "
                         f"| {_mean_sd([r['general']['bleu'] for r in runs.values()])} | {best} |")
    return lines + [""]


def readme(pairs: dict, found: dict, notes: str, plot: Path | None = None) -> str:
    any_meta = next(iter(pairs.values()))["meta"]
    signature = next(iter(pairs.values()))["copy"]["in_domain"]
    lines = ["# Domain adaptation: domain adapter vs full fine-tuning (Bapna & Firat 2019; He et al. 2021)", "",
             "Made by `recipes/nmt/domain_adaptation.sh` (one run per pair) and "
             "`recipes/nmt/domain_adaptation_summary.py`. Each trained system starts from the same base, trains "
             f"{any_meta['updates']} updates on in-domain data only (the first N training pairs), keeps the checkpoint "
             f"with the best in-domain validation loss (checked every {any_meta['valid_every']} updates), and is "
             "scored on the in-domain test set and on the base's general (gettext) test set of the same pair. "
             f"Domain adapter: d {any_meta['adapter_dim']} after every layer, base frozen, lr {any_meta['adapter_lr']}; "
             f"full fine-tuning: every weight, lr {any_meta['finetune_lr']}. Figures: mean ± sample sd over seeds.", "",
             "## Relations", ""]
    d1, d2 = found["D1"], found["D2"]
    needed = d1.get("min_pairs", 2)
    lines.append(f"- **D1 {d1['result']}** (domain adapter ≥ full fine-tuning − 0.5 BLEU at one size or more, on "
                 f"{'two pairs or more' if needed == 2 else f'{needed} pair(s) or more'}; margin beyond the seed spread): {d1['pairs_holding']} of {len(d1['pairs'])} "
                 "pair(s) hold. " + "; ".join(
                     f"{pair} " + ", ".join(f"{size}: {v['adapter_minus_full']:+.2f} ± {v['sd']:.2f} "
                                            f"({'holds' if v['holds'] else 'fails'})" for size, v in row["sizes"].items())
                     for pair, row in d1["pairs"].items()))
    lines.append(f"- **D2 {d2['result']}** (adapter − full fine-tuning larger at the smallest size than at the "
                 "largest; margin beyond the seed spread): " + ("; ".join(
                     f"{pair} ({v['smallest']} vs {v['largest']}): {v['difference_small_minus_large']:+.2f} ± "
                     f"{v['sd']:.2f} ({'holds' if v['holds'] else 'fails'})" for pair, v in d2["pairs"].items())
                     or "no pair measured at two sizes"))
    if plot is not None:
        lines += ["", f"![adapter minus full fine-tuning per size]({plot.name})"]
    lines += ["", "## Tables", ""]
    for pair, result in pairs.items():
        lines += table(pair, result)
    lines += [f"BLEU `{signature['bleu_signature']}`; chrF++ `{signature['chrf_signature']}`.", ""]
    for pair, result in pairs.items():
        meta = result["meta"]
        lines.append(f"- {pair}: sizes {','.join(meta['sizes'])}, seeds {','.join(meta['seeds'])}, in-domain data "
                     f"`{meta['domain_dir']}`, general test `{meta['general_raw']}`.")
    return "\n".join(lines + ["", notes.strip(), ""]) if notes.strip() else "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-root", required=True, type=Path, help="the recipe's WORK_ROOT (one folder per pair)")
    parser.add_argument("--output-dir", required=True, type=Path, help="where domain_adaptation.json and README.md go")
    parser.add_argument("--notes", type=Path, help="a Markdown file appended to README.md")
    parser.add_argument("--min-pairs", type=int, default=2, help="pairs on which D1 must hold [2, the issue's rule; "
                        "the demo's one pair: 1]")
    args = parser.parse_args(argv)
    if args.min_pairs < 1:
        parser.error(f"--min-pairs {args.min_pairs}: give 1 or more")
    folders = sorted(path.parent for path in args.work_root.glob("*/meta.json"))
    if not folders:
        print(f"domain_adaptation_summary: error: no <pair>/meta.json under {args.work_root}", file=sys.stderr)
        return 2
    pairs = {folder.name: score_pair(folder) for folder in folders}
    found = relations(pairs, args.min_pairs)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output_dir / "domain_adaptation.json", {"pairs": pairs, "relations": found})
    plot = plot_gaps(pairs, args.output_dir / "gap_by_size.png")
    notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
    atomic_write_text(args.output_dir / "README.md", readme(pairs, found, notes, plot))
    print(f"D1 {found['D1']['result']}  D2 {found['D2']['result']}  -> {args.output_dir / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
