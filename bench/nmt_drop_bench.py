"""D2: the AdapterDrop speed-up in the fairseq plugin, training updates and beam search, against n dropped layers.

The P1/P3 model (fairseq Transformer 6+6, d 512, FFN 2,048, 16k vocabulary,
pair adapters of dimension 64, 4,096-token batches).  One model serves every
n: before its step each variant sets ``--adapter-drop-mode specialised
--adapter-drop-layers n`` (training) or the inference count (generation), so
the adapters of the lowest n encoder and decoder layers are left out.  In the
encoder nothing below layer n is recorded by autograd; in the decoder the
lower layers still pass gradients to the encoder output (cross-attention), so
the decoder saves only its adapters' cost there.  Variants alternate, medians;
figures are speed-ups over n = 0.  Results under ``D2`` in
``bench/results.json``, the plot in ``bench/adapterdrop_speedup_nmt.png``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from .harness import Result, RunSettings, alternate, check_target, device_description, median
from .nmt_bench import QUICK_SHAPE, NmtShape, build_variants, make_sample, write_dictionaries

PLOT_PATH = Path(__file__).resolve().parent / "adapterdrop_speedup_nmt.png"
MEASURE = ("AdapterDrop (nmt, --adapter-drop-layers n): adapter-training updates/s and beam-5 generation/s, / n = 0; "
           "value: training speed-up at the largest n")


def run(settings: RunSettings, only: set[str], plot_path: Path | None = PLOT_PATH) -> dict[str, Result]:
    if "D2" not in only:
        return {}
    from fairseq.dataclass.configs import GenerationConfig

    device = settings.torch_device()
    # --quick: two layers, so that dropping the lowest one leaves an adapter to train.
    shape: NmtShape = dataclasses.replace(QUICK_SHAPE, layers=2) if settings.quick else NmtShape()
    dropped = (0, 1) if settings.quick else (0, 2, 4, 5)
    with tempfile.TemporaryDirectory(prefix="bench-nmt-drop-") as tmp:
        directory = Path(tmp)
        write_dictionaries(directory, shape)
        variant = build_variants(directory, shape, device, ("adapter",))["adapter"]
        model, args = variant.model, variant.model.args
        train_sample = make_sample(variant.task, shape, ["en-de"], device)
        gen_sample = make_sample(variant.task, shape, ["en-de"], device, generation=True)
        generator = variant.task.build_generator(
            [model], GenerationConfig(beam=shape.beam, max_len_a=0, max_len_b=shape.gen_length, min_len=shape.gen_length))

        def train(n: int):
            def step() -> None:
                args.adapter_drop_mode, args.adapter_drop_layers = ("specialised", n) if n else ("none", 0)
                model.train()
                variant.train_step(train_sample)
            return step

        def generate(n: int):
            def step() -> None:
                model.eval()
                model.set_inference_dropped_layers(n)
                with torch.no_grad():
                    variant.task.inference_step(generator, [model], gen_sample)
            return step

        variants = {f"train n={n}": train(n) for n in dropped}
        variants.update({f"generate n={n}": generate(n) for n in dropped})
        times = alternate(variants, settings, device, "D2")
    seconds = {name: median(values) for name, values in times.items()}
    train_speedup = {str(n): round(seconds["train n=0"] / seconds[f"train n={n}"], 4) for n in dropped}
    gen_speedup = {str(n): round(seconds["generate n=0"] / seconds[f"generate n={n}"], 4) for n in dropped}
    value = train_speedup[str(dropped[-1])]
    result = Result(value=round(value, 4), target=">= 1.0", met=check_target(value, ">= 1.0"),
                    device=device_description(device, settings.threads), measure=MEASURE,
                    details={"dropped": list(dropped), "layers": shape.layers, "train_speedup": train_speedup,
                             "generation_speedup": gen_speedup, "rounds": settings.rounds,
                             "seconds": {k: round(v, 4) for k, v in seconds.items()}})
    if plot_path is not None:
        from xling.plots import lines_png

        xs = list(dropped)
        lines_png({"training updates/s": (xs, [train_speedup[str(n)] for n in xs]),
                   "beam-5 generation/s": (xs, [gen_speedup[str(n)] for n in xs])}, plot_path,
                  f"AdapterDrop, fairseq Transformer {shape.layers}+{shape.layers} layers, d {shape.dim}",
                  "adapters dropped in the lowest n layers of encoder and decoder", "speed-up over n = 0")
        result.details["plot"] = f"bench/{plot_path.name}"
    return {"D2": result}
