"""K-Adapter (Wang et al. 2021) beside a frozen tiny encoder: what it reads, what trains, its size, save/load, CLI."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import pytest
import torch

from adapter_core import AdapterFormatError, FingerprintMismatchError
from xling.cli import main
from xling.k_adapter import (KAdapter, KAdapterConfig, KAdapterTaskModel, k_adapter_2021, k_adapter_parameter_count,
                             load_k_adapter_weights, read_k_adapter, save_k_adapter)

TAGS = {"the": "DET", "a": "DET", "cat": "NOUN", "mat": "NOUN", "sat": "VERB", "on": "ADP", ".": "."}


def write_pos(path: Path, lang: str, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    blocks = ["\n".join(f"{lang}:{w}\t{TAGS[w]}" for w in rng.choices(list(TAGS), k=rng.randint(3, 6))) for _ in range(n)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def small_config(**changes) -> KAdapterConfig:
    values = dict(hidden_dim=32, read_layers=(0, 1), adapter_dim=16, num_heads=4, intermediate_dim=24, dropout=0.0)
    return KAdapterConfig(**{**values, **changes})


def task_model(workspace, config: KAdapterConfig, num_labels: int = 5) -> KAdapterTaskModel:
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    encoder = AutoModelForTokenClassification.from_pretrained(str(workspace["model"]), num_labels=num_labels).base_model
    torch.manual_seed(1)
    return KAdapterTaskModel(encoder, config, num_labels, head_dropout=0.0)


def batch(workspace) -> dict:
    encoded = workspace["tokenizer"](["the cat sat on a mat", "john lives in london and works"], padding=True,
                                     return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def test_parameter_count_is_the_formula():
    config = small_config(transformer_layers=3)
    h, a, f = 32, 16, 24
    per_transformer_layer = 4 * (a * a + a) + 2 * a + a * f + f + f * a + a + 2 * a  # q k v o, 2 LayerNorms, FFN
    per_adapter_layer = (h * a + a) + (a * h + h) + 3 * per_transformer_layer
    assert k_adapter_parameter_count(config) == 2 * per_adapter_layer
    assert sum(p.numel() for p in KAdapter(config).parameters()) == 2 * per_adapter_layer
    # Wang et al. (2021) scaled to multilingual-e5-small (hidden 384, 12 layers): width 288 = 768 x 384/1024
    paper = k_adapter_2021(384, 12)
    assert (paper.read_layers, paper.adapter_dim, paper.num_heads, paper.intermediate_dim) == ((0, 6, 11), 288, 12, 1152)
    assert k_adapter_parameter_count(paper) == 6_660_000


def test_trainable_parameters_are_the_k_adapter_and_the_head(workspace):
    config = small_config()
    model = task_model(workspace, config, num_labels=5)
    assert model.trainable_parameter_count() == k_adapter_parameter_count(config) + (2 * 32 * 5 + 5)


def test_base_is_frozen_and_unchanged_and_only_k_adapter_and_head_get_gradients(workspace):
    model = task_model(workspace, small_config())
    inputs = batch(workspace)
    model.encoder.eval()
    before_state = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    with torch.no_grad():
        before = model.encoder(**inputs).last_hidden_state.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    labels = torch.randint(0, 5, inputs["input_ids"].shape)
    for _ in range(2):
        model.train()
        optimizer.zero_grad()
        model(**inputs, labels=labels).loss.backward()
        optimizer.step()
    assert all(p.grad is None and not p.requires_grad for p in model.encoder.parameters())
    trained = dict(model.k_adapter.named_parameters()) | {f"classifier.{k}": v for k, v in model.classifier.named_parameters()}
    assert all(p.grad is not None for p in trained.values())
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for name, p in trained.items() if name.endswith("up.weight") or name.startswith("classifier."))
    model.encoder.eval()
    with torch.no_grad():
        assert torch.equal(model.encoder(**inputs).last_hidden_state, before)
    assert all(torch.equal(before_state[k], v) for k, v in model.encoder.state_dict().items())


def test_k_adapter_reads_its_chosen_hidden_states_only():
    torch.manual_seed(0)
    config = small_config(read_layers=(0, 2), init_range=0.5)
    adapter = KAdapter(config).eval()
    states = [torch.randn(2, 5, 32) for _ in range(4)]
    mask = torch.ones(2, 5)
    out = adapter(states, mask)
    for index, should_change in ((1, False), (3, False), (0, True), (2, True)):
        changed = list(states)
        changed[index] = changed[index] + 1.0
        assert torch.allclose(adapter(changed, mask), out) != should_change, index


@contextlib.contextmanager
def layer_output_shifted(model: KAdapterTaskModel, index: int):
    """Encoder layer ``index`` (0-based: hidden state index + 1) outputs something else: its FFN bias moved
    (by a non-constant vector, which the LayerNorm after it does not take out)."""
    bias = model.encoder.encoder.layer[index].output.dense.bias
    shift = torch.linspace(-1.0, 1.0, bias.numel())
    with torch.no_grad():
        bias += shift
    try:
        yield
    finally:
        with torch.no_grad():
            bias -= shift


def test_k_adapter_reads_the_encoder_layers_it_names(workspace):
    # the tiny encoder has 2 layers: hidden states 0 (embeddings), 1 and 2 (last); the K-adapter reads 0 and 1
    model = task_model(workspace, small_config(read_layers=(0, 1), init_range=0.5)).eval()
    inputs = batch(workspace)
    with torch.no_grad():
        features = model.head_input(**inputs)
        with layer_output_shifted(model, 1):  # hidden state 2: not read, but it is the last hidden state
            last_changed = model.head_input(**inputs)
        with layer_output_shifted(model, 0):  # hidden state 1: read
            read_changed = model.head_input(**inputs)
        assert torch.allclose(model.head_input(**inputs), features, atol=1e-6)
    assert features.shape[-1] == 2 * 32
    assert torch.equal(last_changed[..., 32:], features[..., 32:])  # the K-adapter's half
    assert not torch.allclose(last_changed[..., :32], features[..., :32])  # the last hidden state's half
    assert not torch.allclose(read_changed[..., 32:], features[..., 32:])


def test_padding_does_not_change_the_real_tokens(workspace):
    model = task_model(workspace, small_config(init_range=0.5)).eval()
    ids = workspace["tokenizer"](["the cat sat on a mat"], return_tensors="pt")["input_ids"]
    padded = torch.cat([ids, torch.full((1, 4), workspace["tokenizer"].pad_token_id)], dim=1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros(1, 4, dtype=ids.dtype)], dim=1)
    with torch.no_grad():
        alone = model(input_ids=ids).logits
        with_padding = model(input_ids=padded, attention_mask=mask).logits[:, :ids.shape[1]]
    assert torch.allclose(alone, with_padding, atol=1e-5)


def test_save_load_round_trip_gives_equal_outputs(workspace, tmp_path):
    config = small_config(init_range=0.3)
    model = task_model(workspace, config)
    with torch.no_grad():
        model.classifier.weight.normal_()
    save_k_adapter(model, tmp_path / "ka", "sha256:base", "pos", metadata={"task": "pos"})
    document = json.loads((tmp_path / "ka" / "adapter_config.json").read_text())
    assert document["config"]["kind"] == "k_adapter" and document["num_parameters"] == k_adapter_parameter_count(config)
    saved = read_k_adapter(tmp_path / "ka", "sha256:base")
    assert saved.config == config
    torch.manual_seed(5)
    fresh = task_model(workspace, saved.config)
    load_k_adapter_weights(fresh, saved, tmp_path / "ka")
    inputs = batch(workspace)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(**inputs).logits, model.eval()(**inputs).logits)
    with pytest.raises(FingerprintMismatchError):
        read_k_adapter(tmp_path / "ka", "sha256:other-base")
    (tmp_path / "ka" / "adapter_config.json").write_text(json.dumps({**document, "config": {"kind": "bottleneck"}}))
    with pytest.raises(AdapterFormatError, match="not a K-adapter config"):
        read_k_adapter(tmp_path / "ka", "sha256:base")


def test_cli_train_and_eval(workspace, en_language_adapter, tmp_path, tree_digest, capsys):
    train, test = write_pos(tmp_path / "train.en.pos", "en", 24, 1), write_pos(tmp_path / "test.sw.pos", "sw", 8, 2)
    base_before, lang_before = tree_digest(workspace["model"]), tree_digest(en_language_adapter)
    out = tmp_path / "ka"
    assert main(["train-task", "--task", "pos", "--adapter-kind", "k-adapter", "--k-adapter-layers", "0", "1",
                 "--k-adapter-dim", "24", "--model", str(workspace["model"]), "--lang-adapter", str(en_language_adapter),
                 "--train", str(train), "--output-dir", str(out), "--max-steps", "3", "--batch-size", "8", "--cpu",
                 "--save-steps", "100", "--learning-rate", "1e-3", "--max-length", "32"]) == 0
    info = json.loads((out / "adapter" / "task.json").read_text())
    config = KAdapterConfig.from_dict(json.loads((out / "adapter" / "adapter_config.json").read_text())["config"])
    assert info["adapter_kind"] == "k-adapter" and info["source_language"] == "en"
    assert (config.read_layers, config.adapter_dim, config.intermediate_dim) == ((0, 1), 24, 96)
    assert info["trainable_parameters"] == k_adapter_parameter_count(config) + 2 * 32 * len(info["labels"]) + len(info["labels"])
    assert tree_digest(workspace["model"]) == base_before and tree_digest(en_language_adapter) == lang_before
    result = tmp_path / "sw.json"
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--data", str(test), "--output", str(result)]) == 0
    scores = json.loads(result.read_text())
    assert scores["main_metric"] == "accuracy" and 0 <= scores["accuracy"] <= 100 and scores["num_tokens"] > 0

    from studies.xling_comparison import eval_adapter
    from studies.xling_comparison_report import write_report

    records = eval_adapter(str(workspace["model"]), str(out / "adapter"), {"en": str(en_language_adapter),
                           "sw": str(en_language_adapter)}, {"en": str(train), "sw": str(test)}, "en",
                           str(tmp_path / "results"), "all", max_length=32)
    assert sorted(r["row"] for r in records) == ["k_adapter", "k_adapter", "k_adapter_madx"]
    sw = {r["row"]: r["accuracy"] for r in records if r["language"] == "sw"}
    assert sw["k_adapter"] == pytest.approx(scores["accuracy"])  # same adapters as xling eval
    assert sw["k_adapter_madx"] == sw["k_adapter"]  # the "target" adapter is the English one again
    summary = write_report(str(tmp_path / "results"), str(tmp_path / "report"), "en")
    assert set(summary["pos"]["sizes"]["all"]["rows"]) == {"k_adapter", "k_adapter_madx"}
    assert "K-Adapter, source language adapter" in (tmp_path / "report" / "report.md").read_text()
    assert main(["ablate", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--data", str(test), "--output-dir", str(tmp_path / "abl")]) == 1
    assert "a K-adapter sits beside the encoder" in capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--task", "pos", "--adapter-reduction-factor", "4"], "--adapter-reduction-factor: not for --adapter-kind k-adapter"),
    (["--task", "pos", "--adapter-drop-layers", "1", "--skip-last-layer"], "--adapter-drop-layers, --skip-last-layer: not for"),
    (["--task", "pos", "--k-adapter-layers", "0", "3"], "read layers [3] out of range"),
    (["--task", "qa"], "task 'qa' is not token-level"),
])
def test_bad_k_adapter_flags_end_in_one_line(workspace, en_language_adapter, tmp_path, capsys, flags, message):
    train = write_pos(tmp_path / "train.en.pos", "en", 16, 1)
    rc = main(["train-task", "--adapter-kind", "k-adapter", *flags, "--model", str(workspace["model"]), "--lang-adapter",
               str(en_language_adapter), "--train", str(train), "--output-dir", str(tmp_path / "out"), "--max-steps", "1",
               "--batch-size", "8", "--cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and message in err, err


def test_k_adapter_flags_belong_to_the_k_adapter_kind(workspace, en_language_adapter, tmp_path, capsys):
    text = workspace["data"] / "en.txt"
    assert main(["train-lang", "--adapter-kind", "k-adapter", "--model", str(workspace["model"]), "--lang", "en",
                 "--text", str(text), "--output-dir", str(tmp_path / "lang")]) == 1
    assert "train it with train-task" in capsys.readouterr().err
    train = write_pos(tmp_path / "train.en.pos", "en", 16, 1)
    assert main(["train-task", "--task", "pos", "--k-adapter-dim", "8", "--model", str(workspace["model"]),
                 "--lang-adapter", str(en_language_adapter), "--train", str(train), "--output-dir",
                 str(tmp_path / "out")]) == 1
    assert "are for --adapter-kind k-adapter" in capsys.readouterr().err
