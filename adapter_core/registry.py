"""Adapter kinds by name: ``build_adapter(config)`` makes the module a config describes."""

from __future__ import annotations

from typing import Callable

from torch import nn

from .bottleneck import AdapterModule, BottleneckAdapter
from .config import AdapterConfig
from .invertible import GLOWCoupling, NICECoupling

_KINDS: dict[str, Callable[[AdapterConfig], AdapterModule]] = {
    "bottleneck": BottleneckAdapter,
    "nice": NICECoupling,
    "glow": GLOWCoupling,
}


def register_adapter_kind(kind: str, factory: Callable[[AdapterConfig], AdapterModule]) -> None:
    """Make ``AdapterConfig(kind=kind)`` buildable; refuses to overwrite a kind."""
    if kind in _KINDS and _KINDS[kind] is not factory:
        raise ValueError(f"adapter kind {kind!r} is already registered")
    _KINDS[kind] = factory


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def build_adapter(config: AdapterConfig) -> nn.Module:
    """The module for ``config``; an unknown kind names the known ones."""
    if config.kind not in _KINDS:
        raise ValueError(f"unknown adapter kind {config.kind!r}; known: {', '.join(known_kinds())}")
    return _KINDS[config.kind](config)
