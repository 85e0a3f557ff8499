"""The ``nmt`` command: one console script, one verb per job, beside fairseq's own ``fairseq-train`` and
``fairseq-generate`` (which take this plugin with ``--user-dir "$(nmt user-dir)"``).

    nmt user-dir
    nmt export CHECKPOINT --output-dir DIR [--keys en-de,en-ar]
    nmt generate-many DATA --path CKPT --directions en-de,en-ar --output-dir GEN -- --user-dir ... --beam 5
    nmt report --system base=GEN/base --system pair=GEN/pair --raw-dir RAW --output-dir REPORT
    nmt ablate --output-dir ABL -- DATA --path CKPT -s en -t de --gen-subset test
    nmt fusion-weights --output-dir FW -- DATA --path CKPT -s en -t de --gen-subset test

Each verb's module is imported only when that verb runs; ``nmt VERB --help`` describes its options
(docs/nmt.md has them all).  Bad input ends in one line ``nmt VERB: error: ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module
from pathlib import Path

from adapter_core.io import describe_os_error

#: verb -> (module, function taking argv and returning an exit status, one-line help).
VERBS: dict[str, tuple[str, str, str]] = {
    "user-dir": ("nmt.cli", "user_dir_main", "print this plugin's folder, for fairseq-* --user-dir"),
    "export": ("nmt.cli", "export_adapters_main", "write each adapter of a checkpoint as its own adapter directory"),
    "generate-many": ("nmt.generate_many", "main", "fairseq-generate over several directions in one process"),
    "report": ("nmt.report", "main", "BLEU and chrF++ (sacreBLEU) of generate-*.txt files: tables and heatmap"),
    "ablate": ("nmt.ablation", "main", "leave out the adapters of each layer span at inference (Houlsby fig. 6)"),
    "fusion-weights": ("nmt.fusion_report", "main", "mean AdapterFusion attention weights per layer"),
}


def verb_parser(verb: str, description: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """The parser of ``nmt VERB`` (its prog is what errors and --help show)."""
    return argparse.ArgumentParser(prog=f"nmt {verb}", description=description or VERBS[verb][2], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: ``nmt --help`` lists the verbs without importing any of them."""
    parser = argparse.ArgumentParser(prog="nmt", description="Adapters for multilingual NMT on fairseq: one verb per job",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="verbs:\n" + "\n".join(f"  {v:<15} {h}" for v, (_, _, h) in VERBS.items())
                                     + "\n\nnmt VERB --help describes a verb's options.")
    parser.add_argument("verb", choices=list(VERBS), metavar="VERB", help="one of: " + ", ".join(VERBS))
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    return parser


def _version() -> str:
    from adapter_core._version import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """``nmt VERB ARGS...``: run the verb's function on ARGS."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv)  # --help and --version exit here; nothing else is a verb
        parser.error("the following arguments are required: VERB")
    verb = parser.parse_args(argv[:1]).verb
    module, function, _ = VERBS[verb]
    return getattr(import_module(module), function)(argv[1:])


def user_dir_main(argv: list[str] | None = None) -> int:
    """nmt user-dir: print the absolute path of this plugin, for ``fairseq-* --user-dir "$(nmt user-dir)"``."""
    verb_parser("user-dir").parse_args(argv)
    print(Path(__file__).resolve().parent)
    return 0


def export_adapters_main(argv: list[str] | None = None) -> int:
    """nmt export CHECKPOINT --output-dir DIR: one adapter_core directory per adapter of a checkpoint."""
    parser = verb_parser("export", "Write each adapter of an adapter_transformer checkpoint as its own directory "
                                   "(adapter_config.json + adapter_model.safetensors) for fairseq-generate --adapter-dirs.")
    parser.add_argument("checkpoint", help="checkpoint_*.pt from fairseq-train --arch adapter_transformer*")
    parser.add_argument("--output-dir", required=True, help="directory to write DIR/<key>/ into")
    parser.add_argument("--keys", default="", help="comma-separated adapter keys to export (default: all)")
    parser.add_argument("--data", default=None,
                        help="the binarised data directory (its dictionaries), if it moved since training")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO)

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
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
