"""P1-P4: the fairseq plugin (``nmt``) on a Transformer base, 6+6 layers, d 512, FFN 2048, 8 heads, 16k vocabulary.

Models are built in-process with fairseq's own APIs (``options``,
``tasks.setup_task``, ``task.build_model``) on a data directory holding only
dictionaries, with random weights; batches are random token ids of the
realistic size (128 sentences x 32 tokens = 4,096 target tokens).  Each
training step is what fairseq's Trainer does per update: ``task.train_step``
(forward, loss, backward), ``multiply_grads(1/sample_size)``,
``clip_grad_norm`` and fairseq's Adam.

- P1: adapter training (``adapter_transformer``, base frozen, Bapna & Firat
  pair adapters, dim 64) against full fine-tuning of the plain ``transformer``
  with the same base weights, on the same batch, updates/s.
- P2: peak memory of the two, each in a fresh subprocess (RSS; CUDA max allocated on GPU), **at the
  M2M-100 418M shape** (``M2M_418M_SHAPE``: 12+12 layers, d 1024, FFN 4096, 16 heads, pre-norm,
  128,112 shared embedding rows, 1,024-token batch), where weights, gradients and Adam state dominate.
- P3: beam-5 generation through the task's ``inference_step`` with adapters
  against the plain base, wall time.
- P4: adapter training on a batch mixing 8 language pairs against a one-pair batch, tokens/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .harness import (Result, RunSettings, alternate, apply_threads, device_description, log, make_result, median,
                      peak_rss)

USER_DIR = str(Path(__file__).resolve().parents[1] / "nmt")
PAIRS = ("en-de", "en-fr", "en-es", "en-it", "de-en", "fr-en", "es-en", "it-en")
LANGS = ("en", "de", "fr", "es", "it")


@dataclass
class NmtShape:
    """Model and batch sizes of the NMT benchmarks."""

    # Encoder layers and decoder layers (each).
    layers: int = 6
    # Model dimension.
    dim: int = 512
    # Feed-forward inner dimension.
    ffn: int = 2048
    # Attention heads.
    heads: int = 8
    # Joined vocabulary size (dictionary symbols, specials and language tokens included).
    vocab: int = 16000
    # Adapter bottleneck dimension.
    adapter_dim: int = 64
    # Sentences per training batch.
    sentences: int = 128
    # Tokens per source and target sentence (sentences x length = 4,096 tokens a batch).
    length: int = 32
    # Sentences per generation batch (x beam hypotheses per decoder step).
    gen_sentences: int = 16
    # Generated tokens per sentence (min = max, so both models do the same number of steps).
    gen_length: int = 24
    # Beam size.
    beam: int = 5
    # Pre-norm layers (--encoder-normalize-before --decoder-normalize-before), as M2M-100 and mBART.
    normalize_before: bool = False


#: P2's shape: M2M-100 418M (nmt.models.architectures.adapter_m2m100_418m; 483,905,536 weights with the
#: 128,112-row shared embedding matrix), pair adapters of dim 64, 32 sentences x 32 tokens = 1,024 tokens.
M2M_418M_SHAPE = NmtShape(layers=12, dim=1024, ffn=4096, heads=16, vocab=128112, adapter_dim=64, sentences=32,
                          length=32, normalize_before=True)
#: The shapes a GPU user trains and generates at (issue 28): M2M-100 418M with 4,096 tokens a batch (128 x 32, the
#: headline) and 16,384 (512 x 32); generation 16 sentences x beam 5 (the headline) and batch 1 x beam 5 (latency).
GPU_TRAIN_SHAPES = (replace(M2M_418M_SHAPE, sentences=128), replace(M2M_418M_SHAPE, sentences=512))
GPU_GENERATION_SHAPES = (M2M_418M_SHAPE, replace(M2M_418M_SHAPE, gen_sentences=1))
QUICK_SHAPE = NmtShape(layers=1, dim=32, ffn=64, heads=2, vocab=200, adapter_dim=8, sentences=8, length=6,
                       gen_sentences=2, gen_length=4, beam=2)


def write_dictionaries(directory: Path, shape: NmtShape) -> None:
    """One joined dictionary, written as ``dict.<lang>.txt`` for every language (fairseq adds specials and langtoks)."""
    symbols = shape.vocab - 4 - len(LANGS)
    text = "".join(f"w{i} {symbols - i}\n" for i in range(symbols))
    for lang in LANGS:
        (directory / f"dict.{lang}.txt").write_text(text)


def setup(directory: Path, shape: NmtShape, task_name: str, arch: str, extra: tuple[str, ...] = ()):
    """(task, args) as fairseq-train would build them from these flags."""
    from fairseq import options, tasks

    import nmt  # noqa: F401  (registers the plugin when imported from the source tree)

    argv = [str(directory), "--user-dir", USER_DIR, "--task", task_name, "--lang-pairs", ",".join(PAIRS),
            "--langs", ",".join(LANGS), "--encoder-langtok", "src", "--decoder-langtok", "--arch", arch,
            "--encoder-layers", str(shape.layers), "--decoder-layers", str(shape.layers),
            "--encoder-embed-dim", str(shape.dim), "--decoder-embed-dim", str(shape.dim),
            "--encoder-ffn-embed-dim", str(shape.ffn), "--decoder-ffn-embed-dim", str(shape.ffn),
            "--encoder-attention-heads", str(shape.heads), "--decoder-attention-heads", str(shape.heads),
            "--share-all-embeddings", "--dropout", "0.1", "--criterion", "label_smoothed_cross_entropy",
            "--label-smoothing", "0.1", "--optimizer", "adam", "--lr", "0.0001", "--clip-norm", "0",
            "--max-tokens", str(shape.sentences * shape.length), "--seed", "1", *extra]
    if shape.normalize_before:
        argv += ["--encoder-normalize-before", "--decoder-normalize-before"]
    if arch.startswith("adapter"):
        argv += ["--adapter-dim", str(shape.adapter_dim)]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(args)  # training mode: every pair of --lang-pairs gets its adapters
    # The pair that generation (P3) translates; fairseq's task reads it from -s/-t at generation time.
    task.args.source_lang, task.args.target_lang = "en", "de"
    return task, args


class Variant:
    """One model with its task, criterion and fairseq optimizer."""

    def __init__(self, task, args, model, device: torch.device):
        from fairseq import optim
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf

        self.task, self.args, self.device = task, args, device
        self.model = model.to(device)
        self.criterion = task.build_criterion(args).to(device)
        cfg = convert_namespace_to_omegaconf(args)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optim.build_optimizer(cfg.optimizer, params)
        self.trainable = sum(p.numel() for p in params)
        self.total = sum(p.numel() for p in self.model.parameters())
        self.updates = 0

    def train_step(self, sample) -> None:
        """One update, as fairseq's Trainer makes it (no AMP, no gradient accumulation)."""
        self.optimizer.zero_grad()
        _, sample_size, _ = self.task.train_step(sample, self.model, self.criterion, self.optimizer, self.updates)
        self.optimizer.multiply_grads(1.0 / float(sample_size))
        self.optimizer.clip_grad_norm(0.0)
        self.optimizer.step()
        self.updates += 1


