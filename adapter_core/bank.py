"""Named adapters at one insertion point, with per-sample routing of mixed batches.

Bapna & Firat (2019) keep one adapter per language pair in each layer;
Philip et al. (2020) one per language.  A batch drawn by fairseq's
``translation_multi_simple_epoch`` can mix pairs, so each sample must go
through its own adapter.  ``AdapterBank`` groups the batch by key with index
operations: one ``index_select`` per distinct key, one ``cat`` and one
``index_select`` to restore the order.  The cost grows with the number of
distinct keys in the batch, never with the number of samples.  The grouping
itself (``torch.unique``, one index per key, the inverse order) needs the ids
on the host; ``RoutingPlan.build`` does it once per batch, so that every layer
of a stack reuses it instead of synchronising again.

A bank can also hold AdapterFusion layers (Pfeiffer et al. 2021, see
``adapter_core.fusion``): ``add_fusion(name, over)`` makes ``name`` a key
whose samples go through every adapter in ``over`` and an attention over
their outputs.  The name may be that of one of the fused adapters (the
paper fuses the target task's own adapter with the others): routing then
takes the fusion, and the adapter stays reachable through the fusion only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from .bottleneck import AdapterModule
from .config import AdapterConfig
from .fusion import AdapterFusionLayer, FusionConfig
from .registry import build_adapter

#: The key that means "no adapter here": the input passes through unchanged.
IDENTITY = "__identity__"

Keys = Union[str, Sequence[str]]


class UnknownAdapterError(KeyError):
    """A key that names no adapter in the bank; the message lists the known keys."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


@dataclass(frozen=True)
class RoutingPlan:
    """How a batch splits into adapter keys, computed once and reused by every bank of a stack."""

    # (setup, sample indices along the batch dim) per distinct key: an adapter key or an ``adapter_core.Setup``
    # such as ``Stack("de", "en-de")``; the index is None when one setup covers all.
    groups: tuple[tuple[object, torch.Tensor | None], ...]
    # Position of every sample in the grouped order (None with a single group): restores the batch order.
    inverse: torch.Tensor | None
    # Batch size the plan was made for.
    size: int
    # Group number (index into ``groups``) of every sample (None with a single group): the batched path of
    # ``compose`` gathers each sample's adapter weights by it.
    group_of_sample: torch.Tensor | None = None

    @classmethod
    def build(cls, ids: torch.Tensor, key_names: Sequence, device=None) -> "RoutingPlan":
        """Group ``ids`` (one id per sample into ``key_names``: keys or setups); one host synchronisation in all."""
        ids = ids.reshape(-1)
        if device is not None:
            ids = ids.to(device)
        distinct, counts = torch.unique(ids, return_counts=True)
        names = [key_names[i] for i in distinct.tolist()]
        if len(names) == 1:
            return cls(groups=((names[0], None),), inverse=None, size=ids.numel())
        order = torch.argsort(ids, stable=True)
        indices = torch.split(order, counts.tolist())
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return cls(groups=tuple(zip(names, indices)), inverse=inverse, size=ids.numel(),
                   group_of_sample=torch.searchsorted(distinct, ids))


