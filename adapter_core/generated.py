"""Generated adapters: bottleneck weights that a small network makes from a condition embedding (a language, a domain).

Üstün et al. (2020), "UDapter: Language Adaptation for Truly Universal
Dependency Parsing", after Platanios et al. (2018), "Contextual Parameter
Generation for Universal Neural Machine Translation": instead of one adapter
per language, each layer l has a generator matrix W^(l), and the adapter's
parameters are theta^(l) = W^(l) e, where e is the language's embedding.
Languages share W, so a language with little data (or none, given its
typological features) still gets adapter weights.

- ``GeneratedBottleneckAdapter`` is the adapter kind ``"generated"``: a
  bottleneck ``residual + up(act(down(x)))`` whose down/up weights and biases
  (2md + m + d numbers, the bottleneck's own count) are one matrix product
  ``W e`` away.  The condition e is read from the ``adapter_core.context``
  slot ``condition`` (``CONDITION_SLOT``): a (k,) tensor for the whole batch
  or a (batch, k) tensor, one row per sample (mixed batches).  Hosts place it
  like any bottleneck adapter (the config's ``placement``); it carries
  ``k (2md + m + d)`` parameters, k = ``config.condition_dim``.
- ``ConditionEmbedding`` makes e: a learned table (one row per condition),
  or, as UDapter does with URIEL's typological vectors, fixed feature vectors
  projected by a two-layer MLP (so an unseen language with features gets an
  embedding).  It is an ``AdapterModule``: it trains and saves with the
  adapters.

Initialisation, and why the scale of e matters: under Adam each entry of W
moves by about the learning rate per step, so a generated weight
theta_i = sum_k W_ik e_k moves by about lr * |e|_1, |e|_1 times as fast as
a plain adapter's weight at the same learning rate.  The learned table
therefore starts with entries N(0, sigma^2), sigma = sqrt(pi/2) / k, whose
mean L1 norm is 1 (a first run with N(0, 1) entries, k = 8, moved the
adapters ~6x faster than the plain adapter's and its parser barely
learned; see ``reports/xling_udapter``).  W is drawn so that, for such an
e, the generated weights have the config's init scheme's scale (Houlsby:
std 1e-2; BERT: 2e-2; "zero_up": the up part of W is zero, so the adapter
starts as the exact identity for every condition).  Biases come out of W
as well (their rows start at zero).

Deviations from UDapter: it generates Houlsby-placed adapters (and the
parser's biaffine layers) in mBERT; here the generator feeds whichever
placement the config names, and the parser head (``xling.tasks.dependency``)
is shared, not generated.  A LayerNorm on the adapter's input is not offered.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bottleneck import AdapterModule, build_activation
from .config import AdapterConfig
from .context import current
from .registry import register_adapter_kind

#: The ``adapter_core.context`` slot holding the condition embedding e: ``active_adapters(condition=e)``.
CONDITION_SLOT = "condition"
_STD = {"houlsby": 1e-2, "zero_up": 1e-2, "bert": 2e-2}


def condition_std(dim: int) -> float:
    """The std of a learned condition embedding's entries at init: sqrt(pi/2) / dim, so that E|e|_1 = 1."""
    return math.sqrt(math.pi / 2) / dim


class MissingConditionError(RuntimeError):
    """A generated adapter ran with no condition embedding in the context."""