def make_sample(task, shape: NmtShape, pairs: list[str], device: torch.device, with_lang_ids: bool = True,
                generation: bool = False) -> dict:
    """A collated batch of random sentences, sample i translating ``pairs[i % len(pairs)]``."""
    dictionary, lang_dict = task.source_dictionary, task.data_manager.lang_dict
    count = shape.gen_sentences if generation else shape.sentences
    generator = torch.Generator().manual_seed(7)
    low = dictionary.nspecial
    high = low + shape.vocab - 4 - len(LANGS)
    words = torch.randint(low, high, (count, shape.length - 1), generator=generator)
    chosen = [pairs[i % len(pairs)].split("-") for i in range(count)]
    src_langtok = torch.tensor([[dictionary.index(f"__{s}__")] for s, _ in chosen])
    tgt_langtok = torch.tensor([[dictionary.index(f"__{t}__")] for _, t in chosen])
    src_tokens = torch.cat([src_langtok, words[:, : shape.length - 2], torch.full((count, 1), dictionary.eos())], 1)
    target = torch.cat([words.flip(1)[:, : shape.length - 1], torch.full((count, 1), dictionary.eos())], 1)
    net_input = {"src_tokens": src_tokens, "src_lengths": torch.full((count,), src_tokens.size(1))}
    sample = {"id": torch.arange(count), "nsentences": count, "ntokens": int(target.numel())}
    if not generation:
        net_input["prev_output_tokens"] = torch.cat([tgt_langtok, target[:, :-1]], 1)
        sample["target"] = target
    if with_lang_ids:
        net_input["src_lang_id"] = torch.tensor([[lang_dict.index(s)] for s, _ in chosen])
        sample["tgt_lang_id"] = torch.tensor([[lang_dict.index(t)] for _, t in chosen])
    sample["net_input"] = net_input
    return _to(sample, device)


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def build_variants(directory: Path, shape: NmtShape, device: torch.device, which: tuple[str, ...] = ("adapter", "full"),
                   adapter_flags: tuple[str, ...] = (), common_flags: tuple[str, ...] = ()):
    """The adapter model (base frozen; ``adapter_flags`` added to its command line) and the plain Transformer
    with the same base weights (``common_flags`` added to both command lines)."""
    variants = {}
    torch.manual_seed(1)
    if "adapter" in which:
        task, args = setup(directory, shape, "adapter_translation", "adapter_transformer",
                           tuple(adapter_flags) + tuple(common_flags))
        variants["adapter"] = Variant(task, args, task.build_model(args), device)
    if "full" in which:
        task, args = setup(directory, shape, "translation_multi_simple_epoch", "transformer", tuple(common_flags))
        model = task.build_model(args)
        if "adapter" in variants:  # same base weights: the adapter model's keys minus its adapter banks
            base = {k: v for k, v in variants["adapter"].model.state_dict().items() if ".adapter_bank." not in k}
            model.load_state_dict(base, strict=True)
        variants["full"] = Variant(task, args, model, device)
    return variants


