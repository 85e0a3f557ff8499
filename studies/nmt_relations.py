"""``studies.nmt_relations``: check that the translation results show what the papers claim, with PASS/FAIL and the figures.

    nmt-relations --report reports/demo/nmt.json --pairs en-ar,en-de --high-resource-pair en-de \\
        --forgetting-pair en-ar --output-dir reports/demo

Reads ``nmt.json`` written by ``nmt report`` (systems ``copy``, ``base``,
``pair_adapter``, ``full_finetune``, ``lang_adapters``; seeds of a system as
``<system>#<seed>``, averaged; forgetting runs as ``pair_adapter.others`` and
``full_finetune.others``: the models trained on ``--forgetting-pair``,
generating every other supervised direction) and checks:

* R1: the base beats the copy baseline on the mean BLEU over supervised directions;
* R2: each pair adapter beats the base by >= 1.0 BLEU on its own pair (every pair of ``--pairs``);
* R3: on the high-resource pair (a base trained until that pair's validation
  loss flattened: Bapna & Firat 2019's regime) the pair adapter is within
  0.5 BLEU of full fine-tuning (or above it) while training <= 5% of the
  parameters; with ``--base-curve`` the flattening itself is checked (between the
  last two checkpoints the validation loss on that pair falls by less than
  ``--flat-tolerance`` per 1,000 updates: a rate, so that the verdict does not
  depend on how far apart the checkpoints were kept);
* R4: the language adapters beat the base by > 0.5 BLEU on the mean of the zero-shot directions (Philip et al. 2020);
* R5: every adapter system trains <= 10% of the parameters;
* R6: forgetting.  The pair adapter leaves every other supervised direction
  exactly as the base translates it (identical hypotheses); full fine-tuning's
  BLEU change on those directions is reported.

Seeds (Issue 24: one seed could not separate an effect from noise across machines).  R1, R2 and R4
pass only when their margin exceeds the seed spread: the sample standard deviation, over seeds, of the
trained system's score (of its per-seed mean over directions for R1 and R4), combined with the base's
when the base has several seeds (root of the sum of squares).  R2 and R4 with one seed of their
adapters give no verdict ("n/a").  R1 with one base seed, whose spread is then unmeasured, needs a
margin of at least ``ONE_BASE_SEED_MARGIN`` BLEU: the shift of single directions between two machines
was up to 1.9 BLEU.

A relation whose systems are missing from the report is "n/a", never PASS.
Writes ``relations.json`` and ``relations.md``; exit status 1 with
``--strict`` when any relation fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from nmt.report import text_lines

COPY, BASE, PAIR, FULL, LANG = "copy", "base", "pair_adapter", "full_finetune", "lang_adapters"
OTHERS = ".others"
ONE_BASE_SEED_MARGIN = 2.0  # R1's margin (BLEU) when the base has one seed and so no measured spread


def seed_groups(report: dict) -> dict[str, list[dict]]:
    """system name (without ``#seed``) -> the per-seed {direction: entry} tables."""
    groups: dict[str, list[dict]] = {}
    for name, table in report.items():
        groups.setdefault(name.split("#")[0], []).append(table)
    return groups


def mean_over_seeds(groups: dict, system: str, direction: str, metric: str = "bleu") -> tuple[float, float, int] | None:
    """(mean, std, seeds) of a system's score on one direction; None when absent."""
    values = [table[direction][metric] for table in groups.get(system, []) if direction in table]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)


def seed_means(groups: dict, system: str, directions: list[str], metric: str = "bleu") -> list[float]:
    """The system's mean over ``directions``, one value per seed that has every direction."""
    return [statistics.fmean(table[d][metric] for d in directions) for table in groups.get(system, [])
            if directions and all(d in table for d in directions)]


def spread(*samples: list[float]) -> float:
    """Root of the summed variances (sample sd squared) of the samples with more than one seed; 0 for none."""
    return sum(statistics.stdev(v) ** 2 for v in samples if len(v) > 1) ** 0.5


def _margin_figures(system: list[float], reference: list[float]) -> dict:
    """mean of each, their difference and its spread, and the seeds behind each."""
    return {"mean": statistics.fmean(system), "reference": statistics.fmean(reference),
            "margin": statistics.fmean(system) - statistics.fmean(reference), "spread": spread(system, reference),
            "seeds": len(system), "reference_seeds": len(reference)}


