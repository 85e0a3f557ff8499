"""``xling.AdapterModel`` beyond the README example: heads, task models, saved setups, AdapterHub's API names,
the nn.Module an optimizer takes, fusions saved and loaded, one-line errors.

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
from xling import AdapterModel
from xling.data import ModelDirError
from xling.task_info import read_task_info

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapterhub"
EXPORT = FIXTURES / "export"
LABELS = ["O", "B-PER", "I-PER"]
IDS = torch.tensor([[0, 5, 17, 33, 8, 60, 21, 2], [0, 9, 44, 12, 2, 1, 1, 1]])  # build_ours.IDS
MASK = (IDS != 1).long()


def ner_model() -> AdapterModel:
    return AdapterModel.from_pretrained(FIXTURES / "base", model_class=AutoModelForTokenClassification,
                                     num_labels=len(LABELS))


def logits(model: AdapterModel) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


@pytest.mark.parametrize("layout", ["ours", "adapterhub"])
def test_task_adapter_with_its_head_gives_adapterhubs_logits(layout):
    model = ner_model()
    assert model.tokenizer is None  # the fixture base has none
    assert model.load_adapter(EXPORT / layout / "sw") == "sw"
    assert model.load_adapter(EXPORT / layout / "ner", with_head=True) == "ner"
    model.set_active_adapters(Stack("sw", "ner"))
    expected = load_file(str(EXPORT / "adapterhub_outputs.safetensors"))["ner.logits"][0]
    assert torch.allclose(logits(model), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["ours", "adapterhub"])
def test_saved_task_adapter_and_head_load_back(tmp_path, layout):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner", with_head=True)
    model.set_active_adapters(Stack("sw", "ner"))
    before = logits(model)
    model.save_adapter(tmp_path / "ner", "ner", format=layout, task="ner", labels=LABELS)
    if layout == "ours":
        assert read_task_info(tmp_path / "ner")["labels"] == LABELS  # what `xling eval --task-adapter` reads
    else:
        assert json.loads((tmp_path / "ner" / "head_config.json").read_text())["config"]["head_type"] == "tagging"
    fresh = ner_model()
    fresh.load_adapter(EXPORT / "ours" / "sw")
    fresh.load_adapter(tmp_path / "ner", with_head=True)
    fresh.set_active_adapters(Stack("sw", "ner"))
    assert torch.allclose(logits(fresh), before, atol=1e-6, rtol=0)


def test_save_pretrained_of_a_task_model_round_trips(tmp_path):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner", with_head=True)
    model.host.set_skipped_layers([0])
    model.set_active_adapters(Stack("sw", "ner"))
    model.save_pretrained(tmp_path / "m")
    again = AdapterModel.from_pretrained(tmp_path / "m", model_class=AutoModelForTokenClassification)
    assert again.active == Stack("sw", "ner") and again.host.skipped_layers == {0}
    assert again.adapters["sw"].layers == [0] and again.adapters["ner"].role == "task"
    assert torch.equal(logits(again), logits(model))


@pytest.mark.parametrize("setup", [None, "sw", Stack("sw", "ner"), Stack("sw", Fuse("ner", "pos")),
                                   Fuse("ner", "pos", name="both")])
def test_setups_survive_json(setup):
    document = json.loads(json.dumps(setup.to_json() if hasattr(setup, "to_json") else setup))
    assert setup_from_json(document) == setup


ERRORS = [  # (what is done to a model holding "sw" and "ner", the error, its message)
    (lambda m: m.set_active_adapters(Stack("sw", "xx")), UnknownAdapterError, "no adapter 'xx'; known: sw, ner"),
    (lambda m: m.set_active_adapters(Fuse("sw", "ner")), UnknownAdapterError, "no fusion layer 'sw,ner'; add it with"),
    (lambda m: m.save_adapter("unused", "xx"), UnknownAdapterError, "no adapter 'xx'; known: sw, ner"),
    (lambda m: m.save_adapter("unused", "ner", format="zip"), ValueError, "format must be one of ours, adapterhub"),
    (lambda m: m.save_adapter("unused", "ner", task="ner"), ValueError, "give both task and labels"),
    (lambda m: m.save_adapter("unused", "sw", task="ner", labels=LABELS), ValueError, "'sw' is a language adapter"),
    (lambda m: m.load_adapter(EXPORT / "ours" / "sw", with_head=True), AdapterFormatError, "task.json: missing"),
    (lambda m: m.load_adapter(FIXTURES / "nowhere"), FileNotFoundError, "adapter directory not found"),
    (lambda m: m.load_adapter(FIXTURES), AdapterFormatError, "holds no adapter: expected adapter_config.json"),
    (lambda m: m.load_adapter(EXPORT / "ours" / "ner"), ValueError, "adapter 'ner' already exists"),
    (lambda m: AdapterModel.from_pretrained(FIXTURES / "nowhere"), ModelDirError, "model directory not found"),
    (lambda m: m.delete_adapter("xx"), UnknownAdapterError, "no adapter 'xx'; known: sw, ner"),
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



def test_an_nn_module_that_an_optimizer_takes_as_it_is_and_train_adapter_freezes_the_rest():
    import inspect

    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.add_adapter("ner", role="task")
    assert isinstance(model, torch.nn.Module)
    assert {"input_ids", "attention_mask", "labels"} <= set(inspect.signature(model.forward).parameters)  # Trainer
    trainable = model.train_adapter("ner")
    model.set_active_adapters(Stack("sw", "ner"))
    assert trainable and all(".ner." in n or "classifier" in n for n in trainable)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {f"model.{n}" for n in trainable}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(input_ids=IDS, attention_mask=MASK, labels=torch.zeros_like(IDS)).loss
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".ner." in n or "classifier" in n for n in changed)  # sw and the base stay as they were


def test_save_all_adapters_delete_adapter_and_load_adapter(tmp_path):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner")
    written = model.save_all_adapters(tmp_path)
    assert [p.name for p in written] == ["sw", "ner"]
    model.set_active_adapters(Stack("sw", "ner"))
    with pytest.raises(ValueError, match="'ner' is active"):
        model.delete_adapter("ner")
    model.set_active_adapters(None)
    count = sum(p.numel() for p in model.parameters())
    model.delete_adapter("ner")
    assert list(model.adapters) == ["sw"] and sum(p.numel() for p in model.parameters()) < count
    assert model.load_adapter(tmp_path / "ner") == "ner"
    model.set_active_adapters(Stack("sw", "ner"))
    reference = ner_model()
    reference.load_adapter(EXPORT / "ours" / "sw")
    reference.load_adapter(EXPORT / "ours" / "ner")
    reference.set_active_adapters(Stack("sw", "ner"))
    reference.classifier_state = None
    model.model.classifier.load_state_dict(reference.model.classifier.state_dict())
    assert torch.equal(logits(model), logits(reference))


def test_fusion_layers_save_and_load_in_the_adapter_format(tmp_path):
    model = ner_model()
    model.load_adapter(EXPORT / "ours" / "sw")
    model.load_adapter(EXPORT / "ours" / "ner")
    model.add_adapter("pos", role="task")
    fuse = model.add_adapter_fusion(Fuse("ner", "pos"))
    with torch.no_grad():  # a fusion unlike a fresh one
        for layer in model.host.fusion_layers(fuse.name):
            layer.value.weight.mul_(0.5)
    model.set_active_adapters(Stack("sw", fuse))
    expected = logits(model)
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "adapters" / "ner,pos" / "adapter_model.safetensors").is_file()
    again = AdapterModel.from_pretrained(tmp_path / "m", model_class=AutoModelForTokenClassification,
                                         num_labels=len(LABELS))
    assert again.active == Stack("sw", Fuse("ner", "pos")) and list(again.host.fusions) == ["ner,pos"]
    assert torch.equal(logits(again), expected)
    fresh = ner_model()
    with pytest.raises(AdapterFormatError, match="fuses ner, pos, which the model does not hold"):
        fresh.load_adapter(tmp_path / "m" / "adapters" / "ner,pos")
