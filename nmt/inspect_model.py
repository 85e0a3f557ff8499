"""Load a checkpoint as ``fairseq-generate`` does and walk a data split, for the inspection commands.

``nmt ablate`` and ``nmt fusion-weights`` take fairseq-generate's own command
line (data directory, ``--path``, ``-s``/``-t``, ``--gen-subset``, ``--beam``,
``--max-tokens``, ...) after their own flags, so they read the same data and
build the same model as ``fairseq-generate`` would.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from adapter_core import atomic_write_bytes, atomic_write_json

USER_DIR = str(Path(__file__).resolve().parent)


@dataclass
class LoadedRun:
    """What fairseq-generate builds from its command line."""

    # fairseq's parsed arguments (generation parser).
    args: object
    # The adapter_translation task, with the generation subset loaded.
    task: object
    # The model, in eval mode, on the device fairseq chose.
    model: object
    # The subset's dataset.
    dataset: object


def load_for_generation(fairseq_argv: list[str]) -> LoadedRun:
    """Parse ``fairseq_argv`` with fairseq-generate's parser, load the task, model and subset."""
    from fairseq import checkpoint_utils, options, tasks, utils

    argv = list(fairseq_argv)
    if "--user-dir" not in argv:
        argv += ["--user-dir", USER_DIR]
    if "--task" not in argv:
        argv += ["--task", "adapter_translation"]
    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(parser, argv)
    if not args.path:
        raise ValueError("pass the checkpoint with --path, as for fairseq-generate")
    utils.import_user_module(args)
    task = tasks.setup_task(args)
    models, _ = checkpoint_utils.load_model_ensemble(args.path.split(":"), task=task)
    model = models[0].eval()
    if torch.cuda.is_available() and not args.cpu:
        model = model.cuda()
    task.load_dataset(args.gen_subset)
    return LoadedRun(args=args, task=task, model=model, dataset=task.dataset(args.gen_subset))


def batches(run: LoadedRun) -> Iterator[dict]:
    """The subset's batches, as fairseq-generate iterates them (on the model's device)."""
    from fairseq import utils

    args = run.args
    iterator = run.task.get_batch_iterator(
        dataset=run.dataset, max_tokens=args.max_tokens, max_sentences=args.batch_size,
        max_positions=utils.resolve_max_positions(run.task.max_positions(), run.model.max_positions()),
        ignore_invalid_inputs=args.skip_invalid_size_inputs_valid_test, seed=args.seed,
        num_workers=args.num_workers).next_epoch_itr(shuffle=False)
    device = next(run.model.parameters()).device
    for sample in iterator:
        if sample:
            yield utils.move_to_cuda(sample) if device.type == "cuda" else sample


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG, atomically."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend, without its font-search debug logging."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # before the import: it logs at DEBUG
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_inspection(parser: argparse.ArgumentParser, argv: list[str] | None, stem: str,
                   compute: Callable[[argparse.Namespace, LoadedRun], dict], plot: Callable[[dict, Path], Path]) -> int:
    """The shared command line: our flags, ``--``, fairseq-generate's; writes ``<stem>.json`` and ``<stem>.png``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    ours = parser.parse_args(argv[:split])  # --help works without the fairseq part
    if split == len(argv):
        parser.error("put fairseq-generate's command line after '--'")
    try:
        report = compute(ours, load_for_generation(argv[split + 1:]))
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    out = Path(ours.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{stem}.json", report)
    plot(report, out / f"{stem}.png")
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.png')}")
    return 0
