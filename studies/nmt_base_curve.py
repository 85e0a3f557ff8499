"""The base's validation loss on one pair at each kept checkpoint: has it flattened (R3's regime)?

    python -m studies.nmt_base_curve --data work/demo/bin/bin --checkpoints work/demo/checkpoints/base \\
        --pair en-de --output work/demo/base_curve.json -- --user-dir "$(nmt user-dir)" \\
        --task translation_multi_simple_epoch --langs ... --encoder-langtok tgt

Runs ``fairseq-validate`` on the pair's valid set for every
``checkpoint_<epoch>_<updates>.pt`` (fairseq's --save-interval-updates
files) and ``checkpoint_last.pt``, and writes ``{pair: [{update,
valid_loss, checkpoint}, ...]}`` in update order (what ``studies.nmt_relations
--base-curve`` reads).  Arguments after ``--`` go to fairseq-validate.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import torch

from adapter_core import atomic_write_json
from nmt import safe_loading  # noqa: F401  (fairseq checkpoints hold argparse objects)

LOSS = re.compile(r"valid on '\w+' subset \| loss ([0-9.]+)")


def checkpoint_update(path: Path) -> int:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return int(state["optimizer_history"][-1]["num_updates"])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="fairseq data directory")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the base's --save-dir")
    parser.add_argument("--pair", required=True, help="the pair whose valid set is scored, e.g. en-de")
    parser.add_argument("--output", type=Path, required=True, help="the curve JSON to write")
    args = parser.parse_args(own)
    paths = sorted(args.checkpoints.glob("checkpoint_*_*.pt")) + [args.checkpoints / "checkpoint_last.pt"]
    points = {}
    for path in paths:
        if not path.is_file():
            continue
        update = checkpoint_update(path)
        if update in points:
            continue
        command = [str(Path(sys.executable).with_name("fairseq-validate")), args.data, "--path", str(path),
                   "--lang-pairs", args.pair, "--source-lang", args.pair.split("-")[0],
                   "--target-lang", args.pair.split("-")[1], "--valid-subset", "valid", *extra]
        result = subprocess.run(command, capture_output=True, text=True)
        found = LOSS.findall(result.stdout + result.stderr)
        if result.returncode != 0 or not found:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            print(f"base_curve: error: fairseq-validate failed on {path}: {' | '.join(tail)}", file=sys.stderr)
            return 1
        points[update] = {"update": update, "valid_loss": float(found[-1]), "checkpoint": str(path)}
        print(f"{path.name}: update {update}, {args.pair} valid loss {found[-1]}")
    atomic_write_json(args.output, {args.pair: [points[u] for u in sorted(points)]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
