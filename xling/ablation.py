"""Layer ablation of trained adapters at inference (Houlsby et al. 2019, fig. 6).

Houlsby et al. (2019), "Parameter-Efficient Transfer Learning for NLP",
remove the trained adapters of a span of layers [first, last] at inference
and plot the change of the metric as a heatmap (first layer x last layer).
``layer_ablation`` does this with any ``score()`` callable (F1, accuracy);
the switch is ``TransformersHost.adapters_skipped``, which also skips the adapters'
cost, so the same table tells which adapters can be pruned for speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from adapter_core import atomic_write_json

from .attach import TransformersHost
from .plots import heatmap_png


@dataclass
class AblationResult:
    """Scores with the adapters of layer spans removed."""

    # The metric with every adapter in place.
    baseline: float
    # change[first][last] = score(adapters of layers first..last removed) - baseline; NaN where last < first
    # or where the span was not evaluated.
    change: list[list[float]] = field(default_factory=list)
    # Name of the metric (for the plot and JSON).
    metric: str = "score"

    def to_json(self) -> dict:
        return {"metric": self.metric, "baseline": self.baseline,
                "change": [[None if math.isnan(v) else v for v in row] for row in self.change]}


def layer_ablation(host: TransformersHost, score: Callable[[], float], spans: bool = True, metric: str = "score",
                   max_span: int | None = None) -> AblationResult:
    """Score with the adapters of each layer (``spans=False``) or each span [first, last] removed."""
    num_layers = len(host.outputs)
    baseline = float(score())
    change = [[math.nan] * num_layers for _ in range(num_layers)]
    pairs = [(f, l) for f in range(num_layers) for l in range(f, num_layers)
             if (spans or f == l) and (max_span is None or l - f + 1 <= max_span)]
    for first, last in tqdm(pairs, desc="layer ablation", leave=False):
        with host.adapters_skipped(range(first, last + 1)):
            change[first][last] = float(score()) - baseline
    return AblationResult(baseline=baseline, change=change, metric=metric)


def plot_ablation(result: AblationResult, path: str | Path) -> Path:
    """Heatmap PNG: rows = first removed layer, columns = last removed layer, colour = metric change."""
    labels = [str(i) for i in range(len(result.change))]
    return heatmap_png(result.change, labels, labels, path, f"adapters removed: {result.metric} change "
                       f"(baseline {result.baseline:.2f})", f"Δ {result.metric}", xlabel="last layer",
                       ylabel="first layer", cmap="RdBu", centre_zero=True)


def write_ablation_report(result: AblationResult, directory: str | Path) -> Path:
    """``ablation.json`` and ``ablation.png`` in ``directory``."""
    directory = Path(directory)
    atomic_write_json(directory / "ablation.json", result.to_json())
    return plot_ablation(result, directory / "ablation.png")
