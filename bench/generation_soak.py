"""L1: generation of 10,000 sentences across 8 language pairs in mixed batches, with memory flat after warm-up.

The adapter model (``adapter_transformer`` with one Bapna & Firat adapter per
pair, random weights) translates batches in which every sentence may belong
to another of the 8 pairs, through the task's ``inference_step`` and fairseq's
beam search, as ``fairseq-generate`` does.  After each batch the process's
resident memory is read; the figure is the growth of RSS from the end of the
warm-up batches to the end of the run, as a fraction of the RSS after warm-up
(target: at most 5%, i.e. flat), each side the median of a window of batches
(the allocator's RSS moves up and down by ~20% from batch to batch, so single
readings would measure that noise).  A leak per batch (adapters copied per
sample, caches kept across batches) would show as steady growth.

    python -m bench --only L1              # 10,000 sentences (about 5 minutes on one CPU thread)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .harness import Result, RunSettings, device_description, log, make_result
from .nmt_bench import PAIRS, NmtShape, build_variants, make_sample, write_dictionaries


@dataclass
class SoakConfig:
    """How much the soak run translates."""

    # Sentences in all, spread over the 8 pairs.
    sentences: int = 10_000
    # Sentences per batch (each batch mixes every pair).
    batch: int = 125
    # Batches run before the reference memory reading.
    warmup_batches: int = 5
    # Batches in each median window (after warm-up, and at the end).
    window: int = 10
    # Model shape: small enough to translate 10,000 sentences in minutes on a CPU.
    shape: NmtShape = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.shape is None:
            self.shape = NmtShape(layers=3, dim=256, ffn=1024, heads=4, vocab=8000, adapter_dim=32,
                                  length=20, gen_sentences=self.batch, gen_length=20, beam=5)


QUICK_SOAK = SoakConfig(sentences=32, batch=8, warmup_batches=1, window=1,
                        shape=NmtShape(layers=1, dim=32, ffn=64, heads=2, vocab=200, adapter_dim=8, length=6,
                                       gen_sentences=8, gen_length=4, beam=2))


def resident_bytes() -> int:
    """This process's current resident set size (Linux /proc), or the peak where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_soak(settings: RunSettings, config: SoakConfig, device: torch.device) -> dict[str, Result]:
    from fairseq.dataclass.configs import GenerationConfig

    shape = config.shape
    where = device_description(device, settings.threads)
    generation = GenerationConfig(beam=shape.beam, max_len_a=0, max_len_b=shape.gen_length)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        write_dictionaries(Path(tmp), shape)
        variant = build_variants(Path(tmp), shape, device, which=("adapter",))["adapter"]
        variant.model.eval()
        generator = variant.task.build_generator([variant.model], generation)
        batches = max(1, config.sentences // config.batch)
        rotations = [list(PAIRS[i:] + PAIRS[:i]) for i in range(len(PAIRS))]
        samples = [make_sample(variant.task, shape, rotations[i % len(rotations)], device, generation=True)
                   for i in range(len(rotations))]
        readings, translated, started = [], 0, time.perf_counter()
        with torch.no_grad():
            for index in range(batches):
                hypos = variant.task.inference_step(generator, [variant.model], samples[index % len(samples)])
                translated += len(hypos)
                readings.append(resident_bytes())
                if index % max(1, batches // 10) == 0:
                    log(f"L1: batch {index + 1}/{batches}, {translated} sentences, RSS {readings[-1] / 2**20:.0f} MiB")
        seconds = time.perf_counter() - started
    start = min(config.warmup_batches, len(readings) - 1)
    reference = statistics.median(readings[start:start + config.window])
    end = statistics.median(readings[-config.window:])
    growth = (end - reference) / reference
    return {"L1": make_result(
        max(growth, 0.0), "<= 0.05", where,
        f"RSS growth after warm-up while generating {translated} sentences over {len(PAIRS)} pairs in mixed batches",
        sentences=translated, batches=batches, seconds=round(seconds, 1), rss_after_warmup=reference,
        rss_end=end, rss_peak=max(readings), rss_per_batch=readings, sentences_per_s=round(translated / seconds, 1),
        pairs=list(PAIRS), config={**asdict(config), "shape": asdict(shape)})}


def run(settings: RunSettings) -> dict[str, Result]:
    return bench_soak(settings, QUICK_SOAK if settings.quick else SoakConfig(), settings.torch_device())
