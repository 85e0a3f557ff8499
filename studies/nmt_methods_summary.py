"""reports/nmt_methods/README.md from what recipes/nmt/methods_demo.sh wrote: BLEU, sizes, times, fusion, ablation."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

SYSTEMS = {
    "pair_adapter": "Bapna & Firat pair adapter (the demo's)",
    "compacter_pair": "Compacter++ pair adapter",
    "drop1_pair": "pair adapter, AdapterDrop specialised, 1 of 3 layers",
    "drop2_pair": "pair adapter, AdapterDrop specialised, 2 of 3 layers",
    "lang_adapters": "Philip et al. language adapters (the demo's)",
    "fusion_lang": "AdapterFusion over the target-language adapters",
}
DONE = re.compile(r"done training in ([0-9.]+) seconds")
UPS = re.compile(r"\| train \| epoch .*\| ups ([0-9.]+) \|")
TRANSLATED = re.compile(r"Translated ([0-9,]+) sentences .* in ([0-9.]+)s")


def _last(pattern: re.Pattern, path: Path) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    found = pattern.findall(path.read_text("utf-8", errors="replace"))
    if not found:
        return None
    last = found[-1]
    return last if isinstance(last, tuple) else (last,)


def system_rows(work: Path, report: Path, pair: str, demo_checkpoints: Path) -> list[dict]:
    scores = json.loads((report / "bleu" / "nmt.json").read_text())
    rows = []
    for system, label in SYSTEMS.items():
        entry = scores.get(system, {}).get(pair)
        if entry is None:
            continue
        log = work / "checkpoints" / f"{system}.log"
        if not log.is_file():
            log = demo_checkpoints / f"{system}.log"
        ups = _last(UPS, log)
        translated = _last(TRANSLATED, work / "generate" / system / f"generate-{pair}.txt.log")
        rows.append({"system": system, "label": label, "bleu": entry["bleu"], "chrf": entry["chrf"],
                     "trainable_parameters": entry.get("trainable_parameters"),
                     "updates_per_second": float(ups[0]) if ups else None,
                     "generation_seconds": float(translated[1]) if translated else None})
    return rows


def _number(value, digits=2) -> str:
    return "–" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}")


def markdown(rows: list[dict], fusion: dict | None, ablation: dict | None, pair: str) -> str:
    lines = [f"# Beyond the two papers on the demo's models ({pair})", "",
             "Made by `bash recipes/nmt/methods_demo.sh` after `make demo`: every run starts from the demo's base "
             "(or, for fusion, its language adapters) and has the demo's update budget. The demo's models are "
             "small and briefly trained (BLEU below the copy baseline, see reports/demo), so differences of a "
             "BLEU point or two are noise here; the point is that every method runs end to end and what it "
             "costs. The training runs shared the 2 cores two at a time, so their speeds are not compared here "
             "(`summary.json` has them); `python -m bench --only D1,D2` measures AdapterDrop's speed-up side by side "
             "(bench/README.md). Generation ran one system at a time.", "",
             "| system | BLEU | chrF++ | trained parameters | generation (s) |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['label']} | {_number(row['bleu'])} | {_number(row['chrf'])} | "
                     f"{_number(row['trainable_parameters'])} | {_number(row['generation_seconds'], 1)} |")
    lines += ["", "Trained parameters are those of the checkpoint's adapters (all keys); with AdapterDrop the "
              "adapters of the dropped layers exist but never train, and for fusion only the fusion layers "
              "train.", ""]
    if fusion:
        lines += ["## AdapterFusion weights", "",
                  f"Mean attention weight of each fused adapter per decoder layer, over the {pair} validation "
                  "sentences (teacher-forced): `fusion/fusion_weights.json`, `fusion/fusion_weights.png`.", ""]
        for side, fusions in fusion["sides"].items():
            for name, entry in fusions.items():
                lines += [f"{side}, fusion `{name}`:", "", "| layer | " + " | ".join(entry["adapters"]) + " |",
                          "|---|" + "---:|" * len(entry["adapters"])]
                for layer, weights in zip(entry["layers"], entry["weights"]):
                    lines.append(f"| {layer} | " + " | ".join(f"{w:.3f}" for w in weights) + " |")
                lines.append("")
    if ablation:
        lines += ["## Layer ablation of the pair adapter", "",
                  f"BLEU with all adapters: {ablation['baseline']['bleu']:.2f}. Change when the adapters of layers "
                  "first..last of one side are left out (`ablation/ablation.json`, heatmap `ablation/ablation.png`); "
                  "time is the translation time relative to all adapters; it also moves with the hypotheses' lengths, "
                  "which change when adapters are left out (bench D2 times pruning at fixed lengths).", "",
                  "| side | layers left out | BLEU change | time ratio |", "|---|---|---:|---:|"]
        for side, entry in ablation["sides"].items():
            for span in entry["spans"]:
                lines.append(f"| {side} | {span['first']}–{span['last']} | {span['bleu_change']:+.2f} | "
                             f"{span['time_ratio']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--pair", required=True)
    parser.add_argument("--demo-checkpoints", type=Path, default=Path("work/demo/checkpoints"))
    args = parser.parse_args()
    rows = system_rows(args.work, args.report, args.pair, args.demo_checkpoints)
    fusion_path, ablation_path = args.report / "fusion" / "fusion_weights.json", args.report / "ablation" / "ablation.json"
    fusion = json.loads(fusion_path.read_text()) if fusion_path.is_file() else None
    ablation = json.loads(ablation_path.read_text()) if ablation_path.is_file() else None
    atomic_write_json(args.report / "summary.json", {"pair": args.pair, "systems": rows})
    atomic_write_text(args.report / "README.md", markdown(rows, fusion, ablation, args.pair) + "\n")


if __name__ == "__main__":
    main()
