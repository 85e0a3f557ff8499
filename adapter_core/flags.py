"""The one adapter vocabulary of both hosts: the table of adapter kinds, the shared ``--adapter-*`` flags and
their help, and the mapping from those flags to an ``AdapterConfig`` and to AdapterDrop's policy.

Both hosts spell the flags with fairseq's ``--adapter-`` prefix (nmt's flags are generated from fairseq
dataclass fields, which all start ``adapter_``; xling takes the same names so that one flag means one thing):

=============================  =======================================================================
``--adapter-kind``             ``KINDS``: bottleneck, compacter, compacter++, lora, prefix_tuning
``--adapter-placement``        a name of ``adapter_core.placement.PLACEMENTS`` the host offers
``--adapter-dim``              the width: a bottleneck's m, LoRA's rank r, prefix tuning's length l
``--adapter-phm-dim``          Compacter's n (Kronecker summands)
``--adapter-lora-alpha``       LoRA's alpha (the update is scaled by alpha / r)
``--adapter-prefix-mlp-dim``   prefix tuning's reparametrisation width (0: rows trained directly; xling only)
``--adapter-drop-mode``        AdapterDrop: none, specialised or robust
``--adapter-drop-layers``      AdapterDrop: the lowest N layers (specialised), or N's maximum (robust)
``--adapter-drop-inference``   AdapterDrop at inference: the lowest N layers (-1/unset: the trained setting)
=============================  =======================================================================

The bottleneck size flag differs because the papers give sizes differently: nmt takes ``--adapter-dim`` (the
width m, as Bapna & Firat 2019 and Philip et al. 2020 report it), xling ``--adapter-reduction-factor`` (d / m, as
MAD-X and Compacter report it); xling also takes ``--adapter-dim``, the only size of LoRA and prefix tuning
(their papers give r and l).  Prefix tuning is xling's only: fairseq builds keys and values inside
``MultiheadAttention.forward`` with no point to prepend rows (``nmt.modules.adapter_layers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ATTENTION_KINDS, COMPACTER_KINDS, AdapterConfig
from .drop import DROP_MODES, AdapterDropConfig
from .placement import Site, canonical_placement, host_placement, host_placements


@dataclass(frozen=True)
class AdapterKind:
    """One ``--adapter-kind``: what it is and where it goes."""

    # The name both hosts' --adapter-kind takes.
    name: str
    # Its placement in every host, or None: one adapter per layer, at the host's own place (host_placement).
    placement: str | None
    # The paper, for help texts and the README's methods table.
    paper: str
    # The placements it may take (--adapter-placement), its own first; empty: those outside the self-attention.
    placements: tuple[str, ...] = ()


#: The one table of adapter kinds (nmt and xling both read it).
KINDS: dict[str, AdapterKind] = {
    "bottleneck": AdapterKind("bottleneck", None, "Bapna & Firat 2019; Pfeiffer et al. 2020 (MAD-X); Houlsby et "
                              "al. 2019 with --adapter-placement houlsby"),
    "compacter": AdapterKind("compacter", "houlsby", "Karimi Mahabadi et al. 2021 (Compacter: two per layer)"),
    "compacter++": AdapterKind("compacter++", None, "Karimi Mahabadi et al. 2021 (Compacter++: one per layer)"),
    "lora": AdapterKind("lora", "query_value", "Hu et al. 2021 (LoRA: W + (alpha/r) B A on the self-attention's "
                        "projections)", ("query_value", "query_key_value")),
    "prefix_tuning": AdapterKind("prefix_tuning", "prefix", "Li & Liang 2021 (prefix tuning: trained key and value "
                                 "rows in every self-attention)", ("prefix",)),
}
ADAPTER_KINDS = tuple(KINDS)
#: --adapter-drop-mode choices: none, or one of AdapterDrop's modes.
ADAPTER_DROP_MODES = ("none", *DROP_MODES)

#: Help of the shared flags, the same text in both hosts.
FLAG_HELP = {
    "kind": "bottleneck: the paper bottleneck adapter of the host (nmt: Bapna & Firat 2019; xling: MAD-X); "
            "compacter: Compacter (Karimi Mahabadi et al. 2021), PHM projections with one shared rule A, rank-1 "
            "B_i, GELU, two per layer at Houlsby's sites; compacter++: Compacter++, one per layer; lora: LoRA (Hu et al. "
            "2021), W + (alpha/r) B A on the self-attention's query and value projections, B zero at the start; "
            "prefix_tuning: prefix tuning (Li & Liang 2021), l trained key and value rows in every self-attention",
    "placement": "output: one adapter on each layer's output (Bapna & Firat 2019); pfeiffer: after the FFN, "
                 "reading LN(h + x) (Pfeiffer et al. 2020, MAD-X); houlsby: after the attention and after the FFN, "
                 "each before its residual add and LayerNorm (Houlsby et al. 2019, N(0, 0.01) init); query_value, "
                 "query_key_value: the self-attention's projections (lora only); prefix: its keys and values "
                 "(prefix_tuning only); default: the kind's own (compacter: houlsby; lora: query_value; "
                 "prefix_tuning: prefix; the others: the host's one-per-layer place)",
    "dim": "the width: a bottleneck adapter's m, LoRA's rank r, prefix tuning's prefix length l (He et al. 2022 read "
           "r and l as bottleneck widths)",
    "lora_alpha": "lora: the update B A is scaled by alpha / r (default 8, as AdapterHub's LoRAConfig)",
    "prefix_mlp_dim": "prefix_tuning: width of the MLP that makes the prefix rows in training (Li & Liang's "
                      "reparametrisation; default 512, as AdapterHub's PrefixTuningConfig); 0 trains the rows "
                      "directly; saved adapters hold the flat rows either way",
    "phm_dim": "compacter and compacter++: the number n of Kronecker summands; n divides the hidden size and the "
               "bottleneck width (default 4)",
    "drop_mode": "AdapterDrop (Rücklé et al. 2021): 'specialised' drops the adapters of the lowest "
                 "--adapter-drop-layers layers in training and at inference; 'robust' drops a random number in "
                 "0..--adapter-drop-layers per update, reproducible on resume (none at inference unless "
                 "--adapter-drop-inference)",
    "drop_layers": "AdapterDrop: the number of lowest layers without adapters (specialised), or its maximum (robust)",
    "drop_inference": "AdapterDrop at inference: drop the adapters of the lowest N layers (default: the trained "
                      "setting, N of a specialised training, else 0)",
}


def resolve_kind_placement(kind: str, placement: str | None, offered: tuple[Site, ...] | frozenset[Site]) -> str:
    """The placement of ``kind`` in a host offering ``offered`` sites: ``placement`` if given (checked), else the
    kind's own.  A placement that makes the kind another kind ends in a one-line error naming that kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown adapter kind {kind!r}; known: {', '.join(KINDS)}")
    own, allowed = KINDS[kind].placement or host_placement(offered), KINDS[kind].placements
    if own not in host_placements(offered):
        raise ValueError(f"--adapter-kind {kind} goes at placement {own}, which this host does not offer; it offers "
                         f"{', '.join(host_placements(offered))}")
    if not placement:
        return own
    placement = canonical_placement(placement)
    if placement not in host_placements(offered):
        raise ValueError(f"--adapter-placement {placement}: this host offers {', '.join(host_placements(offered))}")
    if allowed and placement not in allowed:
        raise ValueError(f"--adapter-kind {kind} goes at {' or '.join(allowed)}, not --adapter-placement {placement}")
    takers = [name for name, k in KINDS.items() if placement in k.placements]
    if not allowed and takers:
        raise ValueError(f"--adapter-placement {placement} is inside the self-attention: --adapter-kind "
                         f"{' or '.join(takers)}, not {kind}")
    houlsby = placement == "houlsby"
    if kind == "compacter" and not houlsby:
        raise ValueError("--adapter-kind compacter is two adapters per layer (Houlsby's sites); with one adapter "
                         "per layer it is --adapter-kind compacter++")
    if kind == "compacter++" and houlsby:
        raise ValueError("--adapter-kind compacter++ is one adapter per layer; with --adapter-placement houlsby "
                         "it is --adapter-kind compacter")
    return placement


