"""P5 and P6: the MAD-X package (``xling``) on an XLM-R configuration (hidden 256, 4 layers, vocabulary 8,000).

- P5: language-adapter MLM training steps/s (MAD-X: bottleneck rf 2 in every
  layer plus a NICE invertible adapter; base and MLM head frozen; AdamW
  1e-4; batch 16 x 128) against AdapterHub ``adapters`` 1.3.0 (``seq_bn_inv``
  + ``train_adapter``) on the same configuration and batch.  AdapterHub needs
  transformers 4.57, so it runs in its own venv (``AH_VENV``, built on demand);
  each side is a worker process, and the loop alternates one step of each.
  xling's step is the code path of ``xling.masking.MaskedPositionsTrainer``:
  the vocabulary projection only at masked positions.  The same worker also
  times the full projection (``model(..., labels=...)``), for the record.
- P6: inference (token classification, batch 16 x 128) with
  ``Stack(language, task)`` against the same model without adapters, in-process.
  The details add the FLOP lower bound of that ratio (``flop_bound``: Linear
  multiply-adds plus attention, from ``bench.drop_bench.inference_macs``) and
  the ratio with AdapterDrop at inference (lowest 1 and 2 layers' adapters
  dropped, timed in the same alternating loop) next to its FLOP bound.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path

import torch

from .adapterhub_worker import BATCH, QUICK_BATCH, QUICK_CONFIG, QUICK_SEQUENCE, SEQUENCE, XLMR_CONFIG, mlm_batch
from .drop_bench import inference_macs
from .harness import (Result, RunSettings, Worker, alternate, device_description, log, make_result, median, serve,
                      skipped_result)

ROOT = Path(__file__).resolve().parents[1]
AH_VENV = Path(os.environ.get("AH_VENV", "/tmp/ah-venv"))
AH_PINS = (["torch==2.13.0"], ["adapters==1.3.0", "transformers==4.57.6"])  # torch first: a CPU wheel stays put
#: P6 also times AdapterDrop at inference with the adapters of these lowest layers dropped (extra details only).
P6_DROPPED = (1, 2)
P5_MEASURE = "xling MAD-X language-adapter MLM training steps/s / AdapterHub adapters 1.3.0 steps/s, same XLM-R config and batch"


def xlmr_config(quick: bool):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(**(QUICK_CONFIG if quick else XLMR_CONFIG))


# -- P5, xling side (a worker process in this venv) ---------------------------------------------


def xling_mlm_worker(quick: bool, full_projection: bool, device: torch.device) -> None:
    """Serve xling language-adapter MLM steps (masked positions only, or the full projection)."""
    import transformers
    from transformers import XLMRobertaForMaskedLM

    from xling.attach import MadxHost, masked_lm_loss, mlm_logits_at

    torch.manual_seed(0)
    config = xlmr_config(quick)
    model = XLMRobertaForMaskedLM(config).to(device)
    host = MadxHost(model)
    host.add_adapter("lang", role="language")  # rf 2 + NICE, as AdapterHub's seq_bn_inv
    host.set_active("lang")
    host.train_only(["lang"], train_head=False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    batch = {k: v.to(device) for k, v in mlm_batch(config.vocab_size, QUICK_BATCH if quick else BATCH,
                                                   QUICK_SEQUENCE if quick else SEQUENCE).items()}
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]

    def masked_only_loss() -> torch.Tensor:
        with mlm_logits_at(model, labels != -100):
            return masked_lm_loss(model(**inputs), labels)

    def full_projection_loss() -> torch.Tensor:
        return model(**batch).loss

    model.eval()  # no dropout: both losses must agree before anything is timed
    with torch.no_grad():
        reference, fast = full_projection_loss(), masked_only_loss()
    if not torch.allclose(reference, fast, rtol=1e-4, atol=1e-5):
        raise AssertionError(f"masked-position MLM loss {fast.item()} differs from the full one {reference.item()}")
    model.train()
    loss_of = full_projection_loss if full_projection else masked_only_loss

    def step() -> None:
        loss_of().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    serve(step, device, {"transformers": transformers.__version__, "torch": torch.__version__,
                         "trainable": sum(p.numel() for p in trainable), "loss_check": [reference.item(), fast.item()],
                         "attention": getattr(config, "_attn_implementation", None)})


# -- P5, AdapterHub's venv ---------------------------------------------------------------------------


def adapterhub_python() -> tuple[Path | None, str]:
    """The AdapterHub venv's python, building the venv if needed; (None, why) where that cannot be done."""
    python = AH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import adapters, transformers, torch; print(adapters.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "1.3.0":
        return python, ""
    log(f"P5: building the AdapterHub venv in {AH_VENV} (torch==2.13.0 first, then adapters==1.3.0, transformers==4.57.6)")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(AH_VENV)], check=True, capture_output=True, text=True)
        for pins in AH_PINS:
            extra = ["--index-url", "https://download.pytorch.org/whl/cpu"] if pins[0].startswith("torch") else []
            subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *pins, *extra],
                           check=True, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        return None, f"cannot build the AdapterHub venv {AH_VENV}: {detail.strip().splitlines()[-1] if detail.strip() else err}"
    if subprocess.run(probe, capture_output=True, text=True).stdout.strip() != "1.3.0":
        return None, f"{AH_VENV} has no working adapters 1.3.0 after installing"
    return python, ""


