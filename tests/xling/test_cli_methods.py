"""The options of ``xling.cli_methods`` end to end through ``xling.cli.main`` on the tiny XLM-R (hidden 32, 2 layers).

Compacter++ and AdapterDrop flags of train-lang/train-task/eval, and the
train-fusion, train-full, ablate and drift subcommands, each with a bad input.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from adapter_core import AdapterConfig, read_adapter_config
from xling.adapter_io import load_madx_adapter
from xling.attach import TransformersHost
from xling.cli import main
from xling.inference import load_task_model
from xling.train import load_task_setup
from xling.trainable_checkpoints import TRAINABLE_WEIGHTS

STEPS = ["--max-steps", "2", "--save-steps", "2", "--batch-size", "8", "--cpu", "--learning-rate", "1e-2",
         "--max-length", "32"]


def train_task(workspace, lang_adapter, out, *extra) -> int:
    return main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter", str(lang_adapter),
                 "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out), *STEPS, *extra])


def eval_args(workspace, lang_adapter, task_adapter, output, *extra) -> list[str]:
    return ["eval", "--model", str(workspace["model"]), "--task-adapter", str(task_adapter), "--lang-adapter",
            str(lang_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx"), "--output", str(output),
            *extra]


def logits(loaded, dropped: int = 0) -> torch.Tensor:
    ids = loaded.tokenizer(["john lives in london", "mary went to paris"], padding=True, return_tensors="pt")
    with torch.no_grad(), loaded.host.adapters_skipped(range(dropped)):
        return loaded.model(**ids).logits


@pytest.fixture(scope="module")
def plain_task(workspace, en_language_adapter):
    """A MAD-X bottleneck task adapter trained with `xling train-task` (2 steps)."""
    out = workspace["root"] / "methods-task-plain"
    assert train_task(workspace, en_language_adapter, out) == 0
    return out / "adapter"


@pytest.fixture(scope="module")
def compacter_task(workspace, en_language_adapter):
    """A Compacter++ task adapter (rf 4: bottleneck 8, n = 4)."""
    out = workspace["root"] / "methods-task-compacter"
    assert train_task(workspace, en_language_adapter, out, "--adapter-kind", "compacter++", "--adapter-reduction-factor", "4",
                      "--adapter-phm-dim", "4", "--name", "ner_compacter") == 0
    return out


def test_compacter_task_adapter_reloads_identically_at_eval(workspace, en_language_adapter, compacter_task, tmp_path):
    config = AdapterConfig.from_dict(read_adapter_config(compacter_task / "adapter")["config"])
    assert config.kind == "compacter" and config.phm_dim == 4 and config.resolved_bottleneck_dim == 8
    # every trained tensor (its last Trainer checkpoint) comes back from the saved adapter + head
    trained = load_file(str(compacter_task / "checkpoints" / "checkpoint-2" / TRAINABLE_WEIGHTS))
    loaded = load_task_model(str(workspace["model"]), str(compacter_task / "adapter"), str(en_language_adapter))
    state = loaded.model.state_dict()
    assert sum("phm_rule" in k for k in trained) == 1  # one shared rule A for all layers
    assert set(trained) <= set(state)
    for key, value in trained.items():
        assert torch.equal(state[key], value), key
    # the eval command scores what the task module scores on the reloaded model
    assert main(eval_args(workspace, en_language_adapter, compacter_task / "adapter", tmp_path / "c.json")) == 0
    record = json.loads((tmp_path / "c.json").read_text())
    examples = loaded.module.read(str(workspace["data"] / "sw.panx"))
    reference = loaded.module.evaluate(loaded.model, loaded.tokenizer, examples, loaded.info["labels"])
    assert record["dropped_layers"] == 0 and record["f1"] == reference["f1"]


def test_specialised_adapterdrop_trains_upper_layers_only_and_eval_drops_the_same(workspace, en_language_adapter, tmp_path):
    out = workspace["root"] / "methods-task-drop"
    assert train_task(workspace, en_language_adapter, out, "--adapter-drop-mode", "specialised", "--adapter-drop-layers", "1") == 0
    info = json.loads((out / "adapter" / "task.json").read_text())
    assert info["adapter_drop"]["mode"] == "specialised" and info["adapter_drop"]["num_dropped"] == 1
    # the initial task adapter, rebuilt as train_task_adapter builds it (same seed): layer 0 never trained
    setup = load_task_setup(str(workspace["model"]), "ner", str(workspace["data"] / "en.panx"), 42)
    host = TransformersHost(setup.model)
    load_madx_adapter(host, en_language_adapter)
    host.add_adapter("ner", role="task")
    initial = host.adapter_tensors("ner")
    saved = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    for key, value in initial.items():
        assert torch.equal(saved[key], value) == key.startswith("layers.0."), key
    # eval drops the trained n by default; --adapter-drop-inference overrides it and changes the outputs
    assert main(eval_args(workspace, en_language_adapter, out / "adapter", tmp_path / "d.json")) == 0
    assert json.loads((tmp_path / "d.json").read_text())["dropped_layers"] == 1
    assert main(eval_args(workspace, en_language_adapter, out / "adapter", tmp_path / "d0.json", "--adapter-drop-inference", "0")) == 0
    assert json.loads((tmp_path / "d0.json").read_text())["dropped_layers"] == 0
    loaded = load_task_model(str(workspace["model"]), str(out / "adapter"), str(en_language_adapter))
    assert not torch.allclose(logits(loaded, 0), logits(loaded, 1))


def test_train_lang_compacter_with_robust_drop(workspace):
    out = workspace["root"] / "methods-lang-robust"
    assert main(["train-lang", "--model", str(workspace["model"]), "--lang", "sw", "--text",
                 str(workspace["data"] / "sw.txt"), "--output-dir", str(out), *STEPS, "--adapter-kind", "compacter++",
                 "--adapter-drop-mode", "robust", "--adapter-drop-layers", "1"]) == 0
    config = AdapterConfig.from_dict(read_adapter_config(out / "adapter")["config"])
    assert config.kind == "compacter" and config.resolved_bottleneck_dim == 16  # rf 2 by default for language adapters
    meta = read_adapter_config(out / "adapter")["metadata"]
    assert meta["adapter_drop"]["mode"] == "robust" and meta["adapter_drop"]["max_dropped"] == 1


@pytest.mark.parametrize("extra,message", [
    (["--adapter-drop-layers", "1"], "--adapter-drop-layers needs --adapter-drop-mode specialised or robust"),
    (["--adapter-drop-mode", "robust"], "needs --adapter-drop-layers N"),
    (["--adapter-drop-mode", "specialised", "--adapter-drop-layers", "2"], "at least one must keep its adapters"),
    (["--adapter-phm-dim", "4"], "compacter++ only"),
    (["--adapter-kind", "compacter++", "--adapter-phm-dim", "3"], "not divisible by --adapter-phm-dim 3"),
])
def test_train_task_bad_adapter_options(workspace, en_language_adapter, tmp_path, capsys, extra, message):
    assert train_task(workspace, en_language_adapter, tmp_path / "bad", *extra) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1].split("\r")[-1]  # after any progress bars
    assert err.startswith("xling: error: train-task:") and message in err


def test_adapter_kind_compacter_in_the_pfeiffer_place_is_refused_with_the_reason(workspace, en_language_adapter,
                                                                                 tmp_path, capsys):
    # Compacter has its own (Houlsby) placement now (tests/xling/test_placement.py); in the FFN place it is compacter++
    assert train_task(workspace, en_language_adapter, tmp_path / "bad", "--adapter-kind", "compacter",
                      "--adapter-placement", "pfeiffer") == 1
    assert "it is --adapter-kind compacter++" in capsys.readouterr().err


def test_eval_drop_layers_out_of_range(workspace, en_language_adapter, plain_task, tmp_path, capsys):
    assert main(eval_args(workspace, en_language_adapter, plain_task, tmp_path / "x.json", "--adapter-drop-inference", "3")) == 1
    assert "between 0 and 2" in capsys.readouterr().err


def test_train_fusion_writes_weights_report(workspace, en_language_adapter, plain_task, compacter_task, tmp_path, capsys):
    out = tmp_path / "fusion-run"
    base = ["train-fusion", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter", str(en_language_adapter),
            "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out), *STEPS]
    assert main([*base, "--task-adapters", str(plain_task), str(compacter_task / "adapter")]) == 0
    document = json.loads((out / "fusion" / "fusion_weights.json").read_text())
    assert document["adapters"] == ["ner", "ner_compacter"]
    assert len(document["weights"]) == 2 and all(abs(sum(row) - 1) < 1e-5 for row in document["weights"])
    assert (out / "fusion" / "fusion_weights.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*base, "--task-adapters", str(plain_task)]) == 1
    assert "two or more task adapters" in capsys.readouterr().err


def test_train_fusion_round_trips_through_eval(workspace, en_language_adapter, plain_task, compacter_task, tmp_path):
    """xling train-fusion writes the fusion in the adapter format; xling eval (and load_task_model) load it whole."""
    from safetensors.torch import load_file

    from xling.inference import load_task_model

    out = tmp_path / "fusion-run"
    assert main(["train-fusion", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                 str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out),
                 *STEPS, "--task-adapters", str(plain_task), str(compacter_task / "adapter")]) == 0
    assert main(eval_args(workspace, en_language_adapter, out / "fusion", tmp_path / "fused.json")) == 0
    results = json.loads((tmp_path / "fused.json").read_text())
    assert results["main_metric"] in results and results["language"] == "sw"
    loaded = load_task_model(str(workspace["model"]), str(out / "fusion"), str(en_language_adapter))
    assert list(loaded.host.fusions) == ["ner,ner_compacter"]
    saved = load_file(str(out / "fusion" / "adapter_model.safetensors"))
    tensors = loaded.host.fusion_tensors("ner,ner_compacter")
    assert set(tensors) == set(saved) and all(torch.equal(tensors[k], saved[k]) for k in saved)
    before = logits(loaded)
    with torch.no_grad():  # the fusion layers are on the path: changing them changes the outputs
        for layer in loaded.host.fusion_layers("ner,ner_compacter"):
            layer.value.weight.mul_(0.5)
    assert not torch.allclose(before, logits(loaded))


def test_ablate_grid_matches_eval_with_adapters_removed(workspace, en_language_adapter, plain_task, tmp_path, capsys):
    common = ["ablate", "--model", str(workspace["model"]), "--task-adapter", str(plain_task), "--lang-adapter",
              str(en_language_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx")]
    assert main([*common, "--output-dir", str(tmp_path / "spans")]) == 0
    result = json.loads((tmp_path / "spans" / "ablation.json").read_text())
    change = result["change"]
    assert result["metric"] == "f1" and len(change) == 2 and all(len(row) == 2 for row in change)
    assert change[1][0] is None and all(isinstance(change[f][l], float) for f, l in ((0, 0), (0, 1), (1, 1)))
    assert (tmp_path / "spans" / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    # span [0, 1] removed = eval with the adapters of both layers dropped
    for n in (0, 2):
        assert main(eval_args(workspace, en_language_adapter, plain_task, tmp_path / f"e{n}.json", "--adapter-drop-inference", str(n))) == 0
    scores = [json.loads((tmp_path / f"e{n}.json").read_text())["f1"] for n in (0, 2)]
    assert result["baseline"] == pytest.approx(scores[0]) and change[0][1] == pytest.approx(scores[1] - scores[0])
    assert main([*common, "--output-dir", str(tmp_path / "single"), "--per-layer"]) == 0
    single = json.loads((tmp_path / "single" / "ablation.json").read_text())["change"]
    assert single[0][1] is None and single[0][0] == pytest.approx(change[0][0])
    assert main([*common, "--output-dir", str(tmp_path / "bad"), "--max-span", "0"]) == 1
    assert "--max-span must be >= 1" in capsys.readouterr().err


def test_train_full_and_drift(workspace, en_language_adapter, plain_task, tmp_path, capsys):
    full = tmp_path / "full"
    assert main(["train-full", "--task", "ner", "--model", str(workspace["model"]), "--train",
                 str(workspace["data"] / "en.panx"), "--dev", str(workspace["data"] / "sw.panx"), "--output-dir", str(full),
                 *STEPS]) == 0
    assert 0.0 <= json.loads((full / "dev_results.json").read_text())["f1"] <= 100.0
    common = ["drift", "--model", str(workspace["model"]), "--text", str(workspace["data"] / "en.txt"),
              "--max-sentences", "40"]
    adapter = ["--task-adapter", str(plain_task), "--lang-adapter", str(en_language_adapter)]
    assert main([*common, *adapter, "--full-model", str(full / "model"), "--output-dir", str(tmp_path / "drift")]) == 0
    document = json.loads((tmp_path / "drift" / "drift.json").read_text())
    for measure in ("cka", "rsa"):
        report = document["measures"][measure]
        assert report["layers"] == ["embeddings", "layer 1", "layer 2"]
        for name in ("adapter", "full"):
            values = report["similarity"][name]
            assert len(values) == 3 and all(-1e-9 <= v <= 1 + 1e-9 and not math.isnan(v) for v in values)
            assert min(values) < 1 - 1e-6  # both tuned models moved away from the base somewhere
        assert (tmp_path / "drift" / f"drift_{measure}.png").read_bytes()[:4] == b"\x89PNG"
    # the base against itself: similarity 1 in every layer
    assert main([*common, "--full-model", str(workspace["model"]), "--output-dir", str(tmp_path / "same"),
                 "--measures", "cka"]) == 0
    same = json.loads((tmp_path / "same" / "drift.json").read_text())["measures"]["cka"]["similarity"]["full"]
    assert same == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    assert main([*common, "--task-adapter", str(plain_task), "--output-dir", str(tmp_path / "bad")]) == 1
    assert "--task-adapter and --lang-adapter go together" in capsys.readouterr().err
