"""Where adapters go: the sites a host offers, and the named placements (sets of sites) that configs pick.

An ``AdapterConfig`` names its ``placement``; ``PLACEMENTS`` says which
sites of a Transformer layer that placement puts an adapter at.  Each host
maps every site it supports onto its framework once (``nmt``: fairseq layer
subclasses; ``xling``: transformers forward hooks) and refuses the others by
name (``check_sites``).  With h a sub-layer's output (after its output
projection and dropout), x that sub-layer's input and A(v) = v + up(act(down(v))):

- ``Site.ATTENTION``: h + A(h) replaces the attention block's output, before
  its residual add and LayerNorm.  Houlsby et al. (2019), "Parameter-Efficient
  Transfer Learning for NLP", put their first adapter here ("after the
  projection following multi-headed attention").
- ``Site.FFN``: the same on the feed-forward block's output, before its
  residual add and LayerNorm; Houlsby's second adapter.
- ``Site.CROSS_ATTENTION``: the same on a decoder layer's cross-attention
  output (encoder-decoder models only).  Houlsby et al. adapt an encoder; for
  translation decoders AdapterHub's ``double_seq_bn`` leaves the
  cross-attention without one, and so does placement ``after_attention_and_ffn``.
  Placement ``after_attention_cross_attention_and_ffn`` adds it (decoder layers; the
  encoder's get the other two sites).
- ``Site.FFN_PFEIFFER``: the feed-forward block's output too, but the adapter
  reads LN(h + x) (the block's own LayerNorm) and adds to h: r = h + A'(LN(h + x)),
  and the block then computes LN(r + x).  Pfeiffer et al. (2020), MAD-X;
  AdapterHub's ``seq_bn``.
- ``Site.LAYER``: y + A(y) on the layer's output y (after the feed-forward
  block's residual add and LayerNorm).  Bapna & Firat (2019), "Simple,
  Scalable Adaptation for Neural Machine Translation".
- ``Site.EMBEDDINGS``: an invertible adapter on the embeddings' output, its
  inverse before the tied output embeddings (MAD-X).
- ``Site.QUERY``, ``Site.KEY``, ``Site.VALUE``: a self-attention's query, key
  or value projection W x; the adapter reads the projection's input x and adds
  to its output: W x + s B A x.  LoRA (Hu et al. 2021, "LoRA: Low-Rank
  Adaptation of Large Language Models") adapts W_q and W_v.
- ``Site.PREFIX``: a self-attention's keys and values, to which the adapter
  prepends l trained rows, so that every query also attends to them.  Prefix
  tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for
  Generation"); He et al. (2022), "Towards a Unified View of
  Parameter-Efficient Transfer Learning", show it is a gated adapter parallel
  to the attention whose bottleneck width is the prefix length l.

Placements are named after where they put adapters, and they are what both
hosts' ``--adapter-placement`` takes: ``output`` (the layer output, Bapna &
Firat), ``pfeiffer`` (Pfeiffer's FFN site), ``houlsby`` (Houlsby's two sites),
``embeddings`` (MAD-X's invertible adapters), ``query_value`` and
``query_key_value`` (LoRA's projections), ``prefix`` (prefix tuning's keys and values).  Files written before these names
said ``after_ffn``, ``ffn_output`` and ``after_attention_and_ffn``; ``LEGACY_NAMES``
reads them (``AdapterConfig`` stores the new name), command lines do not take them.

``KINDS`` is the one table of adapter kinds: what each is and where it goes.
A kind with a fixed placement (Compacter: Houlsby's two sites) has it in every
host; a kind that is one adapter per layer goes to the host's own one-per-layer
placement (``host_placement``): ``pfeiffer`` where the host offers Pfeiffer's
site (xling), ``output`` where it does not (nmt: fairseq's layers are hooked at
their output, not inside the FFN block's residual).
"""

from __future__ import annotations

from enum import Enum


class Site(str, Enum):
    """One point of a Transformer layer (or of the embeddings) where an adapter can sit."""

    ATTENTION = "attention"
    FFN = "ffn"
    CROSS_ATTENTION = "cross_attention"
    FFN_PFEIFFER = "ffn_pfeiffer"
    LAYER = "layer"
    EMBEDDINGS = "embeddings"
    QUERY = "query"
    KEY = "key"
    VALUE = "value"
    PREFIX = "prefix"