def bench_p5(settings: RunSettings, device: torch.device) -> Result:
    where = device_description(device, settings.threads)
    python, why = adapterhub_python()
    if python is None:
        return skipped_result(">= 1.5", where, P5_MEASURE, why)
    common = ["--threads", str(settings.threads)] + (["--quick"] if settings.quick else [])
    mine = [sys.executable, "-m", "bench.xling_bench", "worker", "--device", device.type] + common
    workers = {}
    try:
        workers["adapterhub"] = Worker([str(python), str(ROOT / "bench" / "adapterhub_worker.py")] + common, cwd=str(ROOT))
        workers["xling"] = Worker(mine, cwd=str(ROOT))
        workers["xling, full projection"] = Worker(mine + ["--full-projection"], cwd=str(ROOT))
        times = alternate({name: (lambda w=worker: w.steps(1)) for name, worker in workers.items()},
                          settings_for_steps(settings), torch.device("cpu"), "P5")
    finally:
        for worker in workers.values():
            worker.close()
    ms = {name: 1000 * median(values) for name, values in times.items()}
    return make_result(ms["adapterhub"] / ms["xling"], ">= 1.5", where, P5_MEASURE,
                       ms_per_step=ms, full_projection_ratio=round(ms["adapterhub"] / ms["xling, full projection"], 4),
                       workers={name: worker.info for name, worker in workers.items()},
                       config=QUICK_CONFIG if settings.quick else XLMR_CONFIG,
                       batch=[QUICK_BATCH, QUICK_SEQUENCE] if settings.quick else [BATCH, SEQUENCE])


def settings_for_steps(settings: RunSettings) -> RunSettings:
    """P5 steps are short: more rounds than the NMT benchmarks (medians of single steps)."""
    return RunSettings(device=settings.device, threads=settings.threads, quick=settings.quick,
                       warmup=max(2, settings.warmup), rounds=settings.rounds if settings.quick else max(9, 3 * settings.rounds))


# -- P6 ---------------------------------------------------------------------------------------------------------


def bench_p6(settings: RunSettings, device: torch.device) -> Result:
    from transformers import XLMRobertaForTokenClassification

    from adapter_core import Stack
    from xling.attach import MadxHost

    where = device_description(device, settings.threads)
    torch.manual_seed(0)
    config = xlmr_config(settings.quick)
    config.num_labels = 9  # CoNLL NER tags (BIO over PER, ORG, LOC, MISC)
    plain = XLMRobertaForTokenClassification(config).to(device).eval()
    adapted = copy.deepcopy(plain)
    host = MadxHost(adapted)
    host.add_adapter("lang", role="language")
    host.add_adapter("ner", role="task")
    for module in host.model.modules():  # trained adapters are not the identity: give them random weights
        if hasattr(module, "up") and isinstance(module.up, torch.nn.Linear):
            torch.nn.init.normal_(module.up.weight, std=0.02)
    host.set_active(Stack("lang", "ner"))
    adapted.to(device).eval()
    batch = mlm_batch(config.vocab_size, QUICK_BATCH if settings.quick else BATCH,
                      QUICK_SEQUENCE if settings.quick else SEQUENCE)
    inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
    with torch.inference_mode():
        same_shape = plain(**inputs).logits.shape == adapted(**inputs).logits.shape

        def run(model):
            return lambda: model(**inputs)

        def dropped(n):  # AdapterDrop at inference: the adapters of the lowest n layers switched off
            def forward():
                with host.adapters_removed(range(n)):
                    return adapted(**inputs)
            return forward

        variants = {"no adapters": run(plain), "Stack(lang, ner)": run(adapted)}
        drops = tuple(n for n in P6_DROPPED if n <= len(host.outputs))  # --quick has one layer
        variants.update({f"Stack, lowest {n} dropped": dropped(n) for n in drops})
        times = alternate(variants, settings_for_steps(settings), device, "P6")
    base_s, stack_s = median(times["no adapters"]), median(times["Stack(lang, ner)"])
    sequence = QUICK_SEQUENCE if settings.quick else SEQUENCE
    flop_bound = {}
    for n in (0,) + drops:
        base, kept = inference_macs(host, ("lang", "ner"), sequence, n)
        flop_bound[str(n)] = round((base + kept) / base, 4)
    return make_result(stack_s / base_s, "<= 1.05", where,
                       "xling token-classification inference with Stack(language, task) / without adapters, wall time",
                       stack_ms=1000 * stack_s, base_ms=1000 * base_s, same_output_shape=bool(same_shape),
                       flop_bound=flop_bound["0"],
                       adapterdrop_ratio={str(n): round(median(times[f"Stack, lowest {n} dropped"]) / base_s, 4)
                                          for n in drops},
                       adapterdrop_flop_bound={str(n): flop_bound[str(n)] for n in drops},
                       config=QUICK_CONFIG if settings.quick else XLMR_CONFIG)


def run(settings: RunSettings, only: set[str]) -> dict[str, Result]:
    device = settings.torch_device()
    results = {}
    if "P5" in only:
        results["P5"] = bench_p5(settings, device)
    if "P6" in only:
        results["P6"] = bench_p6(settings, device)
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.xling_bench worker``: P5's xling worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full-projection", action="store_true",
                        help="project every position onto the vocabulary (the default MLM loss), for comparison")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    xling_mlm_worker(args.quick, args.full_projection, torch.device(args.device))


if __name__ == "__main__":
    main()
