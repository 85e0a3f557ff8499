"""How each sample's adapter keys reach the layers, along one channel: the batch's own tensors.

Bapna & Firat (2019) key adapters by language pair, Philip et al. (2020) by
language; a batch of ``translation_multi_simple_epoch`` mixes pairs.  When
the model is built, ``RouteTable`` fixes, for every (source language,
target language) of the task's language dictionary, the adapter id of each
side; the name-level part of the table (``route key -> adapter key``) is
saved with the checkpoint (``--adapter-routes``).  fairseq hands the
model each sample's ``src_lang_id`` (``--enable-lang-ids``); the task adds
``tgt_lang_id`` to ``net_input``.  The encoder looks both up in the table,
routes its layers, and puts the decoder's ids and their ``RoutingPlan`` on
``encoder_out``, where fairseq's ``SequenceGenerator`` reorders them with
everything else (``reorder_encoder_out``) as it expands the batch to
``bsz * beam`` and drops finished sentences.

The layers get their side's ``SideRoute`` as a keyword argument, injected
for one call by a forward pre-hook (peft's scoped hooks): fairseq's
activation checkpointing (``--checkpoint-activations``) saves it with the
layer's inputs, so a recomputed layer routes exactly as it did.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from adapter_core import (IDENTITY, RoutingPlan, Setup, Stack, UnknownAdapterError, setup_from_json, setup_names,
                          setup_to_json)

#: Key of the decoder's ``DecoderRoute`` inside fairseq's ``encoder_out`` dictionary.
DECODER_ROUTE_KEY = "adapter_decoder_route"
#: What each ``--adapters-by`` mode keys adapters by (for messages).
ROUTE_KEY_KINDS = {"pair": "language pair", "lang": "language", "domain": "domain", "lang+pair": "language pair"}


class RoutingError(RuntimeError):
    """The model was called without the language ids it routes by, or with ids that do not fit the batch."""


@dataclass(frozen=True)
class MissingAdapter:
    """A table entry for a route key with no adapter: routing a sample to it raises ``message``."""

    message: str


@dataclass(frozen=True)
class AdapterRoute:
    """Per-sample adapter ids for one batch, one per side, into ``key_names``."""

    # One id per sample (LongTensor of shape (batch,)) into ``key_names``, for the encoder layers.
    encoder_ids: torch.Tensor
    # One id per sample into ``key_names``, for the decoder layers.
    decoder_ids: torch.Tensor
    # What the ids index: adapter keys or setups (``Stack``), ``IDENTITY`` ("no adapter"), or ``MissingAdapter``.
    key_names: tuple

    @classmethod
    def from_keys(cls, encoder_keys: Sequence[str], decoder_keys: Sequence[str],
                  device: torch.device | None = None) -> "AdapterRoute":
        """A route from one key string per sample on each side (tests and tools that pick keys by hand)."""
        names = tuple(sorted(set(encoder_keys) | set(decoder_keys) | {IDENTITY}))
        lookup = {name: i for i, name in enumerate(names)}
        encoder = torch.tensor([lookup[k] for k in encoder_keys], dtype=torch.long, device=device)
        decoder = torch.tensor([lookup[k] for k in decoder_keys], dtype=torch.long, device=device)
        return cls(encoder_ids=encoder, decoder_ids=decoder, key_names=names)

    def keys(self, side: str) -> list[str]:
        """The key of every sample on ``side`` ("encoder" or "decoder"); a sample with no adapter raises."""
        ids = self.encoder_ids if side == "encoder" else self.decoder_ids
        return [checked_name(self.key_names[int(i)]) for i in ids.tolist()]


def checked_name(name):
    """``name``, or the error a ``MissingAdapter`` entry stands for."""
    if isinstance(name, MissingAdapter):
        raise UnknownAdapterError(name.message)
    return name


@dataclass(frozen=True)
class SideRoute:
    """What the adapter layers of one side (encoder or decoder) need for the current forward."""

    # The batch grouped by adapter key, shared by every layer of the side.
    plan: RoutingPlan
    # Layers with an index below this run without their adapters (AdapterDrop).
    dropped_layers: int


def routing_plan(ids: torch.Tensor, key_names: Sequence, device=None) -> RoutingPlan:
    """The ``RoutingPlan`` of ``ids`` (one host synchronisation); a sample routed to a missing adapter raises."""
    plan = RoutingPlan.build(ids, key_names, device)
    for name, _ in plan.groups:
        checked_name(name)
    return plan


@dataclass(frozen=True)
class DecoderRoute:
    """The decoder's ids and their plan, carried on ``encoder_out`` and reordered with it (beam search)."""

    # One id per sample (or hypothesis) into ``key_names``.
    ids: torch.Tensor
    # The names the ids index.
    key_names: tuple
    # The grouping of ``ids``, made once per reordering and shared by every decoder step and layer.
    plan: RoutingPlan

    @classmethod
    def build(cls, ids: torch.Tensor, key_names: Sequence) -> "DecoderRoute":
        return cls(ids=ids, key_names=tuple(key_names), plan=routing_plan(ids, key_names, ids.device))

    def reordered(self, new_order: torch.Tensor) -> "DecoderRoute":
        return DecoderRoute.build(self.ids.index_select(0, new_order.to(self.ids.device)), self.key_names)


