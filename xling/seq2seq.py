"""Pair and language adapters on the translation models people load with transformers, routed per sample.

The host puts ``adapter_core`` banks into M2M-100 and NLLB-200
(``M2M100ForConditionalGeneration``), mBART-50 (``MBartForConditionalGeneration``)
and Marian (``MarianMTModel``) with forward hooks; no forward code is copied and
no class is swapped.  The sites (``adapter_core.placement``) are mapped once, in
``SITE_MODULES``, onto the modules every one of these layers has:

- ``Site.LAYER`` (Bapna & Firat 2019, "Simple, Scalable Adaptation for Neural
  Machine Translation"; Philip et al. 2020, "Monolingual Adapters for Zero-Shot
  Neural Machine Translation"): a hook on the encoder or decoder layer turns its
  output y into y + A(y), after the feed-forward block's residual add (and, in
  Marian's post-norm layers, its LayerNorm), exactly where fairseq's layers
  (``nmt.modules.adapter_layers``) put it.
- ``Site.ATTENTION``, ``Site.CROSS_ATTENTION`` and ``Site.FFN`` (Houlsby et al.
  2019, "Parameter-Efficient Transfer Learning for NLP"; Compacter, Karimi
  Mahabadi et al. 2021): hooks on ``self_attn``, ``encoder_attn`` and ``fc2``
  turn the sub-layer output h into h + A(h) before the residual add.
  Deviation: transformers applies the sub-layer's dropout as a function after
  these modules, so the adapter reads h before that dropout, where the paper
  (and fairseq) read it after; outside training the two are the same.

Routing.  Each sample's source and target language choose its adapters
(``RouteBy``): ``pair`` gives both sides the pair adapter ``de-en``
(Bapna & Firat); ``lang`` the source language's adapter in the encoder and the
target language's in the decoder (Philip et al.); ``lang+pair`` stacks them,
``Stack("de", "de-en")`` in the encoder and ``Stack("en", "de-en")`` in the
decoder.  ``host.routed(src_langs, tgt_langs)`` (or ``routed_setups``) opens a
context; forward pre-hooks on the encoder and the decoder turn it into one
``RoutingPlan`` per call, which every site of that side reuses
(``adapter_core.compose``).  ``generate()`` runs the encoder on the batch as
given and the decoder on it repeated ``num_beams`` (and
``num_return_sequences``) times, row i of the batch becoming rows i*k ..
i*k+k-1 (``repeat_interleave``); beam search reorders hypotheses only among a
sample's own rows, so the decoder's plan maps its row r to sample r // k for
the whole search (tested against each direction alone, greedy and beam 4).

AdapterDrop (Rücklé et al. 2021, ``adapter_core.drop``) leaves out the
adapters of the lowest n layers of both sides; ``skipped`` leaves out chosen
layers (ablation, pruning).  AdapterFusion (Pfeiffer et al. 2021) runs over
``Site.LAYER`` adapters (``add_fusion``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn

from adapter_core import (IDENTITY, SITE_PREFIX, AdapterBank, AdapterConfig, AdapterFormatError, Fuse, PlacementError,
                          RoutingPlan, Setup, Site, Stack, UnknownAdapterError, active_adapters, bapna_firat_2019,
                          check_sites, compose, current, fingerprint_model, is_fusion_directory, load_adapter,
                          publish_directory, save_adapter, setup_names, share_phm_rule)
from adapter_core.drop import AdapterDropConfig
from adapter_core.loading import LoadPlan, copy_tensors, load_adapter_into

logger = logging.getLogger(__name__)

SIDES = ("encoder", "decoder")
#: How adapters are chosen from a sample's languages (the fairseq plugin's ``--adapters-by`` names).
ROUTE_MODES = ("pair", "lang", "lang+pair")
#: The context slots: a per-sample route, or one setup per side.
ROUTE_SLOT, ENCODER_SLOT, DECODER_SLOT = "seq2seq_route", "seq2seq_encoder", "seq2seq_decoder"
#: The batch key that routes a forward by each row's (source, target) languages (mixed-direction training).
BATCH_KEY = "translation_directions"
#: Attribute of each layer that holds its banks, one per site.
BANKS_ATTRIBUTE = "seq2seq_adapters"


@dataclass(frozen=True)
class Seq2SeqLayout:
    """Where an encoder-decoder architecture keeps its layers and the modules the sites hook."""

    # Dotted path of the encoder and of the decoder inside the model.
    encoder: str
    decoder: str
    # True for pre-norm layers (LayerNorm before each sub-layer: M2M-100, NLLB, mBART), False for post-norm (Marian).
    norm_first: bool
    # The layer list of each stack, and the modules whose outputs the sites read.
    layers: str = "layers"
    self_attention: str = "self_attn"
    cross_attention: str = "encoder_attn"
    ffn_output: str = "fc2"


#: Architecture (class name) -> layout.  NLLB-200 is an M2M-100 model; mBART-50 an mBART one.
LAYOUTS: dict[str, Seq2SeqLayout] = {
    "M2M100ForConditionalGeneration": Seq2SeqLayout("model.encoder", "model.decoder", norm_first=True),
    "M2M100Model": Seq2SeqLayout("encoder", "decoder", norm_first=True),
    "MBartForConditionalGeneration": Seq2SeqLayout("model.encoder", "model.decoder", norm_first=True),
    "MBartModel": Seq2SeqLayout("encoder", "decoder", norm_first=True),
    "MarianMTModel": Seq2SeqLayout("model.encoder", "model.decoder", norm_first=False),
    "MarianModel": Seq2SeqLayout("encoder", "decoder", norm_first=False),
}

#: Site -> the layout field naming the module it hooks (None: the layer itself).
SITE_MODULES = {Site.LAYER: None, Site.ATTENTION: "self_attention", Site.CROSS_ATTENTION: "cross_attention",
                Site.FFN: "ffn_output"}
#: The sites each side offers.
SIDE_SITES = {"encoder": (Site.LAYER, Site.ATTENTION, Site.FFN),
              "decoder": (Site.LAYER, Site.ATTENTION, Site.CROSS_ATTENTION, Site.FFN)}


class RoutingError(ValueError):
    """A route that does not fit the batch (wrong length, a batch the decoder cannot map to its samples)."""


@dataclass
class SampleRoute:
    """One setup per sample for each side, as ids into ``setups`` (what a ``RoutingPlan`` is built from)."""

    # The distinct setups (adapter names or Stacks); ids index into it.
    setups: list
    # Per sample: the encoder's and the decoder's setup id.
    encoder_ids: torch.Tensor
    decoder_ids: torch.Tensor
    # Plans already built, by (side, rows): the decoder's are reused at every generation step.
    plans: dict = field(default_factory=dict)

    @classmethod
    def from_setups(cls, encoder: Sequence[Setup], decoder: Sequence[Setup]) -> "SampleRoute":
        if len(encoder) != len(decoder):
            raise RoutingError(f"{len(encoder)} encoder setups but {len(decoder)} decoder setups")
        setups: list = []
        for setup in list(encoder) + list(decoder):
            if setup not in setups:
                setups.append(setup)
        ids = lambda side: torch.tensor([setups.index(s) for s in side], dtype=torch.long)  # noqa: E731
        return cls(setups=setups, encoder_ids=ids(encoder), decoder_ids=ids(decoder))

    def plan(self, side: str, rows: int, device) -> RoutingPlan:
        """The plan for a batch of ``rows`` rows: the samples themselves, or each repeated rows/samples times."""
        key = (side, rows)
        if key not in self.plans:
            ids = self.encoder_ids if side == "encoder" else self.decoder_ids
            samples = ids.numel()
            if rows != samples and (side == "encoder" or rows % samples):
                raise RoutingError(f"the route holds {samples} samples but the {side} got a batch of {rows} rows"
                                   + ("" if side == "encoder" else " (not a multiple, as generate()'s beams are)"))
            self.plans[key] = RoutingPlan.build(ids.repeat_interleave(rows // samples), self.setups, device)
        return self.plans[key]


def route_setups(mode: str, src: str, tgt: str) -> tuple[Setup, Setup]:
    """The (encoder, decoder) setups of one sample translated from ``src`` into ``tgt`` under ``mode``."""
    pair = f"{src}-{tgt}"
    if mode == "pair":
        return pair, pair
    if mode == "lang":
        return src, tgt
    if mode == "lang+pair":
        return Stack(src, pair), Stack(tgt, pair)
    raise ValueError(f"unknown route mode {mode!r}; known: {', '.join(ROUTE_MODES)}")


def _submodule(root: nn.Module, path: str, what: str) -> nn.Module:
    module = root
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            raise PlacementError(f"{type(root).__name__} has no {path} ({what})")
    return module


class Seq2SeqAdapterHost:
    """Adds, routes, freezes, saves and loads adapters on one transformers encoder-decoder translation model."""

    def __init__(self, model: nn.Module, route_by: str = "pair"):
        name = type(model).__name__
        if name not in LAYOUTS:
            raise PlacementError(f"{name} is not a supported translation model; supported: {', '.join(LAYOUTS)}")
        if route_by not in ROUTE_MODES:
            raise ValueError(f"route_by must be one of {', '.join(ROUTE_MODES)}, got {route_by!r}")
        self.model, self.layout, self.route_by = model, LAYOUTS[name], route_by
        self.stacks = {side: _submodule(model, getattr(self.layout, side), side) for side in SIDES}
        self.layers = {side: list(getattr(stack, self.layout.layers)) for side, stack in self.stacks.items()}
        self.hidden_size = int(model.config.d_model)
        # Adapter name -> (config, {side: layer indices}).
        self.adapters: dict[str, tuple[AdapterConfig, dict[str, list[int]]]] = {}
        self.fusions: dict[str, Fuse] = {}
        # The setups used when no context names one.
        self.active: dict[str, Setup] = {"encoder": None, "decoder": None}
        # AdapterDrop's policy (None: off) and the optimizer step its training draw uses.
        self.drop: AdapterDropConfig | None = None
        self.step = 0
        # Layers whose adapters are left out (ablation, pruning), per side.
        self.skipped: dict[str, frozenset[int]] = {side: frozenset() for side in SIDES}
        # The plan (or setup) of the running forward, per side: set by the stacks' pre-hooks.
        self._plans: dict[str, Setup | RoutingPlan] = {side: None for side in SIDES}
        # The route a training batch brought (its ``translation_directions``), for the running forward only.
        self._batch_route: SampleRoute | None = None
        self._handles = [stack.register_forward_pre_hook(self._plan_hook(side), with_kwargs=True)
                         for side, stack in self.stacks.items()]
        self._handles.append(model.register_forward_pre_hook(self._batch_route_hook, with_kwargs=True))
        self._handles.append(model.register_forward_hook(self._end_batch_route, always_call=True))

    # -- sites ------------------------------------------------------------------------
    def _bank(self, side: str, index: int, site: Site, create: bool = False) -> AdapterBank | None:
        """The bank of ``site`` in layer ``index`` of ``side``; made (and hooked) on first use when ``create``."""
        layer = self.layers[side][index]
        banks = getattr(layer, BANKS_ATTRIBUTE, None)
        if banks is not None and site.value in banks:
            return banks[site.value]
        if not create:
            return None
        if banks is None:
            layer.add_module(BANKS_ATTRIBUTE, nn.ModuleDict())
            banks = getattr(layer, BANKS_ATTRIBUTE)
        bank = AdapterBank(bapna_firat_2019(self.hidden_size))
        banks[site.value] = bank
        attribute = SITE_MODULES[site]
        target = layer if attribute is None else _submodule(layer, getattr(self.layout, attribute), site.value)
        self._handles.append(target.register_forward_hook(self._site_hook(side, index, bank)))
        return bank

    def site_banks(self, side: str) -> list[tuple[int, Site, AdapterBank]]:
        """(layer index, site, bank) of every bank of ``side``."""
        return [(i, Site(site), bank) for i, layer in enumerate(self.layers[side])
                for site, bank in getattr(layer, BANKS_ATTRIBUTE, {}).items()]

    def _plan_hook(self, side: str):
        def hook(module, args, kwargs):
            self._plans[side] = self._plan(side, module, args, kwargs)
        return hook

    def _batch_route_hook(self, module, args, kwargs):
        """A batch's ``translation_directions`` (one (src, tgt) per row) route that forward, as fairseq's
        ``src_lang_id``/``tgt_lang_id`` do; the model never sees the key."""
        directions = kwargs.pop(BATCH_KEY, None)
        if directions is None:
            return None
        if not all(isinstance(d, (tuple, list)) and len(d) == 2 for d in directions):
            raise RoutingError(f"{BATCH_KEY} holds one (source, target) language pair per row")
        self._batch_route = self.route([d[0] for d in directions], [d[1] for d in directions])
        return args, kwargs

    def _end_batch_route(self, module, args, output):
        self._batch_route = None

    def _plan(self, side: str, module, args, kwargs) -> Setup | RoutingPlan:
        route = current(ROUTE_SLOT) or self._batch_route
        if route is None:
            return current(ENCODER_SLOT if side == "encoder" else DECODER_SLOT, self.active[side])
        batch = next((v for v in (kwargs.get("input_ids"), kwargs.get("inputs_embeds")) + tuple(args)
                      if isinstance(v, torch.Tensor)), None)
        if batch is None:
            raise RoutingError(f"the {side} was called without input_ids or inputs_embeds; cannot route its rows")
        return route.plan(side, batch.shape[0], batch.device)

    def _dropped(self, side: str, index: int) -> bool:
        if index in self.skipped[side]:
            return True
        return self.drop is not None and index < self.drop.dropped(self.model.training, self.step)

    def _site_hook(self, side: str, index: int, bank: AdapterBank):
        def hook(module, args, output):
            setup = self._plans[side]
            if setup is None or self._dropped(side, index):
                return None
            h = output[0] if isinstance(output, tuple) else output
            r = compose(setup, h, bank.adapters, bank.fusions, fusion_over=bank.fusion_sources, missing="skip")
            if r is h:
                return None
            return (r,) + tuple(output[1:]) if isinstance(output, tuple) else r
        return hook

    # -- adapters ----------------------------------------------------------------------
    def add_adapter(self, name: str, config: AdapterConfig | None = None, sides: Sequence[str] = SIDES,
                    layers: dict[str, Sequence[int]] | None = None) -> AdapterConfig:
        """Add adapter ``name`` (default: Bapna & Firat's, bottleneck 64) to every layer of ``sides``.

        ``config.placement`` says where; a site a side lacks (the encoder has no cross-attention) is left out there.
        """
        if name in self.adapters:
            raise ValueError(f"adapter {name!r} already exists; known: {', '.join(self.adapters)}")
        if not name or "." in name:
            raise ValueError(f"adapter names must be non-empty and contain no '.', got {name!r}")
        config = config or bapna_firat_2019(self.hidden_size)
        if config.hidden_dim != self.hidden_size:
            raise ValueError(f"adapter {name!r} has hidden_dim {config.hidden_dim}, the model's d_model is {self.hidden_size}")
        check_sites(config.placement, tuple(SIDE_SITES["decoder"]), f"{type(self.model).__name__}'s layers")
        bad = [s for s in sides if s not in SIDES]
        if bad:
            raise ValueError(f"sides must be among {', '.join(SIDES)}, got {bad}")
        chosen = {side: sorted(set((layers or {}).get(side, range(len(self.layers[side]))))) for side in sides}
        for side, indices in chosen.items():
            out = [i for i in indices if not 0 <= i < len(self.layers[side])]
            if out:
                raise ValueError(f"{side} layer indices {out} out of range; it has {len(self.layers[side])} layers")
        device, dtype = self._device_dtype()
        modules = []
        for side, indices in chosen.items():
            for i in indices:
                for site in config.sites:
                    if site in SIDE_SITES[side]:
                        modules.append(self._bank(side, i, site, create=True).add(name, config).to(device, dtype))
        if config.kind == "compacter" and config.phm_shared_rule:  # one A for all the adapter's layers (the paper)
            share_phm_rule(modules)
        self.adapters[name] = (config, chosen)
        return config

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        weight = next(p for p in self.model.parameters() if p.is_floating_point())
        return weight.device, weight.dtype

    def add_fusion(self, fuse: Fuse) -> Fuse:
        """AdapterFusion (Pfeiffer et al. 2021) over ``fuse.names`` in every layer-output bank that holds them all."""
        self._check_names(fuse.names)
        placed = 0
        for side in SIDES:
            for _, site, bank in self.site_banks(side):
                if site == Site.LAYER and all(n in bank.adapters for n in fuse.names):
                    bank.add_fusion(fuse.name, fuse.names).to(*self._device_dtype())
                    placed += 1
        if not placed:
            raise ValueError(f"AdapterFusion fuses adapters on the layer output (placement output); "
                             f"{', '.join(fuse.names)} share no such layer")
        self.fusions[fuse.name] = fuse
        return fuse

    def _check_names(self, names: Iterable[str]) -> None:
        for name in names:
            if name != IDENTITY and name not in self.adapters and name not in self.fusions:
                raise UnknownAdapterError(f"no adapter {name!r}; known: {', '.join(self.adapters) or '(none)'}")

    def set_active(self, encoder: Setup = None, decoder: Setup | str = "same") -> None:
        """The setups used outside any routing context; ``decoder="same"`` gives the decoder the encoder's."""
        decoder = encoder if decoder == "same" else decoder
        self._check_names(setup_names(encoder) + setup_names(decoder))
        self.active = {"encoder": encoder, "decoder": decoder}

    def set_active_adapters(self, setup: Setup) -> None:
        """AdapterHub's spelling: ``setup`` on both sides (``set_active(encoder, decoder)`` sets each)."""
        self.set_active(setup)

    # -- routing ------------------------------------------------------------------------
    def route(self, src_langs: Sequence[str], tgt_langs: Sequence[str]) -> SampleRoute:
        """Each sample's setups under ``route_by``, from its source and target language (names checked)."""
        if len(src_langs) != len(tgt_langs):
            raise RoutingError(f"{len(src_langs)} source languages but {len(tgt_langs)} target languages")
        pairs = [route_setups(self.route_by, s, t) for s, t in zip(src_langs, tgt_langs)]
        return self.route_of_setups([p[0] for p in pairs], [p[1] for p in pairs])

    def route_of_setups(self, encoder: Sequence[Setup], decoder: Sequence[Setup]) -> SampleRoute:
        for setup in list(encoder) + list(decoder):
            self._check_names(setup_names(setup))
        return SampleRoute.from_setups(encoder, decoder)

    @contextlib.contextmanager
    def routed(self, src_langs: Sequence[str] | None = None, tgt_langs: Sequence[str] | None = None, *,
               route: SampleRoute | None = None) -> Iterator[SampleRoute]:
        """Inside the block every forward (and ``generate``) routes sample i from src_langs[i] into tgt_langs[i]."""
        route = route or self.route(src_langs, tgt_langs)
        with active_adapters(**{ROUTE_SLOT: route}):
            yield route

    def generate(self, *args, src_langs: Sequence[str], tgt_langs: Sequence[str], **kwargs) -> torch.Tensor:
        """``model.generate`` with each sample routed by its languages."""
        with self.routed(src_langs, tgt_langs):
            return self.model.generate(*args, **kwargs)

    def set_skipped_layers(self, side: str, layers: Iterable[int]) -> None:
        """Leave out the adapters of ``layers`` of ``side`` until changed (ablation, pruning)."""
        layers = frozenset(int(i) for i in layers)
        bad = sorted(i for i in layers if not 0 <= i < len(self.layers[side]))
        if bad:
            raise ValueError(f"{side} layer indices {bad} out of range; it has {len(self.layers[side])} layers")
        self.skipped = {**self.skipped, side: layers}

    # -- training ------------------------------------------------------------------------
    def train_only(self, names: Iterable[str]) -> list[str]:
        """Freeze everything but the named adapters (or fusions); returns the trainable parameter names."""
        names = list(names)
        self._check_names(names)
        keep = {f"{prefix}.{key}.{pname}" for prefix, module in self.model.named_modules()
                if isinstance(module, nn.ModuleDict) and prefix.endswith((".adapters", ".fusions"))
                for key, sub in module.items() if key in names for pname, _ in sub.named_parameters()}
        for pname, param in self.model.named_parameters():
            param.requires_grad_(pname in keep)
        return sorted(keep)

    def train_adapter(self, names: str | Iterable[str]) -> list[str]:
        """AdapterHub's spelling of ``train_only``: a name or several."""
        return self.train_only([names] if isinstance(names, str) else names)

    # -- files -----------------------------------------------------------------------------
    def adapter_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Adapter ``name``'s tensors, named as the fairseq plugin names them: ``{side}.layers.{i}.{site}{param}``."""
        self._check_names([name])
        return {f"{side}.layers.{i}.{SITE_PREFIX[site]}{k}": v for side in SIDES
                for i, site, bank in self.site_banks(side) if name in bank.adapters
                for k, v in bank.adapters[name].state_dict().items()}

    def base_fingerprint(self) -> str:
        return fingerprint_model(self.model)

    def save_adapter(self, directory, name: str) -> Path:
        """Write adapter ``name`` as an adapter directory the fairseq plugin reads too (atomically)."""
        if name not in self.adapters:
            raise UnknownAdapterError(f"no adapter {name!r} to save; known: {', '.join(self.adapters) or '(none)'}"
                                      + (" (fusion layers are not saved)" if name in self.fusions else ""))
        config, chosen = self.adapters[name]
        tensors = self.adapter_tensors(name)
        metadata = {"host": "xling/transformers", "adapters_by": self.route_by, "key": name,
                    "architecture": type(self.model).__name__,
                    "sides": [s for s in SIDES if chosen.get(s)], "encoder_layers": chosen.get("encoder", []),
                    "decoder_layers": chosen.get("decoder", [])}
        fingerprint = self.base_fingerprint()
        return publish_directory(directory, lambda tmp: save_adapter(tmp, tensors, config, fingerprint, name=name,
                                                                     metadata=metadata))

    def load_adapter(self, directory, name: str | None = None, force: bool = False) -> str:
        """Add the adapter saved in ``directory`` (by this host or by the fairseq plugin); returns its name.

        The base fingerprint is checked against this model's for directories this host wrote.  One the
        fairseq plugin wrote carries the fingerprint of fairseq's module tree, which names and holds the
        same weights differently: its check is left out, with a warning (the shapes are still checked).
        """
        from adapter_core import read_adapter_config

        foreign = (read_adapter_config(directory).get("metadata") or {}).get("host", "nmt/fairseq") != "xling/transformers"
        if is_fusion_directory(directory):
            raise AdapterFormatError(f"{directory}: holds AdapterFusion layers; this host trains fusions but does "
                                     "not load them from directories")
        saved = load_adapter(directory, expected_fingerprint=None if foreign else self.base_fingerprint(), force=force)
        if foreign:
            logger.warning("%s was written by %s: its base fingerprint names fairseq's modules and is not compared",
                           directory, saved.metadata.get("host", "the fairseq plugin"))
        return load_adapter_into(self, directory, name, force=force, saved=saved)

    def plan_adapter(self, name: str, saved, directory) -> LoadPlan:
        """``adapter_core.loading.AdapterSlots``: the adapter goes to the sides and layers its metadata names."""
        layers = {side: saved.metadata.get(f"{side}_layers", []) for side in SIDES}
        self.add_adapter(name, saved.config, sides=[s for s in SIDES if layers[s]], layers=layers)
        own = self.adapter_tensors(name)
        return LoadPlan(own, lambda tensors: copy_tensors(own, tensors), rollback=lambda: self.delete_adapter(name))

    def plan_fusion(self, name: str, saved, directory) -> LoadPlan:
        raise AdapterFormatError(f"{directory}: holds AdapterFusion layers; this host does not load them")

    def save_all_adapters(self, directory) -> list[Path]:
        """Every adapter, each in ``directory/<name>``."""
        return [self.save_adapter(Path(directory) / name, name) for name in self.adapters]

    def delete_adapter(self, name: str) -> None:
        self._check_names([name])
        for side in SIDES:
            for _, _, bank in self.site_banks(side):
                if name in bank.adapters:
                    del bank.adapters[name]
        del self.adapters[name]
