"""Small matplotlib (Agg) helpers for the analysis reports: heatmaps and line plots, written atomically as PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

from adapter_core import atomic_write_bytes


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap_png(values: Sequence[Sequence[float]], row_labels: Sequence[str], column_labels: Sequence[str],
                path: str | Path, title: str, colorbar_label: str, xlabel: str = "", ylabel: str = "",
                cmap: str = "viridis", centre_zero: bool = False) -> Path:
    """A heatmap with one annotated cell per value; NaN cells stay blank."""
    plt = _figure()
    rows, cols = len(row_labels), len(column_labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * max(cols, 2), 1.0 + 0.5 * max(rows, 2)))
    finite = [v for row in values for v in row if not math.isnan(v)]
    kwargs = {}
    if centre_zero and finite:
        bound = max(abs(v) for v in finite) or 1.0
        kwargs = {"vmin": -bound, "vmax": bound}
    image = ax.imshow([list(r) for r in values], cmap=cmap, aspect="auto", **kwargs)
    ax.set_xticks(range(cols), labels=list(column_labels), rotation=45, ha="right")
    ax.set_yticks(range(rows), labels=list(row_labels))
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return _save(plt, fig, path)


def lines_png(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, title: str,
              xlabel: str, ylabel: str, log_x: bool = False,
              errors: Mapping[str, Sequence[float]] | None = None) -> Path:
    """One line (with markers) per named series of (x values, y values); ``errors`` (optional, per series
    name): a half-height error bar at each point, e.g. the std over seeds."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in series.items():
        if errors and name in errors:
            ax.errorbar(list(xs), list(ys), yerr=list(errors[name]), marker="o", capsize=3, label=name)
        else:
            ax.plot(list(xs), list(ys), marker="o", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
