"""How each sample's adapter keys reach the layers, through beam search and mixed batches.

The task (``adapter_translation``) knows every sample's source and target
language; the layers only see hidden states.  The task puts an
``AdapterRoute`` into the ``adapter_core`` context around each model call:
one adapter id per sample for the encoder and one for the decoder, indices
into ``key_names``.  The encoder routes its layers with the encoder ids and
copies the decoder ids into its output dictionary (``encoder_out``), where
fairseq's ``SequenceGenerator`` reorders them with everything else when it
expands the batch to ``bsz * beam`` and drops finished sentences.  The decoder
reads its ids from ``encoder_out``, so each hypothesis keeps its own adapter.

Each side groups its batch by key once per forward (``RoutingPlan``), and
every layer of the stack reuses the grouping.  The route also says how many
of the lowest layers run without adapters (AdapterDrop, Rücklé et al. 2021):
the task draws that number per training batch.  Layers recomputed in the
backward pass (``--checkpoint-activations``) find their side's route again
from the task's route, which stays active until the update is done.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from adapter_core import IDENTITY, RoutingPlan, active_adapters, current

#: Context slot holding the ``AdapterRoute`` set by the task.
ROUTE_SLOT = "nmt_route"
#: Context slots the layers read: ``(ids, key_names)`` for their side.
ENCODER_SLOT = "nmt_encoder"
DECODER_SLOT = "nmt_decoder"
#: Key of the decoder's adapter ids inside fairseq's ``encoder_out`` dictionary.
DECODER_IDS_KEY = "adapter_decoder_ids"


class RoutingError(RuntimeError):
    """The model was called without adapter routing, or with keys it cannot route."""


@dataclass(frozen=True)
class AdapterRoute:
    """Per-sample adapter ids for one batch (Bapna & Firat 2019; Philip et al. 2020)."""

    # One id per sample (LongTensor of shape (batch,)) into ``key_names``, for the encoder layers.
    encoder_ids: torch.Tensor
    # One id per sample into ``key_names``, for the decoder layers.
    decoder_ids: torch.Tensor
    # The names the ids index; ``adapter_core.IDENTITY`` means "no adapter".
    key_names: tuple[str, ...]
    # AdapterDrop: adapters of layers below this index are dropped on both sides (None: the model's inference setting).
    dropped_layers: int | None = None

    def with_dropped_layers(self, count: int | None) -> "AdapterRoute":
        return replace(self, dropped_layers=count)

    @classmethod
    def from_keys(cls, encoder_keys: Sequence[str], decoder_keys: Sequence[str],
                  device: torch.device | None = None) -> "AdapterRoute":
        """Build a route from one key string per sample on each side."""
        names = tuple(sorted(set(encoder_keys) | set(decoder_keys) | {IDENTITY}))
        lookup = {name: i for i, name in enumerate(names)}
        encoder = torch.tensor([lookup[k] for k in encoder_keys], dtype=torch.long, device=device)
        decoder = torch.tensor([lookup[k] for k in decoder_keys], dtype=torch.long, device=device)
        return cls(encoder_ids=encoder, decoder_ids=decoder, key_names=names)

    def keys(self, side: str) -> list[str]:
        """The key of every sample on ``side`` ("encoder" or "decoder"), for messages and tests."""
        ids = self.encoder_ids if side == "encoder" else self.decoder_ids
        return [self.key_names[int(i)] for i in ids.tolist()]


def routed(route: AdapterRoute):
    """Context manager: route every adapter layer called inside by ``route``."""
    return active_adapters(**{ROUTE_SLOT: route})


def current_route(who: str) -> AdapterRoute:
    """The active route, or a clear error saying how to set one."""
    route = current(ROUTE_SLOT)
    if route is None:
        raise RoutingError(
            f"{who} was called without adapter routing: run it through the task 'adapter_translation' "
            "(fairseq-train/generate/interactive --task adapter_translation), or wrap the call in "
            "nmt.routing.routed(AdapterRoute.from_keys(...))")
    return route


@dataclass(frozen=True)
class SideRoute:
    """What the adapter layers of one side (encoder or decoder) need for the current forward."""

    # The batch grouped by adapter key, shared by every layer of the side.
    plan: RoutingPlan
    # Layers with an index below this run without their adapters (AdapterDrop).
    dropped_layers: int


def side_route(ids: torch.Tensor, key_names: Sequence[str], dropped_layers: int, device=None) -> SideRoute:
    return SideRoute(plan=RoutingPlan.build(ids, key_names, device), dropped_layers=dropped_layers)


def layer_keys(slot: str, who: str) -> SideRoute:
    """The ``SideRoute`` a layer on one side routes by.

    Inside the encoder's or decoder's forward, the side set it.  Outside (a
    checkpointed layer recomputed during backward) it is rebuilt from the
    task's route, which training keeps active through the backward pass.
    """
    value = current(slot)
    if value is not None:
        return value
    route = current(ROUTE_SLOT)
    if route is None:
        raise RoutingError(f"{who}: no adapter ids for this layer; the encoder/decoder of "
                           "'adapter_transformer' sets them, so call the model through its encoder and decoder")
    ids = route.encoder_ids if slot == ENCODER_SLOT else route.decoder_ids
    return side_route(ids, route.key_names, route.dropped_layers or 0)  # training routes always set the count
