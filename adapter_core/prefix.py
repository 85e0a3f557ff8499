"""Prefix tuning: trained key and value rows prepended in every self-attention.

Li & Liang (2021), "Prefix-Tuning: Optimizing Continuous Prompts for
Generation".  Each layer's attention attends over [P_k; K] and [P_v; V]
instead of K and V, with P_k, P_v (l x d) trained and the model frozen.  He
et al. (2022), "Towards a Unified View of Parameter-Efficient Transfer
Learning", rewrite the result as (1 - lambda(x)) Attn(x) + lambda(x)
softmax(x W_q P_k^T) P_v: an adapter parallel to the attention whose
bottleneck width is the prefix length l (the config's ``bottleneck_dim``).

Training through a reparametrisation (Li & Liang §4.3: optimising the rows
directly is unstable): with ``prefix_mlp_dim`` m > 0 the rows of layer i are
``[P_k; P_v]_i = W2_i tanh(W1 E + b1) + b2_i``, E (l x d) a prefix embedding.
E, W1 (m x d) and b1 are shared by all layers (``share_prefix_encoder``: the
first layer's module owns them, as Compacter's shared rule), W2_i (2d x m) and
b2_i belong to layer i.  That is AdapterHub's ``PrefixTuning`` exactly (its
``control_trans`` maps d -> m -> 2 L d; the rows of layer i are the 2d outputs
at 2d i, our W2_i).  After training, ``ejected`` computes the rows once and
gives the flat module (``prefix_mlp_dim`` 0): 2 l d weights per layer, what is
saved and what inference runs (AdapterHub's ``eject_prefix_tuning``).

Not an identity at initialisation: every query also attends to the l prefix
rows, so the attention output moves from the start (He et al.'s gate
lambda(x) is not zero).  What the method does define, and the tests check:
the prefix is the only thing added (no active prefix gives back the base
attention), queries attend to the prefix rows whatever the padding mask says
about the input, and padded input positions stay masked.

The module holds the rows; ``prepend_prefixes`` is the torch-only step a host
runs on the keys, values and attention mask of one self-attention (layout
batch x heads x length x head width, as transformers' and torch's
``scaled_dot_product_attention`` take them).  A stack of prefix modules at one
site concatenates their rows, in stack order.

Reference: AdapterHub's ``PrefixTuningConfig`` (prefix_length 30,
bottleneck_size 512, tanh, flat=False, dropout 0).  Where ours differs: one
prefix for the whole batch (no per-sample routing of prefixes); no prefix
dropout, no gating (``use_gating``), no cross-attention prefixes (encoders
only); the flat form's init is N(0, 1) as AdapterHub's ``FlatPrefixTuning``
(``torch.randn``), the reparametrised form's E is N(0, 1) (nn.Embedding) and
its projections nn.Linear's default, as AdapterHub's.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from .bottleneck import AdapterModule, build_activation
from .config import AdapterConfig
from .registry import register_adapter_kind


class PrefixEncoder(AdapterModule):
    """The shared part of the reparametrisation: tanh(W1 E + b1), E (l x d) a prefix embedding, W1 (m x d)."""

    def __init__(self, config: AdapterConfig):
        super().__init__()
        length, d, m = config.resolved_bottleneck_dim, config.hidden_dim, config.prefix_mlp_dim
        self.embedding = nn.Parameter(torch.empty(length, d))
        self.mlp_in = nn.Linear(d, m)
        self.activation = build_activation(config.activation)
        nn.init.normal_(self.embedding, std=1.0 if config.init == "normal" else 0.02)

    def forward(self) -> torch.Tensor:
        return self.activation(self.mlp_in(self.embedding))


class PrefixTuning(AdapterModule):
    """l key rows and l value rows (hidden_dim wide) for one self-attention: 2 l d weights once flat."""

    def __init__(self, config: AdapterConfig):
        super().__init__()
        if config.kind != "prefix_tuning":
            raise ValueError(f"PrefixTuning needs kind='prefix_tuning', got {config.kind!r}")
        self.config = config
        length, d, m = config.resolved_bottleneck_dim, config.hidden_dim, config.prefix_mlp_dim
        if m:  # Li & Liang's reparametrisation: this layer's last projection, and (until shared) its own encoder
            self.encoder: PrefixEncoder | None = PrefixEncoder(config)
            self._shared = [self.encoder]
            self.mlp_out = nn.Linear(m, 2 * d)
        else:
            self.prefix_keys = nn.Parameter(torch.empty(length, d))
            self.prefix_values = nn.Parameter(torch.empty(length, d))
            std = 1.0 if config.init == "normal" else 0.02
            for rows in (self.prefix_keys, self.prefix_values):
                nn.init.normal_(rows, std=std)

    @property
    def length(self) -> int:
        return self.config.resolved_bottleneck_dim

    def rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P_k, P_v), each l x d: the flat rows, or what the reparametrisation makes of them now."""
        if not self.config.prefix_mlp_dim:
            return self.prefix_keys, self.prefix_values
        both = self.mlp_out(self._shared[0]())
        return both[:, :self.config.hidden_dim], both[:, self.config.hidden_dim:]

    def key_values(self, batch_size: int, num_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows as (batch x heads x l x head width) keys and values (expanded, no copy per sample)."""
        keys, values = self.rows()
        length, d = keys.shape

        def split(rows):
            return rows.reshape(length, num_heads, d // num_heads).transpose(0, 1).unsqueeze(0).expand(batch_size, -1, -1, -1)
        return split(keys), split(values)

    def use_encoder(self, encoder: PrefixEncoder, owner: bool) -> None:
        """Use ``encoder``; register it as a submodule only if this module is its owner."""
        self._shared[0] = encoder
        self.encoder = encoder if owner else None

    def ejected(self) -> "PrefixTuning":
        """The flat module with the rows this one makes now (AdapterHub's ``eject_prefix_tuning``)."""
        flat = PrefixTuning(self.config.replace(prefix_mlp_dim=0, preset=self.config.preset))
        keys, values = self.rows()
        with torch.no_grad():
            flat.prefix_keys.copy_(keys)
            flat.prefix_values.copy_(values)
        return flat.to(device=keys.device, dtype=keys.dtype)

    def forward(self, *args, **kwargs):
        raise TypeError("a prefix is not applied to hidden states: a host prepends its rows with prepend_prefixes")

    @staticmethod
    def expected_parameter_count(hidden_dim: int, prefix_length: int) -> int:
        """2 l d per layer: l key rows and l value rows (the flat, saved form)."""
        return 2 * prefix_length * hidden_dim

    @staticmethod
    def training_parameter_count(hidden_dim: int, prefix_length: int, mlp_dim: int, num_layers: int) -> int:
        """The reparametrisation's weights for ``num_layers`` layers: E and W1, b1 once, W2_i and b2_i per layer."""
        d, m = hidden_dim, mlp_dim
        return prefix_length * d + m * d + m + num_layers * (2 * d * m + 2 * d)


def share_prefix_encoder(modules: Sequence[PrefixTuning] | Iterable[PrefixTuning]) -> PrefixEncoder | None:
    """Make all reparametrised ``modules`` use the first one's E, W1, b1; returns it (None if there are none).

    Idempotent.  Flat modules are left alone.  All shared modules need the same prefix length and MLP width.
    """
    modules = [m for m in modules if m.config.prefix_mlp_dim]
    if not modules:
        return None
    owner = modules[0]
    encoder = owner._shared[0]
    for module in modules:
        if (module.length, module.config.prefix_mlp_dim) != (owner.length, owner.config.prefix_mlp_dim):
            raise ValueError("cannot share a prefix encoder between different prefix lengths or MLP widths")
        module.use_encoder(encoder, owner=module is owner)
    return encoder


def prepend_prefixes(key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
                     prefixes: Sequence[PrefixTuning]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """[P_k; K], [P_v; V] and the mask widened so that every query sees the prefix rows.

    ``key``/``value``: batch x heads x length x head width.  ``attention_mask`` broadcasts to batch x heads x
    queries x keys: None (all visible), boolean (True = visible, torch's SDPA convention) or additive float (0 =
    visible, a large negative = masked, as transformers' eager attention); its key axis grows by l with visible
    columns in front.  No prefixes: the inputs unchanged.
    """
    if not prefixes:
        return key, value, attention_mask
    batch, heads = key.shape[0], key.shape[1]
    pairs = [p.key_values(batch, heads) for p in prefixes]
    key = torch.cat([k.to(key.dtype) for k, _ in pairs] + [key], dim=2)
    value = torch.cat([v.to(value.dtype) for _, v in pairs] + [value], dim=2)
    if attention_mask is not None:
        length = sum(p.length for p in prefixes)
        shape = (*attention_mask.shape[:-1], length)
        fill = (torch.ones(shape, dtype=torch.bool, device=attention_mask.device) if attention_mask.dtype == torch.bool
                else torch.zeros(shape, dtype=attention_mask.dtype, device=attention_mask.device))
        attention_mask = torch.cat([fill, attention_mask], dim=-1)
    return key, value, attention_mask


register_adapter_kind("prefix_tuning", PrefixTuning)
