"""Where a step's time goes: ``torch.profiler`` over P1's and P7's training steps (adapters against full
fine-tuning), and P3's generation and P6's inference (adapters against the bare model).

    python -m bench.time_profile                       # P1 (nmt, bench shape) and P7 (xling, real encoder shape)
    python -m bench.time_profile --which p1 --steps 3 --json p1.json
    python -m bench.time_profile --device cuda --which p1,p3,p6,p7   # self CUDA time per op, kernel counts;
                                                       # on CUDA at the GPU shapes' headline (bench.*_bench)

For each variant: a warm-up step, then ``--steps`` profiled steps; per op
(``aten::...``) the self time (CPU on the CPU; CUDA kernels' time on a GPU)
and call count, summed over the steps and divided by them, plus the total.
The rows are the ops whose time differs most between the two variants: on
the CPU this shows what the frozen base saves (the weight gradients,
``aten::mm`` in backward, and the optimizer) and what the adapters add; on a
GPU at these shapes it shows the number of kernel launches.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from .harness import RunSettings, apply_threads, device_description, log


def op_times(step, steps: int, device: torch.device) -> dict:
    """{op: [self seconds per step, calls per step]}, their sum, and the unprofiled wall seconds per step."""
    from .harness import timed

    step()  # warm-up
    wall = sum(timed(step, device) for _ in range(steps)) / steps  # unprofiled
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    table: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in prof.key_averages():
        seconds = (event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total) / 1e6
        if seconds or event.count:
            table[event.key][0] += seconds / steps
            table[event.key][1] += event.count / steps
    total = sum(seconds for seconds, _ in table.values())
    return {"ops": dict(table), "total_s": total, "wall_s": wall}


def nmt_shapes(device: torch.device, quick: bool):
    """(training shape, generation shape) of the NMT benchmarks' headline figures on this device."""
    from .nmt_bench import GPU_GENERATION_SHAPES, GPU_TRAIN_SHAPES, QUICK_SHAPE, NmtShape

    if quick:
        return QUICK_SHAPE, QUICK_SHAPE
    if device.type == "cuda":
        return GPU_TRAIN_SHAPES[0], GPU_GENERATION_SHAPES[0]
    return NmtShape(), NmtShape()


def nmt_variants(shape, device: torch.device):
    """(the adapter model and the plain base, as ``nmt_bench.build_variants``; the folder to keep alive)."""
    from .nmt_bench import build_variants, write_dictionaries

    tmp = tempfile.TemporaryDirectory(prefix="bench-profile-")
    write_dictionaries(Path(tmp.name), shape)
    return build_variants(Path(tmp.name), shape, device), tmp


def p1_steps(device: torch.device, quick: bool) -> dict:
    from .nmt_bench import make_sample

    shape = nmt_shapes(device, quick)[0]
    variants, tmp = nmt_variants(shape, device)
    adapter, full = variants["adapter"], variants["full"]
    one_pair = make_sample(adapter.task, shape, ["en-de"], device)
    plain = make_sample(full.task, shape, ["en-de"], device, with_lang_ids=False)
    return {"adapters": lambda: adapter.train_step(one_pair), "full fine-tuning": lambda: full.train_step(plain),
            "_keep": tmp}


def p7_steps(device: torch.device, quick: bool) -> dict:
    from .xling_bench import task_training_steps

    steps, _ = task_training_steps(RunSettings(device=device.type, quick=quick), device)
    return {"adapters": steps["task adapter"], "full fine-tuning": steps["full fine-tuning"]}


def p3_steps(device: torch.device, quick: bool) -> dict:
    """Beam search through the task's ``inference_step``, with adapters and on the bare base (P3)."""
    from fairseq.dataclass.configs import GenerationConfig

    from .nmt_bench import make_sample

    shape = nmt_shapes(device, quick)[1]
    variants, tmp = nmt_variants(shape, device)
    config = GenerationConfig(beam=shape.beam, max_len_a=0, max_len_b=shape.gen_length, min_len=shape.gen_length)
    steps = {"_keep": tmp}
    for name, label in (("adapter", "adapters"), ("full", "base")):
        variant = variants[name]
        variant.model.eval()
        generator = variant.task.build_generator([variant.model], config)
        sample = make_sample(variant.task, shape, ["en-de"], device, with_lang_ids=name == "adapter", generation=True)
        steps[label] = (lambda v=variant, g=generator, s=sample: v.task.inference_step(g, [v.model], s))
    return steps


