"""AdapterDrop on a MAD-X host: drop the adapters of the lowest n layers, in training and at inference.

Rücklé et al. (2021), "AdapterDrop: On the Efficiency of Adapters in
Transformers".  The policy (which n, in which mode, at which step) is
``adapter_core.drop.AdapterDropConfig``, shared with the fairseq plugin: the
robust mode's n is a function of the seed and the training step, so a run
resumed from a checkpoint draws what an uninterrupted one draws.  Under the
``Trainer`` the step is the Trainer's ``global_step`` (``AdapterDropSteps``,
which ``xling.train`` adds); used by hand, every training forward is the next
step.

Since the base is frozen, no gradient is needed below the lowest active
adapter: a forward pre-hook on encoder layer n detaches the hidden state that
enters it, so autograd keeps nothing below it.  The one adapter below every
layer is the language adapter's invertible (NICE) adapter on the embeddings:
while it is active and trainable (language-adapter training), nothing is
detached, so it keeps its gradient (its backward then runs through the frozen
lower layers, and only their adapters' cost is saved).  Everything is done with hooks
(``host.set_skipped_layers`` switches the adapters off); no forward code is
copied.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

from adapter_core.drop import AdapterDropConfig

from .attach import TransformersHost

__all__ = ["AdapterDrop", "AdapterDropConfig", "AdapterDropSteps"]


class AdapterDrop:
    """Attach AdapterDrop (Rücklé et al. 2021) to a ``TransformersHost``: ``AdapterDrop(host, config)``; ``remove()`` undoes it.

    ``step`` is the training step whose n the next training forward uses.  Left to itself, each training
    forward advances it by one; once ``at_step`` has set it (the Trainer's callback does, at every optimizer
    step), it stays there, so that every micro-batch of one step drops the same n.
    """

    def __init__(self, host: TransformersHost, config: AdapterDropConfig):
        self.host = host
        self.config = config
        limit = len(host.layers)
        robust_max = config.max_dropped if config.mode == "robust" else 0
        for value in (config.num_dropped, robust_max, config.inference_dropped or 0):
            if value > limit:
                raise ValueError(f"cannot drop the adapters of {value} layers; the model has {limit}")
        self.step = 0
        self.step_given = False
        self.current = 0
        self._handles = [host.model.register_forward_pre_hook(self._choose)]
        for i, layer in enumerate(host.layers):
            self._handles.append(layer.register_forward_pre_hook(self._detach_hook(i), with_kwargs=True))

    def at_step(self, step: int) -> None:
        """Draw the n of training step ``step`` from now on (the Trainer's ``global_step``)."""
        self.step, self.step_given = int(step), True

    def dropped_for(self, training: bool) -> int:
        return self.config.dropped(training, self.step)

    def _choose(self, module, args) -> None:
        self.current = self.dropped_for(module.training)
        if module.training and not self.step_given:
            self.step += 1
        self.host.set_skipped_layers(range(self.current))

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
        self.host.set_skipped_layers(())


class AdapterDropSteps(TrainerCallback):
    """Hands the ``Trainer``'s step to an ``AdapterDrop`` at the start of every optimizer step.

    ``state.global_step`` is restored from a checkpoint when training resumes, so the resumed run drops, step
    for step, what the uninterrupted one dropped.
    """

    def __init__(self, drop: AdapterDrop):
        self.drop = drop

    def on_step_begin(self, args, state, control, **kwargs):
        self.drop.at_step(state.global_step)
