"""Adapter configurations: frozen dataclasses, and presets named after the papers.

A config says *what* an adapter is (kind, sizes, activation, initialisation)
and *where* its host puts it (``placement``: one of ``adapter_core.placement.PLACEMENTS``,
which names the sites of a layer that get an adapter).  It is plain data: it
round-trips through JSON so that an adapter directory on disk says exactly
how to rebuild its modules and where they go.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .placement import LEGACY_NAMES, PLACEMENTS, Site, placement_sites

INIT_SCHEMES = ("houlsby", "zero_up", "bert", "lora", "normal")
ACTIVATIONS = ("relu", "gelu", "tanh", "swish", "silu", "identity")
# Kinds whose reduction factor applies to half the hidden width (MAD-X invertible adapters).
COUPLING_KINDS = ("nice", "glow")


@dataclass(frozen=True)
class AdapterConfig:
    """What one adapter module is; enough to rebuild it from disk."""

    # "bottleneck" (down-project, activation, up-project, residual) or an
    # invertible coupling block for MAD-X: "nice" or "glow".  The kinds that
    # exist are those in ``adapter_core.registry``.
    kind: str = "bottleneck"
    # Width of the hidden states the adapter reads and writes (the host's d_model).
    hidden_dim: int = 512
    # Bottleneck width m.  Give either this or ``reduction_factor`` (m = d / rf).
    # For coupling blocks the factor applies to each half, as in MAD-X.
    bottleneck_dim: int | None = None
    # Reduction factor d / m; used when ``bottleneck_dim`` is None.
    reduction_factor: float | None = None
    # Non-linearity between the projections.
    activation: str = "relu"
    # Bapna & Firat (2019): a fresh LayerNorm on the adapter's input.
    input_layer_norm: bool = False
    # "houlsby": N(0, 0.01) truncated at 2 std, zero biases (Houlsby et al. 2019);
    # "zero_up": the up-projection starts at zero, so the adapter is the identity;
    # "bert": N(0, 0.02), zero biases (AdapterHub's default, used by MAD-X);
    # "lora" (LoRA only): A as nn.Linear's default (Kaiming-uniform), B zero, so W + sBA = W at the start;
    # "normal" (prefix tuning only): N(0, 1) rows or prefix embedding, as AdapterHub's (torch.randn, nn.Embedding).
    init: str = "houlsby"
    # Where the host inserts the adapter: a name in ``adapter_core.placement.PLACEMENTS``, e.g.
    # "output" (Bapna & Firat: the layer output), "pfeiffer" (Pfeiffer's FFN site) or
    # "houlsby" (Houlsby: two adapters per layer).  Older files' names are read as these.
    placement: str = "output"
    # The paper preset this config came from, or "" for a custom one.
    preset: str = ""
    # Compacter (Karimi Mahabadi et al. 2021), kind "compacter" only: the number n of
    # Kronecker summands in each PHM layer W = sum_i A_i (x) B_i; n divides hidden_dim
    # and the bottleneck width.
    phm_dim: int = 4
    # Compacter: rank of each B_i = s_i t_i^T (the paper uses rank 1).
    phm_rank: int = 1
    # Compacter: std of the normal init of the A_i (the "slow weights").
    phm_init_range: float = 0.01
    # Compacter: one A shared by every layer that carries the adapter (the paper);
    # False gives each layer its own A (the PHM-Adapter ablation).
    phm_shared_rule: bool = True
    # Generated adapters (kind "generated", Üstün et al. 2020, ``adapter_core.generated``): the width k of the
    # condition (language or domain) embedding from which each layer's generator makes the adapter's weights.
    condition_dim: int = 32
    # LoRA (Hu et al. 2021, ``adapter_core.lora``), kind "lora" only: the update is (alpha / r) B A with r the
    # bottleneck width (``bottleneck_dim``); AdapterHub's LoRAConfig has alpha = r = 8.
    lora_alpha: float = 8.0
    # LoRA: dropout on the input x of B A x (AdapterHub's default 0).
    lora_dropout: float = 0.0
    # Prefix tuning (Li & Liang 2021, ``adapter_core.prefix``), kind "prefix_tuning" only: the width of the MLP
    # that makes the prefix rows from a prefix embedding in training (AdapterHub's bottleneck_size 512, flat=False);
    # 0: the rows are trained directly (AdapterHub's flat=True), and an ejected prefix is saved so.
    prefix_mlp_dim: int = 0

    def __post_init__(self) -> None:
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"unknown init {self.init!r}; known: {', '.join(INIT_SCHEMES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}")
        if self.hidden_dim <= 0:
            raise ValueError(f"hidden_dim must be positive, got {self.hidden_dim}")
        if self.bottleneck_dim is None and self.reduction_factor is None:
            raise ValueError("give bottleneck_dim or reduction_factor")
        if self.bottleneck_dim is not None and self.bottleneck_dim <= 0:
            raise ValueError(f"bottleneck_dim must be positive, got {self.bottleneck_dim}")
        if self.reduction_factor is not None and self.reduction_factor <= 0:
            raise ValueError(f"reduction_factor must be positive, got {self.reduction_factor}")
        if self.phm_dim <= 0 or self.phm_rank <= 0:
            raise ValueError(f"phm_dim and phm_rank must be positive, got {self.phm_dim} and {self.phm_rank}")
        object.__setattr__(self, "placement", LEGACY_NAMES.get(self.placement, self.placement))  # older files
        if self.condition_dim <= 0:
            raise ValueError(f"condition_dim must be positive, got {self.condition_dim}")
        if self.kind == "lora" and self.init not in ("lora", "bert"):
            raise ValueError(f"LoRA takes init 'lora' or 'bert', got {self.init!r}")
        if self.kind == "prefix_tuning" and self.init not in ("normal", "bert"):
            raise ValueError(f"prefix tuning takes init 'normal' or 'bert', got {self.init!r}")
        if not 0.0 <= self.lora_dropout < 1.0 or self.lora_alpha <= 0 or self.prefix_mlp_dim < 0:
            raise ValueError(f"lora_dropout must be in [0, 1), lora_alpha positive and prefix_mlp_dim >= 0, got "
                             f"{self.lora_dropout}, {self.lora_alpha} and {self.prefix_mlp_dim}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {self.placement!r}; known: {', '.join(sorted(PLACEMENTS))}")

    @property
    def sites(self) -> tuple[Site, ...]:
        """The sites of a layer that carry this adapter (one module per site)."""
        return placement_sites(self.placement)

    @property
    def coupling_input_dim(self) -> int:
        """Width of the half that a coupling block's sub-networks read."""
        return self.hidden_dim // 2

    @property
    def resolved_bottleneck_dim(self) -> int:
        """The bottleneck width m, from ``bottleneck_dim`` or the reduction factor."""
        if self.bottleneck_dim is not None:
            return self.bottleneck_dim
        base = self.coupling_input_dim if self.kind in COUPLING_KINDS else self.hidden_dim
        return max(1, int(base // self.reduction_factor))

    def replace(self, **changes: Any) -> "AdapterConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AdapterConfig":
        if not isinstance(data, Mapping):
            raise ValueError(f"an adapter config is a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown adapter config fields: {', '.join(unknown)}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, value in data.items():
            if not _has_type(value, str(types[name])):
                raise ValueError(f"field {name!r} must be {types[name]}, got {value!r}")
        return cls(**dict(data))


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field annotation ("bool", "int", "float", "str", "int | None", ...)."""
    allowed = {part.strip() for part in annotation.split("|")}
    if value is None:
        return "None" in allowed
    if isinstance(value, bool):  # JSON true/false: only for bool fields ("false" the string is not a bool)
        return "bool" in allowed
    if isinstance(value, int):
        return bool(allowed & {"int", "float"})
    if isinstance(value, float):
        return "float" in allowed
    return isinstance(value, str) and "str" in allowed


def bapna_firat_2019(hidden_dim: int, bottleneck_dim: int = 64) -> AdapterConfig:
    """Bapna & Firat (2019), "Simple, Scalable Adaptation for NMT".

    Input LayerNorm, ReLU, residual; after the feed-forward block of every
    encoder and decoder layer; one adapter per language pair or domain.  The
    paper does not fix an initialisation; we start at the identity.
    """
    return AdapterConfig(
        kind="bottleneck", hidden_dim=hidden_dim, bottleneck_dim=bottleneck_dim,
        activation="relu", input_layer_norm=True, init="zero_up",
        placement="output", preset="bapna_firat_2019",
    )


def philip_2020(hidden_dim: int, bottleneck_dim: int = 64) -> AdapterConfig:
    """Philip et al. (2020), "Monolingual Adapters for Zero-Shot NMT".

    Same module as Bapna & Firat, but chosen by source language in the
    encoder and by target language in the decoder.
    """
    return bapna_firat_2019(hidden_dim, bottleneck_dim).replace(preset="philip_2020")


def houlsby_2019(hidden_dim: int, bottleneck_dim: int = 64) -> AdapterConfig:
    """Houlsby et al. (2019), "Parameter-Efficient Transfer Learning for NLP".

    Two adapters per layer: after the attention block's output projection and
    after the feed-forward block, each before its sub-layer's residual add and
    LayerNorm (placement "houlsby").  Near-identity init,
    N(0, 0.01) truncated at 2 std, no input LayerNorm; 2md + d + m parameters
    each.  The paper also trains the base's LayerNorms: the hosts do that with
    ``--train-layer-norms``.  The paper names no non-linearity; we keep ReLU.
    """
    return AdapterConfig(
        kind="bottleneck", hidden_dim=hidden_dim, bottleneck_dim=bottleneck_dim,
        activation="relu", init="houlsby", placement="houlsby", preset="houlsby_2019",
    )


def madx_language(hidden_dim: int, reduction_factor: float = 2) -> AdapterConfig:
    """Pfeiffer et al. (2020), MAD-X language adapter: Pfeiffer placement, rf 2, ReLU."""
    return AdapterConfig(
        kind="bottleneck", hidden_dim=hidden_dim, reduction_factor=reduction_factor,
        activation="relu", init="bert", placement="pfeiffer", preset="madx_language",
    )


def madx_task(hidden_dim: int, reduction_factor: float = 16) -> AdapterConfig:
    """Pfeiffer et al. (2020), MAD-X task adapter: rf 16, stacked above the language adapter."""
    return madx_language(hidden_dim, reduction_factor).replace(preset="madx_task")


def madx_invertible(hidden_dim: int, kind: str = "nice", reduction_factor: float = 2) -> AdapterConfig:
    """Pfeiffer et al. (2020), MAD-X invertible adapter: NICE coupling, rf 2, ReLU."""
    return AdapterConfig(
        kind=kind, hidden_dim=hidden_dim, reduction_factor=reduction_factor,
        activation="relu", init="bert", placement="embeddings", preset="madx_invertible",
    )


def compacter_2021(hidden_dim: int, reduction_factor: float = 32, phm_dim: int = 4) -> AdapterConfig:
    """Karimi Mahabadi et al. (2021), Compacter: PHM adapters with shared A_i and rank-1 B_i.

    Compacter puts two adapters in each layer (Houlsby placement: after the
    attention and after the feed-forward block), GELU; the paper searches the
    reduction factor in {8, 16, 32} and n in {4, 8, 12}.
    """
    return AdapterConfig(
        kind="compacter", hidden_dim=hidden_dim, reduction_factor=reduction_factor, activation="gelu",
        init="bert", placement="houlsby", preset="compacter_2021", phm_dim=phm_dim,
    )


def compacter_plus_plus_2021(hidden_dim: int, reduction_factor: float = 32, phm_dim: int = 4) -> AdapterConfig:
    """Karimi Mahabadi et al. (2021), Compacter++: one Compacter per layer, after the feed-forward block."""
    return compacter_2021(hidden_dim, reduction_factor, phm_dim).replace(placement="pfeiffer", preset="compacter_plus_plus_2021")


def lora_2021(hidden_dim: int, rank: int = 8, alpha: float = 8.0, placement: str = "query_value") -> AdapterConfig:
    """Hu et al. (2021), "LoRA: Low-Rank Adaptation of Large Language Models".

    W x + (alpha / r) B A x on the self-attention's query and value
    projections (the paper's choice for GPT-3, and AdapterHub's ``LoRAConfig``
    default ``attn_matrices=["q", "v"]``, r 8, alpha 8, dropout 0); A starts as
    nn.Linear's default (Kaiming-uniform, AdapterHub's "lora" init), B at zero,
    so the model is unchanged at the start.  r(d_in + d_out) weights per
    projection, no biases.  The rank is the config's ``bottleneck_dim`` (He et
    al. 2022 read r as LoRA's bottleneck width).
    """
    return AdapterConfig(kind="lora", hidden_dim=hidden_dim, bottleneck_dim=rank, activation="identity", init="lora",
                         placement=placement, preset="lora_2021", lora_alpha=alpha)


def prefix_tuning_2021(hidden_dim: int, prefix_length: int = 30, mlp_dim: int = 512) -> AdapterConfig:
    """Li & Liang (2021), "Prefix-Tuning: Optimizing Continuous Prompts for Generation".

    l key rows and l value rows (``bottleneck_dim`` = l, the prefix length;
    AdapterHub's ``PrefixTuningConfig`` default 30) prepended to every
    self-attention's keys and values: 2 l d weights per layer at inference.  In
    training the rows come from a prefix embedding (l x d) through an MLP d ->
    ``mlp_dim`` -> tanh -> 2 d per layer, shared by the layers up to its last
    projection (Li & Liang's reparametrisation; AdapterHub's default
    ``flat=False``, ``bottleneck_size=512``); ``mlp_dim=0`` trains the rows
    directly (AdapterHub's ``flat=True``).
    """
    return AdapterConfig(kind="prefix_tuning", hidden_dim=hidden_dim, bottleneck_dim=prefix_length, activation="tanh",
                         init="normal", placement="prefix", preset="prefix_tuning_2021", prefix_mlp_dim=mlp_dim)


#: The --adapter-kind names of the methods inside the self-attention, and their presets.
ATTENTION_KINDS = {"lora": lora_2021, "prefix_tuning": prefix_tuning_2021}

#: The --adapter-kind names of the Compacter family, the same in every host, and their presets.
COMPACTER_KINDS = {"compacter": compacter_2021, "compacter++": compacter_plus_plus_2021}

PRESETS = {
    "bapna_firat_2019": bapna_firat_2019,
    "philip_2020": philip_2020,
    "houlsby_2019": houlsby_2019,
    "madx_language": madx_language,
    "madx_task": madx_task,
    "madx_invertible": madx_invertible,
    "compacter_2021": compacter_2021,
    "compacter_plus_plus_2021": compacter_plus_plus_2021,
    "lora_2021": lora_2021,
    "prefix_tuning_2021": prefix_tuning_2021,
}
