"""Console scripts: ``nmt-user-dir`` and ``nmt-export-adapters``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def print_user_dir() -> None:
    """Print the absolute path of this plugin, for ``fairseq-* --user-dir "$(nmt-user-dir)"``."""
    print(Path(__file__).resolve().parent)


def export_adapters_main(argv: list[str] | None = None) -> int:
    """nmt-export-adapters CHECKPOINT OUT_DIR: one adapter_core directory per adapter of an adapter checkpoint."""
    parser = argparse.ArgumentParser(
        prog="nmt-export-adapters",
        description="Write each adapter of an adapter_transformer checkpoint as its own directory "
                    "(adapter_config.json + adapter_model.safetensors) for fairseq-generate --adapter-dirs.")
    parser.add_argument("checkpoint", help="checkpoint_*.pt from fairseq-train --arch adapter_transformer*")
    parser.add_argument("out_dir", help="directory to write OUT_DIR/<key>/ into")
    parser.add_argument("--keys", default="", help="comma-separated adapter keys to export (default: all)")
    parser.add_argument("--data", default=None,
                        help="the binarised data directory (its dictionaries), if it moved since training")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO)

    import nmt  # noqa: F401  (registers the model and task; allows the checkpoint's globals)
    from fairseq import checkpoint_utils

    from .adapter_files import export_adapters
    from .config import split_list
    from .tasks import unwrap_model

    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint not found: {args.checkpoint}")
    overrides = {"data": args.data} if args.data else None
    try:
        state = read_checkpoint(args.checkpoint, overrides)
        models, _ = checkpoint_utils.load_model_ensemble([args.checkpoint], arg_overrides=overrides, state=state)
        model = unwrap_model(models[0])
        written = export_adapters(model, args.out_dir, split_list(args.keys))
    except (KeyError, TypeError, ValueError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # KeyError quotes its text
        if isinstance(err, TypeError):  # a checkpoint without adapters
            message = f"{args.checkpoint}: {message}"
        print(f"nmt-export-adapters: error: {message}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


class CheckpointReadError(ValueError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint, or with disallowed globals)."""


def read_checkpoint(path: str, overrides: dict | None = None) -> dict:
    """fairseq's ``load_checkpoint_to_cpu`` (``weights_only`` loading), with one clear error for a broken file."""
    import pickle
    import zipfile

    from fairseq import checkpoint_utils

    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, overrides)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, zipfile.BadZipFile) as err:
        text = str(err).strip()
        if "WeightsUnpickler error:" in text:  # torch's weights_only loader; keep its reason, not its advice
            text = text.split("WeightsUnpickler error:", 1)[1].strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise CheckpointReadError(f"{path}: not a readable fairseq checkpoint (truncated or corrupt?): "
                                  f"{type(err).__name__}: {reason}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointReadError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state
