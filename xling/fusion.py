"""AdapterFusion in xling: fuse several frozen task adapters, train only the fusion layers and the head.

Pfeiffer et al. (2021), "AdapterFusion: Non-Destructive Task Composition for
Transfer Learning".  Stage 1 trains one adapter per task (``xling
train-task``); stage 2 (``train_fusion``) loads them frozen, adds one
``AdapterFusionLayer`` per layer (query: the layer state LN(h + x) that the
adapters read; keys and values: the adapters' outputs) and trains the fusion
layers and a fresh prediction head on the target task.  With a language
adapter the setup is ``Stack(lang, Fuse(t1, t2, ...))``.

The value matrices start at the identity and are regularised towards it: the
training loss adds λ · Σ_l ||I − V_l||²_F over the fusion layers l
(``value_regularization_loss``), with λ = 0.01 (``VALUE_REGULARIZATION``), the
weight of the authors' AdapterHub implementation, whose dynamic fusion (the
paper's) turns it on; ``value_regularization=0`` leaves it out.

The fusion layers keep their attention weights; ``fusion_weight_matrix``
reads them (layers x adapters) and ``plot_fusion_weights`` draws them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from adapter_core import Fuse, FusionConfig, Stack, atomic_write_json, is_fusion_directory
from adapter_core.io import load_fusion as core_load_fusion
from adapter_core.loading import load_adapter_into
from adapter_core.io import save_fusion as core_save_fusion

from . import train
from .adapter_io import LAYER_NORMS, TransformersAdapterSlots, load_madx_adapter
from .attach import TransformersHost
from .plots import heatmap_png

logger = logging.getLogger(__name__)
#: λ of the value regularisation λ · Σ_l ||I − V_l||²_F (Pfeiffer et al. 2021, as AdapterHub implements it).
VALUE_REGULARIZATION = 0.01


def value_regularization_loss(host: TransformersHost, name: str, weight: float = VALUE_REGULARIZATION) -> torch.Tensor:
    """λ · Σ_l ||I − V_l||²_F over the fusion layers of fusion ``name``: keeps each value matrix near the identity.

    Its gradient with respect to V_l is 2λ (V_l − I).
    """
    return weight * sum(layer.value_regularization() for layer in host.fusion_layers(name))


def fusion_weight_matrix(host: TransformersHost, name: str, last: bool = False) -> list[list[float]]:
    """Attention weight per (layer, adapter): the mean since the last reset, or the last forward's."""
    matrix = []
    for i, layer in enumerate(host.fusion_layers(name)):
        weights = layer.last_weights if last else layer.mean_weights()
        if weights is None:
            raise ValueError(f"fusion {name!r} has seen no input in layer {i}; run a forward pass first")
        matrix.append([float(w) for w in weights])
    return matrix


def reset_fusion_statistics(host: TransformersHost, name: str) -> None:
    for layer in host.fusion_layers(name):
        layer.reset_statistics()


def plot_fusion_weights(matrix: list[list[float]], adapter_names: list[str], path: str | Path, title: str = "") -> Path:
    """Heatmap PNG: one row per layer, one column per fused adapter."""
    rows = [f"layer {i}" for i in range(len(matrix))]
    return heatmap_png(matrix, rows, adapter_names, path, title or "AdapterFusion attention", "mean softmax weight",
                       xlabel="adapter", ylabel="layer", cmap="magma")


def fusion_report(host: TransformersHost, name: str, directory: str | Path) -> dict:
    """Write ``fusion_weights.json`` and ``fusion_weights.png`` for fusion ``name``; returns the JSON."""
    matrix = fusion_weight_matrix(host, name)
    adapters = list(host.fusions[name].names)
    document = {"fusion": name, "adapters": adapters, "weights": matrix}
    directory = Path(directory)
    atomic_write_json(directory / "fusion_weights.json", document)
    plot_fusion_weights(matrix, adapters, directory / "fusion_weights.png", title=f"AdapterFusion {name}")
    return document


