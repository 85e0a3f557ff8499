"""README.md of ``recipes/nmt/r3_gap.sh``: pair adapter vs full fine-tuning on one pair, per base checkpoint.

    python recipes/nmt/r3_gap_summary.py --report reports/nmt_r3_gap --checkpoints work/r3_gap/checkpoints \\
        --pair en-de --base-curve work/demo-full/base_curve.json --updates 800 --pair-dim 64

Reads ``nmt.json`` (``nmt report``, systems ``base-<u>``, ``pair_adapter-<u>``, ``full_finetune-<u>`` for
base checkpoints at ``u`` updates; optionally ``pair_adapter_embeddings-<u>``: the adapter trained with the
embeddings and output projection), each run's fairseq log (``<checkpoints>/<system>-<u>.log``: its last
training loss) and the demo's ``base_curve.json`` (the base's validation loss on the pair), and writes
``r3_gap.json``, ``README.md`` and ``r3_gap.png``: BLEU of the three systems against the base's updates,
and the gap R3 asks to close (full fine-tuning minus pair adapter, at most 0.5 BLEU).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from adapter_core import atomic_write_json, atomic_write_text

SYSTEMS = ("base", "pair_adapter", "full_finetune", "pair_adapter_embeddings")
TRAIN_LOSS = re.compile(r"\| train \| epoch \d+ \| loss ([0-9.]+)")


def last_train_loss(log: Path) -> float | None:
    """The loss of the last end-of-epoch ``| train |`` line of a fairseq-train log (label-smoothed, base 2)."""
    try:
        found = TRAIN_LOSS.findall(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return float(found[-1]) if found else None


def rows(report: dict, checkpoints: Path, pair: str, curve: dict) -> list[dict]:
    """One row per base checkpoint found in the report, in update order."""
    valid = {point["update"]: point["valid_loss"] for point in curve.get(pair, [])}
    points = sorted({int(name.rsplit("-", 1)[1]) for name in report if name.startswith("base-")})
    out = []
    for point in points:
        row = {"base_updates": point, "base_valid_loss": valid.get(point)}
        for system in SYSTEMS:
            scores = report.get(f"{system}-{point}", {}).get(pair)
            row[f"{system}_bleu"] = scores["bleu"] if scores else None
            row[f"{system}_chrf"] = scores["chrf"] if scores else None
            if system != "base":
                row[f"{system}_train_loss"] = last_train_loss(checkpoints / f"{system}-{point}.log")
        full, adapter = row["full_finetune_bleu"], row["pair_adapter_bleu"]
        row["gap_bleu"] = None if full is None or adapter is None else full - adapter
        out.append(row)
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(table: list[dict], pair: str, updates: int, pair_dim: int, copy: float | None,
             embeddings_lr: str) -> list[str]:
    lines = [f"# R3 as the base trains: pair adapter vs full fine-tuning on {pair}", "",
             f"Each row starts from one checkpoint of the full-profile demo's base and trains, on {pair} only, "
             f"Bapna & Firat adapters (d {pair_dim} in every layer, base frozen) and full fine-tuning for "
             f"{updates} updates each, with the demo's data, flags and seed 1; the gettext test set of {pair} "
             "(beam 5). R3 asks the pair adapter to come within 0.5 BLEU of full fine-tuning on a pair the base "
             "has learned well (its validation loss flattened). Training loss: fairseq's label-smoothed loss "
             f"(base 2) over the run's last epoch. Copy baseline: {_fmt(copy)} BLEU. \"adapter + embeddings\": the "
             "same adapter also training the token embeddings and output projection (lr "
             f"{embeddings_lr}; a diagnostic beyond the paper, which freezes them).", "",
             "| base updates | base valid loss | base BLEU / chrF++ | pair adapter | full fine-tuning "
             "| gap (full − adapter) | adapter + embeddings | train loss adapter / full / + embeddings |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in table:
        lines.append(
            f"| {row['base_updates']} | {_fmt(row['base_valid_loss'], 3)} "
            f"| {_fmt(row['base_bleu'])} / {_fmt(row['base_chrf'])} "
            f"| {_fmt(row['pair_adapter_bleu'])} / {_fmt(row['pair_adapter_chrf'])} "
            f"| {_fmt(row['full_finetune_bleu'])} / {_fmt(row['full_finetune_chrf'])} "
            f"| {_fmt(row['gap_bleu'])} "
            f"| {_fmt(row['pair_adapter_embeddings_bleu'])} / {_fmt(row['pair_adapter_embeddings_chrf'])} "
            f"| {_fmt(row['pair_adapter_train_loss'], 2)} / {_fmt(row['full_finetune_train_loss'], 2)} "
            f"/ {_fmt(row['pair_adapter_embeddings_train_loss'], 2)} |")
    return lines


def plot(table: list[dict], pair: str, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = [row["base_updates"] for row in table]
    for system, label in (("base", "base"), ("pair_adapter", "pair adapter"), ("full_finetune", "full fine-tuning"),
                          ("pair_adapter_embeddings", "adapter + embeddings")):
        points = [(u, row[f"{system}_bleu"]) for u, row in zip(x, table) if row[f"{system}_bleu"] is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.set_xlabel("base updates (checkpoint the runs start from)")
    ax.set_ylabel(f"BLEU, {pair} (gettext test)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True, help="folder with nmt report's nmt.json; output here")
    parser.add_argument("--checkpoints", type=Path, required=True, help="folder with each run's <name>.log")
    parser.add_argument("--pair", required=True, help="the pair, e.g. en-de")
    parser.add_argument("--base-curve", type=Path, required=True, help="the demo's base_curve.json")
    parser.add_argument("--updates", type=int, required=True, help="updates of each run (for the text)")
    parser.add_argument("--pair-dim", type=int, required=True, help="adapter bottleneck (for the text)")
    parser.add_argument("--embeddings-lr", default="–", help="learning rate of adapter + embeddings (for the text)")
    args = parser.parse_args(argv)
    try:
        report = json.loads((args.report / "nmt.json").read_text(encoding="utf-8"))
        curve = json.loads(args.base_curve.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        print(f"r3_gap_summary: error: {err}", file=sys.stderr)
        return 1
    table = rows(report, args.checkpoints, args.pair, curve)
    if not table:
        print(f"r3_gap_summary: error: {args.report / 'nmt.json'} has no base-<updates> system", file=sys.stderr)
        return 1
    copy = report.get("copy", {}).get(args.pair, {}).get("bleu")
    atomic_write_json(args.report / "r3_gap.json", {"pair": args.pair, "updates": args.updates,
                                                    "pair_dim": args.pair_dim, "copy_bleu": copy, "rows": table})
    lines = markdown(table, args.pair, args.updates, args.pair_dim, copy, args.embeddings_lr)
    plot(table, args.pair, args.report / "r3_gap.png")
    lines += ["", "![BLEU against the base's updates](r3_gap.png)", ""]
    atomic_write_text(args.report / "README.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
