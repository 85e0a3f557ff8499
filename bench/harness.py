"""Timing and bookkeeping shared by the benchmarks: devices, threads, alternating medians, results.

Every figure is a ratio of two (or more) variants measured side by side in
one process (or in worker processes driven from one loop): the variants run
in turn, one repetition each, their order alternating between rounds, and
each variant's median over the rounds is compared.  Timings synchronise
CUDA before reading the clock.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from adapter_core import atomic_write_json

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


@dataclass
class RunSettings:
    """How one `python -m bench` run measures (shared by all benchmarks)."""

    # "cpu" or "cuda" ("auto" picks CUDA when present).
    device: str = "auto"
    # torch intra-op threads on CPU (the same for every variant and worker process).
    threads: int = 1
    # Timed rounds per benchmark (each round runs every variant once).
    rounds: int = 3
    # Untimed rounds first (allocator, caches, lazy initialisation).
    warmup: int = 1
    # Toy shapes and one round: a smoke run of the harness, not a measurement.
    quick: bool = False
    # On CUDA, only the headline shape of each benchmark (the first of its GPU shapes).
    headline_only: bool = False

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def apply_threads(settings: RunSettings) -> None:
    torch.set_num_threads(settings.threads)


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: torch.device, threads: int) -> str:
    """A short label saying where a figure was measured (the card, or the CPU model, cores and threads)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{cpu_model()} ({os.cpu_count()} cores), {threads} torch thread(s)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, with CUDA synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


@dataclass
class SelfTimed:
    """What a variant returns when it timed itself (a worker process's own clock, without the pipe)."""

    # Seconds the work took, as measured where it ran.
    seconds: float


def alternate(variants: dict[str, Callable[[], object]], settings: RunSettings, device: torch.device,
              label: str = "") -> dict[str, list[float]]:
    """Run every variant once per round, alternating the order; return each variant's timed seconds
    (a variant returning ``SelfTimed`` reports its own time instead of the wall time of the call)."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    total = settings.warmup + settings.rounds
    for round_index in range(total):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            outcome: list = []
            seconds = timed(lambda: outcome.append(variants[name]()), device)
            if outcome and isinstance(outcome[0], SelfTimed):
                seconds = outcome[0].seconds
            if round_index >= settings.warmup:
                times[name].append(seconds)
            log(f"{label} round {round_index + 1}/{total} {'(warm-up) ' if round_index < settings.warmup else ''}"
                f"{name}: {seconds:.3f} s")
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def peak_rss() -> int:
    """This process's peak RSS so far, bytes: VmHWM (ru_maxrss would include a forking parent's peak on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB; macOS: bytes


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Result:
    """One benchmark's figure, as written to ``bench/results.json``."""

    # The ratio (or ratio-like figure) the target applies to; None when skipped.
    value: float | None
    # The target, e.g. ">= 1.4" or "<= 0.6".
    target: str
    # Whether the value meets the target (False when skipped).
    met: bool
    # Where it was measured (device, threads).
    device: str
    # What was measured, in one line.
    measure: str = ""
    # The raw medians and settings behind the ratio.
    details: dict = field(default_factory=dict)
    # Why it was skipped, if it was.
    skipped: str = ""


def check_target(value: float, target: str) -> bool:
    """``value`` against a target written ">= 1.4" or "<= 0.6"."""
    op, _, bound = target.partition(" ")
    if op == ">=":
        return value >= float(bound)
    if op == "<=":
        return value <= float(bound)
    raise ValueError(f"target {target!r}: expected '>= X' or '<= X'")


def make_result(value: float, target: str, device: str, measure: str, **details) -> Result:
    return Result(value=round(value, 4), target=target, met=check_target(value, target), device=device,
                  measure=measure, details=details)


def skipped_result(target: str, device: str, measure: str, reason: str) -> Result:
    log(f"skipped: {reason}")
    return Result(value=None, target=target, met=False, device=device, measure=measure, skipped=reason)


def _figures(entries: dict) -> dict:
    return {key: value for key, value in entries.items() if key.startswith(("P", "L", "D", "S"))}


def write_results(results: dict[str, Result], path: Path = RESULTS_PATH, settings: RunSettings | None = None) -> Path:
    """Merge ``results`` into ``path`` (figures of benchmarks not run this time are kept), atomically.

    CPU figures sit at the top level; figures measured on CUDA go under the ``cuda`` key (with
    their own ``_run``), so a GPU run never overwrites the CPU table or the other way round.
    """
    existing = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            existing = {}
    on_cuda = settings is not None and settings.torch_device().type == "cuda"
    cpu_part = _figures(existing)
    cuda_part = existing.get("cuda", {}) if isinstance(existing.get("cuda"), dict) else {}
    target = _figures(cuda_part) if on_cuda else cpu_part
    target.update({key: asdict(result) for key, result in results.items()})
    run = None
    if settings is not None:
        run = {**asdict(settings), "torch": torch.__version__, "python": platform.python_version(),
               "when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu_model(), "cpu_count": os.cpu_count()}
        if on_cuda:
            run["card"] = torch.cuda.get_device_name(settings.torch_device())
    merged = dict(cpu_part)
    if "_run" in existing:
        merged["_run"] = existing["_run"]
    if on_cuda:
        merged["cuda"] = dict(sorted({**target, "_run": run or cuda_part.get("_run")}.items()))
    else:
        merged.update(target)
        if cuda_part:
            merged["cuda"] = cuda_part
        if run is not None:
            merged["_run"] = run
    atomic_write_json(path, dict(sorted(merged.items())))
    return path


# -- worker processes -----------------------------------------------------------------------


class Worker:
    """A benchmark worker in its own process (its own venv for AdapterHub), driven line by line.

    The worker may print ``INFO {json}`` lines (collected in ``info``), prints
    ``READY`` once built, then answers each line ``STEP n`` with one JSON line:
    the seconds of each of n steps.  ``QUIT`` ends it.
    """

    def __init__(self, argv: list[str], env: dict | None = None, cwd: str | None = None):
        self.argv = argv
        self.info: dict = {}
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                        text=True, env=env, cwd=cwd, bufsize=1)
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        while True:
            line = self.process.stdout.readline()
            if not line:
                code = self.process.wait()
                raise RuntimeError(f"worker {' '.join(self.argv[:3])} ... exited with code {code} (see its stderr above)")
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if line.startswith("INFO "):
                self.info.update(json.loads(line[len("INFO "):]))

    def steps(self, count: int) -> list[float]:
        self.process.stdin.write(f"STEP {count}\n")
        self.process.stdin.flush()
        return json.loads(self._expect("TIMES"))

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("QUIT\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def serve(step: Callable[[], None], device: torch.device, info: dict | None = None) -> None:
    """The worker side of ``Worker``: announce READY, then time ``step`` on request."""
    if info:
        print("INFO " + json.dumps(info), flush=True)
    print("READY", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "QUIT":
            break
        if command[0] == "STEP":
            times = [timed(step, device) for _ in range(int(command[1]))]
            print("TIMES " + json.dumps(times), flush=True)
