"""AdapterDrop's policy: how many of the lowest layers run without their adapters, at each training step.

Rücklé et al. (2021), "AdapterDrop: On the Efficiency of Adapters in
Transformers".  Two training modes:

- "specialised": a fixed n, the same in training and at inference;
- "robust": n drawn uniformly from {0, ..., max_dropped} for every training
  step, so one model serves every n at inference (where none are dropped
  unless asked).

Two words, two concepts, in every host:

- **drop** (this module): AdapterDrop, the adapters of the *lowest n* layers
  are left out, in training (fixed or drawn per step) and at inference;
- **skip**: a fixed set of chosen layers whose adapters are left out at
  inference (layer ablation, pruning; nmt's ``--adapter-skip-layers``).  It
  draws nothing and needs no policy.

The robust draw is a pure function of the seed and the step (the optimizer
update number), so a run resumed from a checkpoint draws exactly what an
uninterrupted run draws; no generator state has to be saved.  It is the draw
the fairseq plugin has always made (``random.Random(seed * 1_000_003 +
step).randint(0, max_dropped)``), so nmt runs are unchanged.

    >>> policy = AdapterDropConfig(mode="robust", max_dropped=2, seed=1)
    >>> [policy.training_dropped(step) for step in range(3)] == [policy.training_dropped(s) for s in range(3)]
    True
    >>> AdapterDropConfig(mode="specialised", num_dropped=2).dropped_at_inference()
    2
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: AdapterDrop's training modes.
DROP_MODES = ("specialised", "robust")
#: Spreads the seeds of consecutive steps apart (a prime, so seed and step never alias for small values).
SEED_STRIDE = 1_000_003


@dataclass
class AdapterDropConfig:
    """How many of the lowest layers lose their adapters (Rücklé et al. 2021), in training and at inference."""

    # "specialised" (fixed n) or "robust" (n drawn per training step).
    mode: str = "specialised"
    # Specialised: the n dropped in training and at inference.
    num_dropped: int = 0
    # Robust: n is drawn uniformly from {0, ..., max_dropped} for each training step.
    max_dropped: int = 5
    # The n used at inference; None: num_dropped (specialised) or 0 (robust).
    inference_dropped: int | None = None
    # Seed of the robust mode's draws (with the step, all a draw depends on).
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in DROP_MODES:
            raise ValueError(f"AdapterDrop mode must be one of {', '.join(DROP_MODES)}, got {self.mode!r}")
        if self.num_dropped < 0 or self.max_dropped < 0 or (self.inference_dropped or 0) < 0:
            raise ValueError("AdapterDrop layer counts must be >= 0")

    def most_dropped_in_training(self) -> int:
        """The largest n any training step drops."""
        return self.num_dropped if self.mode == "specialised" else self.max_dropped

    def training_dropped(self, step: int) -> int:
        """The n of training step ``step`` (the optimizer update number, from 0): a function of seed and step only."""
        if self.mode == "specialised":
            return self.num_dropped
        return random.Random(self.seed * SEED_STRIDE + int(step)).randint(0, self.max_dropped)

    def dropped_at_inference(self) -> int:
        """The n outside training: ``inference_dropped``, else num_dropped (specialised) or 0 (robust)."""
        if self.inference_dropped is not None:
            return self.inference_dropped
        return self.num_dropped if self.mode == "specialised" else 0

    def dropped(self, training: bool, step: int) -> int:
        """The n of a forward pass: ``training_dropped(step)`` in training, else ``dropped_at_inference()``."""
        return self.training_dropped(step) if training else self.dropped_at_inference()

    def check_fits(self, top_layer: int, flag: str) -> None:
        """A ValueError naming ``flag`` unless every training step leaves layer ``top_layer`` (the highest with
        adapters, counted from 0) its adapters."""
        most = self.most_dropped_in_training()
        if most > top_layer:
            raise ValueError(f"{flag} {most}: must be 0..{max(top_layer, 0)}, so that layer {top_layer}, the highest "
                             "with adapters, keeps them in every training step (at least one must keep its adapters)")