@contextlib.contextmanager
def call_kwargs(modules: Iterable[nn.Module], **kwargs) -> Iterator[None]:
    """Inside the block, every call of each module in ``modules`` gets ``kwargs`` as extra keyword arguments.

    A forward pre-hook scoped to one call (peft's ``_enable_peft_forward_hooks``):
    the value reaches ``forward`` as an argument, so fairseq's checkpoint
    wrapper saves it with the other inputs for the recomputation.
    """
    def add_kwargs(module, args, given):
        return args, {**given, **kwargs}

    handles = [module.register_forward_pre_hook(add_kwargs, with_kwargs=True) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# -- the table ------------------------------------------------------------------
def route_keys(mode: str, src: str, tgt: str, domain: str) -> tuple[str, str]:
    """The (encoder, decoder) route keys of a sample translating ``src`` into ``tgt`` under ``--adapters-by``."""
    if mode in ("pair", "lang+pair"):
        return f"{src}-{tgt}", f"{src}-{tgt}"
    if mode == "lang":
        return src, tgt
    return domain, domain


Routes = Mapping[str, Mapping[str, Setup]]


def derive_routes(mode: str, keys: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Setup]]:
    """The routes of a new model: each adapter key routes to its own adapter; with ``lang+pair`` each pair key
    to ``Stack(source, pair)`` in the encoder and ``Stack(target, pair)`` in the decoder (language adapters below)."""
    routes: dict[str, dict[str, Setup]] = {side: {key: key for key in side_keys} for side, side_keys in keys.items()}
    if mode == "lang+pair":
        for side, position in (("encoder", 0), ("decoder", 1)):
            for key in keys.get(side, ()):
                if key.count("-") == 1:
                    routes[side][key] = Stack(key.split("-")[position], key)
    return routes


def stacked_below(routes: Routes) -> set[str]:
    """The adapters some route runs below another one (lang+pair: the language adapters)."""
    return {name for side in routes.values() for setup in side.values() if isinstance(setup, Stack)
            for step in setup.names[:-1] for name in setup_names(step)}


def read_routes(text: str) -> dict[str, dict[str, Setup]]:
    """``--adapter-routes`` (JSON ``{"encoder": {route key: setup}, "decoder": {...}}``), checked."""
    try:
        routes = json.loads(text)
        if not (isinstance(routes, dict) and set(routes) <= {"encoder", "decoder"}
                and all(isinstance(side, dict) for side in routes.values())):
            raise ValueError("not a JSON object with 'encoder' and 'decoder'")
        return {side: {str(k): setup_from_json(v) for k, v in routes.get(side, {}).items()}
                for side in ("encoder", "decoder")}
    except ValueError as error:  # json.JSONDecodeError is one
        raise ValueError(f"--adapter-routes {text[:80]!r}: {error}; expected "
                         '{"encoder": {"ROUTE KEY": "ADAPTER KEY" or {"stack": [...]}}, "decoder": {...}}') from None


