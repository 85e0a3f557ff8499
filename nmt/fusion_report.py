"""``nmt fusion-weights``: how much each fused adapter contributes, per layer, on a data split.

AdapterFusion (Pfeiffer et al. 2021) learns, in every layer, a softmax over
the outputs of frozen adapters.  This command runs the model teacher-forced
over a split (the references as decoder input, as validation does) and
reports the mean attention weight of every fused adapter in every layer of
each side, as JSON and as a heatmap (layers x adapters).

    nmt fusion-weights --output-dir fusion/ -- data-bin --path ckpt/checkpoint_best.pt \\
        -s en -t xx --gen-subset valid --max-tokens 4000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .inspect_model import LoadedRun, batches, pyplot, run_inspection, save_figure


def fusion_weights(run: LoadedRun) -> dict:
    """Mean fusion weight per (side, fusion, layer, adapter) over the split."""
    model = run.model
    layers = {side: model.fusion_layers(side) for side in ("encoder", "decoder")}
    if not any(layers.values()):
        raise ValueError("the checkpoint has no AdapterFusion layers (train with --adapter-fusion-keys and "
                         "--adapter-fusion-over)")
    for entries in layers.values():
        for _, _, layer in entries:
            layer.reset_statistics()
    sentences = 0
    with torch.no_grad():
        for sample in batches(run):
            model(**run.task.add_lang_ids(sample)["net_input"])
            sentences += int(sample["nsentences"])
    report = {"subset": run.args.gen_subset, "direction": f"{run.args.source_lang}-{run.args.target_lang}",
              "sentences": sentences, "sides": {}}
    for side, entries in layers.items():
        for index, name, layer in entries:
            bank = dict(model.adapter_banks(side))[index]
            weights = layer.mean_weights()
            if weights is None:
                continue  # no sample of this split used this fusion
            fusion = report["sides"].setdefault(side, {}).setdefault(
                name, {"adapters": list(bank.fusion_sources[name]), "layers": [], "weights": []})
            fusion["layers"].append(index)
            fusion["weights"].append([round(float(w), 6) for w in weights])
    if not report["sides"]:
        raise ValueError(f"no sentence of {run.args.gen_subset!r} was routed through a fusion; "
                         f"fused keys: {sorted({n for e in layers.values() for _, n, _ in e})}")
    return report


def plot_fusion_weights(report: dict, path: Path) -> Path:
    """One panel per (side, fusion): layers (rows) x fused adapters (columns), mean weight."""
    plt = pyplot()
    panels = [(side, name, entry) for side, fusions in report["sides"].items() for name, entry in fusions.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(1.8 + 1.0 * max(len(e["adapters"]) for *_, e in panels) * len(panels),
                                                      1.6 + 0.45 * max(len(e["layers"]) for *_, e in panels)), squeeze=False)
    image = None
    for ax, (side, name, entry) in zip(axes[0], panels):
        image = ax.imshow(entry["weights"], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for i, row in enumerate(entry["weights"]):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white", fontsize=7)
        ax.set_xticks(range(len(entry["adapters"])), entry["adapters"], rotation=45, fontsize=8)
        ax.set_yticks(range(len(entry["layers"])), [f"layer {i}" for i in entry["layers"]], fontsize=8)
        ax.set_title(f"{side}: fusion {name}", fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="mean fusion weight")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    from .cli import verb_parser

    parser = verb_parser(
        "fusion-weights",
        epilog="Everything after '--' is fairseq-generate's command line (data, --path, -s, -t, --gen-subset, ...).")
    parser.add_argument("--output-dir", required=True, help="where fusion_weights.json and fusion_weights.png go")
    return run_inspection(parser, argv, "fusion_weights", lambda ours, run: fusion_weights(run), plot_fusion_weights)


if __name__ == "__main__":
    sys.exit(main())
