"""The report of recipes/xling/e5_madx_plateau.sh: the MLM head's curve and the language adapters' held-out losses.

    python recipes/xling/madx_plateau_report.py --base work/xe5 --head-dir e5-head-plateau --langs en tr pl \\
        --lrs 1e-4 1e-3 --output-dir reports/xling_e5_madx_plateau

Reads BASE/HEAD_DIR/mlm_head.json (train-mlm-head), BASE/lang-lrR/lang-L/adapter/mlm_curve.json (train-lang
--heldout-text) and BASE/lang-lrR/lang-L/mlm_loss.json (lang-mlm-loss); writes plateau.json, plateau.md,
head_curve.png and lang_curves.png.  Whatever is missing is reported as missing, never filled in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text
from xling.lang_mlm_eval import read_curve
from xling.plots import lines_png


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def head_section(head: dict | None, output: Path) -> list[str]:
    if head is None:
        return ["MLM head: not trained yet (no mlm_head.json)."]
    curve = head["curve"]
    tokens = head["config"]["tokens_per_step"]
    lines_png({"held-out accuracy": ([p["step"] for p in curve], [p["accuracy"] for p in curve])},
              output / "head_curve.png", "MLM head on the frozen e5-small (last hidden state)",
              f"step ({tokens} masked tokens each)", "masked-token top-1 accuracy (%)")
    lines = [f"MLM head: {head['steps']} steps x {tokens} masked tokens drawn from {head['config']['mask_passes']} "
             f"cached masked passes over {head['train_lines']} lines; held out: {head['heldout_lines']} lines "
             f"({head['after']['masked_tokens']} masked tokens); {head['seconds']:.0f} s of head training after "
             f"{head['cache_seconds']:.0f} s of caching on {head['threads']} {head['device']} thread(s). "
             f"Plateau (gain < {head['config']['plateau_gain']} points over {head['config']['plateau_window']} steps): "
             f"step {head['plateau_step']}.", "", "| step | masked tokens seen | accuracy (%) | loss |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {p['step']} | {p['step'] * tokens:,} | {p['accuracy']:.2f} | {p['loss']:.3f} |" for p in curve]
    return lines


def adapter_rows(base: Path, langs: list[str], lrs: list[str], output: Path) -> tuple[list[dict], list[str]]:
    rows, series = [], {}
    for lr in lrs:
        for lang in langs:
            folder = base / f"lang-lr{lr}" / f"lang-{lang}"
            curve, check = read_curve(folder / "adapter"), _read(folder / "mlm_loss.json")
            if curve is None and check is None:
                continue
            row = {"lang": lang, "lr": lr}
            if curve is not None:
                points = curve["curve"]
                series[f"{lang}, lr {lr}"] = ([p["step"] for p in points], [p["loss"] for p in points])
                row.update(steps=points[-1]["step"], plateau_step=curve["plateau_step"],
                           first_loss=points[0]["loss"], last_loss=points[-1]["loss"])
            if check is not None:
                row.update({f"{name}_loss": s["loss"] for name, s in check["settings"].items()},
                           passes=check.get("passes"), margin=check.get("margin"))
            rows.append(row)
    if series:
        lines_png(series, output / "lang_curves.png", "Language adapters: held-out MLM loss of their own language",
                  "step", "masked-LM loss (nats)")
    table = ["| language | lr | steps | plateau step | bare | English adapter | own adapter | own below both |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        own = r.get(f"{r['lang']}_loss")
        english = r.get("en_loss") if r["lang"] != "en" else None
        cells = [f"{v:.3f}" if isinstance(v, float) else "–" for v in (r.get("bare_loss"), english, own)]
        verdict = {True: "PASS", False: "FAIL", None: "not checked"}[r.get("passes")]
        table.append(f"| {r['lang']} | {r['lr']} | {r.get('steps', '–')} | {r.get('plateau_step') or 'not reached'} | "
                     f"{' | '.join(cells)} | {verdict} |")
    return rows, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the base folder (BASE of the recipe)")
    parser.add_argument("--head-dir", required=True, help="the head's folder under BASE")
    parser.add_argument("--langs", nargs="+", required=True, help="languages")
    parser.add_argument("--lrs", nargs="*", default=[], help="learning rates of the language adapters")
    parser.add_argument("--output-dir", required=True, help="report folder")
    args = parser.parse_args(argv)
    base, output = Path(args.base), Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    head = _read(base / args.head_dir / "mlm_head.json")
    lines = ["# MLM head and language adapters on multilingual-e5-small (issue 23, items 1-2)", ""]
    lines += head_section(head, output)
    rows, table = adapter_rows(base, args.langs, args.lrs, output)
    lines += ["", "Language adapters: held-out MLM loss (nats) of each language's held-out text under the bare "
              "encoder, the English adapter and its own adapter (same masks in every setting).", ""] + table
    atomic_write_text(output / "plateau.md", "\n".join(lines) + "\n")
    atomic_write_json(output / "plateau.json", {"head": head, "adapters": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