def write_routes(routes: Routes) -> str:
    return json.dumps({side: {k: setup_to_json(v) for k, v in routes[side].items()} for side in ("encoder", "decoder")},
                      sort_keys=True)


@dataclass(frozen=True)
class RouteTable:
    """(source language id, target language id) -> adapter id per side, fixed when the model is built."""

    # Adapter id -> name: adapter keys, ``IDENTITY``, and ``MissingAdapter`` entries (routing to one raises).
    key_names: tuple
    # LongTensor (2, languages, languages): [0] the encoder's ids, [1] the decoder's, by [src_lang_id, tgt_lang_id].
    ids: torch.Tensor

    @classmethod
    def build(cls, languages: Sequence[str], keys_of: Callable[[str, str], tuple[str, str]], routes: Routes,
              adapters: Mapping[str, Sequence[str] | None], missing: str, what: str) -> "RouteTable":
        """Fill the table for every language pair of ``languages`` (index = language id).

        ``keys_of(src, tgt)`` gives the route keys, ``routes[side]`` maps a
        route key to a setup (an adapter key, or a ``Stack``; a key it lacks
        routes to the adapter of that name), ``adapters[side]`` lists the side's
        adapters (None: the side has no adapter layers, nothing reads its id).
        A route key without adapter routes to ``IDENTITY`` with ``missing ==
        "identity"``, else to an entry that raises a message naming the
        adapters there are.
        """
        names: dict = {IDENTITY: 0}
        table = torch.zeros(2, len(languages), len(languages), dtype=torch.long)
        for s, src in enumerate(languages):
            for t, tgt in enumerate(languages):
                for side_index, (side, key) in enumerate(zip(("encoder", "decoder"), keys_of(src, tgt))):
                    name = _route_name(side, key, routes[side], adapters[side], missing, what)
                    table[side_index, s, t] = names.setdefault(name, len(names))
        return cls(key_names=tuple(names), ids=table)

    def route(self, src_lang_id: torch.Tensor, tgt_lang_id: torch.Tensor) -> AdapterRoute:
        """Each sample's encoder and decoder ids, on the ids' device (no host synchronisation)."""
        src, tgt = src_lang_id.reshape(-1), tgt_lang_id.reshape(-1)
        ids = self.ids.to(src.device)[:, src, tgt]
        return AdapterRoute(encoder_ids=ids[0], decoder_ids=ids[1], key_names=self.key_names)


def model_route_table(model, languages: Sequence[str], domain: str, missing: str) -> RouteTable:
    """The route table of an ``adapter_transformer`` model for the language dictionary ``languages``.

    ``domain`` is the run's ``--adapter-domain``; ``missing`` says what a
    route key without adapter does (``--missing-adapter``).
    """
    mode, sides = model.args.adapters_by, ("encoder", "decoder")
    adapters = {side: model.adapter_keys(side) if model.adapter_banks(side) else None for side in sides}
    # The saved routes, and for keys they lack (brought by --adapter-dirs) the routes a new model would have.
    derived = derive_routes(mode, {side: adapters[side] or () for side in sides})
    saved = read_routes(model.args.adapter_routes)
    routes = {side: {**derived[side], **saved[side]} for side in sides}
    return RouteTable.build(languages, lambda src, tgt: route_keys(mode, src, tgt, domain), routes, adapters, missing,
                            ROUTE_KEY_KINDS[mode])


def _route_name(side: str, key: str, routes: Mapping[str, Setup], adapters: Sequence[str] | None, missing: str,
                what: str):
    if adapters is None:
        return IDENTITY  # no adapter layer on this side reads the id
    setup = routes.get(key, key)
    if key and all(name in adapters for name in setup_names(setup)):
        return setup
    if missing == "identity":
        return IDENTITY
    if not key:
        return MissingAdapter("--adapters-by domain: pass --adapter-domain NAME (the domain of this run's data)")
    return MissingAdapter(f"no {side} adapter for {what} {key!r}; the model has {side} adapters for: "
                          f"{', '.join(adapters) or '(none)'}. Pass --missing-adapter identity to run the base "
                          "model for it")