class AdapterBank(AdapterModule):
    """Holds named adapters (keys such as ``de`` or ``en-de``) in an ``nn.ModuleDict``.

    ``forward(x, keys)`` takes one key for the whole batch, or one key per
    sample along ``batch_dim``.  The result equals running each sample alone
    through its adapter.  ``IDENTITY`` leaves its samples unchanged.
    """

    def __init__(self, config: AdapterConfig, names: Sequence[str] = (), batch_dim: int = 0):
        super().__init__()
        self.config = config
        self.batch_dim = batch_dim
        self.adapters = nn.ModuleDict()
        self.fusions = nn.ModuleDict()
        # Fusion name -> the adapters it attends over (in order).
        self.fusion_sources: dict[str, tuple[str, ...]] = {}
        for name in names:
            self.add(name)

    # -- membership ---------------------------------------------------------
    def add(self, name: str, config: AdapterConfig | None = None) -> nn.Module:
        """Create the adapter ``name`` (with the bank's config unless one is given)."""
        if not name or "." in name:
            raise ValueError(f"adapter names must be non-empty and contain no '.', got {name!r}")
        if name in self.adapters:
            raise ValueError(f"adapter {name!r} already exists")
        module = build_adapter(config or self.config)
        self.adapters[name] = module
        return module

    def add_fusion(self, name: str, over: Sequence[str], config: FusionConfig | None = None) -> AdapterFusionLayer:
        """Make ``name`` an AdapterFusion (Pfeiffer et al. 2021) over the adapters ``over`` of this bank."""
        if not name or "." in name:
            raise ValueError(f"fusion names must be non-empty and contain no '.', got {name!r}")
        if name in self.fusions or (name in self.adapters and name not in over):
            raise ValueError(f"{name!r} already names {'a fusion' if name in self.fusions else 'an adapter'} here")
        over = tuple(over)
        missing = [key for key in over if key not in self.adapters]
        if len(over) < 2 or missing:
            known = ", ".join(sorted(self.adapters)) or "(none)"
            raise ValueError(f"fusion {name!r} needs at least two adapters of this bank; "
                             f"{'missing: ' + ', '.join(missing) if missing else 'got ' + str(list(over))}; known: {known}")
        layer = AdapterFusionLayer(config or FusionConfig(hidden_dim=self.config.hidden_dim))
        self.fusions[name] = layer
        self.fusion_sources[name] = over
        return layer

    @property
    def names(self) -> list[str]:
        return list(self.adapters.keys())

    def __contains__(self, name: str) -> bool:
        return name in self.adapters or name in self.fusions or name == IDENTITY

    # -- routing ------------------------------------------------------------
    def plan(self, keys: Keys | torch.Tensor | RoutingPlan, key_names: Sequence[str] | None, size: int,
             device) -> RoutingPlan:
        """The ``RoutingPlan`` of ``keys`` (a str or setup, one str per sample, ids into ``key_names``, or a plan)."""
        from .compose import Fuse, Stack

        if isinstance(keys, RoutingPlan):
            plan = keys
        elif isinstance(keys, (str, Stack, Fuse)):
            return RoutingPlan(groups=((keys, None),), inverse=None, size=size)
        elif isinstance(keys, torch.Tensor):
            if key_names is None:
                raise ValueError("key ids given as a tensor need key_names to name them")
            plan = RoutingPlan.build(keys, key_names, device)
        else:
            names = sorted(set(keys))
            lookup = {name: i for i, name in enumerate(names)}
            plan = RoutingPlan.build(torch.tensor([lookup[k] for k in keys], dtype=torch.long), names, device)
        if plan.size != size:
            raise ValueError(f"got {plan.size} keys for a batch of {size} along dim {self.batch_dim}")
        return plan

    def forward(self, x: torch.Tensor, keys: Keys | torch.Tensor | RoutingPlan, residual: torch.Tensor | None = None,
                key_names: Sequence[str] | None = None) -> torch.Tensor:
        """Route ``x`` by ``keys``: a str or setup (``Stack``, ``Fuse``), one str per sample, ids into ``key_names``,
        or a ``RoutingPlan``; ``residual`` (default ``x``) is what each adapter adds its output to."""
        from .compose import compose

        plan = self.plan(keys, key_names, x.shape[self.batch_dim], x.device)
        if residual is None:
            return compose(plan, x, self.adapters, self.fusions, fusion_over=self.fusion_sources,
                           batch_dim=self.batch_dim)
        return compose(plan, residual, self.adapters, self.fusions, fusion_over=self.fusion_sources,
                       read=_read_input, extras=(x,), batch_dim=self.batch_dim)


def _read_input(stream: torch.Tensor, adapter: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """With a separate residual, the adapters read the bank's input ``x`` and add to the residual stream."""
    return x
