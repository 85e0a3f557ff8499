"""``xling.MadxModel`` beyond the README example: heads, task models, saved setups, one-line errors.

Runs on AdapterHub's tiny fixture base and the committed export fixture (``tests/fixtures/adapterhub``), whose
logits AdapterHub 1.3.0 computed; the README example itself is ``tests/test_readme_api.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification

from adapter_core import AdapterFormatError, Fuse, Stack, UnknownAdapterError, setup_from_json
from xling import MadxModel
from xling.data import ModelDirError
from xling.task_info import read_task_info

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapterhub"
EXPORT = FIXTURES / "export"
LABELS = ["O", "B-PER", "I-PER"]
IDS = torch.tensor([[0, 5, 17, 33, 8, 60, 21, 2], [0, 9, 44, 12, 2, 1, 1, 1]])  # build_ours.IDS
MASK = (IDS != 1).long()


def ner_model() -> MadxModel:
    return MadxModel.from_pretrained(FIXTURES / "base", model_class=AutoModelForTokenClassification,
                                     num_labels=len(LABELS))


def logits(model: MadxModel) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


@pytest.mark.parametrize("layout", ["ours", "adapterhub"])
def test_task_adapter_with_its_head_gives_adapterhubs_logits(layout):
    model = ner_model()
    assert model.tokenizer is None  # the fixture base has none
    assert model.load_adapter(EXPORT / layout / "sw") == "sw"
    assert model.load_adapter(EXPORT / layout / "ner", with_head=True) == "ner"
    model.set_active(Stack("sw", "ner"))
    expected = load_file(str(EXPORT / "adapterhub_outputs.safetensors"))["ner.logits"][0]
    assert torch.allclose(logits(model), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["ours", "adapterhub"])
def test_saved_task_adapter_and_head_load_back(tmp_path, layout):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner", with_head=True)
    model.set_active(Stack("sw", "ner"))
    before = logits(model)
    model.save_adapter("ner", tmp_path / "ner", format=layout, task="ner", labels=LABELS)
    if layout == "ours":
        assert read_task_info(tmp_path / "ner")["labels"] == LABELS  # what `xling eval --task-adapter` reads
    else:
        assert json.loads((tmp_path / "ner" / "head_config.json").read_text())["config"]["head_type"] == "tagging"
    fresh = ner_model()
    fresh.load_adapter(EXPORT / "ours" / "sw")
    fresh.load_adapter(tmp_path / "ner", with_head=True)
    fresh.set_active(Stack("sw", "ner"))
    assert torch.allclose(logits(fresh), before, atol=1e-6, rtol=0)


def test_save_pretrained_of_a_task_model_round_trips(tmp_path):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner", with_head=True)
    model.host.set_skipped_layers([0])
    model.set_active(Stack("sw", "ner"))
    model.save_pretrained(tmp_path / "m")
    again = MadxModel.from_pretrained(tmp_path / "m", model_class=AutoModelForTokenClassification)
    assert again.active == Stack("sw", "ner") and again.host.skipped_layers == {0}
    assert again.adapters["sw"].layers == [0] and again.adapters["ner"].role == "task"
    assert torch.equal(logits(again), logits(model))


@pytest.mark.parametrize("setup", [None, "sw", Stack("sw", "ner"), Stack("sw", Fuse("ner", "pos")),
                                   Fuse("ner", "pos", name="both")])
def test_setups_survive_json(setup):
    document = json.loads(json.dumps(setup.to_json() if hasattr(setup, "to_json") else setup))
    assert setup_from_json(document) == setup


def _fused(model: MadxModel) -> None:
    model.add_adapter("pos", role="task")
    model.add_fusion(Fuse("ner", "pos"))
    model.save_pretrained("unused")


ERRORS = [  # (what is done to a model holding "sw" and "ner", the error, its message)
    (lambda m: m.set_active(Stack("sw", "xx")), UnknownAdapterError, "no adapter 'xx'; known: sw, ner"),
    (lambda m: m.set_active(Fuse("sw", "ner")), UnknownAdapterError, "no fusion layer 'sw,ner'; add it with"),
    (lambda m: m.save_adapter("xx", "unused"), UnknownAdapterError, "no adapter 'xx'; known: sw, ner"),
    (lambda m: m.save_adapter("ner", "unused", format="zip"), ValueError, "format must be one of ours, adapterhub"),
    (lambda m: m.save_adapter("ner", "unused", task="ner"), ValueError, "give both task and labels"),
    (lambda m: m.save_adapter("sw", "unused", task="ner", labels=LABELS), ValueError, "'sw' is a language adapter"),
    (lambda m: m.load_adapter(EXPORT / "ours" / "sw", with_head=True), AdapterFormatError, "task.json: missing"),
    (lambda m: m.load_adapter(FIXTURES / "nowhere"), FileNotFoundError, "adapter directory not found"),
    (lambda m: m.load_adapter(FIXTURES), AdapterFormatError, "holds no adapter: expected adapter_config.json"),
    (lambda m: m.load_adapter(EXPORT / "ours" / "ner"), ValueError, "adapter 'ner' already exists"),
    (lambda m: MadxModel.from_pretrained(FIXTURES / "nowhere"), ModelDirError, "model directory not found"),
    (_fused, ValueError, "save_pretrained does not write AdapterFusion layers (ner,pos)"),
    (lambda m: setup_from_json({"stack": "sw"}), ValueError, "not an adapter setup"),
]


@pytest.mark.parametrize("action, error, message", ERRORS, ids=[e[2][:30] for e in ERRORS])
def test_bad_input_is_one_line(action, error, message):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner")
    with pytest.raises(error) as info:
        action(model)
    assert message in str(info.value) and "\n" not in str(info.value)