def _result(name: str, passed: bool | None, claim: str, figures: dict) -> dict:
    return {"relation": name, "status": "n/a" if passed is None else ("PASS" if passed else "FAIL"),
            "claim": claim, "figures": figures}


def trainable_share(groups: dict, system: str) -> float | None:
    for table in groups.get(system, []):
        for entry in table.values():
            if entry.get("total_parameters"):
                return entry["trainable_parameters"] / entry["total_parameters"]
    return None


def same_hypotheses(a: dict, b: dict) -> tuple[int, int]:
    """(identical lines, lines) between two report entries' hypothesis files."""
    left, right = text_lines(a["hyp"]), text_lines(b["hyp"])
    return sum(x == y for x, y in zip(left, right)), max(len(left), len(right))


def check(report: dict, pairs: list[str], high_pair: str, forgetting_pair: str, base_curve: dict | None = None,
          flat_tolerance: float = 0.01) -> list[dict]:
    groups = seed_groups(report)
    copy = report.get(COPY, {})
    supervised = sorted(d for d, e in copy.items() if not e.get("zero_shot"))
    zero_shot = sorted(d for d, e in copy.items() if e.get("zero_shot"))
    results = []

    base_seeds, copy_seeds = seed_means(groups, BASE, supervised), seed_means(groups, COPY, supervised)
    figures, passed = {"directions": supervised}, None
    if base_seeds and copy_seeds:
        figures.update(_margin_figures(base_seeds, copy_seeds))  # mean: the base, reference: copying
        needed = figures["spread"] if len(base_seeds) > 1 else ONE_BASE_SEED_MARGIN
        figures["margin_needed"] = needed
        passed = figures["margin"] > needed if len(base_seeds) > 1 else figures["margin"] >= needed
    results.append(_result("R1", passed, "the base beats the copy baseline (mean BLEU over supervised directions) "
                           f"by more than the base's seed spread ({ONE_BASE_SEED_MARGIN:g} BLEU with one base seed)",
                           figures))

    gains, verdicts = {}, []
    for pair in pairs:
        adapter, base = seed_means(groups, PAIR, [pair]), seed_means(groups, BASE, [pair])
        if adapter and base:
            row = _margin_figures(adapter, base)
            gains[pair] = {"pair_adapter": row["mean"], "std": statistics.stdev(adapter) if len(adapter) > 1 else 0.0,
                           "seeds": len(adapter), "base": row["reference"], "gain": row["margin"],
                           "spread": row["spread"]}
            verdicts.append(None if len(adapter) < 2 else row["margin"] >= 1.0 and row["margin"] > row["spread"])
    ok = None
    if len(gains) >= max(2, len(pairs)) and None not in verdicts:
        ok = all(verdicts)
    results.append(_result("R2", ok, "each pair adapter beats the base by >= 1.0 BLEU on its pair (en-ar and one "
                           "more), and by more than the seed spread (2 seeds or more)", gains))

    adapter, full = mean_over_seeds(groups, PAIR, high_pair), mean_over_seeds(groups, FULL, high_pair)
    share = trainable_share(groups, PAIR)
    figures = {"pair": high_pair, "pair_adapter": adapter, "full_finetune": full, "pair_adapter_trainable_share": share}
    passed = None
    if adapter is not None and full is not None and share is not None:
        passed = adapter[0] >= full[0] - 0.5 and share <= 0.05
        if base_curve is not None:
            points = base_curve.get(high_pair, [])
            losses = [point["valid_loss"] for point in points]
            figures["base_valid_loss_last"] = losses[-3:]
            flat = False
            if len(points) >= 2 and points[-1]["update"] > points[-2]["update"]:
                rate = (losses[-2] - losses[-1]) / (points[-1]["update"] - points[-2]["update"]) * 1000
                figures["base_valid_loss_fall_per_1000_updates"] = rate
                flat = rate < flat_tolerance
            figures["base_flattened"] = flat
            passed = passed and flat
    results.append(_result("R3", passed, "on a pair the base learned well, the pair adapter is within 0.5 BLEU of full "
                           "fine-tuning (or above), training <= 5% of the parameters", figures))

    lang_seeds, base_zero = seed_means(groups, LANG, zero_shot), seed_means(groups, BASE, zero_shot)
    figures, passed = {"directions": zero_shot}, None
    if lang_seeds and base_zero:
        row = _margin_figures(lang_seeds, base_zero)
        figures.update(lang_adapters=row["mean"], base=row["reference"], gain=row["margin"], spread=row["spread"],
                       seeds=row["seeds"])
        if len(lang_seeds) > 1:
            passed = row["margin"] > 0.5 and row["margin"] > row["spread"]
    results.append(_result("R4", passed, "language adapters beat the base by > 0.5 BLEU on the mean of the zero-shot "
                           "directions, and by more than the seed spread (2 seeds or more)", figures))

    shares = {s: trainable_share(groups, s) for s in groups if s.split(".")[0] in (PAIR, LANG)}
    shares = {s: v for s, v in shares.items() if v is not None}
    results.append(_result("R5", all(v <= 0.10 for v in shares.values()) if shares else None,
                           "every adapter system trains <= 10% of the parameters", shares))

    figures, passed = {"pair": forgetting_pair, "directions": {}}, None
    adapter_others, full_others = report.get(PAIR + OTHERS), report.get(FULL + OTHERS)
    if adapter_others and full_others and report.get(BASE):
        passed = True
        for direction in sorted(adapter_others):
            if direction == forgetting_pair or direction not in report[BASE]:
                continue
            same, total = same_hypotheses(adapter_others[direction], report[BASE][direction])
            row = {"adapter_identical": f"{same}/{total}", "base": report[BASE][direction]["bleu"],
                   "pair_adapter": adapter_others[direction]["bleu"]}
            if direction in full_others:
                row["full_finetune"] = full_others[direction]["bleu"]
                row["full_finetune_change"] = row["full_finetune"] - row["base"]
            figures["directions"][direction] = row
            passed = passed and same == total
        changes = [r["full_finetune_change"] for r in figures["directions"].values() if "full_finetune_change" in r]
        figures["full_finetune_mean_change"] = statistics.fmean(changes) if changes else None
        passed = passed and bool(figures["directions"])
    results.append(_result("R6", passed, f"after training on {forgetting_pair}, the pair adapter leaves the other "
                           "supervised directions exactly as the base translates them; full fine-tuning's change "
                           "on them is reported", figures))
    return results


