"""LoRA: a low-rank update beside a frozen projection.

Hu et al. (2021), "LoRA: Low-Rank Adaptation of Large Language Models".  A
projection h = W x becomes h = W x + (alpha / r) B A x with A (r x d_in) and
B (d_out x r) trained and W frozen.  In He et al. (2022)'s unified view,
"Towards a Unified View of Parameter-Efficient Transfer Learning", this is a
parallel adapter on the projection with an identity non-linearity, bottleneck
width r and scale alpha / r; so the rank is the config's ``bottleneck_dim``.

The module has the bottleneck adapters' interface (``delta(x)``,
``forward(x, residual)``): a host calls it through ``adapter_core.compose``
with the projection's input as what the adapter reads and the projection's
output as the residual stream, at the sites ``Site.QUERY``/``KEY``/``VALUE``
(placements ``query_value``, LoRA's default, and ``query_key_value``).  A
stack of LoRA modules at one site sums their updates (each reads x).

Reference: AdapterHub's ``LoRAConfig`` (r=8, alpha=8, dropout 0, q and v of
the self-attention, init "lora": A Kaiming-uniform with a=sqrt(5), B zero).
Where ours differs: square projections only (d_in = d_out = the hidden size,
so no LoRA on the FFN's ``intermediate``/``output`` matrices, which
AdapterHub offers as options); no gating, no (IA)^3 "scale" composition, no
DoRA/VeRA; ``merged_weight`` gives W + sBA for a caller that wants to fold the
update in (AdapterHub's ``merge_adapter``); the hosts keep the update separate,
so that one batch can route samples to different LoRA modules.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bottleneck import AdapterModule
from .config import AdapterConfig
from .registry import register_adapter_kind


class LoRAAdapter(AdapterModule):
    """``residual + (alpha / r) B A dropout(x)`` for one projection (square: d_in = d_out = hidden_dim)."""

    def __init__(self, config: AdapterConfig):
        super().__init__()
        if config.kind != "lora":
            raise ValueError(f"LoRAAdapter needs kind='lora', got {config.kind!r}")
        self.config = config
        d, r = config.hidden_dim, config.resolved_bottleneck_dim
        self.lora_A = nn.Parameter(torch.empty(r, d))  # AdapterHub's and peft's names and shapes
        self.lora_B = nn.Parameter(torch.empty(d, r))
        self.scaling = config.lora_alpha / r
        self.dropout = nn.Dropout(config.lora_dropout) if config.lora_dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.config.init == "lora":  # Hu et al.: A random, B zero, so the update starts at zero
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B)
        else:  # "bert", AdapterHub's alternative: both N(0, 0.02) (not zero at the start)
            nn.init.normal_(self.lora_A, std=0.02)
            nn.init.normal_(self.lora_B, std=0.02)

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The update (alpha / r) B A x, without W x."""
        return nn.functional.linear(nn.functional.linear(self.dropout(x), self.lora_A), self.lora_B) * self.scaling

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return (x if residual is None else residual) + self.delta(x)

    def merged_weight(self, weight: torch.Tensor) -> torch.Tensor:
        """W + (alpha / r) B A: the projection's weight with the update folded in (same output, no extra cost)."""
        return weight + (self.lora_B @ self.lora_A).to(weight.dtype) * self.scaling

    @staticmethod
    def expected_parameter_count(d_in: int, d_out: int, rank: int) -> int:
        """r (d_in + d_out) per adapted projection (A and B; LoRA has no biases)."""
        return rank * (d_in + d_out)


register_adapter_kind("lora", LoRAAdapter)
