"""Freezing the base model, and a summary of what trains.

Frozen tensors get ``requires_grad=False``, so autograd never computes their
weight gradients and an optimizer built from ``trainable_parameters`` holds
no state for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from torch import nn

from .bottleneck import AdapterModule


def adapter_parameter_names(model: nn.Module) -> set[str]:
    """Names of every parameter that lives under an ``AdapterModule``."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        if isinstance(module, AdapterModule):
            for name, _ in module.named_parameters(prefix=prefix):
                names.add(name)
    return names


def freeze_base(
    model: nn.Module,
    train_layer_norms: bool = False,
    trainable_prefixes: Iterable[str] = (),
    extra_trainable: Callable[[str], bool] | None = None,
    train_adapters: bool = True,
) -> "ParameterSummary":
    """Freeze everything but the adapters; return the resulting summary.  The one freeze routine of both hosts.

    ``train_layer_norms`` keeps the base's LayerNorms trainable (Houlsby et
    al. 2019 train them); ``trainable_prefixes`` keeps e.g. a prediction head
    trainable; ``extra_trainable(name)`` is a last, free-form rule.  With
    ``train_adapters=False`` only what those rules name trains (e.g. some
    adapters, or fusion layers over frozen adapters).
    """
    keep = adapter_parameter_names(model) if train_adapters else set()
    if train_layer_norms:
        for prefix, module in model.named_modules():
            if isinstance(module, nn.LayerNorm):
                keep.update(n for n, _ in module.named_parameters(prefix=prefix))
    prefixes = tuple(trainable_prefixes)
    for name, param in model.named_parameters():
        trainable = name in keep or (prefixes and name.startswith(prefixes)) or bool(extra_trainable and extra_trainable(name))
        param.requires_grad_(bool(trainable))
    return summarize(model)


def trainable_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    return (p for p in model.parameters() if p.requires_grad)


@dataclass
class ParameterSummary:
    """Trainable and total parameter counts, and the count of each adapter module."""

    # Parameters with requires_grad=True.
    trainable: int
    # All parameters of the model, base and adapters.
    total: int
    # Parameters under AdapterModules, whether trainable or not.
    adapter: int
    # Parameter count per adapter module name (the innermost AdapterModule).
    per_adapter: dict[str, int] = field(default_factory=dict)

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def format(self) -> str:
        return (f"trainable parameters: {self.trainable:,} of {self.total:,} "
                f"({100 * self.trainable_fraction:.3f}%); adapter parameters: {self.adapter:,}")


def summarize(model: nn.Module) -> ParameterSummary:
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    per_adapter: dict[str, int] = {}
    for prefix, module in model.named_modules():
        inner = list(module.modules())[1:]
        if isinstance(module, AdapterModule) and not any(isinstance(m, AdapterModule) for m in inner):
            per_adapter[prefix] = sum(p.numel() for p in module.parameters())
    names = adapter_parameter_names(model)
    adapter = sum(p.numel() for n, p in model.named_parameters() if n in names)
    return ParameterSummary(trainable=trainable, total=total, adapter=adapter, per_adapter=per_adapter)
