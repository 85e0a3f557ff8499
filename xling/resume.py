"""Resuming a Trainer run: the settings that define a run, recorded beside its checkpoints and compared on a
rerun (one line naming what differs), the newest complete checkpoint, and which process writes (torchrun)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from adapter_core import atomic_write_json

logger = logging.getLogger(__name__)

#: Flags a resumed run may change: where it writes and how often, the device, what is scored after training.
RESUME_FREE_FLAGS = {"output_dir", "save_steps", "cpu", "use_cpu", "dev", "dev_labels", "force"}
#: The settings of a run, written beside its checkpoints before the first one.
RUN_SETTINGS = "run_settings.json"


class ResumeMismatchError(ValueError):
    """A rerun into an output directory whose checkpoints belong to a run with other settings."""


def _normalised(value):
    """A JSON value, with paths that exist made absolute (``a.txt`` and ``./a.txt`` are one setting)."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if isinstance(value, str) and value and os.path.exists(value):
        return str(Path(value).resolve())
    return json.loads(json.dumps(value, default=str))


def run_settings(options) -> dict:
    """What defines a run: the options but output dir, save steps and device, and the command's settings."""
    settings = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
                if f.name not in RESUME_FREE_FLAGS and f.name not in ("run_settings", "extra")}
    settings.update(options.extra and {"extra": options.extra}, **options.run_settings)
    return {key: _normalised(value) for key, value in sorted(settings.items())}


def check_resume_settings(options, last_checkpoint: str | None, record: bool = False) -> None:
    """When resuming, refuse settings other than the recorded ones in one line; else (``record``) record them
    beside the checkpoints to come (the main process only)."""
    checkpoints = Path(options.output_dir) / "checkpoints"
    settings, recorded_path = run_settings(options), checkpoints / RUN_SETTINGS
    if last_checkpoint is None:
        if record and is_main_process():
            atomic_write_json(recorded_path, settings)
        return
    try:
        recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("%s: no settings recorded (an older run): resuming without comparing them", recorded_path)
        return
    differing = [key for key in sorted(set(settings) | set(recorded)) if settings.get(key) != recorded.get(key)]
    if differing:
        shown = ", ".join(f"{'--' + key.replace('_', '-') if key != 'command' else 'the command'} "
                          f"{settings.get(key)!r} (was {recorded.get(key)!r})" for key in differing)
        raise ResumeMismatchError(f"{checkpoints} holds the checkpoints of a run with other settings: {shown}; "
                                  f"rerun with the same settings to resume it, or remove {checkpoints} (or choose "
                                  f"another --output-dir) to start afresh")


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest ``checkpoint-N`` whose save finished: transformers writes ``trainer_state.json`` last (after
    the weights, optimizer and RNG states), so a run killed while saving leaves a folder without it (or with
    a torn one), and resuming from that folder fails; the one before it is used instead."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.glob("checkpoint-*"):
        state = folder / "trainer_state.json"
        if not folder.name.split("-")[-1].isdigit() or not state.is_file():
            continue
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        found.append((int(folder.name.split("-")[-1]), str(folder)))
    return max(found)[1] if found else None


def world_size() -> int:
    """Processes taking part (torchrun sets WORLD_SIZE)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """True on the process that writes the finished directory (rank 0 under torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