def format_figures(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, tuple) and len(value) == 3:
        return f"{value[0]:.2f} ± {value[1]:.2f} ({value[2]} seeds)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_figures(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_figures(v) for v in value)
    return str(value)


def markdown(results: list[dict]) -> str:
    lines = ["| relation | result | claim | figures |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['relation']} | **{r['status']}** | {r['claim']} | {format_figures(r['figures'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="studies.nmt_relations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True, help="nmt.json written by nmt report")
    parser.add_argument("--pairs", required=True, help="pairs with a pair adapter, e.g. en-ar,en-de")
    parser.add_argument("--high-resource-pair", required=True, help="R3's pair (the base learned it well)")
    parser.add_argument("--forgetting-pair", required=True, help="R6's pair (the models of .others were trained on it)")
    parser.add_argument("--base-curve", type=Path, help="JSON {pair: [{update, valid_loss}, ...]} of the base")
    parser.add_argument("--flat-tolerance", type=float, default=0.01,
                        help="R3: largest fall of the base's valid loss per 1,000 updates between its last two checkpoints")
    parser.add_argument("--output-dir", type=Path, required=True, help="where relations.json and relations.md go")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a relation fails")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        curve = json.loads(args.base_curve.read_text(encoding="utf-8")) if args.base_curve else None
    except (OSError, ValueError) as err:
        print(f"studies.nmt_relations: error: {err}", file=sys.stderr)
        return 2
    pairs = [p for p in args.pairs.split(",") if p]
    results = check(report, pairs, args.high_resource_pair, args.forgetting_pair, curve, args.flat_tolerance)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output_dir / "relations.json", results)
    atomic_write_text(args.output_dir / "relations.md", markdown(results))
    for r in results:
        print(f"{r['relation']} {r['status']}: {r['claim']} -- {format_figures(r['figures'])}")
    return 1 if args.strict and any(r["status"] == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
