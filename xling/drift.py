"""Representation drift: how far adapter tuning and full fine-tuning move each layer away from the base.

He et al. (2021), "On the Effectiveness of Adapter-based Tuning for
Pretrained Language Model Adaptation": on the same inputs, compare each
layer's hidden states of the base model with those of an adapter-tuned and
of a fully fine-tuned model (here with linear CKA or RSA from
``xling.analysis``).  Adapters are expected to drift less (higher
similarity).  Hidden states come from ``output_hidden_states=True``
(embeddings + every layer); padding positions are left out.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Mapping

import torch

from adapter_core import active_adapters, atomic_write_json
from xling.analysis import drift_table

from .attach import SLOT
from .plots import lines_png


def encode(tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 128) -> list[dict]:
    """Padded batches (input_ids, attention_mask) for ``texts``."""
    if not texts:
        raise ValueError("no texts to encode")
    return [dict(tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                           return_tensors="pt")) for i in range(0, len(texts), batch_size)]


@torch.no_grad()
def collect_hidden_states(model: torch.nn.Module, batches: Iterable[dict], setup=None) -> list[torch.Tensor]:
    """Per layer (embeddings first), the hidden states of all non-padding tokens: (tokens x hidden).

    ``setup`` activates adapters of a ``TransformersHost`` on ``model`` (e.g.
    ``Stack("en", "ner")``); None runs the model as it is.
    """
    was_training = model.training
    model.eval()
    per_layer: list[list[torch.Tensor]] = []
    try:
        with active_adapters(**{SLOT: setup}) if setup is not None else contextlib.nullcontext():
            for batch in batches:
                outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                output_hidden_states=True)
                keep = batch["attention_mask"].bool()
                states = outputs.hidden_states
                if not per_layer:
                    per_layer = [[] for _ in states]
                for i, state in enumerate(states):
                    per_layer[i].append(state[keep].float().cpu())
    finally:
        model.train(was_training)
    return [torch.cat(chunks) for chunks in per_layer]


def representation_drift(base_states: list[torch.Tensor], other_states: Mapping[str, list[torch.Tensor]],
                         measure: str = "cka") -> dict:
    """{"measure", "layers": [...], "similarity": {model: per-layer similarity to the base}, "mean": {...}}."""
    table = drift_table(base_states, other_states, measure)
    return {"measure": measure, "layers": ["embeddings"] + [f"layer {i}" for i in range(1, len(base_states))],
            "similarity": table, "mean": {name: sum(v) / len(v) for name, v in table.items()}}


def plot_drift(report: dict, path: str | Path) -> Path:
    """Line plot: per-layer similarity to the base model, one line per tuned model."""
    xs = list(range(len(report["layers"])))
    series = {name: (xs, values) for name, values in report["similarity"].items()}
    return lines_png(series, path, f"similarity to the base model ({report['measure'].upper()})",
                     "layer (0 = embeddings)", f"{report['measure'].upper()} with base")


def write_drift_report(report: dict, directory: str | Path) -> Path:
    """``drift.json`` and ``drift.png`` in ``directory``."""
    directory = Path(directory)
    atomic_write_json(directory / "drift.json", report)
    return plot_drift(report, directory / "drift.png")


MEASURES = ("cka", "rsa")


def drift_by_measure(base_states: list[torch.Tensor], other_states: Mapping[str, list[torch.Tensor]],
                     measures: Iterable[str] = MEASURES) -> dict:
    """{measure: ``representation_drift`` report} for several measures on the same hidden states."""
    return {measure: representation_drift(base_states, other_states, measure) for measure in measures}


def write_drift_reports(reports: Mapping[str, dict], directory: str | Path, inputs: dict | None = None) -> list[Path]:
    """``drift.json`` ({"inputs", "measures": {measure: report}}) and one ``drift_<measure>.png`` per measure."""
    directory = Path(directory)
    atomic_write_json(directory / "drift.json", {"inputs": inputs or {}, "measures": dict(reports)})
    return [plot_drift(report, directory / f"drift_{measure}.png") for measure, report in reports.items()]
