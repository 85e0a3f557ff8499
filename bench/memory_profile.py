"""What P2's training step keeps in memory: tensors saved for backward by op, gradients and optimizer state.

    python -m bench.memory_profile                       # both variants at the P2 shape (a minute or two each)
    python -m bench.memory_profile --variant adapter --quick
    python -m bench.memory_profile --lean relu,dropout --peak   # with nmt.modules.lean_ops swapped in, plus P2's peak RSS
    python -m bench.memory_profile --json out.json

For one training update (``Variant.train_step``: forward, label-smoothed
loss, backward, fairseq's Adam) of the P2 models (``bench.nmt_bench``), a
``torch.autograd.graph.saved_tensors_hooks`` pack hook sees every tensor
autograd saves for backward.  Each is recorded once per storage (a tensor
saved by two nodes, or a view of a stored tensor, costs its storage once),
classified as a parameter (its storage is a model parameter's: costs nothing
extra) or an activation, and attributed to

- its producer: the ``grad_fn`` of the saved tensor (``ReluBackward0`` for a
  ReLU output; "(no grad_fn)" for a tensor that needs no gradient, e.g. a
  boolean dropout mask or an index);
- its consumers: the autograd nodes that hold it (``NativeLayerNormBackward0``
  for a LayerNorm input), found by walking the graph from the loss just
  before backward.

After the update come the gradient bytes and the optimizer state bytes.  The
sum of saved activation bytes is what the step holds at the end of the
forward pass on top of the weights; backward then adds transient gradients
(the largest: the logits' 4,096 x 16k gradient).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nmt.modules.lean import LEAN_OPS, use_lean_ops

from .harness import peak_rss
from .nmt_bench import QUICK_SHAPE, NmtShape, build_variants, make_sample, write_dictionaries

#: The adapter model is built with fairseq's stock ops (no --adapter-lean-ops), so that --lean chooses the lean ops.
STOCK: tuple[str, ...] = ()

MB = 1e6


@dataclass
class SavedRecord:
    """One storage saved for backward."""

    # Bytes of the whole storage (what keeping it alive costs).
    nbytes: int
    # dtype and shape of the first tensor saved from it.
    dtype: str
    shape: tuple
    # The grad_fn name of the saved tensor, or "(no grad_fn)".
    producer: str
    # The autograd nodes that saved it, joined by "+" (whose backward reads it).
    consumer: str
    # True when the storage is a model parameter's.
    parameter: bool


@dataclass
class StepMemory:
    """What one training update of one variant holds."""

    # "adapter" or "full".
    variant: str
    # Saved storages, in the order they were first saved.
    saved: list[SavedRecord] = field(default_factory=list)
    # Bytes of all parameters, of trainable ones, of their gradients after backward, of the optimizer state.
    parameter_bytes: int = 0
    trainable_bytes: int = 0
    grad_bytes: int = 0
    optimizer_state_bytes: int = 0

    def activation_bytes(self) -> int:
        return sum(r.nbytes for r in self.saved if not r.parameter)

    def grouped(self, key: str) -> list[tuple[str, int, int]]:
        """(group, activation bytes, storages) by ``producer`` or ``consumer``, largest first."""
        sizes, counts = defaultdict(int), defaultdict(int)
        for record in self.saved:
            if not record.parameter:
                sizes[getattr(record, key)] += record.nbytes
                counts[getattr(record, key)] += 1
        return sorted(((k, sizes[k], counts[k]) for k in sizes), key=lambda row: -row[1])

    def summary(self) -> dict:
        return {"variant": self.variant, "activation_bytes": self.activation_bytes(),
                "parameter_bytes": self.parameter_bytes, "trainable_bytes": self.trainable_bytes,
                "grad_bytes": self.grad_bytes, "optimizer_state_bytes": self.optimizer_state_bytes,
                "by_producer": self.grouped("producer"), "by_consumer": self.grouped("consumer"),
                "by_consumer_and_dtype": _by_pair(self.saved)}


def _by_pair(saved: list[SavedRecord]) -> list[tuple[str, int, int]]:
    sizes, counts = defaultdict(int), defaultdict(int)
    for record in saved:
        if not record.parameter:
            key = f"{record.consumer} <- {record.producer} [{record.dtype}]"
            sizes[key] += record.nbytes
            counts[key] += 1
    return sorted(((k, sizes[k], counts[k]) for k in sizes), key=lambda row: -row[1])


def consumers(loss: torch.Tensor) -> dict[int, set[str]]:
    """Storage address -> names of the autograd nodes that saved a tensor of it, for the graph behind ``loss``."""
    found: dict[int, set[str]] = defaultdict(set)
    stack, visited = [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        for attribute in dir(node):
            if attribute.startswith("_saved_"):
                try:
                    value = getattr(node, attribute)
                except RuntimeError:  # already freed
                    continue
                for tensor in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(tensor, torch.Tensor):
                        found[tensor.untyped_storage().data_ptr()].add(type(node).__name__)
        if hasattr(node, "saved_tensors"):  # a custom autograd.Function (ctx.save_for_backward)
            for tensor in node.saved_tensors:
                if isinstance(tensor, torch.Tensor):
                    found[tensor.untyped_storage().data_ptr()].add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def profile_step(variant, sample, name: str) -> StepMemory:
    """Run one update of ``variant`` on ``sample`` and record what it saves and keeps."""
    report = StepMemory(variant=name)
    params = list(variant.model.parameters())
    param_storages = {p.untyped_storage().data_ptr() for p in params}
    seen: set[int] = set()
    records: dict[int, SavedRecord] = {}
    optimizer_backward = variant.optimizer.backward

    def backward(loss, *args, **kwargs):  # fairseq's task.train_step calls optimizer.backward(loss)
        for pointer, names in consumers(loss).items():
            if pointer in records:
                records[pointer].consumer = "+".join(sorted(names))
        return optimizer_backward(loss, *args, **kwargs)


    def pack(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in seen and storage.nbytes() > 0:
            seen.add(pointer)
            producer = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else "(no grad_fn)"
            record = SavedRecord(nbytes=storage.nbytes(), dtype=str(tensor.dtype).replace("torch.", ""),
                                 shape=tuple(tensor.shape), producer=producer, consumer="?",
                                 parameter=pointer in param_storages)
            report.saved.append(record)
            records[pointer] = record
        return tensor

    # The saved tensors stay alive until backward, so their storages' addresses are unique during the forward.
    variant.optimizer.backward = backward
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            variant.train_step(sample)
    finally:
        del variant.optimizer.backward
    report.parameter_bytes = sum(p.numel() * p.element_size() for p in params)
    report.trainable_bytes = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    report.grad_bytes = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    inner = getattr(variant.optimizer, "optimizer", variant.optimizer)
    report.optimizer_state_bytes = sum(v.numel() * v.element_size() for state in inner.state.values()
                                       for v in state.values() if isinstance(v, torch.Tensor))
    return report


def peak_worker(variant: str, lean: tuple[str, ...], shape: NmtShape, steps: int = 2) -> dict:
    """P2's measurement (fresh process, ``steps`` updates, peak RSS) with lean ops swapped in."""
    import fairseq  # noqa: F401  (the runtime is part of the baseline, as in P2)

    report = {"variant": variant, "lean": list(lean), "rss_after_imports": peak_rss()}
    with tempfile.TemporaryDirectory(prefix="bench-nmt-peak-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        built = build_variants(directory, shape, torch.device("cpu"), (variant,), STOCK)[variant]
        report["swapped"] = use_lean_ops(built.model, lean)
        sample = make_sample(built.task, shape, ["en-de"], torch.device("cpu"), with_lang_ids=variant == "adapter")
        for _ in range(steps):
            built.train_step(sample)
    report["peak_rss"] = peak_rss()
    return report


def run(shape: NmtShape, variants: tuple[str, ...] = ("adapter", "full"), lean: tuple[str, ...] = ()) -> dict[str, StepMemory]:
    """Profile one update of each variant at ``shape`` on the CPU (the grads are zeroed by the step's own zero_grad)."""
    device = torch.device("cpu")
    reports = {}
    with tempfile.TemporaryDirectory(prefix="bench-nmt-memprof-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        for name in variants:
            built = build_variants(directory, shape, device, (name,), STOCK)[name]
            use_lean_ops(built.model, lean)
            sample = make_sample(built.task, shape, ["en-de"], device, with_lang_ids=name == "adapter")
            reports[name] = profile_step(built, sample, name + (f" (lean {'+'.join(lean)})" if lean else ""))
            del built
    return reports


def format_table(report: StepMemory, rows: int = 14) -> str:
    lines = [f"## {report.variant}: saved activations {report.activation_bytes() / MB:,.1f} MB "
             f"(params {report.parameter_bytes / MB:,.1f} MB, trainable {report.trainable_bytes / MB:,.1f} MB, "
             f"grads {report.grad_bytes / MB:,.1f} MB, optimizer state {report.optimizer_state_bytes / MB:,.1f} MB)",
             f"{'saved by (node) <- produced by [dtype]':<72}{'MB':>9}{'count':>7}"]
    for key, size, count in _by_pair(report.saved)[:rows]:
        lines.append(f"{key:<72}{size / MB:>9.1f}{count:>7}")
    return "\n".join(lines)


def run_peaks(shape_flag: list[str], variants: tuple[str, ...], lean: tuple[str, ...], threads: int) -> list[dict]:
    """P2's peak RSS of each variant, stock and with ``lean`` ops, each in a fresh process."""
    import subprocess
    import sys

    reports = []
    for variant in variants:
        for ops in ((), lean) if lean else ((),):
            argv = [sys.executable, "-m", "bench.memory_profile", "--peak-worker", "--variant", variant,
                    "--threads", str(threads), "--lean", ",".join(ops)] + shape_flag
            done = subprocess.run(argv, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]))
            lines = [line for line in done.stdout.splitlines() if line.startswith("PEAK ")]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"peak worker {variant} {ops} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            reports.append(json.loads(lines[-1][len("PEAK "):]))
            print(f"peak RSS {variant:8} lean={'+'.join(ops) or '-':13} {reports[-1]['peak_rss'] / MB:,.0f} MB "
                  f"(after imports {reports[-1]['rss_after_imports'] / MB:,.0f} MB)", flush=True)
    return reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["adapter", "full", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="the toy shape of --quick benchmarks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=14, help="table rows per variant")
    parser.add_argument("--lean", default="", help=f"comma-separated lean ops to swap in: {', '.join(LEAN_OPS)}")
    parser.add_argument("--peak", action="store_true", help="also P2's peak RSS, stock and with --lean, in fresh processes")
    parser.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the summaries here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = ("adapter", "full") if args.variant == "both" else (args.variant,)
    lean = tuple(op for op in args.lean.split(",") if op)
    shape = QUICK_SHAPE if args.quick else NmtShape()
    if args.peak_worker:
        print("PEAK " + json.dumps(peak_worker(variants[0], lean, shape)), flush=True)
        return
    reports = run(shape, variants, lean)
    for report in reports.values():
        print(format_table(report, args.rows) + "\n", flush=True)
    summary = {k: r.summary() for k, r in reports.items()}
    if args.peak:
        summary["peaks"] = run_peaks(["--quick"] if args.quick else [], variants, lean, args.threads)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
