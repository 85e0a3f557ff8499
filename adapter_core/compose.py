"""Stack, Fuse and per-sample routing: the one ``compose()`` every host calls.

Composition is plain, serialisable data, as in AdapterHub: ``Stack("en",
"ner")`` runs adapters one after another, bottom first (MAD-X, Pfeiffer et
al. 2020, "MAD-X: An Adapter-Based Framework for Multi-Task Cross-Lingual
Transfer"); ``Fuse("ner", "pos")`` attends over several adapters' outputs
(AdapterFusion, Pfeiffer et al. 2021, "AdapterFusion: Non-Destructive Task
Composition for Transfer Learning").  A ``RoutingPlan`` gives each group of
samples of a mixed batch its own setup (Bapna & Firat 2019 route by
language pair).

``compose`` runs a setup on a stream ``r`` (the site's hidden states): an
adapter step makes ``r <- r + A(read(r))``, a ``Fuse`` step ``r <- r +
sum_n s_n V A_n(read(r))``.  The host says only what an adapter reads:
fairseq's layers hand it the stream itself; xling's Pfeiffer site reads
``LN(r + x)`` with the block's own LayerNorm and its input ``x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import torch
from torch import nn

from .bank import IDENTITY, RoutingPlan, UnknownAdapterError


@dataclass(frozen=True)
class Fuse:
    """Combine adapters with an AdapterFusion layer: ``Fuse("ner", "pos", "qa")``.

    Pfeiffer et al. (2021), "AdapterFusion: Non-Destructive Task Composition
    for Transfer Learning".  ``name`` is the fusion layer's key (default: the
    adapter names joined with ",").
    """

    names: tuple[str, ...]
    name: str

    def __init__(self, *names: str, name: str | None = None):
        if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"Fuse needs two or more distinct adapter names, got {names!r}")
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "name", name or ",".join(names))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def to_json(self) -> dict[str, Any]:
        return {"fuse": list(self.names), "name": self.name}


@dataclass(frozen=True)
class Stack:
    """Apply adapters one after another, bottom first: ``Stack("en", "ner")`` (MAD-X).

    An element may also be a ``Fuse``: ``Stack("en", Fuse("ner", "pos"))``.
    """

    names: tuple[str | Fuse, ...]

    def __init__(self, *names: str | Fuse):
        if not names or not all((isinstance(n, str) and n) or isinstance(n, Fuse) for n in names):
            raise ValueError(f"Stack needs one or more adapter names, got {names!r}")
        object.__setattr__(self, "names", tuple(names))

    def __iter__(self) -> Iterator[str | Fuse]:
        return iter(self.names)

    def to_json(self) -> dict[str, Any]:
        return {"stack": [n.to_json() if isinstance(n, Fuse) else n for n in self.names]}


#: What a site runs: nothing, one adapter, a fusion, or a stack of them.
Setup = Union[str, Stack, Fuse, None]


def setup_from_json(value: Any) -> Setup:
    """The inverse of ``to_json``: ``None``, a name, ``{"stack": [...]}`` or ``{"fuse": [...], "name": ...}``."""
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, dict) and set(value) == {"stack"} and isinstance(value["stack"], list):
        return Stack(*(setup_from_json(item) for item in value["stack"]))
    if isinstance(value, dict) and set(value) <= {"fuse", "name"} and isinstance(value.get("fuse"), list):
        return Fuse(*value["fuse"], name=value.get("name"))
    raise ValueError(f"not an adapter setup: {value!r:.80} (expected null, a name, {{'stack': [...]}} or "
                     "{'fuse': [...], 'name': ...})")


def setup_to_json(setup: Setup) -> Any:
    return setup.to_json() if isinstance(setup, (Stack, Fuse)) else setup


def setup_steps(setup: Setup) -> tuple[str | Fuse, ...]:
    """The steps of a setup, bottom first: adapter names and ``Fuse`` groups."""
    if setup is None:
        return ()
    if isinstance(setup, (str, Fuse)):
        return (setup,)
    if isinstance(setup, Stack):
        return setup.names
    raise TypeError(f"an adapter setup is a name, a Fuse or a Stack, got {setup!r}")


def setup_names(setup: Setup) -> tuple[str, ...]:
    """Every adapter name in a setup, those inside ``Fuse`` groups included."""
    return tuple(n for step in setup_steps(setup) for n in ((step,) if isinstance(step, str) else step.names))


#: Whether a mixed batch of same-shaped bottleneck adapters runs as one batched product per projection
#: (``batched_bottlenecks``) when ``compose`` is not told: None means on CUDA tensors only (the CPU keeps the loop,
#: bit for bit).  A process-wide switch, as ``torch.backends`` flags are; the benchmarks set it to compare paths.
BATCHED_ROUTING: bool | None = None

#: ``read(r, adapter, *extras)``: what ``adapter`` reads when the stream is ``r``.
Reader = Callable[..., torch.Tensor]


def compose(setup: Setup | RoutingPlan, h: torch.Tensor, adapters: Mapping[str, nn.Module],
            fusions: Mapping[str, nn.Module] | None = None, *, fusion_over: Mapping[str, Sequence[str]] | None = None,
            read: Reader | None = None, extras: Sequence[torch.Tensor] = (), batch_dim: int = 0,
            missing: str = "error", batched: bool | None = None) -> torch.Tensor:
    """Run ``setup`` (or each group of a ``RoutingPlan``) on the stream ``h``; returns ``h`` itself if no step ran.

    ``adapters`` and ``fusions`` are the site's modules by name; a name that is
    a key of ``fusion_over`` is the fusion over those adapters.  ``read(r,
    adapter, *extras)`` is what an adapter reads (default: ``r``); ``extras``
    are tensors it needs, split with ``h`` along ``batch_dim`` by a plan.
    ``missing="skip"`` leaves out adapters the site lacks (a layer without
    them); ``"error"`` raises ``UnknownAdapterError``.  ``IDENTITY`` does nothing.

    ``batched`` (default: ``BATCHED_ROUTING``, which defaults to CUDA tensors) runs a plan whose groups are each one bottleneck adapter of the
    same shape as one batched product per projection (``batched_bottlenecks``) instead of a loop over the
    groups; equal to the loop within float rounding (tests/adapter_core/test_batched_routing.py).
    """
    if isinstance(setup, RoutingPlan):
        if batched is None:
            batched = h.is_cuda if BATCHED_ROUTING is None else BATCHED_ROUTING
        if setup.inverse is not None and read is None and not extras and batched:
            out = batched_bottlenecks(setup, h, adapters, batch_dim)
            if out is not None:
                return out
        if setup.inverse is None:
            return compose(setup.groups[0][0], h, adapters, fusions, fusion_over=fusion_over, read=read,
                           extras=extras, batch_dim=batch_dim, missing=missing)
        outputs = []
        for group_setup, index in setup.groups:
            index = index.to(h.device)
            outputs.append(compose(group_setup, h.index_select(batch_dim, index), adapters, fusions,
                                   fusion_over=fusion_over, read=read, batch_dim=batch_dim, missing=missing,
                                   extras=[e.index_select(batch_dim, index) for e in extras]))
        return torch.cat(outputs, dim=batch_dim).index_select(batch_dim, setup.inverse.to(h.device))
    fusions, fusion_over = fusions or {}, fusion_over or {}
    r = h
    for step in setup_steps(setup):
        if isinstance(step, str) and step in fusion_over:  # a route key that names a fusion of the site
            step = Fuse(*fusion_over[step], name=step)
        if isinstance(step, Fuse):
            r = _fuse(step, r, adapters, fusions, read, extras, missing)
        elif step in adapters:
            adapter = adapters[step]
            r = adapter(r if read is None else read(r, adapter, *extras), residual=r)
        elif step != IDENTITY and missing != "skip":
            raise UnknownAdapterError(f"no adapter {step!r} here; known adapters: "
                                      f"{', '.join(sorted(adapters)) or '(none)'} (or {IDENTITY!r} for none)")
    return r


def _fuse(fuse: Fuse, r: torch.Tensor, adapters, fusions, read, extras, missing: str) -> torch.Tensor:
    present = [name for name in fuse.names if name in adapters]  # "skip": the ones this layer has
    if fuse.name not in fusions or not present or (missing != "skip" and len(present) < len(fuse.names)):
        if missing == "skip":
            return r
        raise UnknownAdapterError(f"no fusion {fuse.name!r} over {', '.join(fuse.names)} here; known fusions: "
                                  f"{', '.join(sorted(fusions)) or '(none)'}")
    state = r if read is None else read(r, adapters[present[0]], *extras)
    deltas = torch.stack([adapters[name].delta(state) for name in present], dim=-2)
    return fusions[fuse.name](state, deltas, residual=r)


def batched_bottlenecks(plan: RoutingPlan, h: torch.Tensor, adapters: Mapping[str, nn.Module],
                        batch_dim: int = 0) -> torch.Tensor | None:
    """``h + A_k(h)`` with each sample's own bottleneck adapter ``A_k``, as batched matrix products.

    Every sample gathers its group's down/up weights (and input LayerNorm's affine), so a mixed batch
    costs one ``baddbmm`` per projection instead of a gather, two products and a scatter per group: on a
    GPU the per-group loop is many small kernels (bench P4).  Returns None where this does not apply (a
    group that is a setup rather than one adapter, or adapters of other kinds or shapes): the caller loops.
    """
    from .bottleneck import BottleneckAdapter

    names = [key for key, _ in plan.groups]
    if plan.group_of_sample is None or not all(isinstance(name, str) and name in adapters and isinstance(adapters[name], BottleneckAdapter) for name in names):
        return None
    modules = [adapters[name] for name in names]
    first = modules[0]
    if any(type(m.activation) is not type(first.activation) or (m.layer_norm is None) != (first.layer_norm is None)
           or m.down.weight.shape != first.down.weight.shape for m in modules):
        return None
    groups = plan.group_of_sample.to(h.device)
    x = h.movedim(batch_dim, 0)
    flat = x.reshape(x.size(0), -1, x.size(-1))  # (batch, positions, d)
    z = flat
    if first.layer_norm is not None:
        norm = first.layer_norm
        z = nn.functional.layer_norm(z, norm.normalized_shape, None, None, norm.eps)
        gain = torch.stack([m.layer_norm.weight for m in modules])[groups].unsqueeze(1)
        bias = torch.stack([m.layer_norm.bias for m in modules])[groups].unsqueeze(1)
        z = torch.addcmul(bias, z, gain)
    down_w = torch.stack([m.down.weight for m in modules])[groups]  # (batch, m, d)
    down_b = torch.stack([m.down.bias for m in modules])[groups].unsqueeze(1)
    z = first.activation(torch.baddbmm(down_b, z, down_w.transpose(1, 2)))
    up_w = torch.stack([m.up.weight for m in modules])[groups]  # (batch, d, m)
    up_b = torch.stack([m.up.bias for m in modules])[groups].unsqueeze(1)
    out = flat + torch.baddbmm(up_b, z, up_w.transpose(1, 2))
    return out.reshape(x.shape).movedim(0, batch_dim)
