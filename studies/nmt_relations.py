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


def mean_over_directions(groups: dict, system: str, directions: list[str], metric: str = "bleu") -> float | None:
    scores = [mean_over_seeds(groups, system, d, metric) for d in directions]
    if not directions or any(s is None for s in scores):
        return None
    return statistics.fmean(s[0] for s in scores)


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

    base_mean, copy_mean = (mean_over_directions(groups, s, supervised) for s in (BASE, COPY))
    results.append(_result("R1", None if base_mean is None else base_mean > copy_mean,
                           "the base beats the copy baseline (mean BLEU over supervised directions)",
                           {"base": base_mean, "copy": copy_mean, "directions": supervised}))

    gains = {}
    for pair in pairs:
        adapter, base = mean_over_seeds(groups, PAIR, pair), mean_over_seeds(groups, BASE, pair)
        if adapter is not None and base is not None:
            gains[pair] = {"pair_adapter": adapter[0], "std": adapter[1], "seeds": adapter[2], "base": base[0],
                           "gain": adapter[0] - base[0]}
    ok = None if len(gains) < max(2, len(pairs)) else all(g["gain"] >= 1.0 for g in gains.values())
    results.append(_result("R2", ok,
                           "each pair adapter beats the base by >= 1.0 BLEU on its pair (en-ar and one more)", gains))

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

    lang_mean, base_zero = (mean_over_directions(groups, s, zero_shot) for s in (LANG, BASE))
    results.append(_result("R4", None if lang_mean is None or base_zero is None else lang_mean - base_zero > 0.5,
                           "language adapters beat the base by > 0.5 BLEU on the mean of the zero-shot directions",
                           {"lang_adapters": lang_mean, "base": base_zero, "directions": zero_shot}))

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


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, tuple) and len(value) == 3:
        return f"{value[0]:.2f} ± {value[1]:.2f} ({value[2]} seeds)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def markdown(results: list[dict]) -> str:
    lines = ["| relation | result | claim | figures |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['relation']} | **{r['status']}** | {r['claim']} | {_fmt(r['figures'])} |")
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
        print(f"{r['relation']} {r['status']}: {r['claim']} -- {_fmt(r['figures'])}")
    return 1 if args.strict and any(r["status"] == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
