"""AdapterFusion: attention over the outputs of several frozen adapters, one fusion layer per layer.

Pfeiffer, Kamath, Rücklé, Cho & Gurevych (2021), "AdapterFusion:
Non-Destructive Task Composition for Transfer Learning".  In layer l, at
position t, the query is the layer's state h (the adapters' common input),
keys and values are the adapters' outputs z_n:

    s_n = softmax_n( (Q h) . (K z_n) / T ),     o = residual + sum_n s_n V z_n

Q and K start random (N(0, 0.02), as BERT initialises), V starts at the
identity plus small noise, so at the start the fused output is close to
the mean of the adapters' outputs.  The softmax temperature T may be
annealed from ``temperature_start`` down to 1 (AdapterHub's option).  The
fusion layer keeps running statistics of its attention weights, so they
can be inspected after a forward pass or a whole evaluation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from .bottleneck import AdapterModule


@dataclass(frozen=True)
class FusionConfig:
    """What one AdapterFusion layer is; enough to rebuild it from disk."""

    # Width of the hidden states (query) and of the adapters' outputs (keys, values).
    hidden_dim: int
    # Learn a query projection Q (else the raw state is the query).
    query: bool = True
    # Learn a key projection K (else the raw adapter outputs are the keys).
    key: bool = True
    # Learn a value projection V, initialised to the identity plus noise.
    value: bool = True
    # Std of the noise added to V's identity initialisation.
    value_init_noise: float = 1e-6
    # Std of the normal init of Q and K (BERT's 0.02).
    init_std: float = 0.02
    # Softmax temperature at the start; > 1 with ``temperature_steps`` anneals it to 1.
    temperature_start: float = 1.0
    # Training forwards over which the temperature falls linearly to 1 (0: constant).
    temperature_steps: int = 0
    # Dropout on the attention scores.
    attention_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden_dim <= 0:
            raise ValueError(f"hidden_dim must be positive, got {self.hidden_dim}")
        if self.temperature_start < 1.0:
            raise ValueError(f"temperature_start must be >= 1, got {self.temperature_start}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FusionConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fusion config fields: {', '.join(unknown)}")
        return cls(**dict(data))


class AdapterFusionLayer(AdapterModule):
    """One AdapterFusion layer (Pfeiffer et al. 2021): softmax attention over N adapter outputs.

    ``forward(query, adapter_outputs, residual)``: query and residual are
    (..., H), adapter_outputs (..., N, H) (each adapter's output without its
    residual, as in AdapterHub).  Returns (..., H).  After each forward,
    ``last_weights`` holds the mean attention weight per adapter (N,), and
    ``mean_weights()`` the mean over all positions since ``reset_statistics``.
    """

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.config = config
        h = config.hidden_dim
        self.query = nn.Linear(h, h) if config.query else None
        self.key = nn.Linear(h, h) if config.key else None
        self.value = nn.Linear(h, h, bias=False) if config.value else None
        self.dropout = nn.Dropout(config.attention_dropout)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)
        self.last_weights: torch.Tensor | None = None
        self._weight_sum: torch.Tensor | None = None
        self._positions = 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for linear in (self.query, self.key):
            if linear is not None:
                nn.init.normal_(linear.weight, std=self.config.init_std)
                nn.init.zeros_(linear.bias)
        if self.value is not None:
            with torch.no_grad():
                self.value.weight.copy_(torch.eye(self.config.hidden_dim))
                self.value.weight.add_(torch.randn_like(self.value.weight) * self.config.value_init_noise)

    @property
    def temperature(self) -> float:
        c = self.config
        if c.temperature_steps <= 0 or c.temperature_start <= 1.0:
            return c.temperature_start
        done = min(1.0, float(self.steps) / c.temperature_steps)
        return c.temperature_start + (1.0 - c.temperature_start) * done

    def value_regularization(self) -> torch.Tensor:
        """||I - V||_F^2, AdapterHub's optional penalty that keeps V near the identity."""
        if self.value is None:
            return torch.zeros(())
        eye = torch.eye(self.config.hidden_dim, device=self.value.weight.device, dtype=self.value.weight.dtype)
        return (eye - self.value.weight).pow(2).sum()

    def attention(self, query: torch.Tensor, adapter_outputs: torch.Tensor) -> torch.Tensor:
        """Softmax weights (..., N) over the adapters."""
        q = self.query(query) if self.query is not None else query
        k = self.key(adapter_outputs) if self.key is not None else adapter_outputs
        scores = torch.einsum("...h,...nh->...n", q, k)
        return torch.softmax(self.dropout(scores) / self.temperature, dim=-1)

    def forward(self, query: torch.Tensor, adapter_outputs: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        if adapter_outputs.shape[:-2] != query.shape[:-1] or adapter_outputs.shape[-1] != self.config.hidden_dim:
            raise ValueError(f"fusion: adapter outputs {tuple(adapter_outputs.shape)} do not fit query {tuple(query.shape)}")
        weights = self.attention(query, adapter_outputs)
        values = self.value(adapter_outputs) if self.value is not None else adapter_outputs
        fused = torch.einsum("...n,...nh->...h", weights, values)
        self._record(weights)
        if self.training:
            self.steps += 1
        return residual + fused

    # -- inspection ---------------------------------------------------------
    def _record(self, weights: torch.Tensor) -> None:
        flat = weights.detach().reshape(-1, weights.shape[-1]).float()
        self.last_weights = flat.mean(0).cpu()
        total = flat.sum(0).cpu()
        self._weight_sum = total if self._weight_sum is None else self._weight_sum + total
        self._positions += flat.shape[0]

    def reset_statistics(self) -> None:
        self.last_weights, self._weight_sum, self._positions = None, None, 0

    def mean_weights(self) -> torch.Tensor | None:
        """Mean attention weight per adapter over every position seen since ``reset_statistics``."""
        return None if self._weight_sum is None else self._weight_sum / max(1, self._positions)
