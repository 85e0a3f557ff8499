"""Console scripts: ``nmt-user-dir`` and ``nmt-export-adapters``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from adapter_core.cli_flags import add_deprecated_positional, add_output_flag, require_output


def print_user_dir() -> None:
    """Print the absolute path of this plugin, for ``fairseq-* --user-dir "$(nmt-user-dir)"``."""
    print(Path(__file__).resolve().parent)


def export_adapters_main(argv: list[str] | None = None) -> int:
    """nmt-export-adapters CHECKPOINT --output-dir DIR: one adapter_core directory per adapter of a checkpoint."""
    parser = argparse.ArgumentParser(
        prog="nmt-export-adapters",
        description="Write each adapter of an adapter_transformer checkpoint as its own directory "
                    "(adapter_config.json + adapter_model.safetensors) for fairseq-generate --adapter-dirs.")
    parser.add_argument("checkpoint", help="checkpoint_*.pt from fairseq-train --arch adapter_transformer*")
    add_output_flag(parser, "--output-dir", required=False, help="directory to write DIR/<key>/ into")
    add_deprecated_positional(parser, "out_dir", "--output-dir")
    parser.add_argument("--keys", default="", help="comma-separated adapter keys to export (default: all)")
    parser.add_argument("--data", default=None,
                        help="the binarised data directory (its dictionaries), if it moved since training")
    args = parser.parse_args(argv)
    require_output(parser, args, "--output-dir")
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO)

    from adapter_core.io import describe_os_error

    from .adapter_files import export_adapters
    from .checkpoints import load_model
    from .config import split_list

    if not Path(args.checkpoint).is_file():
        parser.error(f"checkpoint not found: {args.checkpoint}")
    try:
        model = load_model(args.checkpoint, data=args.data)
        written = export_adapters(model, args.output_dir, split_list(args.keys))
    except (KeyError, TypeError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # KeyError quotes its text
        if isinstance(err, OSError):  # a read-only or full disk: what to do
            message = describe_os_error(err, where=args.output_dir)
        print(f"nmt-export-adapters: error: {message}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