# -- P1 and P4: training throughput ------------------------------------------------------


def looped(step):
    """Run ``step`` with mixed batches routed by the per-group loop (``adapter_core.compose``'s CPU path)."""
    import importlib

    compose_module = importlib.import_module("adapter_core.compose")  # the module; the package exports the function
    previous, compose_module.BATCHED_ROUTING = compose_module.BATCHED_ROUTING, False
    try:
        return step()
    finally:
        compose_module.BATCHED_ROUTING = previous


def bench_training(settings: RunSettings, shape: NmtShape, device: torch.device) -> dict[str, Result]:
    where = device_description(device, settings.threads)
    with tempfile.TemporaryDirectory(prefix="bench-nmt-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        variants = build_variants(directory, shape, device)
        adapter, full = variants["adapter"], variants["full"]
        one_pair = make_sample(adapter.task, shape, ["en-de"], device)
        mixed = make_sample(adapter.task, shape, list(PAIRS), device)
        plain = make_sample(full.task, shape, ["en-de"], device, with_lang_ids=False)
        log(f"P1/P4: adapter model {adapter.trainable:,} trainable of {adapter.total:,}; full {full.trainable:,}")
        variants = {"full fine-tuning": lambda: full.train_step(plain),
                    "adapters, one pair": lambda: adapter.train_step(one_pair),
                    "adapters, 8 pairs mixed": lambda: adapter.train_step(mixed)}
        if device.type == "cuda":  # the per-group loop that the batched product replaces on CUDA, side by side
            variants["adapters, 8 pairs mixed, loop"] = lambda: looped(lambda: adapter.train_step(mixed))
        times = alternate(variants, settings, device, f"P1/P4 {shape.sentences * shape.length} tokens")
    full_s, one_s, mixed_s = (median(times[k]) for k in ("full fine-tuning", "adapters, one pair", "adapters, 8 pairs mixed"))
    tokens = shape.sentences * shape.length
    common = dict(shape=asdict(shape), rounds=settings.rounds, tokens_per_batch=tokens)
    if "adapters, 8 pairs mixed, loop" in times:
        common["loop_ratio"] = round(one_s / median(times["adapters, 8 pairs mixed, loop"]), 4)
    return {
        "P1": make_result(full_s / one_s, ">= 1.45", where,
                          "fairseq adapter-training updates/s / full fine-tuning updates/s (same base, same batch)",
                          adapter_s_per_update=one_s, full_s_per_update=full_s, adapter_trainable=adapter.trainable,
                          full_trainable=full.trainable, **common),
        "P4": make_result(one_s / mixed_s, ">= 0.9" if device.type == "cuda" else ">= 0.97", where,
                          "tokens/s of a batch mixing 8 language pairs / a one-pair batch of the same size",
                          mixed_tokens_per_s=tokens / mixed_s, one_pair_tokens_per_s=tokens / one_s, **common),
    }


# -- P2: peak memory in fresh processes -----------------------------------------------------


#: P2's criteria: fairseq's stock one, and the plugin's fused chunked one (nmt.criterions), on both sides.
P2_CRITERIA = ("label_smoothed_cross_entropy", "chunked_label_smoothed_cross_entropy")


def memory_worker(variant: str, shape: NmtShape, steps: int, device: torch.device,
                  criterion: str = P2_CRITERIA[0]) -> dict:
    """Build one variant alone and train ``steps`` updates; report this process's peak memory."""
    import fairseq  # noqa: F401  (the runtime is part of the baseline)

    report = {"variant": variant, "criterion": criterion, "rss_after_imports": peak_rss()}
    with tempfile.TemporaryDirectory(prefix="bench-nmt-mem-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        chosen = build_variants(directory, shape, device, (variant,), common_flags=("--criterion", criterion))[variant]
        report["rss_after_build"] = peak_rss()
        report["weights"], report["trainable"] = chosen.total, chosen.trainable
        sample = make_sample(chosen.task, shape, ["en-de"], device, with_lang_ids=variant == "adapter")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            chosen.train_step(sample)
    report["peak_rss"] = peak_rss()
    if device.type == "cuda":
        report["cuda_max_allocated"] = torch.cuda.max_memory_allocated(device)
    return report


def bench_memory(settings: RunSettings, device: torch.device) -> dict[str, Result]:
    """P2 with each criterion of ``P2_CRITERIA`` (the same on both sides); the value is the fused criterion's."""
    import subprocess

    where = device_description(device, settings.threads)
    key = "cuda_max_allocated" if device.type == "cuda" else "peak_rss"
    reports, ratios = {}, {}
    for criterion in P2_CRITERIA:
        for variant in ("adapter", "full"):
            argv = [sys.executable, "-m", "bench.nmt_bench", "memory", "--variant", variant, "--threads",
                    str(settings.threads), "--device", device.type, "--steps", "2", "--criterion", criterion]
            argv += ["--quick"] if settings.quick else []
            log(f"P2: {variant}, {criterion}, in a fresh process")
            done = subprocess.run(argv, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]))
            lines = [line for line in done.stdout.splitlines() if line.startswith("MEMORY ")]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"P2 worker {variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            reports[f"{variant}, {criterion}"] = json.loads(lines[-1][len("MEMORY "):])
        ratios[criterion] = round(reports[f"adapter, {criterion}"][key] / reports[f"full, {criterion}"][key], 4)
    fused = P2_CRITERIA[1]
    shape = QUICK_SHAPE if settings.quick else M2M_418M_SHAPE
    return {"P2": make_result(ratios[fused], "<= 0.5", where,
                              f"{'CUDA max allocated' if device.type == 'cuda' else 'peak RSS of the whole process'}: "
                              "adapter training / full fine-tuning at the M2M-100 418M shape (random weights, "
                              "128,112-row vocabulary, 1,024-token batch, Adam), 2 updates each in a fresh process, "
                              f"both with --criterion {fused} (the stock criterion's ratio is in the details)",
                              metric=key, ratio_by_criterion=ratios, reports=reports, shape=asdict(shape))}


