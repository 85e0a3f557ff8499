"""The encoders and batch shapes of P5-P8 (``bench.xling_bench``): the CPU's, the GPU's, the quick smoke run's,
where the real encoder's weights are, and how a figure measured at several shapes is reported."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .adapterhub_worker import BATCH, ENCODERS, QUICK_BATCH, QUICK_SEQUENCE, SEQUENCE, mlm_batch
from .harness import Result, RunSettings

ROOT = Path(__file__).resolve().parents[1]
E5_DIR = Path(os.environ.get("BENCH_E5_DIR", ROOT / "work" / "xling-e5"))


@dataclass(frozen=True)
class XlingShape:
    """One encoder and batch shape of P5-P7."""

    # A configuration of ``bench.adapterhub_worker.ENCODERS``: "quick", "e5" or "xlmr-base".
    encoder: str
    # Sentences a batch.
    batch: int
    # Tokens a sentence.
    length: int

    @property
    def label(self) -> str:
        return f"{self.encoder} {self.batch}x{self.length}"


#: The CPU's shape (sized for 2 cores) and the quick smoke run's.
CPU_SHAPES = (XlingShape("e5", BATCH, SEQUENCE),)
QUICK_SHAPES = (XlingShape("quick", QUICK_BATCH, QUICK_SEQUENCE),)
#: The shapes a GPU user runs (issue 28), the first one the headline figure: XLM-R base's shape (AdapterDrop's
#: encoder size) and multilingual-e5-small's, 32 x 128 and 128 x 128 tokens a batch.
GPU_SHAPES = (XlingShape("xlmr-base", 32, 128), XlingShape("xlmr-base", 128, 128), XlingShape("e5", 32, 128),
              XlingShape("e5", 128, 128))


def shapes_for(settings: RunSettings, device: torch.device) -> tuple[XlingShape, ...]:
    if settings.quick:
        return QUICK_SHAPES
    return (GPU_SHAPES[:1] if settings.headline_only else GPU_SHAPES) if device.type == "cuda" else CPU_SHAPES


def encoder_dir(settings: RunSettings, trimmed: bool = False, shape: XlingShape | None = None) -> str | None:
    """The real encoder's directory (``e5-full``, or ``e5-trim``), or None (quick runs, other encoders, not imported)."""
    directory = E5_DIR / ("e5-trim" if trimmed else "e5-full")
    if settings.quick or (shape is not None and shape.encoder != "e5") or not (directory / "model.safetensors").exists():
        return None
    return str(directory)


def weights_note(directory: str | None, quick: bool, shape: XlingShape | None = None) -> str:
    if quick:
        return "toy XLM-R configuration (--quick)"
    if directory:
        return f"multilingual-e5-small, real weights ({directory})"
    if shape is not None and shape.encoder == "xlmr-base":
        return "XLM-R base's shape with random weights"
    return "multilingual-e5-small's shape with random weights (the imported encoder is absent)"


def shape_details(shape: XlingShape) -> dict:
    return {"encoder": shape.encoder if shape.encoder == "quick" else dict(ENCODERS[shape.encoder][1]),
            "batch": [shape.batch, shape.length]}


def _batch(model, shape: XlingShape, device: torch.device) -> dict[str, torch.Tensor]:
    batch = mlm_batch(model.config.vocab_size, shape.batch, shape.length)
    return {k: v.to(device) for k, v in batch.items()}


def by_shape(results: dict[XlingShape, Result], shapes: tuple[XlingShape, ...]) -> Result:
    """The first shape's result, with every shape's value, target check and details under ``by_shape``."""
    head = results[shapes[0]]
    head.details = dict(head.details, by_shape={s.label: {"value": r.value, "target": r.target, "met": r.met,
                                                          "details": r.details} for s, r in results.items()})
    if len(results) > 1:
        head.measure += f"; headline shape {shapes[0].label}, other shapes under details.by_shape"
    return head