#: Placement name -> the sites it puts an adapter at, in the order a layer's forward reaches them.
PLACEMENTS: dict[str, tuple[Site, ...]] = {
    # Bapna & Firat (2019), Philip et al. (2020): one adapter on each layer's output.
    "output": (Site.LAYER,),
    # Pfeiffer et al. (2020), MAD-X language and task adapters, Compacter++.
    "pfeiffer": (Site.FFN_PFEIFFER,),
    # Houlsby et al. (2019), Compacter (Karimi Mahabadi et al. 2021): two adapters per layer.
    "houlsby": (Site.ATTENTION, Site.FFN),
    # Houlsby's two adapters plus one on the decoder's cross-attention output (encoder-decoder hosts).
    "houlsby_cross_attention": (Site.ATTENTION, Site.CROSS_ATTENTION, Site.FFN),
    # MAD-X invertible adapters.
    "embeddings": (Site.EMBEDDINGS,),
    # LoRA (Hu et al. 2021) on the self-attention's query and value projections: the paper's and AdapterHub's choice.
    "query_value": (Site.QUERY, Site.VALUE),
    # LoRA on all three projections of the self-attention.
    "query_key_value": (Site.QUERY, Site.KEY, Site.VALUE),
    # Prefix tuning (Li & Liang 2021): trained key and value rows in every self-attention.
    "prefix": (Site.PREFIX,),
}

#: The names files written before 0.1.0's release used; read, never written, and not taken by command lines.
LEGACY_NAMES: dict[str, str] = {
    "after_ffn": "output",
    "ffn_output": "pfeiffer",
    "after_attention_and_ffn": "houlsby",
}

#: The placements that put one adapter in each layer, in the order a host prefers them.
ONE_PER_LAYER = ("pfeiffer", "output")

#: How adapter files name a site's tensors inside layer i: ``layers.{i}.{SITE_PREFIX[site]}{param}``.
#: The one-adapter-per-layer sites keep the bare ``layers.{i}.`` of the files written before sites existed.
SITE_PREFIX: dict[Site, str] = {
    Site.ATTENTION: "attention.",
    Site.FFN: "ffn.",
    Site.CROSS_ATTENTION: "cross_attention.",
    Site.FFN_PFEIFFER: "",
    Site.LAYER: "",
    Site.EMBEDDINGS: "",
    Site.QUERY: "query.",
    Site.KEY: "key.",
    Site.VALUE: "value.",
    Site.PREFIX: "prefix.",
}

#: The sites inside a self-attention (LoRA's projections, prefix tuning's keys and values): a host that offers them
#: maps them onto its attention modules, and only the LoRA and prefix-tuning kinds go there.
ATTENTION_SITES = (Site.QUERY, Site.KEY, Site.VALUE, Site.PREFIX)


class PlacementError(ValueError):
    """A placement that is unknown, or that needs a site the host does not offer."""


def canonical_placement(name: str) -> str:
    """The placement ``name`` (or its legacy name, from an older file) stands for; an unknown name lists the
    known ones."""
    name = LEGACY_NAMES.get(name, name)
    if name not in PLACEMENTS:
        raise PlacementError(f"unknown adapter placement {name!r}; known: {', '.join(sorted(PLACEMENTS))}")
    return name


def placement_sites(name: str) -> tuple[Site, ...]:
    """The sites of placement ``name``."""
    return PLACEMENTS[canonical_placement(name)]


def host_placements(offered: tuple[Site, ...] | frozenset[Site]) -> tuple[str, ...]:
    """The layer placements (not ``embeddings``) whose sites a host offers: its ``--adapter-placement`` choices."""
    return tuple(name for name, sites in PLACEMENTS.items() if name != "embeddings" and set(sites) <= set(offered))


def host_placement(offered: tuple[Site, ...] | frozenset[Site]) -> str:
    """A host's one-adapter-per-layer placement: Pfeiffer's where it offers that site, else the layer output."""
    return next(name for name in ONE_PER_LAYER if set(PLACEMENTS[name]) <= set(offered))


def check_sites(placement: str, offered: tuple[Site, ...] | frozenset[Site], host: str) -> tuple[Site, ...]:
    """The sites of ``placement``, or a ``PlacementError`` naming what ``host`` offers instead."""
    sites = placement_sites(placement)
    missing = [site.value for site in sites if site not in offered]
    if missing:
        usable = sorted(p for p, s in PLACEMENTS.items() if set(s) <= set(offered))
        raise PlacementError(f"{host} has no adapter site {', '.join(missing)} (placement {placement!r}); "
                             f"its placements: {', '.join(usable) or '(none)'}")
    return sites
