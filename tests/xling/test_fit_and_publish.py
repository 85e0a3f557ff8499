"""xling.train.fit_and_publish, the end of every xling training: AdapterDrop follows the Trainer's step, only the
main process publishes (atomically, with adapter_core.publish_directory), and every rank meets at the barrier, even
when the publish fails."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xling import train
from xling.drop import AdapterDropSteps


class FakeTrainer:
    """What fit_and_publish uses of a transformers Trainer: add_callback, train, accelerator.wait_for_everyone."""

    def __init__(self):
        self.events, self.callbacks = [], []
        self.accelerator = SimpleNamespace(wait_for_everyone=lambda: self.events.append("barrier"))

    def add_callback(self, callback):
        self.callbacks.append(callback)

    def train(self, resume_from_checkpoint=None):
        self.events.append(("train", resume_from_checkpoint))


class FakeDrop:
    def __init__(self, events):
        self.events = events

    def remove(self):
        self.events.append("drop removed")


def test_main_process_publishes_after_training_and_the_drop_follows_the_trainer(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "is_main_process", lambda: True)
    trainer = FakeTrainer()
    options = train.TrainOptions(output_dir=str(tmp_path))
    out = train.fit_and_publish(trainer, options, tmp_path / "adapter",
                                lambda tmp: trainer.events.append("build") or (tmp / "f").write_text("x"),
                                FakeDrop(trainer.events))
    assert (out / "f").read_text() == "x"
    assert trainer.events == [("train", None), "drop removed", "build", "barrier"]
    assert [type(c) for c in trainer.callbacks] == [AdapterDropSteps]


def test_other_ranks_only_wait_and_a_failed_publish_still_reaches_the_barrier(tmp_path, monkeypatch):
    options = train.TrainOptions(output_dir=str(tmp_path))
    monkeypatch.setattr(train, "is_main_process", lambda: False)
    trainer = FakeTrainer()
    train.fit_and_publish(trainer, options, tmp_path / "adapter", lambda tmp: trainer.events.append("build"))
    assert trainer.events == [("train", None), "barrier"] and not (tmp_path / "adapter").exists()

    monkeypatch.setattr(train, "is_main_process", lambda: True)
    trainer = FakeTrainer()

    def fail(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        train.fit_and_publish(trainer, options, tmp_path / "adapter", fail)
    assert trainer.events == [("train", None), "barrier"]  # the other ranks are not left waiting
    # no partial adapter: only the run's settings, recorded beside its (here absent) checkpoints for resume
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == \
        ["checkpoints", f"checkpoints/{train.RUN_SETTINGS}"]
