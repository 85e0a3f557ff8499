"""One training pipeline: task adapters, AdapterFusion and full fine-tuning all train through
``xling.train.train_with_head``, so each publishes its directory whole, and from the main process only."""

from __future__ import annotations

import pytest

from xling import fusion, train
from xling.train import TrainOptions


def options(out) -> TrainOptions:
    return TrainOptions(output_dir=str(out), max_steps=2, batch_size=8, save_steps=10, use_cpu=True,
                        learning_rate=1e-2, max_length=32)


@pytest.fixture(scope="module")
def two_task_adapters(workspace, en_language_adapter, tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("pipeline-tasks")
    return [str(train.train_task_adapter(str(workspace["model"]), "ner", str(en_language_adapter),
                                         str(workspace["data"] / "en.panx"), options(root / name), task_name=name))
            for name in ("a", "b")]


def run(kind: str, workspace, lang, adapters, out):
    model, data = str(workspace["model"]), str(workspace["data"] / "en.panx")
    if kind == "task":
        return train.train_task_adapter(model, "ner", str(lang), data, options(out))
    if kind == "fusion":
        return fusion.train_fusion(model, "ner", adapters, data, options(out), language_adapter=str(lang))
    return train.train_full_model(model, "ner", data, options(out))[0]


#: What each training publishes under its output directory, and one file the directory must hold.
PUBLISHED = {"task": ("adapter", "task.json"), "fusion": ("fusion", "fusion_weights.json"), "full": ("model", "config.json")}


@pytest.mark.parametrize("kind", list(PUBLISHED))
def test_every_training_publishes_through_train_with_head(kind, workspace, en_language_adapter, two_task_adapters,
                                                         tmp_path, monkeypatch):
    folder, marker = PUBLISHED[kind]
    real, folders = train.train_with_head, []

    def recording(setup, options, folder, build, dropper=None):
        folders.append(folder)
        return real(setup, options, folder, build, dropper)

    monkeypatch.setattr(train, "train_with_head", recording)
    monkeypatch.setattr(train, "is_main_process", lambda: False)  # another rank under torchrun writes nothing
    out = run(kind, workspace, en_language_adapter, two_task_adapters, tmp_path / "rank1")
    assert folders == [folder] and out == tmp_path / "rank1" / folder and not out.exists()

    monkeypatch.setattr(train, "is_main_process", lambda: True)
    out = run(kind, workspace, en_language_adapter, two_task_adapters, tmp_path / "rank0")
    assert (out / marker).is_file()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")], "temporary directory left behind"
