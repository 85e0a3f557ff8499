"""AdapterDrop on a MAD-X host: drop the adapters of the lowest n layers, in training and at inference.

Rücklé et al. (2021), "AdapterDrop: On the Efficiency of Adapters in
Transformers".  Two training modes:

- "specialised": a fixed n, the same in training and at inference;
- "robust": a random n in {0, ..., max_dropped} per training batch, so one
  model serves every n at inference.

Since the base is frozen, no gradient is needed below the lowest active
adapter: a forward pre-hook on encoder layer n detaches the hidden state that
enters it, so autograd keeps nothing below it.  The one adapter below every
layer is the language adapter's invertible (NICE) adapter on the embeddings:
while it is active and trainable (language-adapter training), nothing is
detached, so it keeps its gradient (its backward then runs through the frozen
lower layers, and only their adapters' cost is saved).  Everything is done with hooks
(``host.set_removed_layers`` switches the adapters off); no forward code is
copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .attach import MadxHost

MODES = ("specialised", "robust")


@dataclass
class AdapterDropConfig:
    """How many of the lowest layers lose their adapters."""

    # "specialised" (fixed n) or "robust" (n drawn per training batch).
    mode: str = "specialised"
    # Specialised: the n dropped in training and at inference.
    num_dropped: int = 0
    # Robust: n is drawn uniformly from {0, ..., max_dropped} for each training batch.
    max_dropped: int = 5
    # The n used at inference (eval mode); None: num_dropped (specialised) or 0 (robust).
    inference_dropped: int | None = None
    # Seed of the robust mode's draws.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"AdapterDrop mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.num_dropped < 0 or self.max_dropped < 0 or (self.inference_dropped or 0) < 0:
            raise ValueError("AdapterDrop layer counts must be >= 0")


class AdapterDrop:
    """Attach AdapterDrop (Rücklé et al. 2021) to a ``MadxHost``: ``AdapterDrop(host, config)``; ``remove()`` undoes it."""

    def __init__(self, host: MadxHost, config: AdapterDropConfig):
        self.host = host
        self.config = config
        limit = len(host.layers)
        robust_max = config.max_dropped if config.mode == "robust" else 0
        for value in (config.num_dropped, robust_max, config.inference_dropped or 0):
            if value > limit:
                raise ValueError(f"cannot drop the adapters of {value} layers; the model has {limit}")
        self.generator = torch.Generator().manual_seed(config.seed)
        self.current = 0
        self._handles = [host.model.register_forward_pre_hook(self._choose)]
        for i, layer in enumerate(host.layers):
            self._handles.append(layer.register_forward_pre_hook(self._detach_hook(i), with_kwargs=True))

    def dropped_for(self, training: bool) -> int:
        c = self.config
        if not training:
            if c.inference_dropped is not None:
                return c.inference_dropped
            return c.num_dropped if c.mode == "specialised" else 0
        if c.mode == "specialised":
            return c.num_dropped
        return int(torch.randint(0, c.max_dropped + 1, (), generator=self.generator))

    def _choose(self, module, args) -> None:
        self.current = self.dropped_for(module.training)
        self.host.set_removed_layers(range(self.current))

    def _detach_hook(self, index: int):
        def hook(module, args, kwargs):
            if index != self.current or index == 0 or not torch.is_grad_enabled() or self._trains_invertible():
                return None
            if args:
                return (args[0].detach(),) + tuple(args[1:]), kwargs
            if "hidden_states" in kwargs:
                return args, {**kwargs, "hidden_states": kwargs["hidden_states"].detach()}
            return None
        return hook

    def _trains_invertible(self) -> bool:
        """Whether the active setup's invertible adapter, below every layer, has trainable parameters."""
        name = self.host._invertible_name()
        return name is not None and any(p.requires_grad for p in self.host.embeddings.madx_invertible.adapters[name].parameters())

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.host.set_removed_layers(())

