"""Which adapters are active: a thread-local context, so host forwards need no new arguments.

The idea is AdapterHub's ``AdapterSetup``.  A host sets named *slots* for the
duration of a forward pass, and the adapter layers read them::

    with active_adapters(encoder=["de", "fr"], decoder="en"):
        model(...)

A slot holds one key for the whole batch, one key per sample, or a
composition such as ``Stack("en", "ner")`` (``adapter_core.compose``).
Contexts nest: an inner one overrides only the slots it names.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from .compose import Fuse, Stack, setup_from_json  # noqa: F401  (the setups a slot holds; defined with compose())

_state = threading.local()


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