class GeneratedBottleneckAdapter(AdapterModule):
    """A bottleneck adapter whose parameters are ``W e`` (contextual parameter generation, UDapter).

    Parameters: k (2md + m + d): ``generator`` is a (2md + m + d) x k matrix.
    """

    def __init__(self, config: AdapterConfig):
        super().__init__()
        if config.kind != "generated":
            raise ValueError(f"GeneratedBottleneckAdapter needs kind='generated', got {config.kind!r}")
        if config.input_layer_norm:
            raise ValueError("a generated adapter has no input LayerNorm; set input_layer_norm=False")
        self.config = config
        d, m, k = config.hidden_dim, config.resolved_bottleneck_dim, config.condition_dim
        # theta = [down weight (m x d), down bias (m), up weight (d x m), up bias (d)]
        self.sizes = (m * d, m, d * m, d)
        self.generator = nn.Parameter(torch.empty(sum(self.sizes), k))
        self.activation = build_activation(config.activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = self.config.condition_dim
        # W e has the scheme's std when e has k entries of std condition_std(k)
        std = _STD[self.config.init] / (condition_std(k) * math.sqrt(k))
        down_w, down_b, up_w, up_b = self.generator.data.split(self.sizes)
        nn.init.normal_(down_w, std=std)
        down_b.zero_(), up_b.zero_()
        if self.config.init == "zero_up":
            up_w.zero_()
        else:
            nn.init.normal_(up_w, std=std)

    @staticmethod
    def expected_parameter_count(hidden_dim: int, bottleneck_dim: int, condition_dim: int) -> int:
        """k (2md + m + d)."""
        d, m = hidden_dim, bottleneck_dim
        return condition_dim * (2 * m * d + m + d)

    def generate(self, condition: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(down weight, down bias, up weight, up bias) for a (k,) or (batch, k) condition."""
        if condition.shape[-1] != self.config.condition_dim:
            raise ValueError(f"condition embedding has width {condition.shape[-1]}, "
                             f"the generator reads {self.config.condition_dim}")
        theta = condition.to(self.generator.dtype) @ self.generator.t()  # (..., P)
        d, m = self.config.hidden_dim, self.config.resolved_bottleneck_dim
        down_w, down_b, up_w, up_b = theta.split(self.sizes, dim=-1)
        lead = theta.shape[:-1]
        return down_w.reshape(*lead, m, d), down_b, up_w.reshape(*lead, d, m), up_b

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        condition = current(CONDITION_SLOT)
        if condition is None:
            raise MissingConditionError("a generated adapter needs a condition embedding: run the model inside "
                                        "adapter_core.active_adapters(condition=embedding)")
        down_w, down_b, up_w, up_b = self.generate(condition)
        if condition.dim() == 1:  # one condition for the whole batch
            hidden = self.activation(nn.functional.linear(x, down_w, down_b))
            return nn.functional.linear(hidden, up_w, up_b)
        if condition.shape[0] != x.shape[0]:
            raise ValueError(f"{condition.shape[0]} condition rows for a batch of {x.shape[0]}")
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (-1,)  # bias per sample, broadcast over positions
        hidden = self.activation(torch.einsum("b...d,bmd->b...m", x, down_w) + down_b.reshape(shape))
        return torch.einsum("b...m,bdm->b...d", hidden, up_w) + up_b.reshape(shape)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return (x if residual is None else residual) + self.delta(x)


class ConditionEmbedding(AdapterModule):
    """The condition embeddings e (k wide): a learned table, or fixed features through a two-layer MLP (UDapter).

    ``ConditionEmbedding(names, dim)`` learns one row per name (entries N(0, condition_std(dim)^2): mean L1 norm 1);
    ``ConditionEmbedding(names, dim, features=F)`` keeps F (one row of typological
    features per name) fixed and learns ``Linear -> ReLU -> Linear`` on it.
    Call it with condition ids (a LongTensor) or names.
    """

    def __init__(self, names: list[str], dim: int, features: torch.Tensor | None = None, mlp_dim: int = 64):
        super().__init__()
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"condition names must be distinct and non-empty, got {names}")
        self.names = list(names)
        self.dim = dim
        if features is None:
            self.table = nn.Embedding(len(names), dim)
            nn.init.normal_(self.table.weight, std=condition_std(dim))
            self.mlp = None
        else:
            if features.dim() != 2 or features.shape[0] != len(names):
                raise ValueError(f"features must be one row per condition ({len(names)}), got shape {tuple(features.shape)}")
            self.register_buffer("features", features.float())
            self.table = None
            self.mlp = nn.Sequential(nn.Linear(features.shape[1], mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim))

    def ids(self, names: list[str] | str) -> torch.Tensor:
        """The ids of condition names; an unknown name is a one-line error naming the known ones."""
        names = [names] if isinstance(names, str) else names
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise KeyError(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(self.names)}")
        return torch.tensor([self.names.index(n) for n in names])

    def forward(self, ids: torch.Tensor | list[str] | str) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor):
            single = isinstance(ids, str)
            ids = self.ids(ids)
            if single:
                ids = ids[0]
        device = (self.table.weight if self.table is not None else self.features).device
        ids = ids.to(device)
        if self.table is not None:
            return self.table(ids)
        return self.mlp(self.features[ids])


register_adapter_kind("generated", GeneratedBottleneckAdapter)