# -- P3: generation ---------------------------------------------------------------------------------


def bench_generation(settings: RunSettings, shape: NmtShape, device: torch.device) -> dict[str, Result]:
    from fairseq.dataclass.configs import GenerationConfig

    where = device_description(device, settings.threads)
    config = GenerationConfig(beam=shape.beam, max_len_a=0, max_len_b=shape.gen_length, min_len=shape.gen_length)
    with tempfile.TemporaryDirectory(prefix="bench-nmt-gen-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        variants = build_variants(directory, shape, device)
        runs = {}
        for name, variant in variants.items():
            variant.model.eval()
            generator = variant.task.build_generator([variant.model], config)
            sample = make_sample(variant.task, shape, ["en-de"], device, with_lang_ids=name == "adapter",
                                 generation=True)
            runs[name] = (variant, generator, sample)

        def generate(name):
            variant, generator, sample = runs[name]
            return lambda: variant.task.inference_step(generator, [variant.model], sample)

        first = {name: generate(name)() for name in runs}
        lengths = {name: int(hypos[0][0]["tokens"].numel()) for name, hypos in first.items()}
        variants = {"base alone": generate("full"), "with adapters": generate("adapter")}
        same_tokens = None
        if device.type == "cuda":  # the bias+ReLU fusion of adapter_core.bottleneck, on, side by side
            variants["with adapters, fused"] = lambda: fused(generate("adapter"))
            plain_hypos = fused(generate("adapter"))
            same_tokens = all(torch.equal(a[0]["tokens"], b[0]["tokens"]) for a, b in zip(first["adapter"], plain_hypos))
        times = alternate(variants, settings, device, f"P3 {shape.gen_sentences} sentences")
    base_s, adapter_s = median(times["base alone"]), median(times["with adapters"])
    extra = {}
    if "with adapters, fused" in times:
        extra["fused_ratio"] = round(median(times["with adapters, fused"]) / base_s, 4)
        extra["fused_same_tokens"] = same_tokens
    if "with adapters, fused" in times and not same_tokens:
        log("P3: the fused and unfused adapters generated different tokens")
    return {"P3": make_result(adapter_s / base_s, "<= 1.05" if device.type == "cuda" else "<= 1.03", where,
                              f"beam-{shape.beam} generation through the task's inference_step: with adapters / base alone, wall time",
                              adapter_s=adapter_s, base_s=base_s, hypothesis_lengths=lengths,
                              sentences=shape.gen_sentences, shape=asdict(shape), **extra)}


def fused(step):
    """Run ``step`` with ``adapter_core.bottleneck``'s bias+ReLU fusion switched on (off by default)."""
    from adapter_core import bottleneck

    previous, bottleneck.FUSED_BIAS_RELU = bottleneck.FUSED_BIAS_RELU, True
    try:
        return step()
    finally:
        bottleneck.FUSED_BIAS_RELU = previous


def by_shape(per_shape: list[tuple[str, dict[str, Result]]]) -> dict[str, Result]:
    """Each benchmark's first-shape result, with every shape's value, target check and details under ``by_shape``."""
    merged = {}
    for key in per_shape[0][1]:
        head = per_shape[0][1][key]
        if len(per_shape) > 1:
            head.details = dict(head.details, by_shape={label: {"value": r[key].value, "target": r[key].target,
                                                                "met": r[key].met, "details": r[key].details}
                                                        for label, r in per_shape})
            head.measure += f"; headline shape {per_shape[0][0]}, other shapes under details.by_shape"
        merged[key] = head
    return merged


def run(settings: RunSettings, only: set[str]) -> dict[str, Result]:
    device = settings.torch_device()
    if settings.quick:
        train_shapes = generation_shapes = (QUICK_SHAPE,)
    elif device.type == "cuda":
        train_shapes, generation_shapes = GPU_TRAIN_SHAPES, GPU_GENERATION_SHAPES
    else:
        train_shapes = generation_shapes = (NmtShape(),)
    results: dict[str, Result] = {}
    if only & {"P1", "P4"}:
        trained = [(f"{s.sentences * s.length} tokens", bench_training(settings, s, device)) for s in train_shapes]
        results.update({k: v for k, v in by_shape(trained).items() if k in only})
    if "P2" in only:
        results.update(bench_memory(settings, device))
    if "P3" in only:
        generated = [(f"{s.gen_sentences} sentences x beam {s.beam}", bench_generation(settings, s, device))
                     for s in generation_shapes]
        results.update(by_shape(generated))
    return results


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.nmt_bench memory --variant adapter|full``: the P2 worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["memory"])
    parser.add_argument("--variant", choices=["adapter", "full"], required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--criterion", default=P2_CRITERIA[0], choices=P2_CRITERIA)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = memory_worker(args.variant, QUICK_SHAPE if args.quick else M2M_418M_SHAPE, args.steps,
                           torch.device(args.device), args.criterion)
    print("MEMORY " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
