"""``nmt ablate``: leave out the adapters of each layer span at inference and plot the BLEU change.

Houlsby et al. (2019), "Parameter-Efficient Transfer Learning for NLP",
fig. 6: remove the adapters of layers i..j of a trained model, without
retraining, and measure the change of the metric; the heatmap has the first
removed layer on one axis and the last on the other.  A translation model
has two stacks, so there is one heatmap for the encoder and one for the
decoder.  Each span is translated with beam search exactly as
``fairseq-generate`` would (``--adapter-skip-layers``, the switch that also
prunes adapters for speed), scored with sacreBLEU, and timed.

    nmt ablate --output-dir ablation/ -- data-bin --path ckpt/checkpoint_best.pt \\
        -s en -t de --gen-subset test --beam 5 --max-tokens 4000 --post-process sentencepiece
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .inspect_model import LoadedRun, batches, pyplot, run_inspection, save_figure

logger = logging.getLogger(__name__)

SIDES = ("encoder", "decoder")


def adapter_layer_indices(model, side: str) -> list[int]:
    return [i for i, _ in model.adapter_banks(side)]


def spans_of(indices: list[int], single_only: bool) -> list[tuple[int, int]]:
    """Every span first..last of the adapter layers (or each layer alone)."""
    if single_only:
        return [(i, i) for i in indices]
    return [(a, b) for a in indices for b in indices if a <= b]


def translate_and_score(run: LoadedRun, generator) -> dict:
    """Translate the subset with the current adapter switches; BLEU (sacreBLEU) and seconds."""
    import sacrebleu
    from fairseq import utils
    from fairseq_cli.generate import get_symbols_to_strip_from_output

    strip = get_symbols_to_strip_from_output(generator)
    tgt_dict = run.task.target_dictionary
    post_process = run.args.post_process
    hyps, refs = {}, {}
    start = time.perf_counter()
    for sample in batches(run):
        outputs = run.task.inference_step(generator, [run.model], sample)
        for k, sample_id in enumerate(sample["id"].tolist()):
            target = utils.strip_pad(sample["target"][k], tgt_dict.pad()).int().cpu()
            refs[sample_id] = tgt_dict.string(target, post_process, escape_unk=True, extra_symbols_to_ignore=strip)
            _, hyps[sample_id], _ = utils.post_process_prediction(
                hypo_tokens=outputs[k][0]["tokens"].int().cpu(), src_str="", alignment=None, align_dict=None,
                tgt_dict=tgt_dict, remove_bpe=post_process, extra_symbols_to_ignore=strip)
    seconds = time.perf_counter() - start
    order = sorted(refs)
    if not order:
        raise ValueError(f"subset {run.args.gen_subset!r} has no sentences to translate")
    bleu = sacrebleu.corpus_bleu([hyps[i] for i in order], [[refs[i] for i in order]])
    return {"bleu": round(bleu.score, 4), "seconds": round(seconds, 4), "sentences": len(order)}


def layer_ablation(run: LoadedRun, sides: list[str], single_only: bool = False) -> dict:
    """BLEU with all adapters, then with each span of each side left out."""
    from tqdm import tqdm

    generator = run.task.build_generator([run.model], run.args)
    model = run.model
    plans = {side: spans_of(adapter_layer_indices(model, side), single_only) for side in sides}
    if not any(plans.values()):
        raise ValueError(f"the model has no adapter layers on {' or '.join(sides)}")
    model.set_skipped_layers({})
    first = next(batches(run), None)
    if first is not None:  # warm-up, so that the baseline's time does not include first-call costs
        run.task.inference_step(generator, [model], first)
    baseline = translate_and_score(run, generator)
    report = {"baseline": baseline, "subset": run.args.gen_subset,
              "direction": f"{run.args.source_lang}-{run.args.target_lang}", "sides": {}}
    progress = tqdm(total=sum(len(p) for p in plans.values()), desc="spans", unit="span", file=sys.stderr)
    for side, spans in plans.items():
        rows = []
        for first, last in spans:
            model.set_skipped_layers({side: set(range(first, last + 1))})
            scored = translate_and_score(run, generator)
            rows.append({"first": first, "last": last, **scored,
                         "bleu_change": round(scored["bleu"] - baseline["bleu"], 4),
                         "time_ratio": round(scored["seconds"] / baseline["seconds"], 4)})
            progress.update(1)
        report["sides"][side] = {"layers": adapter_layer_indices(model, side), "spans": rows}
    progress.close()
    model.set_skipped_layers({})
    return report


def plot_ablation(report: dict, path: Path) -> Path:
    """One heatmap per side: first removed layer (rows) x last removed layer (columns), BLEU change."""
    plt = pyplot()
    sides = [s for s in SIDES if s in report["sides"]]
    fig, axes = plt.subplots(1, len(sides), figsize=(4.2 * len(sides), 3.6), squeeze=False)
    changes = [row["bleu_change"] for s in sides for row in report["sides"][s]["spans"]]
    limit = max([abs(c) for c in changes] + [0.5])
    image = None
    for ax, side in zip(axes[0], sides):
        layers = report["sides"][side]["layers"]
        grid = [[float("nan")] * len(layers) for _ in layers]
        for row in report["sides"][side]["spans"]:
            value = row["bleu_change"]
            i, j = layers.index(row["first"]), layers.index(row["last"])
            grid[i][j] = value
            ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(value) > 0.6 * limit else "black")
        image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(layers)), layers)
        ax.set_yticks(range(len(layers)), layers)
        ax.set_xlabel("last layer without adapter")
        ax.set_ylabel("first layer without adapter")
        ax.set_title(f"{side} ({report['direction']}, all adapters: {report['baseline']['bleu']:.1f} BLEU)", fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="BLEU change")
    return save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    from .cli import verb_parser

    parser = verb_parser(
        "ablate",
        epilog="Everything after '--' is fairseq-generate's command line (data, --path, -s, -t, --gen-subset, ...).")
    parser.add_argument("--output-dir", required=True, help="where ablation.json and ablation.png go")
    parser.add_argument("--sides", default="encoder,decoder", help="encoder, decoder or both (comma-separated)")
    parser.add_argument("--single-layers", action="store_true",
                        help="leave out one layer at a time instead of every span first..last")
    return parser


def _compute(ours: argparse.Namespace, run: LoadedRun) -> dict:
    sides = [s.strip() for s in ours.sides.split(",") if s.strip()]
    if not sides or any(s not in SIDES for s in sides):
        raise ValueError(f"--sides {ours.sides!r}: expected encoder and/or decoder")
    return layer_ablation(run, sides, ours.single_layers)


def main(argv: list[str] | None = None) -> int:
    return run_inspection(build_parser(), argv, "ablation", _compute, plot_ablation)


if __name__ == "__main__":
    sys.exit(main())