def compacter_config(kind: str, hidden_dim: int, placement: str, *, bottleneck_dim: int | None = None,
                     reduction_factor: float | None = None, phm_dim: int | None = None) -> AdapterConfig:
    """The Compacter or Compacter++ config (``COMPACTER_KINDS``' presets) at ``placement``, sized by the width or
    the reduction factor; n (``phm_dim``) must divide the hidden size and the bottleneck width."""
    if phm_dim is not None and phm_dim <= 0:
        raise ValueError(f"--adapter-phm-dim must be positive, got {phm_dim}")
    config = COMPACTER_KINDS[kind](hidden_dim, phm_dim=phm_dim or 4)
    if bottleneck_dim is not None:
        config = config.replace(bottleneck_dim=bottleneck_dim, reduction_factor=None)
    elif reduction_factor is not None:
        config = config.replace(reduction_factor=reduction_factor)
    config = config.replace(placement=placement)
    for what, size in (("hidden size", hidden_dim), ("bottleneck width", config.resolved_bottleneck_dim)):
        if size % config.phm_dim:
            raise ValueError(f"{kind}: the {what} {size} is not divisible by --adapter-phm-dim {config.phm_dim}")
    return config


def check_attention_flags(kind: str, lora_alpha: float | None, prefix_mlp_dim: int | None) -> None:
    """A one-line error for --adapter-lora-alpha or --adapter-prefix-mlp-dim given (not None) with another kind."""
    for flag, value, owner in (("--adapter-lora-alpha", lora_alpha, "lora"),
                               ("--adapter-prefix-mlp-dim", prefix_mlp_dim, "prefix_tuning")):
        if value is not None and kind != owner:
            raise ValueError(f"{flag} applies to --adapter-kind {owner} only")


