"""Loading an adapter directory into a host: the one routine both hosts use.

``load_adapter_into(host, directory)`` reads an adapter (or AdapterFusion) directory in the core format
(``adapter_core.io``), checks it against the model it goes into, and only then changes the model:

1. the files: config, tensors, format version, finite values (``load_adapter`` / ``load_fusion``);
2. the base: the saved fingerprint must be the host's (``force`` loads it anyway);
3. the name: non-empty and without ``.`` (module-dict keys in both hosts);
4. the host's plan: where the adapter goes (layers, sites, role), which the host decides from the metadata
   it wrote (``AdapterSlots.plan_adapter`` / ``plan_fusion``), with the tensors it will hold;
5. the tensors: the same names and shapes as the plan's, floating point;
6. the plan's ``install``: build the modules where needed and copy the tensors in.

A failed check leaves the model as it was: a plan that had to build modules to learn their shapes undoes that
(``LoadPlan.rollback``).  The hosts keep only what is theirs: which layers and sites carry an adapter
(``nmt``: fairseq's encoder and decoder banks; ``xling``: the transformers encoder's hooks), and their
metadata checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Protocol

import torch

from .io import AdapterFormatError, SavedAdapter, check_shapes, is_fusion_directory, load_adapter, load_fusion


@dataclass
class LoadPlan:
    """What a host will do with one saved adapter, decided before the model changes."""

    # The tensors the host will hold, by their names in the file (meta tensors are enough: only shapes are read).
    expected: Mapping[str, torch.Tensor]
    # Builds what is missing and copies the checked tensors in; called once every check has passed.
    install: Callable[[Mapping[str, torch.Tensor]], None]
    # Which of the saved tensors the plan uses (e.g. only the layers the host carries); None: all of them.
    select: Optional[Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]] = None
    # Undoes what planning changed (modules built to learn their shapes) when a later check fails; None: nothing.
    rollback: Optional[Callable[[], None]] = None


class AdapterSlots(Protocol):
    """What a host offers ``load_adapter_into``: its base fingerprint, and a plan for an adapter or a fusion."""

    def base_fingerprint(self) -> str:
        """The fingerprint of the base model (``adapter_core.fingerprint_model``) that saved adapters must match."""

    def plan_adapter(self, name: str, saved: SavedAdapter, where: Path) -> LoadPlan | None:
        """Where adapter ``name`` goes and the tensors it needs; None when the host has no place for it (left
        out); raises ``AdapterFormatError`` naming ``where`` when the saved adapter cannot fit the model."""

    def plan_fusion(self, name: str, saved: SavedAdapter, where: Path) -> LoadPlan | None:
        """As ``plan_adapter``, for AdapterFusion layers (``saved.metadata['fusion_of']`` names the fused adapters,
        which the host must already hold)."""


def check_adapter_name(name: str, where: str | os.PathLike) -> str:
    """An adapter or fusion name both hosts can key modules by: non-empty, without '.'."""
    if not name or "." in name:
        raise AdapterFormatError(f"{where}: adapter name {name!r} must be non-empty and contain no '.'")
    return name


def load_adapter_into(host: AdapterSlots, directory: str | os.PathLike, name: str | None = None,
                      force: bool = False, saved: SavedAdapter | None = None) -> str | None:
    """Load the adapter or AdapterFusion directory ``directory`` into ``host``; returns its name, or None when the
    host's plan leaves it out.

    ``name`` overrides the saved name (else the saved one, else the folder's); ``force`` loads an adapter trained
    on another base; ``saved`` is the directory as already read (hosts that inspect it first pass it on).  Every
    problem with the files is an ``AdapterFormatError`` or ``FingerprintMismatchError`` naming the directory, raised
    before the model changes.
    """
    directory = Path(directory)
    fusion = is_fusion_directory(directory)
    if saved is None:
        reader = load_fusion if fusion else load_adapter
        saved = reader(directory, expected_fingerprint=host.base_fingerprint(), force=force)
    name = check_adapter_name(name or saved.name or directory.name, directory)
    plan = (host.plan_fusion if fusion else host.plan_adapter)(name, saved, directory)
    if plan is None:
        return None
    tensors = dict(plan.select(saved.tensors)) if plan.select is not None else dict(saved.tensors)
    try:
        check_shapes(tensors, plan.expected, where=str(directory))
        for key, tensor in tensors.items():
            if not torch.is_floating_point(tensor):
                raise AdapterFormatError(f"{directory}: tensor {key} has dtype {tensor.dtype}; "
                                         "adapter tensors are floating point")
    except AdapterFormatError:
        if plan.rollback is not None:
            plan.rollback()
        raise
    plan.install(tensors)
    return name


def copy_tensors(targets: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy checked ``tensors`` into the host's parameters ``targets`` (same keys), in the targets' dtype."""
    with torch.no_grad():
        for key, param in targets.items():
            param.copy_(tensors[key].to(param.dtype))
