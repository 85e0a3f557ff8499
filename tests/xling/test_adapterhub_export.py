"""AdapterHub both ways: ``xling export --format adapterhub``, roles from configs, AdapterHub task adapters in ``xling eval``.

The committed fixture ``tests/fixtures/adapterhub/export`` was made by
``make_export_fixture.sh``: AdapterHub ``adapters`` 1.3.0 loaded our export
with ``model.load_adapter`` and recorded its hidden states and logits.  Here,
without AdapterHub, a fresh export must equal that export, and our outputs
must equal AdapterHub's.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import XLMRobertaForMaskedLM, XLMRobertaForTokenClassification

from adapter_core import (AdapterFormatError, ExportTargetError, Stack, atomic_write_json, compacter_plus_plus_2021,
                          madx_task)
from xling.adapter_io import load_madx_adapter, save_madx_adapter
from xling.adapterhub import (NotExportableError, adapterhub_head, export_adapterhub, export_adapterhub_dir,
                             head_from_adapterhub, head_into_model)
from xling.attach import TransformersHost
from xling.cli import main
from xling.train import TASK_INFO, save_head

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapterhub"
EXPORT = FIXTURES / "export"
_spec = importlib.util.spec_from_file_location("ah_build_ours", EXPORT / "build_ours.py")
build_ours = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_ours)
NAMES = ("sw", *build_ours.TASKS)


@pytest.fixture(scope="module")
def ours() -> dict[str, torch.Tensor]:
    return build_ours.our_outputs(EXPORT / "ours")


@pytest.mark.parametrize("name", NAMES)
def test_fresh_export_equals_the_export_adapterhub_loaded(name, tmp_path):
    assert main(["export", "--format", "adapterhub", "--adapter", str(EXPORT / "ours" / name),
                 "--output-dir", str(tmp_path / name)]) == 0
    committed = EXPORT / "adapterhub" / name
    files = sorted(p.name for p in committed.iterdir())
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == files
    assert ("head_config.json" in files) == (name != "sw")
    for file in files:
        if file.endswith(".json"):
            assert json.loads((tmp_path / name / file).read_text()) == json.loads((committed / file).read_text())
        else:
            fresh, old = (torch.load(d / file, weights_only=True) for d in (tmp_path / name, committed))
            assert fresh.keys() == old.keys() and all(torch.equal(fresh[k], old[k]) for k in old)


def test_export_maps_roles_leave_out_and_nice():
    lang = json.loads((EXPORT / "adapterhub" / "sw" / "adapter_config.json").read_text())
    ner = json.loads((EXPORT / "adapterhub" / "ner" / "adapter_config.json").read_text())
    assert lang["type"] == "text_lang" and ner["type"] == "text_task"
    assert lang["config"]["leave_out"] == [1] and ner["config"]["leave_out"] == []
    assert lang["config"]["inv_adapter"] == "nice" and lang["config"]["reduction_factor"] == 2
    assert ner["config"]["inv_adapter"] is None and ner["config"]["reduction_factor"] == 16
    weights = torch.load(EXPORT / "adapterhub" / "sw" / "pytorch_adapter.bin", weights_only=True)
    assert "encoder.layer.0.output.adapters.sw.adapter_down.0.weight" in weights
    assert not any(".layer.1." in k for k in weights)
    heads = {t: json.loads((EXPORT / "adapterhub" / t / "head_config.json").read_text())["config"]["head_type"]
             for t in build_ours.TASKS}
    assert heads == {"ner": "tagging", "classification": "classification", "qa": "question_answering",
                     "copa": "multiple_choice"}


@pytest.mark.parametrize("task", list(build_ours.TASKS))
@pytest.mark.parametrize("setting", ["none", "sw", "stack", "logits"])
def test_our_outputs_equal_adapterhubs(ours, task, setting):
    expected = load_file(str(EXPORT / "adapterhub_outputs.safetensors"))
    key = f"{task}.logits" if setting == "logits" else \
        f"{task}.{f'stack_sw_{task}' if setting == 'stack' else setting}.last_hidden_state"
    assert torch.equal(expected["input_ids"], build_ours.IDS)
    assert torch.allclose(ours[key], expected[key], atol=1e-5, rtol=0)
    if setting in ("sw", "stack"):  # the adapters change the output, so the comparison means something
        before = f"{task}.none.last_hidden_state" if setting == "sw" else f"{task}.sw.last_hidden_state"
        assert not torch.allclose(ours[key], ours[before], atol=1e-2)


def test_the_export_loads_back_with_its_roles(ours):
    model = build_ours.task_model("ner")
    host = TransformersHost(model)
    assert load_madx_adapter(host, EXPORT / "adapterhub" / "sw") == "sw"
    assert load_madx_adapter(host, EXPORT / "adapterhub" / "ner") == "ner"
    assert host.adapters["sw"].role == "language" and host.adapters["ner"].role == "task"
    assert host.adapters["sw"].layers == [0] and host.adapters["ner"].layers == [0, 1]
    host.set_active(Stack("sw", "ner"))
    with torch.no_grad():
        hidden = model(input_ids=build_ours.IDS, attention_mask=build_ours.MASK, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(hidden, ours["ner.stack_sw_ner.last_hidden_state"], atol=1e-6)


@pytest.mark.parametrize("task", list(build_ours.TASKS))
def test_adapterhub_heads_load_into_the_transformers_head(task):
    """The other way: AdapterHub's files (adapters and flex head) in our task model give AdapterHub's logits."""
    model = build_ours.task_model(task)
    host = TransformersHost(model)
    load_madx_adapter(host, EXPORT / "adapterhub" / "sw", role="language")
    load_madx_adapter(host, EXPORT / "adapterhub" / task, role="task")
    info, head = head_from_adapterhub(EXPORT / "adapterhub" / task)
    assert info["task"] == task and info["labels"] == build_ours.TASKS[task][1]
    head_into_model(host, task, head, "head")
    host.set_active(Stack("sw", task))
    ids, mask = (build_ours.IDS[None], build_ours.MASK[None]) if task == "copa" else (build_ours.IDS, build_ours.MASK)
    with torch.no_grad():
        result = model(input_ids=ids, attention_mask=mask)
    logits = torch.stack((result.start_logits, result.end_logits) if task == "qa" else (result.logits,))
    expected = load_file(str(EXPORT / "adapterhub_outputs.safetensors"))[f"{task}.logits"]
    assert torch.allclose(logits, expected, atol=1e-5, rtol=0)


def test_adapterhub_roles_come_from_the_config(tmp_path):
    host = TransformersHost(XLMRobertaForMaskedLM.from_pretrained(FIXTURES / "base"))
    assert load_madx_adapter(host, FIXTURES / "sw_inv") and host.adapters["sw_inv"].role == "language"  # NICE
    assert load_madx_adapter(host, FIXTURES / "ner", role="task") and host.adapters["ner"].role == "task"  # no signal
    with pytest.raises(AdapterFormatError, match="this is a language adapter"):
        load_madx_adapter(host, FIXTURES / "sw_inv", name="again", role="task")
    with pytest.raises(AdapterFormatError, match="this is a task adapter"):  # the exported type field
        load_madx_adapter(host, EXPORT / "adapterhub" / "ner", name="ner2", role="language")
    with pytest.raises(AdapterFormatError, match="this is a language adapter"):  # ours: metadata.role
        load_madx_adapter(host, EXPORT / "ours" / "sw", name="sw2", role="task")
    bad = tmp_path / "bad"
    bad.mkdir()
    for file in ("adapter_config.json", "pytorch_adapter.bin"):
        (bad / file).write_bytes((FIXTURES / "ner" / file).read_bytes())
    document = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**document, "type": "text_vision"}))
    with pytest.raises(AdapterFormatError, match="'type' must be one of"):
        load_madx_adapter(host, bad)


def test_unexportable_adapters_and_heads_are_refused(tmp_path, capsys):
    host = TransformersHost(XLMRobertaForMaskedLM.from_pretrained(FIXTURES / "base"))
    host.add_adapter("c", role="task", config=compacter_plus_plus_2021(32, reduction_factor=4))
    with pytest.raises(NotExportableError, match="'compacter' adapter has no AdapterHub"):
        export_adapterhub(host, "c", tmp_path / "c")
    save_madx_adapter(host, "c", tmp_path / "ours-c")
    capsys.readouterr()
    assert main(["export", "--format", "adapterhub", "--adapter", str(tmp_path / "ours-c"),
                 "--output-dir", str(tmp_path / "ah-c")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("xling: error: export:") and "compacter" in err and "\n" not in err
    host.add_adapter("nl", role="task", config=madx_task(32).replace(input_layer_norm=True))
    with pytest.raises(NotExportableError, match="input LayerNorm"):
        export_adapterhub(host, "nl", tmp_path / "nl")
    capsys.readouterr()
    assert main(["export", "--format", "adapterhub", "--adapter", str(FIXTURES / "ner"), "--output-dir", str(tmp_path / "x")]) == 1
    assert "already an AdapterHub directory" in capsys.readouterr().err
    head = {"classifier.dense.weight": torch.zeros(32, 32), "classifier.dense.bias": torch.zeros(32)}
    with pytest.raises(NotExportableError, match="'ner' head .* has no AdapterHub flex head"):
        adapterhub_head("ner", head, ["O"], "ner")


def test_export_from_a_live_host_equals_the_directory_export(tmp_path):
    model = build_ours.task_model("classification")
    host = TransformersHost(model)
    load_madx_adapter(host, EXPORT / "ours" / "classification")
    model.load_state_dict(load_file(str(EXPORT / "ours" / "classification" / "head.safetensors")), strict=False)
    labels = json.loads((EXPORT / "ours" / "classification" / TASK_INFO).read_text())["labels"]
    export_adapterhub(host, "classification", tmp_path / "live", task="classification", labels=labels)
    export_adapterhub_dir(EXPORT / "ours" / "classification", tmp_path / "dir")
    export_adapterhub_dir(EXPORT / "ours" / "sw", tmp_path / "sw")
    with pytest.raises(ExportTargetError, match="another adapter"):  # never over another adapter (issue 26)
        export_adapterhub_dir(EXPORT / "ours" / "classification", tmp_path / "sw")
    export_adapterhub_dir(EXPORT / "ours" / "sw", tmp_path / "sw")  # the same export again replaces it whole
    assert sorted(p.name for p in (tmp_path / "sw").iterdir()) == ["adapter_config.json", "pytorch_adapter.bin"]
    for file in ("adapter_config.json", "head_config.json"):
        assert json.loads((tmp_path / "live" / file).read_text()) == json.loads((tmp_path / "dir" / file).read_text())
    for file in ("pytorch_adapter.bin", "pytorch_model_head.bin"):
        live, saved = (torch.load(tmp_path / d / file, weights_only=True) for d in ("live", "dir"))
        assert live.keys() == saved.keys() and all(torch.equal(live[k], saved[k]) for k in live)


def test_xling_eval_takes_an_adapterhub_task_adapter(workspace, tmp_path, capsys):
    """Our NER task adapter and its AdapterHub export score the same in ``xling eval``."""
    model_dir, data = workspace["model"], workspace["data"]
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    torch.manual_seed(3)
    mlm = XLMRobertaForMaskedLM.from_pretrained(model_dir)
    lang_host = TransformersHost(mlm)
    lang_host.add_adapter("sw")
    save_madx_adapter(lang_host, "sw", tmp_path / "sw")
    model = XLMRobertaForTokenClassification.from_pretrained(model_dir, num_labels=len(labels))
    host = TransformersHost(model)
    load_madx_adapter(host, tmp_path / "sw")
    host.add_adapter("ner", role="task")
    with torch.no_grad():
        for tensor in host.adapter_tensors("ner").values():
            tensor.normal_(0, 0.3)
        model.classifier.weight.normal_(0, 1.0)
    save_madx_adapter(host, "ner", tmp_path / "ner")
    save_head(host, tmp_path / "ner")
    atomic_write_json(tmp_path / "ner" / TASK_INFO, {"task": "ner", "labels": labels, "adapter_name": "ner"})
    for source in ("sw", "ner"):
        assert main(["export", "--format", "adapterhub", "--adapter", str(tmp_path / source),
                     "--output-dir", str(tmp_path / f"ah-{source}")]) == 0
    records = {}
    for kind, task_dir, lang_dir in (("ours", "ner", "sw"), ("adapterhub", "ah-ner", "ah-sw")):
        out = tmp_path / f"{kind}.json"
        assert main(["eval", "--model", str(model_dir), "--task-adapter", str(tmp_path / task_dir), "--lang-adapter",
                     str(tmp_path / lang_dir), "--lang", "sw", "--data", str(data / "sw.panx"), "--output", str(out)]) == 0
        records[kind] = json.loads(out.read_text())
    scores = {kind: {k: v for k, v in r.items() if k not in ("language_adapter", "task_adapter")} for kind, r in records.items()}
    assert scores["ours"] == scores["adapterhub"] and scores["ours"]["task"] == "ner"
    # without its head, an AdapterHub task adapter cannot be scored: one line naming the missing file
    (tmp_path / "ah-ner" / "head_config.json").unlink()
    capsys.readouterr()
    assert main(["eval", "--model", str(model_dir), "--task-adapter", str(tmp_path / "ah-ner"), "--lang-adapter",
                 str(tmp_path / "ah-sw"), "--lang", "sw", "--data", str(data / "sw.panx"), "--output",
                 str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert "head_config.json: missing" in err and "\n" not in err
