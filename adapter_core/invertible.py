"""Invertible adapters for MAD-X: NICE and GLOW coupling blocks.

Pfeiffer et al. (2020), "MAD-X: An Adapter-Based Framework for Multi-Task
Cross-Lingual Transfer", put an invertible adapter on the embedding output
and its inverse before the tied output embeddings of the MLM head.  The
coupling blocks follow Dinh et al. (2015, NICE) and Kingma & Dhariwal (2018,
GLOW).  Both split the hidden vector into two halves along the *feature*
dimension (AdapterHub's GLOW block splits along dimension 1, the sequence,
and crashes; we split the last dimension).
"""

from __future__ import annotations

import torch
from torch import nn

from .bottleneck import AdapterModule, build_activation, init_linear
from .config import AdapterConfig


def _subnet(in_dim: int, bottleneck: int, out_dim: int, config: AdapterConfig) -> nn.Sequential:
    """Linear(in -> in/rf) -> activation -> Linear(-> out), initialised N(0, 0.02) by default."""
    net = nn.Sequential(nn.Linear(in_dim, bottleneck), build_activation(config.activation), nn.Linear(bottleneck, out_dim))
    scheme = "bert" if config.init == "zero_up" else config.init
    init_linear(net[0], scheme)
    init_linear(net[2], scheme)
    return net


class _Coupling(AdapterModule):
    def __init__(self, config: AdapterConfig, expected_kind: str):
        super().__init__()
        if config.kind != expected_kind:
            raise ValueError(f"{type(self).__name__} needs kind={expected_kind!r}, got {config.kind!r}")
        if config.hidden_dim < 2:
            raise ValueError("a coupling block needs hidden_dim >= 2")
        self.config = config
        self.split1 = config.hidden_dim // 2
        self.split2 = config.hidden_dim - self.split1

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] != self.config.hidden_dim:
            raise ValueError(f"expected last dimension {self.config.hidden_dim}, got shape {tuple(x.shape)}")
        return x[..., : self.split1], x[..., self.split1 :]


class NICECoupling(_Coupling):
    """Additive coupling (NICE, Dinh et al. 2015), MAD-X's invertible adapter.

    y1 = x1 + F(x2);  y2 = x2 + G(y1).  F and G are
    Linear(H/2 -> H/2/rf) -> activation -> Linear(-> H/2), MAD-X default rf 2, ReLU.
    """

    def __init__(self, config: AdapterConfig):
        super().__init__(config, "nice")
        m = config.resolved_bottleneck_dim
        self.F = _subnet(self.split2, m, self.split1, config)
        self.G = _subnet(self.split1, m, self.split2, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._halves(x)
        y1 = x1 + self.F(x2)
        y2 = x2 + self.G(y1)
        return torch.cat([y1, y2], dim=-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = self._halves(y)
        x2 = y2 - self.G(y1)
        x1 = y1 - self.F(x2)
        return torch.cat([x1, x2], dim=-1)


class GLOWCoupling(_Coupling):
    """Affine coupling (GLOW, Kingma & Dhariwal 2018), the alternative MAD-X block.

    y1 = x1 * exp(s2(x2)) + t2(x2);  y2 = x2 * exp(s1(y1)) + t1(y1), with the
    log-scales soft-clamped to (-clamp, clamp) by ``clamp * 0.636 * atan(s / clamp)``
    as in FrEIA and AdapterHub (0.636, their rounding of 2/pi, kept so that the same
    weights give the same outputs), so that the exponent never overflows.
    """

    def __init__(self, config: AdapterConfig, clamp: float = 5.0):
        super().__init__(config, "glow")
        m = config.resolved_bottleneck_dim
        self.clamp = clamp
        self.s2 = _subnet(self.split2, m, 2 * self.split1, config)
        self.s1 = _subnet(self.split1, m, 2 * self.split2, config)

    def _log_scale(self, s: torch.Tensor) -> torch.Tensor:
        return self.clamp * 0.636 * torch.atan(s / self.clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._halves(x)
        s, t = self.s2(x2).split(self.split1, dim=-1)
        y1 = x1 * torch.exp(self._log_scale(s)) + t
        s, t = self.s1(y1).split(self.split2, dim=-1)
        y2 = x2 * torch.exp(self._log_scale(s)) + t
        return torch.cat([y1, y2], dim=-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = self._halves(y)
        s, t = self.s1(y1).split(self.split2, dim=-1)
        x2 = (y2 - t) * torch.exp(-self._log_scale(s))
        s, t = self.s2(x2).split(self.split1, dim=-1)
        x1 = (y1 - t) * torch.exp(-self._log_scale(s))
        return torch.cat([x1, x2], dim=-1)
