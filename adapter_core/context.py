"""Which adapters are active: a thread-local context, so host forwards need no new arguments.

The idea is AdapterHub's ``AdapterSetup``.  A host sets named *slots* for the
duration of a forward pass, and the adapter layers read them::

    with active_adapters(encoder=["de", "fr"], decoder="en"):
        model(...)

A slot holds one key for the whole batch, one key per sample, or a
composition such as ``Stack("en", "ner")``.  Contexts nest: an inner one
overrides only the slots it names.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Iterator

_state = threading.local()


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


def setup_from_json(value: Any) -> str | Stack | Fuse | None:
    """The inverse of ``to_json``: ``None``, a name, ``{"stack": [...]}`` or ``{"fuse": [...], "name": ...}``."""
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, dict) and set(value) == {"stack"} and isinstance(value["stack"], list):
        return Stack(*(setup_from_json(item) for item in value["stack"]))
    if isinstance(value, dict) and set(value) <= {"fuse", "name"} and isinstance(value.get("fuse"), list):
        return Fuse(*value["fuse"], name=value.get("name"))
    raise ValueError(f"not an adapter setup: {value!r:.80} (expected null, a name, {{'stack': [...]}} or "
                     "{'fuse': [...], 'name': ...})")


def _stack() -> list[dict[str, Any]]:
    if not hasattr(_state, "frames"):
        _state.frames = []
    return _state.frames


@contextlib.contextmanager
def active_adapters(**slots: Any) -> Iterator[dict[str, Any]]:
    """Activate adapters per slot for the ``with`` block, in this thread only."""
    frames = _stack()
    merged = dict(frames[-1]) if frames else {}
    merged.update(slots)
    frames.append(merged)
    try:
        yield merged
    finally:
        frames.pop()


def current(slot: str, default: Any = None) -> Any:
    """The value of ``slot`` in the innermost active context, or ``default``."""
    frames = _stack()
    return frames[-1].get(slot, default) if frames else default