# -- on disk ------------------------------------------------------------------------------------
def save_fusion(host: TransformersHost, name: str, directory: str | Path) -> Path:
    """The fusion layers in the adapter format (``adapter_core.io.save_fusion``; tensors ``layers.{i}.<param>``)."""
    fuse = host.fusions[name]
    config = host.fusion_layers(name)[0].config
    return core_save_fusion(directory, host.fusion_tensors(name), config, fuse.names, host.base_fingerprint(), name,
                            metadata={"num_layers": len(host.outputs)})


def load_fusion(host: TransformersHost, directory: str | Path, force: bool = False) -> Fuse:
    """Add the fusion saved in ``directory`` to ``host`` (the adapters it fuses must be loaded already), through
    ``adapter_core.load_adapter_into``."""
    if not is_fusion_directory(directory):
        core_load_fusion(directory, host.base_fingerprint(), force)  # says what the directory lacks
    name = load_adapter_into(TransformersAdapterSlots(host), directory, force=force)
    return host.fusions[name]


# -- training -------------------------------------------------------------------------------------
def train_fusion(model_dir: str, task: str, task_adapters: list[str], train_file: str, options,
                 language_adapter: str | None = None, labels_file: str | None = None,
                 fusion_config: FusionConfig | None = None, force: bool = False,
                 value_regularization: float = VALUE_REGULARIZATION) -> Path:
    """Stage 2 of AdapterFusion: train fusion layers (+ head) over frozen task adapters; returns OUT/fusion.

    ``options`` is an ``xling.train.TrainOptions``.  The fused adapters and
    the base stay frozen; a fresh head for ``task`` trains with the fusion
    (``xling.train.train_with_head``, which publishes OUT/fusion whole, from
    the main process only).  ``value_regularization`` is the λ of the loss
    term λ · Σ_l ||I − V_l||²_F (0: none).
    """
    if value_regularization < 0:
        raise ValueError(f"value_regularization must be >= 0, got {value_regularization:g}")
    if len(task_adapters) < 2:
        raise ValueError(f"AdapterFusion needs two or more task adapters, got {len(task_adapters)}")
    trained_norms = [str(p) for p in task_adapters if (Path(p) / LAYER_NORMS).is_file()]
    if trained_norms:
        raise ValueError(f"AdapterFusion runs its adapters over one base; {', '.join(trained_norms)} trained the "
                         "encoder's LayerNorms with it (--train-layer-norms)")
    setup = train.load_task_setup(model_dir, task, train_file, options.seed, labels_file)
    host = TransformersHost(setup.model)
    lang = load_madx_adapter(host, language_adapter, force=force) if language_adapter else None
    names = [load_madx_adapter(host, path, force=force) for path in task_adapters]
    fuse = host.add_fusion(Fuse(*names), fusion_config)
    host.set_active(Stack(lang, fuse) if lang else fuse)
    trainable = host.train_only([fuse.name], train_head=True)
    logger.info("AdapterFusion over %s: %d trainable tensors", ", ".join(names), len(trainable))
    if value_regularization and (fusion_config is None or fusion_config.value):
        setup.regulariser = lambda: value_regularization_loss(host, fuse.name, value_regularization)

    def build(tmp: Path) -> None:
        save_fusion(host, fuse.name, tmp)
        train.save_head(host, tmp)
        atomic_write_json(tmp / train.TASK_INFO, {"task": task, "labels": setup.labels, "fusion": fuse.name,
                                                  "adapter_name": fuse.name,
                                                  "adapters": [str(Path(p).resolve()) for p in task_adapters],
                                                  "language_adapter": language_adapter, "seed": options.seed,
                                                  "value_regularization": value_regularization})
        fusion_report(host, fuse.name, tmp)

    return train.train_with_head(setup, options, "fusion", build)
