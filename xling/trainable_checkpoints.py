"""Trainer checkpoints that hold only what trains: the trainable tensors, the optimizer and the RNG states.

transformers' ``Trainer`` writes the whole model into every checkpoint
(``save_pretrained``), about 1 GB for XLM-R base, although an adapter training
changes a few MB of it; the frozen rest is the base model directory, which is
loaded again on resume anyway.  ``TrainableCheckpoints`` (a mixin before
``Trainer``) writes the parameters that require grad to ``trainable.safetensors``
instead, and on resume copies them back into the freshly built model.  The
optimizer, scheduler, RNG and trainer states are the Trainer's own, so resume
stays bitwise exact.  A checkpoint written whole (before this change) still
resumes through the Trainer's own loader.  A state file that torch's weights-only
loader refuses (an object outside its allow-list) or cannot read is one line of
ours, never torch's advice to load it with ``weights_only=False``.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from adapter_core.io import describe_torch_load_error

#: The file of a checkpoint that holds the trainable tensors.
TRAINABLE_WEIGHTS = "trainable.safetensors"


class TrainableCheckpoints:
    """Mixin for a ``transformers.Trainer`` subclass: checkpoints keep only the trainable tensors."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        tensors = {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}
        save_file(tensors, os.path.join(output_dir, TRAINABLE_WEIGHTS), metadata={"format": "pt"})

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        path = os.path.join(resume_from_checkpoint, TRAINABLE_WEIGHTS)
        if not os.path.isfile(path):  # a checkpoint with the whole model
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model if model is not None else self.model, keep_torch_compile=False)
        try:
            saved = load_file(path)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: cannot read the checkpoint's trainable tensors ({err}); remove "
                             f"{resume_from_checkpoint} to resume from the one before it") from None
        parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        missing, unexpected = sorted(set(parameters) - set(saved)), sorted(set(saved) - set(parameters))
        wrong = sorted(n for n in set(saved) & set(parameters) if saved[n].shape != parameters[n].shape)
        if missing or unexpected or wrong:
            raise ValueError(f"{path}: the checkpoint does not fit the model being trained (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]}, other shape {wrong[:3]}); remove "
                             f"{os.path.dirname(resume_from_checkpoint)} to start afresh")
        with torch.no_grad():
            for name, tensor in saved.items():
                parameters[name].copy_(tensor)

    def _load_rng_state(self, checkpoint: str | None) -> None:
        with _readable_states(checkpoint):
            return super()._load_rng_state(checkpoint)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        with _readable_states(checkpoint):
            return super()._load_optimizer_and_scheduler(checkpoint)


class _readable_states:
    """Turns torch.load's refusal or failure on a checkpoint's state files into one ValueError line."""

    def __init__(self, checkpoint: str | None):
        self.checkpoint = checkpoint

    def __enter__(self):
        return self

    def __exit__(self, kind, err, traceback) -> bool:
        if err is not None and isinstance(err, (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile)):
            line = describe_torch_load_error(err, self.checkpoint, "Trainer checkpoints hold (tensors, containers, "
                                             "numpy RNG states)", "checkpoints this command wrote")
            raise ValueError(f"{line}; or remove {os.path.dirname(str(self.checkpoint))} to start afresh") from None
        return False