def p6_steps(device: torch.device, quick: bool) -> dict:
    """Token-classification inference with Stack(language, task) + NICE, and on the bare encoder (P6)."""
    from .adapterhub_worker import build_encoder
    from .xling_bench import stacked_copy
    from .xling_shapes import _batch, shapes_for

    shape = shapes_for(RunSettings(device=device.type, quick=quick), device)[0]
    torch.manual_seed(0)
    plain = build_encoder(shape.encoder, "tags").to(device).eval()
    adapted, host = stacked_copy(plain, "ner")
    for module in host.model.modules():
        if hasattr(module, "up") and isinstance(module.up, torch.nn.Linear):
            torch.nn.init.normal_(module.up.weight, std=0.02)
    adapted.to(device).eval()
    inputs = {k: v for k, v in _batch(plain, shape, device).items() if k != "labels"}

    def forward(model):
        def step():
            with torch.inference_mode():
                model(**inputs)
        return step
    return {"adapters": forward(adapted), "base": forward(plain)}


def compare(steps: dict, count: int, device: torch.device, rows: int) -> dict:
    """Per-op times of ``steps["adapters"]`` against the other variant (full fine-tuning, or the bare model),
    whose figures are under the ``full_*`` keys."""
    measured = {name: op_times(step, count, device) for name, step in steps.items() if not name.startswith("_")}
    other = next(name for name in measured if name != "adapters")
    adapter, full = measured["adapters"]["ops"], measured[other]["ops"]
    names = set(adapter) | set(full)
    diff = sorted(names, key=lambda op: abs(adapter.get(op, [0, 0])[0] - full.get(op, [0, 0])[0]), reverse=True)
    table = [{"op": op, "adapters_ms": round(1000 * adapter.get(op, [0, 0])[0], 2),
              "full_ms": round(1000 * full.get(op, [0, 0])[0], 2), "adapters_calls": round(adapter.get(op, [0, 0])[1]),
              "full_calls": round(full.get(op, [0, 0])[1])} for op in diff[:rows]]
    return {"wall_ms": {k: round(1000 * v["wall_s"], 1) for k, v in measured.items()},
            "total_ms": {k: round(1000 * v["total_s"], 1) for k, v in measured.items()},
            "calls": {k: round(sum(c for _, c in v["ops"].values())) for k, v in measured.items()},
            "ops": table}


def format_report(name: str, report: dict) -> str:
    lines = [f"{name}: wall time per step {report['wall_ms']} ms (unprofiled); summed self time of the ops "
             f"{report['total_ms']} ms; op calls {report['calls']}",
             f"{'op':44} {'adapters ms':>12} {'full ms':>9} {'calls a/f':>12}"]
    for row in report["ops"]:
        lines.append(f"{row['op'][:44]:44} {row['adapters_ms']:>12} {row['full_ms']:>9} "
                     f"{row['adapters_calls']:>5}/{row['full_calls']:<6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", default="p1,p7", help="comma-separated: p1, p3 (nmt), p6, p7 (xling)")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps per variant (after one warm-up)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="toy shapes (a smoke run)")
    parser.add_argument("--json", default=None, help="also write the reports here")
    args = parser.parse_args(argv)
    settings = RunSettings(device=args.device, threads=args.threads, quick=args.quick)
    apply_threads(settings)
    device = torch.device(args.device)
    reports = {"device": device_description(device, args.threads)}
    for which in [w.strip() for w in args.which.split(",") if w.strip()]:
        log(f"profiling {which}")
        steps = {"p1": p1_steps, "p3": p3_steps, "p6": p6_steps, "p7": p7_steps}[which](device, args.quick)
        reports[which] = compare(steps, args.steps, device, args.rows)
        print(format_report(which.upper(), reports[which]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
