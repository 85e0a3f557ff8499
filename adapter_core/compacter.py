"""Compacter and Compacter++: adapters whose projections are parameterised hypercomplex (PHM) layers.

Karimi Mahabadi, Henderson & Ruder (2021), "Compacter: Efficient Low-Rank
Hypercomplex Adapter Layers".  Each projection of a bottleneck adapter is a
PHM layer (Zhang et al. 2021)

    W = sum_{i=1..n} A_i (x) B_i,   A_i in R^{n x n},  B_i = s_i t_i^T in R^{(out/n) x (in/n)},

with the "slow" A_i shared by every Compacter layer of a model and the
"fast" B_i low-rank (rank 1 in the paper) and private to each layer.  One
adapter with hidden size k and bottleneck d then holds 2(k + d) factor
weights plus k + d biases; the n^3 shared weights are counted once.

Sharing without shared storage: ``share_phm_rule(adapters)`` makes the first
adapter the *owner* of one ``PHMRule`` (registered as its submodule, so it is
trained, checkpointed and exported once, e.g. as ``layers.0.phm_rule.weight``),
and the others hold a plain, unregistered reference to it.  So a state dict
never holds two views of one storage (safetensors refuses those), and
``adapter_core.io.save_adapter`` works unchanged; a host re-shares after
building the modules and before copying loaded tensors in.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn

from .bottleneck import AdapterModule, ResidualBottleneck, build_activation
from .config import AdapterConfig
from .registry import register_adapter_kind


class PHMRule(AdapterModule):
    """The shared "slow weights" A_1..A_n (n x n each) of Compacter (Karimi Mahabadi et al. 2021)."""

    def __init__(self, phm_dim: int, init_range: float = 0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(phm_dim, phm_dim, phm_dim))
        self.init_range = init_range
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=self.init_range)


class PHMLinear(nn.Module):
    """y = x W^T + b with W = sum_i A_i (x) (s_i t_i^T): a PHM layer with low-rank B_i (Compacter).

    ``rule`` gives the A_i; it is read at every forward, so a rule swapped in
    by ``use_rule`` (the shared one) takes effect at once.
    """

    def __init__(self, in_features: int, out_features: int, phm_dim: int, rank: int, rule: PHMRule):
        super().__init__()
        for what, size in (("in_features", in_features), ("out_features", out_features)):
            if size % phm_dim:
                raise ValueError(f"Compacter: {what} {size} is not divisible by phm_dim n={phm_dim}")
        self.in_features, self.out_features, self.phm_dim = in_features, out_features, phm_dim
        self.left = nn.Parameter(torch.empty(phm_dim, out_features // phm_dim, rank))   # s_i
        self.right = nn.Parameter(torch.empty(phm_dim, rank, in_features // phm_dim))  # t_i^T
        self.bias = nn.Parameter(torch.zeros(out_features))
        self._rule = [rule]  # a list, so the module is not registered here
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot-uniform factors and zero bias, as in the authors' code.
        for factor in (self.left, self.right):
            fan_in, fan_out = factor.shape[-1], factor.shape[-2]
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(factor, -bound, bound)
        nn.init.zeros_(self.bias)

    @property
    def rule(self) -> PHMRule:
        return self._rule[0]

    def use_rule(self, rule: PHMRule) -> None:
        self._rule[0] = rule

    def weight(self) -> torch.Tensor:
        """The dense (out x in) matrix sum_i A_i (x) B_i."""
        n = self.phm_dim
        fast = torch.matmul(self.left, self.right)  # B_i: (n, out/n, in/n)
        dense = torch.einsum("iac,ibe->abce", self.rule.weight, fast)
        return dense.reshape(n * fast.shape[1], n * fast.shape[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight(), self.bias)


class CompacterAdapter(ResidualBottleneck):
    """A Compacter adapter: ``residual + up(act(down(x)))`` with PHM projections.

    Karimi Mahabadi et al. (2021), "Compacter: Efficient Low-Rank Hypercomplex
    Adapter Layers".  Same interface as ``BottleneckAdapter`` (``delta``,
    ``forward(x, residual=None)``), so any host placement works: Compacter++
    is this module in the Pfeiffer (after-FFN) position only.  Until a host
    calls ``share_phm_rule``, the adapter owns a private ``phm_rule``.
    """

    def __init__(self, config: AdapterConfig):
        super().__init__()
        if config.kind != "compacter":
            raise ValueError(f"CompacterAdapter needs kind='compacter', got {config.kind!r}")
        self.config = config
        d, m, n = config.hidden_dim, config.resolved_bottleneck_dim, config.phm_dim
        self.phm_rule: PHMRule | None = PHMRule(n, config.phm_init_range)
        self._shared = [self.phm_rule]
        self.layer_norm = nn.LayerNorm(d) if config.input_layer_norm else None
        self.down = PHMLinear(d, m, n, config.phm_rank, self.phm_rule)
        self.activation = build_activation(config.activation)
        self.up = PHMLinear(m, d, n, config.phm_rank, self.phm_rule)

    @property
    def rule(self) -> PHMRule:
        """The A_i this adapter uses (its own or the shared one)."""
        return self._shared[0]

    def use_rule(self, rule: PHMRule, owner: bool) -> None:
        """Use ``rule``; register it as a submodule only if this adapter is its owner."""
        self._shared[0] = rule
        self.phm_rule = rule if owner else None
        self.down.use_rule(rule)
        self.up.use_rule(rule)

    @staticmethod
    def expected_parameter_count(hidden_dim: int, bottleneck_dim: int, rank: int = 1, input_layer_norm: bool = False) -> int:
        """Per-adapter weights without the shared A: 2·r·(k + d) factors + (k + d) biases (+ 2k LayerNorm)."""
        k, d = hidden_dim, bottleneck_dim
        return 2 * rank * (k + d) + k + d + (2 * k if input_layer_norm else 0)


def share_phm_rule(adapters: Sequence[CompacterAdapter] | Iterable[CompacterAdapter]) -> PHMRule | None:
    """Make all ``adapters`` use the first one's A_i; returns the shared rule (None for no adapters).

    Idempotent.  Adapters whose config says ``phm_shared_rule=False`` keep
    their own rule.  All shared adapters need the same ``phm_dim``.
    """
    adapters = [a for a in adapters if a.config.phm_shared_rule]
    if not adapters:
        return None
    owner = adapters[0]
    rule = owner.rule
    for adapter in adapters:
        if adapter.config.phm_dim != owner.config.phm_dim:
            raise ValueError(f"cannot share A between phm_dim {owner.config.phm_dim} and {adapter.config.phm_dim}")
        adapter.use_rule(rule, owner=adapter is owner)
    return rule


def compacter_model_parameter_count(hidden_dim: int, bottleneck_dim: int, num_adapters: int, phm_dim: int,
                                    rank: int = 1) -> int:
    """Trainable Compacter weights of a whole model: per-adapter weights times the count, plus n^3 shared once."""
    return num_adapters * CompacterAdapter.expected_parameter_count(hidden_dim, bottleneck_dim, rank) + phm_dim ** 3


register_adapter_kind("compacter", CompacterAdapter)
