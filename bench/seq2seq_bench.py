"""S1-S2: the transformers translation host (``xling.seq2seq``) in generation, as P3/P4 measure the fairseq plugin.

An M2M-100-shaped ``M2M100ForConditionalGeneration`` with P3's shape (``nmt_bench.NmtShape``: 6+6 layers,
d 512, FFN 2048, 8 heads, 16k vocabulary; pre-norm, as M2M-100) and random weights, Bapna & Firat pair
adapters (dim 64) for 8 directions, and 16 source sentences x 32 tokens; beam 5, 24 new tokens per
sentence (min = max, so every variant runs the same number of decoder steps).

- S1: a batch mixing the 8 directions (2 sentences each, every sample routed to its own pair adapter on
  both sides, ``host.generate(..., src_langs, tgt_langs)``) against the same batch in one direction,
  wall time of ``generate`` (value: one direction / mixed, i.e. the mixed batch's relative throughput; P4's target).
- S2: one direction with its pair adapters against the bare model (no adapter active), wall time
  (value: with adapters / bare; P3's target).

On CPU each variant reports the process's CPU time (``time.process_time``, one torch thread), not wall
time: on a shared machine other processes' load moved wall times by +-15% between rounds of the same
variant, more than the differences measured.  On CUDA it is wall time, synchronised.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

import time

from .harness import Result, RunSettings, SelfTimed, alternate, device_description, log, make_result, median
from .nmt_bench import PAIRS, QUICK_SHAPE, NmtShape



def build(shape: NmtShape, device: torch.device):
    """The model with a host and the 8 pair adapters (random weights: the adapters are not at the identity)."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    from adapter_core import bapna_firat_2019
    from xling.seq2seq import Seq2SeqAdapterHost

    torch.manual_seed(0)
    config = M2M100Config(vocab_size=shape.vocab, d_model=shape.dim, encoder_layers=shape.layers,
                          decoder_layers=shape.layers, encoder_attention_heads=shape.heads,
                          decoder_attention_heads=shape.heads, encoder_ffn_dim=shape.ffn, decoder_ffn_dim=shape.ffn,
                          max_position_embeddings=max(256, shape.length + shape.gen_length + 8), pad_token_id=1,
                          bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    model = M2M100ForConditionalGeneration(config).to(device).eval()
    host = Seq2SeqAdapterHost(model, route_by="pair")
    for pair in PAIRS:
        host.add_adapter(pair, bapna_firat_2019(shape.dim, shape.adapter_dim).replace(init="bert"))
    return host


def run(settings: RunSettings, only: set[str]) -> dict[str, Result]:
    device = settings.torch_device()
    shape = QUICK_SHAPE if settings.quick else NmtShape()
    where = device_description(device, settings.threads)
    host = build(shape, device)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, shape.vocab, (shape.gen_sentences, shape.length), generator=generator)
    ids[:, -1] = 2
    ids = ids.to(device)
    mixed = [PAIRS[i % len(PAIRS)].split("-") for i in range(shape.gen_sentences)]
    one = [PAIRS[0].split("-")] * shape.gen_sentences
    options = dict(num_beams=shape.beam, do_sample=False, max_new_tokens=shape.gen_length,
                   min_new_tokens=shape.gen_length)

    def routed(directions):
        src, tgt = [d[0] for d in directions], [d[1] for d in directions]
        return lambda: host.generate(ids, src_langs=src, tgt_langs=tgt, **options)

    def bare():
        host.set_active(None)
        return host.model.generate(ids, **options)

    variants = {"mixed 8 directions": routed(mixed), "one direction": routed(one), "bare": bare}
    if device.type == "cpu":
        def cpu_timed(fn):
            def run_once():
                start = time.process_time()
                fn()
                return SelfTimed(time.process_time() - start)
            return run_once
        variants = {name: cpu_timed(fn) for name, fn in variants.items()}

    with torch.no_grad():
        log(f"S1/S2: {sum(p.numel() for p in host.model.parameters()):,} weights, {len(PAIRS)} pair adapters")
        times = alternate(variants, settings, device, "S1/S2")
    mixed_s, one_s, bare_s = (median(times[k]) for k in ("mixed 8 directions", "one direction", "bare"))
    details = dict(mixed_s=mixed_s, one_direction_s=one_s, bare_s=bare_s, shape=asdict(shape),
                   clock="process CPU time" if device.type == "cpu" else "wall time",
                   rounds={name: [round(t, 3) for t in values] for name, values in times.items()})
    results = {
        "S1": make_result(one_s / mixed_s, ">= 0.97", where, f"transformers host, beam-{shape.beam} generate(): "
                          "8-direction mixed batch throughput / one-direction batch", **details),
        "S2": make_result(one_s / bare_s, "<= 1.03", where, f"transformers host, beam-{shape.beam} generate(): "
                          "with pair adapters / bare model, time", **details),
    }
    return {key: value for key, value in results.items() if key in only}
