"""Console scripts: ``nmt-user-dir`` and ``nmt-export-adapters``."""

from __future__ import annotations

import argparse
import logging
import re
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

    from adapter_core.io import describe_os_error

    from .adapter_files import export_adapters
    from .config import split_list
    from .tasks import unwrap_model

    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint not found: {args.checkpoint}")
    overrides = {"data": args.data} if args.data else None
    state = None
    try:
        state = read_checkpoint(args.checkpoint, overrides)
        models, _ = checkpoint_utils.load_model_ensemble([args.checkpoint], arg_overrides=overrides, state=state)
        model = unwrap_model(models[0])
        written = export_adapters(model, args.out_dir, split_list(args.keys))
    except (KeyError, TypeError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # KeyError quotes its text
        if isinstance(err, TypeError):  # a checkpoint without adapters
            message = f"{args.checkpoint}: {message}"
        elif isinstance(err, OSError):  # a missing dictionary, a read-only or full disk: what to do
            message = _missing_data_message(err, args.data, state) or describe_os_error(err, where=args.out_dir)
        print(f"nmt-export-adapters: error: {message}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _missing_data_message(err: OSError, data_flag: str | None, state: dict | None) -> str:
    """For a dictionary missing from the checkpoint's data directory: where it was looked for, and --data."""
    if not isinstance(err, FileNotFoundError) or err.filename is None or state is None:
        return ""
    if not re.fullmatch(r"dict\..+\.txt", Path(str(err.filename)).name):
        return ""
    if data_flag:
        return (f"{err.filename}: not found; --data {data_flag} must be the binarised data directory "
                "(the folder holding dict.<lang>.txt)")
    cfg = state.get("cfg")
    task = (cfg.get("task") if cfg is not None else None) or state.get("args")  # a legacy checkpoint: its args
    data = (task.get("data") if hasattr(task, "get") else getattr(task, "data", None)) or "?"
    where = "" if Path(str(data)).is_absolute() else f" (relative: looked up from the current folder {Path.cwd()})"
    return (f"{err.filename}: not found: the checkpoint reads its dictionaries from its training data directory "
            f"{data!r}{where}; pass --data with the binarised data directory (the folder holding dict.<lang>.txt)")


class CheckpointReadError(ValueError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint, or with disallowed globals)."""


#: How torch's weights-only loader names an object outside the allow-list (its advice is not passed on).
_DISALLOWED = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)"
                         r"|allowlisted via `add_safe_globals`,? but got <class '([^']+)'>"
                         r"|reduce for unrecognized function (<[^>]+>|\S+)")


def read_checkpoint(path: str, overrides: dict | None = None) -> dict:
    """fairseq's ``load_checkpoint_to_cpu`` (``weights_only`` loading), with one clear error for a broken file."""
    import pickle
    import zipfile

    from fairseq import checkpoint_utils

    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, overrides)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, zipfile.BadZipFile) as err:
        text = str(err).strip()
        disallowed = _DISALLOWED.search(text)
        if disallowed:  # refused by the weights-only loader: our advice, never torch's (weights_only=False)
            name = next(group for group in disallowed.groups() if group)
            raise CheckpointReadError(
                f"{path}: refused: the checkpoint holds {name}, an object outside the allow-list of what fairseq "
                "checkpoints hold (tensors, containers, argparse.Namespace, omegaconf configs), and loading it "
                "could run code; use a checkpoint written by fairseq-train (--user-dir nmt) from a source you trust"
            ) from None
        if "WeightsUnpickler error:" in text:  # torch's weights_only loader; keep its reason, not its advice
            text = text.split("WeightsUnpickler error:", 1)[1].strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        if "weights_only" in reason:  # torch's advice to load unsafely is never passed on
            reason = "the weights-only loader refused it"
        raise CheckpointReadError(f"{path}: not a readable fairseq checkpoint (truncated or corrupt?): "
                                  f"{type(err).__name__}: {reason}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointReadError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state