def attention_config(kind: str, hidden_dim: int, placement: str, *, dim: int | None = None,
                     lora_alpha: float | None = None, prefix_mlp_dim: int | None = None) -> AdapterConfig:
    """The LoRA or prefix-tuning config (``ATTENTION_KINDS``' presets) at ``placement``, of width ``dim`` (LoRA's
    rank r, default 8; prefix tuning's length l, default 30: AdapterHub's defaults); a flag of the other kind is
    refused (None: not given)."""
    check_attention_flags(kind, lora_alpha, prefix_mlp_dim)
    if dim is not None and dim <= 0 or lora_alpha is not None and lora_alpha <= 0:
        raise ValueError(f"--adapter-dim and --adapter-lora-alpha must be positive, got {dim} and {lora_alpha}")
    if prefix_mlp_dim is not None and prefix_mlp_dim < 0:
        raise ValueError(f"--adapter-prefix-mlp-dim must be >= 0, got {prefix_mlp_dim}")
    if kind == "lora":
        return ATTENTION_KINDS[kind](hidden_dim, rank=dim or 8, alpha=8.0 if lora_alpha is None else lora_alpha,
                                     placement=placement)
    config = ATTENTION_KINDS[kind](hidden_dim, prefix_length=dim or 30,
                                  mlp_dim=512 if prefix_mlp_dim is None else prefix_mlp_dim)
    if placement != config.placement:
        raise ValueError(f"prefix tuning goes at placement prefix, got {placement!r}")
    return config


def drop_config(mode: str | None, layers: int | None, seed: int) -> AdapterDropConfig | None:
    """AdapterDrop's policy from --adapter-drop-mode and --adapter-drop-layers; None without a mode (or 'none')."""
    if mode in (None, "none"):
        if layers:
            raise ValueError("--adapter-drop-layers needs --adapter-drop-mode specialised or robust")
        return None
    if mode not in DROP_MODES:
        raise ValueError(f"--adapter-drop-mode {mode!r}: expected one of {', '.join(ADAPTER_DROP_MODES)}")
    if layers is None or layers < 0:
        raise ValueError(f"--adapter-drop-mode {mode} needs --adapter-drop-layers N >= 0")
    if mode == "specialised":
        return AdapterDropConfig(mode=mode, num_dropped=layers, seed=seed)
    return AdapterDropConfig(mode=mode, max_dropped=layers, seed=seed)
