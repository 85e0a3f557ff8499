"""``nmt generate-many``: fairseq-generate over several directions in one process.

    nmt generate-many data-bin --path ckpt.pt --directions en-de,en-ar,de-fr --output-dir gen/base \\
        -- --user-dir "$(nmt user-dir)" --task adapter_translation --lang-pairs ... --beam 5

Runs fairseq's own ``fairseq_cli.generate.main`` once per direction, with
``-s``/``-t`` set and every other argument passed through (after ``--``), and
writes ``<output-dir>/generate-<src>-<tgt>.txt`` (what ``nmt report`` reads).
fairseq is imported once, not once per direction, which matters on a small
model where the import costs more than the translation.  A direction whose
file exists already is skipped; each file lands by atomic rename.

fairseq-generate batches by ``--required-batch-size-multiple`` (8 by default)
and silently leaves out the last N mod 8 sentences of a test set; this
command passes ``--required-batch-size-multiple 1`` unless told otherwise, so
every test sentence is translated.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def direction_argv(data: str, path: str, direction: str, results: str, extra: list[str]) -> list[str]:
    """The fairseq-generate arguments for one direction."""
    src, _, tgt = direction.partition("-")
    if not src or not tgt or "-" in tgt:
        raise ValueError(f"direction {direction!r}: expected SRC-TGT such as en-de")
    argv = [data, "--path", path, "-s", src, "-t", tgt, "--results-path", results] + extra
    if "--required-batch-size-multiple" not in extra:
        argv += ["--required-batch-size-multiple", "1"]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    from .cli import verb_parser

    parser = verb_parser("generate-many", __doc__.split("\n\n")[0].strip("`").split(": ", 1)[1])
    parser.add_argument("data", help="fairseq data directory (binarised test sets)")
    parser.add_argument("--path", required=True, help="the checkpoint to translate with")
    parser.add_argument("--directions", required=True, help="comma-separated SRC-TGT directions")
    parser.add_argument("--output-dir", required=True, type=Path, help="where generate-<src>-<tgt>.txt go")
    parser.add_argument("--gen-subset", default="test", help="the subset to translate (fairseq's --gen-subset)")
    args = parser.parse_args(own)
    if not Path(args.path).is_file():
        print(f"nmt generate-many: error: {args.path}: no such checkpoint", file=sys.stderr)
        return 2
    from fairseq import options
    from fairseq_cli import generate

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for direction in [d for d in args.directions.split(",") if d]:
        target = args.output_dir / f"generate-{direction}.txt"
        if target.is_file() and target.stat().st_size:
            continue
        with tempfile.TemporaryDirectory(dir=args.output_dir, prefix=f".generate-{direction}-") as tmp:
            try:
                call = direction_argv(args.data, args.path, direction, tmp, ["--gen-subset", args.gen_subset] + extra)
                parsed = options.parse_args_and_arch(options.get_generation_parser(), call)
                generate.main(parsed)
            except (ValueError, FileNotFoundError) as err:
                print(f"nmt generate-many: error: {direction}: {err}", file=sys.stderr)
                return 2
            os.replace(Path(tmp) / f"generate-{args.gen_subset}.txt", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
