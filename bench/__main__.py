"""``python -m bench`` (``make bench``): run P1-P8, L1, D1-D2, S1-S2, print the ratios, write ``bench/results.json``.

    python -m bench                    # everything, realistic shapes, 1 torch thread
    python -m bench --only P1,P4       # some of them (other figures in results.json are kept)
    python -m bench --quick            # toy shapes, one round: a smoke run of the harness, not a measurement
    python -m bench --threads 2 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

#: D1/D2: AdapterDrop's speed-up (xling, nmt); figures, not targets.
#: S1/S2: the transformers translation host (xling.seq2seq) in generation.
BENCHMARKS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "L1", "D1", "D2", "S1", "S2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="toy shapes and one round (smoke run, not a measurement)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU, the same for every variant (default 1)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: CUDA when present")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3; 1 with --quick)")
    parser.add_argument("--headline-only", action="store_true", help="on CUDA, only each benchmark's headline shape")
    parser.add_argument("--output", default=None, help="results file (default bench/results.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    unknown = sorted(only - set(BENCHMARKS))
    if unknown:
        print(f"python -m bench: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Worker processes inherit the thread count through their flags; OpenMP pools through this.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")  # fairseq/hydra deprecation noise

    from .harness import RESULTS_PATH, RunSettings, apply_threads, log, write_results

    settings = RunSettings(device=args.device, threads=args.threads, quick=args.quick,
                           rounds=args.rounds or (1 if args.quick else 3), warmup=1, headline_only=args.headline_only)
    apply_threads(settings)
    results = {}
    started = time.perf_counter()
    if only & {"P1", "P2", "P3", "P4"}:
        from . import nmt_bench

        logging.getLogger("fairseq").setLevel(logging.WARNING)
        results.update(nmt_bench.run(settings, only))
    if only & {"P5", "P6", "P7", "P8"}:
        from . import xling_bench

        results.update(xling_bench.run(settings, only))
    if "L1" in only:
        from . import generation_soak

        results.update(generation_soak.run(settings))
    if "D1" in only:
        from . import drop_bench

        results.update(drop_bench.run(settings, only, plot_path=None if args.quick else drop_bench.PLOT_PATH))
    if "D2" in only:
        from . import nmt_drop_bench

        results.update(nmt_drop_bench.run(settings, only, plot_path=None if args.quick else nmt_drop_bench.PLOT_PATH))
    if only & {"S1", "S2"}:
        from . import seq2seq_bench

        results.update(seq2seq_bench.run(settings, only))
    path = write_results(results, Path(args.output) if args.output else RESULTS_PATH, settings)
    print(f"\n{'':4}{'value':>9}  {'target':>8}  met  measure")
    for key in sorted(results):
        result = results[key]
        value = "skipped" if result.value is None else f"{result.value:.3f}"
        print(f"{key:4}{value:>9}  {result.target:>8}  {'yes' if result.met else 'no ':3}  {result.measure}")
    print(f"\ndevice: {next(iter(results.values())).device if results else '-'}; "
          f"{time.perf_counter() - started:.0f} s; written to {path}")
    log("figures from --quick are smoke-run numbers on toy shapes, not measurements" if args.quick else "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
