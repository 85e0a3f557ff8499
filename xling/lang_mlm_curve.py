"""``MlmCurve``: held-out MLM loss during ``xling train-lang`` (a Trainer callback; ``xling.lang_mlm_eval``
scores the same loss on its own, without importing the Trainer)."""

from __future__ import annotations

from torch import nn
from transformers import TrainerCallback

from .lang_mlm_eval import mlm_loss


class MlmCurve(TrainerCallback):
    """Held-out MLM loss every ``every`` steps of a language adapter's training; ``plateau_delta`` > 0 ends
    training once the loss fell by less than that over ``window`` steps."""

    def __init__(self, model: nn.Module, batches: list[dict], every: int, plateau_delta: float = 0.0,
                 window: int = 1000):
        if every < 1 or window % every:
            raise ValueError(f"--eval-steps must be >= 1 and divide --plateau-window, got {every}, {window}")
        self.model, self.batches, self.every = model, batches, every
        self.plateau_delta, self.window = plateau_delta, window
        self.curve: list[dict] = []
        self.plateau: int | None = None

    def record(self, step: int) -> None:
        if not self.curve or self.curve[-1]["step"] != step:
            self.curve.append({"step": step, **mlm_loss(self.model, self.batches)})

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            self.record(0)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every:
            return
        self.record(state.global_step)
        earlier = {p["step"]: p["loss"] for p in self.curve}.get(state.global_step - self.window)
        if self.plateau is None and earlier is not None and earlier - self.curve[-1]["loss"] < self.plateau_delta:
            self.plateau = state.global_step
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self.record(state.global_step)

    def document(self) -> dict:
        return {"curve": self.curve, "plateau_step": self.plateau, "plateau_delta": self.plateau_delta,
                "plateau_window": self.window, "heldout_masked_tokens": self.curve[0]["masked_tokens"] if self.curve else 0}


# -- command line ----------------------------------------------------------------------------


