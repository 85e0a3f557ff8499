"""Named adapters at one insertion point, with per-sample routing of mixed batches.

Bapna & Firat (2019) keep one adapter per language pair in each layer;
Philip et al. (2020) one per language.  A batch drawn by fairseq's
``translation_multi_simple_epoch`` can mix pairs, so each sample must go
through its own adapter.  ``AdapterBank`` groups the batch by key with index
operations: one ``index_select`` per distinct key, one ``cat`` and one
``index_select`` to restore the order.  The cost grows with the number of
distinct keys in the batch, never with the number of samples.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from .bottleneck import AdapterModule
from .config import AdapterConfig
from .registry import build_adapter

#: The key that means "no adapter here": the input passes through unchanged.
IDENTITY = "__identity__"

Keys = Union[str, Sequence[str]]


class UnknownAdapterError(KeyError):
    """A key that names no adapter in the bank; the message lists the known keys."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class AdapterBank(AdapterModule):
    """Holds named adapters (keys such as ``de`` or ``en-de``) in an ``nn.ModuleDict``.

    ``forward(x, keys)`` takes one key for the whole batch, or one key per
    sample along ``batch_dim``.  The result equals running each sample alone
    through its adapter.  ``IDENTITY`` (and any key given to ``alias_identity``)
    leaves its samples unchanged.
    """

    def __init__(self, config: AdapterConfig, names: Sequence[str] = (), batch_dim: int = 0):
        super().__init__()
        self.config = config
        self.batch_dim = batch_dim
        self.adapters = nn.ModuleDict()
        self.identity_keys: set[str] = {IDENTITY}
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

    def alias_identity(self, name: str) -> None:
        """Route ``name`` to "no adapter" (e.g. ``--missing-adapter identity``)."""
        self.identity_keys.add(name)

    @property
    def names(self) -> list[str]:
        return list(self.adapters.keys())

    def __contains__(self, name: str) -> bool:
        return name in self.adapters or name in self.identity_keys

    def check(self, key: str) -> None:
        if key not in self:
            known = ", ".join(sorted(self.adapters)) or "(none)"
            raise UnknownAdapterError(f"no adapter {key!r} here; known adapters: {known} (or {IDENTITY!r} for none)")

    # -- routing ------------------------------------------------------------
    def _route_one(self, key: str, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        if key in self.adapters:
            adapter = self.adapters[key]
            return adapter(x) if residual is None else adapter(x, residual)
        self.check(key)
        return x if residual is None else residual

    def _groups(self, keys: Keys | torch.Tensor, key_names: Sequence[str] | None, size: int, device) -> list[tuple[str, torch.Tensor | None]]:
        """(key, sample index) per distinct key; the index is None when one key covers all."""
        if isinstance(keys, str):
            return [(keys, None)]
        if isinstance(keys, torch.Tensor):
            if key_names is None:
                raise ValueError("key ids given as a tensor need key_names to name them")
            if keys.numel() != size:
                raise ValueError(f"got {keys.numel()} keys for a batch of {size} along dim {self.batch_dim}")
            ids = keys.reshape(-1).to(device)
            distinct = torch.unique(ids)
            if distinct.numel() == 1:
                return [(key_names[int(distinct)], None)]
            return [(key_names[int(i)], (ids == i).nonzero().squeeze(1)) for i in distinct]
        if len(keys) != size:
            raise ValueError(f"got {len(keys)} keys for a batch of {size} along dim {self.batch_dim}")
        names = sorted(set(keys))
        if len(names) == 1:
            return [(names[0], None)]
        lookup = {name: i for i, name in enumerate(names)}
        ids = torch.tensor([lookup[k] for k in keys], device=device)
        return self._groups(ids, names, size, device)

    def forward(self, x: torch.Tensor, keys: Keys | torch.Tensor, residual: torch.Tensor | None = None,
                key_names: Sequence[str] | None = None) -> torch.Tensor:
        """Route ``x`` by ``keys``: a str, one str per sample, or a LongTensor of ids into ``key_names``."""
        dim = self.batch_dim
        groups = self._groups(keys, key_names, x.shape[dim], x.device)
        if groups[0][1] is None:
            return self._route_one(groups[0][0], x, residual)
        outputs, order = [], []
        for key, index in groups:
            sub_residual = None if residual is None else residual.index_select(dim, index)
            outputs.append(self._route_one(key, x.index_select(dim, index), sub_residual))
            order.append(index)
        inverse = torch.empty(x.shape[dim], dtype=torch.long, device=x.device)
        inverse[torch.cat(order)] = torch.arange(x.shape[dim], device=x.device)
        return torch.cat(outputs, dim=dim).index_select(dim, inverse)
