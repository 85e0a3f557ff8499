"""D1: the AdapterDrop speed-up, in training and at inference, against n dropped layers (``xling.drop``).

    python -m bench.drop_bench                  # P6's XLM-R config (hidden 256, 4 layers), n = 0..3, 9 rounds
    python -m bench.drop_bench --quick          # toy shapes, one round: a smoke run, not a measurement
    python -m bench.drop_bench --layers 12 --dropped 0,2,4,6,8,10 --key D1-12L --plot bench/adapterdrop_speedup_12l.png

Rücklé et al. (2021): with the adapters of the lowest n layers dropped, no
gradient is needed below layer n, so ``xling.drop.AdapterDrop`` detaches the
hidden state entering it and autograd keeps (and back-propagates through)
nothing below.  The model is P6's: XLM-R token classification, ``Stack(lang,
ner)`` (MAD-X language adapter rf 2 with NICE, task adapter rf 16).  Training
is task-adapter training (base and language adapter frozen, task adapter and
classifier trained, AdamW 1e-4, batch 16 x 128); inference runs the same
model in eval mode under ``torch.inference_mode``.  One model serves every
n: each variant sets the AdapterDrop n before its step.  The variants run in
turn, the order alternating each round (``bench.harness.alternate``), and
the figures are speed-ups over n = 0 of the medians.  Results go to
``bench/results.json`` under ``D1`` and the plot to ``bench/adapterdrop_speedup.png``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .adapterhub_worker import BATCH, QUICK_BATCH, QUICK_CONFIG, QUICK_SEQUENCE, SEQUENCE, XLMR_CONFIG, mlm_batch
from .harness import (RESULTS_PATH, Result, RunSettings, alternate, apply_threads, check_target, device_description,
                      log, median, write_results)

PLOT_PATH = Path(__file__).resolve().parent / "adapterdrop_speedup.png"
MEASURE = ("AdapterDrop (xling.drop): task-adapter training steps/s and inference/s with the adapters of the lowest "
           "n layers dropped, / n = 0; value: training speed-up at the largest n")
NUM_LABELS = 9  # CoNLL NER tags, as P6


@dataclass
class DropBenchConfig:
    """What D1 measures."""

    # Encoder layers of the XLM-R config (P6: 4).
    layers: int = 4
    # The numbers of dropped lowest layers to compare (0 is the reference).
    dropped: tuple[int, ...] = (0, 1, 2, 3)
    # Toy shapes (hidden 32, batch 2 x 16): a smoke run, not a measurement.
    quick: bool = False


def build(config: DropBenchConfig, device: torch.device):
    """(model, host, AdapterDrop, optimizer, inputs, labels): P6's adapted token-classification model."""
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    from adapter_core import Stack
    from xling.attach import TransformersHost
    from xling.drop import AdapterDrop, AdapterDropConfig

    torch.manual_seed(0)
    xlmr = XLMRobertaConfig(**dict(QUICK_CONFIG if config.quick else XLMR_CONFIG, num_hidden_layers=config.layers))
    xlmr.num_labels = NUM_LABELS
    model = XLMRobertaForTokenClassification(xlmr)
    host = TransformersHost(model)
    host.add_adapter("lang", role="language")
    host.add_adapter("ner", role="task")
    for module in model.modules():  # trained adapters are not the identity: give them random weights
        if hasattr(module, "up") and isinstance(module.up, nn.Linear):
            nn.init.normal_(module.up.weight, std=0.02)
    host.set_active(Stack("lang", "ner"))
    host.train_only(["ner"], train_head=True)
    model.to(device)
    drop = AdapterDrop(host, AdapterDropConfig(mode="specialised", num_dropped=0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = mlm_batch(xlmr.vocab_size, QUICK_BATCH if config.quick else BATCH, QUICK_SEQUENCE if config.quick else SEQUENCE)
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    labels = torch.randint(0, NUM_LABELS, batch["input_ids"].shape, generator=torch.Generator().manual_seed(1)).to(device)
    return model, host, drop, optimizer, inputs, labels


def linear_macs(module: nn.Module) -> int:
    """Multiply-adds per token of every ``nn.Linear`` inside ``module``."""
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


def inference_macs(host, names: tuple[str, ...], sequence: int, dropped: int = 0) -> tuple[int, int]:
    """(base, adapter) multiply-adds per token of a token-classification forward with ``Stack(*names)``.

    Base: every Linear outside the adapters plus attention (QK^T and AV, 2·seq·hidden
    per layer).  Adapter: the stacked bottlenecks of the layers from ``dropped`` up,
    plus the first adapter's invertible (NICE) adapter, which AdapterDrop keeps.
    """
    adapters = sum(linear_macs(host.outputs[i].madx_adapters) for i in range(len(host.outputs)))
    adapters += linear_macs(host.embeddings.madx_invertible)
    base = linear_macs(host.model) - adapters + 2 * sequence * host.hidden_size * len(host.outputs)
    kept = sum(linear_macs(host.outputs[i].madx_adapters.adapters[n]) for i in range(dropped, len(host.outputs))
               for n in names if n in host.outputs[i].madx_adapters.adapters)
    invertible = host.embeddings.madx_invertible.adapters
    kept += linear_macs(invertible[names[0]]) if names and names[0] in invertible else 0
    return base, kept


def measure(settings: RunSettings, config: DropBenchConfig) -> Result:
    device = settings.torch_device()
    where = device_description(device, settings.threads)
    model, host, drop, optimizer, inputs, labels = build(config, device)
    loss_fn = nn.CrossEntropyLoss()

    def train(n: int):
        def step() -> None:
            drop.config.num_dropped = n
            model.train()
            logits = model(**inputs).logits
            loss_fn(logits.reshape(-1, NUM_LABELS), labels.reshape(-1)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    def infer(n: int):
        def step() -> None:
            drop.config.num_dropped = n
            model.eval()
            with torch.inference_mode():
                model(**inputs)
        return step

    rounds = settings if settings.quick else RunSettings(
        device=settings.device, threads=settings.threads, warmup=max(1, settings.warmup), rounds=max(9, 3 * settings.rounds))
    variants = {f"train n={n}": train(n) for n in config.dropped}
    variants.update({f"infer n={n}": infer(n) for n in config.dropped})
    times = alternate(variants, rounds, device, "D1")
    drop.remove()
    reference = config.dropped[0]
    ms = {name: 1000 * median(values) for name, values in times.items()}
    train_speedup = {n: ms[f"train n={reference}"] / ms[f"train n={n}"] for n in config.dropped}
    infer_speedup = {n: ms[f"infer n={reference}"] / ms[f"infer n={n}"] for n in config.dropped}
    sequence = QUICK_SEQUENCE if config.quick else SEQUENCE
    flops = {n: inference_macs(host, ("lang", "ner"), sequence, n) for n in config.dropped}
    flop_speedup = {n: sum(flops[reference]) / sum(flops[n]) for n in config.dropped}
    value = train_speedup[config.dropped[-1]]
    target = ">= 1.0"  # dropping adapters must never slow a step down; the figures are the point
    return Result(value=round(value, 4), target=target, met=check_target(value, target), device=where, measure=MEASURE,
                  details={"dropped": list(config.dropped), "layers": config.layers,
                           "train_speedup": {str(n): round(v, 4) for n, v in train_speedup.items()},
                           "inference_speedup": {str(n): round(v, 4) for n, v in infer_speedup.items()},
                           "inference_flop_speedup": {str(n): round(v, 4) for n, v in flop_speedup.items()},
                           "ms_per_step": {k: round(v, 2) for k, v in ms.items()}, "rounds": rounds.rounds,
                           "config": dict(QUICK_CONFIG if config.quick else XLMR_CONFIG, num_hidden_layers=config.layers),
                           "batch": [QUICK_BATCH, QUICK_SEQUENCE] if config.quick else [BATCH, SEQUENCE],
                           "training": "task adapter + classifier trained (base, language adapter frozen), AdamW"})


def plot(result: Result, path: Path) -> Path:
    from xling.plots import lines_png

    details = result.details
    xs = details["dropped"]
    series = {"training steps/s": (xs, [details["train_speedup"][str(n)] for n in xs]),
              "inference/s": (xs, [details["inference_speedup"][str(n)] for n in xs]),
              "inference, FLOP model": (xs, [details["inference_flop_speedup"][str(n)] for n in xs])}
    device = "CUDA" if result.device.startswith("cuda") else "CPU"
    return lines_png(series, path, f"AdapterDrop, XLM-R {details['layers']} layers, "
                     f"{details['batch'][0]}x{details['batch'][1]} tokens, {device}",
                     "adapters dropped in the lowest n layers", "speed-up over n = 0")


def run(settings: RunSettings, only: set[str], config: DropBenchConfig | None = None,
        plot_path: Path | None = PLOT_PATH) -> dict[str, Result]:
    """``D1`` for ``python -m bench`` (when listed in ``only``); writes the plot unless ``plot_path`` is None."""
    if "D1" not in only:
        return {}
    result = measure(settings, config or DropBenchConfig(quick=settings.quick))
    if plot_path is not None:
        result.details["plot"] = f"bench/{plot(result, plot_path).name}"
    return {"D1": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drop_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy shapes and one round (smoke run, not a measurement)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 9; 1 with --quick)")
    parser.add_argument("--layers", type=int, default=4, help="encoder layers (default 4, as P6)")
    parser.add_argument("--dropped", default="0,1,2,3", help="comma-separated n to compare, the first is the reference")
    parser.add_argument("--output", default=None, help="results file (default bench/results.json)")
    parser.add_argument("--key", default="D1", help="results key (default D1; e.g. D1-12L for --layers 12), starts with D")
    parser.add_argument("--plot", default=str(PLOT_PATH), help="PNG of speed-up vs n ('' for none)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    settings = RunSettings(device=args.device, threads=args.threads, quick=args.quick,
                           rounds=args.rounds or (1 if args.quick else 3), warmup=1)
    apply_threads(settings)
    config = DropBenchConfig(layers=args.layers, dropped=tuple(int(n) for n in args.dropped.split(",")), quick=args.quick)
    started = time.perf_counter()
    if not args.key.startswith("D"):
        parser.error("--key must start with D (results.json keeps P*, L* and D* keys)")
    results = {args.key: run(settings, {"D1"}, config, Path(args.plot) if args.plot else None)["D1"]}
    path = write_results(results, Path(args.output) if args.output else RESULTS_PATH, settings)
    details = results[args.key].details
    print(f"{'n':>3}  {'train x':>8}  {'infer x':>8}  {'FLOP x':>7}")
    for n in details["dropped"]:
        print(f"{n:>3}  {details['train_speedup'][str(n)]:>8.3f}  {details['inference_speedup'][str(n)]:>8.3f}  "
              f"{details['inference_flop_speedup'][str(n)]:>7.3f}")
    log(f"{time.perf_counter() - started:.0f} s; written to {path}"
        + ("; --quick figures are smoke-run numbers, not measurements" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
