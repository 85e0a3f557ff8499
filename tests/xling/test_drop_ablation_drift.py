"""AdapterDrop, layer ablation, representation drift and the learning-rate sweep plot, on a tiny XLM-R."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from xling.ablation import layer_ablation, write_ablation_report
from xling.attach import TransformersHost
from xling.drift import collect_hidden_states, representation_drift, write_drift_report
from xling.drop import AdapterDrop, AdapterDropConfig
from studies.xling_lr_sweep import main as lr_sweep_main
from studies.xling_lr_sweep import plot_sweep

IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])
MASK = (IDS != 1).long()
RECIPE = Path(__file__).parents[2] / "recipes" / "xling" / "lr_sweep.sh"


def tiny_host(layers: int = 3, seed: int = 0) -> TransformersHost:
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, layer_norm_eps=1e-5, pad_token_id=1,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    host = TransformersHost(XLMRobertaModel(config))
    host.add_adapter("t", role="task")
    with torch.no_grad():
        for tensor in host.adapter_tensors("t").values():
            tensor.normal_(0, 0.3)
    host.set_active("t")
    return host


def forward(host: TransformersHost) -> torch.Tensor:
    return host.model(IDS, attention_mask=MASK).last_hidden_state


def test_adapterdrop_with_n_zero_equals_no_drop():
    host = tiny_host()
    host.model.train()
    reference = forward(host)
    drop = AdapterDrop(host, AdapterDropConfig(mode="specialised", num_dropped=0))
    assert torch.equal(forward(host), reference)
    drop.remove()


def test_specialised_drop_blocks_gradients_below_the_lowest_active_adapter():
    host = tiny_host()
    model = host.model.train()
    host.train_only(["t"], train_head=False)
    model.embeddings.word_embeddings.weight.requires_grad_(True)  # a trainable tensor below every adapter
    forward(host).pow(2).mean().backward()
    assert model.embeddings.word_embeddings.weight.grad is not None  # without AdapterDrop, gradients reach it
    model.zero_grad(set_to_none=True)
    drop = AdapterDrop(host, AdapterDropConfig(mode="specialised", num_dropped=2))
    out = forward(host)
    with host.adapters_skipped([0, 1]):
        assert torch.allclose(out, forward(host))
    out.pow(2).mean().backward()
    assert model.embeddings.word_embeddings.weight.grad is None
    tensors = host.adapter_tensors("t", prefixed=True)
    params = dict(model.named_parameters())
    for name in tensors:
        layer = int(name.split("encoder.layer.")[1].split(".")[0])
        assert (params[name].grad is not None) == (layer >= 2), name
    # inference uses the same n
    model.eval()
    with torch.no_grad():
        forward(host)
    assert host.skipped_layers == frozenset({0, 1})
    drop.remove()
    assert host.skipped_layers == frozenset()


def test_drop_keeps_the_gradient_of_a_trained_invertible_adapter():
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, layer_norm_eps=1e-5, pad_token_id=1,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    host = TransformersHost(XLMRobertaModel(config).train())
    host.add_adapter("en", role="language")  # with NICE on the embeddings, below every layer
    host.set_active("en")
    drop = AdapterDrop(host, AdapterDropConfig(mode="specialised", num_dropped=2))
    nice = [p for n, p in host.adapter_tensors("en", prefixed=True).items() if "madx_invertible" in n]
    host.train_only(["en"], train_head=False)
    embeddings = host.model.embeddings.word_embeddings.weight.requires_grad_(True)  # a probe below every layer
    forward(host).pow(2).mean().backward()
    assert nice and all(p.grad is not None for p in nice)  # language-adapter training: NICE still learns
    assert embeddings.grad is not None
    host.model.zero_grad(set_to_none=True)
    for p in nice:  # with NICE frozen (task-adapter training), layers 0-1 are cut off again
        p.requires_grad_(False)
    forward(host).pow(2).mean().backward()
    assert embeddings.grad is None
    assert host.model.encoder.layer[2].output.madx_adapters.adapters["en"].up.weight.grad is not None
    drop.remove()


def test_robust_drop_draws_n_per_batch_and_keeps_all_at_inference():
    host = tiny_host(layers=4)
    drop = AdapterDrop(host, AdapterDropConfig(mode="robust", max_dropped=3, seed=1))
    host.model.train()
    seen = set()
    for _ in range(30):
        forward(host)
        seen.add(drop.current)
        assert host.skipped_layers == frozenset(range(drop.current))
    assert seen == {0, 1, 2, 3}
    host.model.eval()
    forward(host)
    assert drop.current == 0
    with pytest.raises(ValueError, match="mode"):
        AdapterDropConfig(mode="sometimes")


def test_layer_ablation_heatmap(tmp_path):
    host = tiny_host()
    host.model.eval()
    target = forward(host).detach()
    calls = []
    hook = host.outputs[1].madx_adapters.adapters["t"].register_forward_hook(lambda *a: calls.append(1))

    def score() -> float:
        with torch.no_grad():
            return -float((forward(host) - target).pow(2).mean())

    result = layer_ablation(host, score, metric="neg_mse")
    assert result.baseline == pytest.approx(0.0)
    change = result.change
    assert all(math.isnan(change[f][l]) for f in range(3) for l in range(f))
    assert all(change[f][l] < 0 for f in range(3) for l in range(f, 3))
    with host.adapters_skipped([1]):
        assert change[1][1] == pytest.approx(score())
        calls.clear()
        score()
        assert not calls  # removed adapters are skipped (pruning saves their cost)
    hook.remove()
    path = write_ablation_report(result, tmp_path)
    assert path.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "ablation.json").is_file()
    single = layer_ablation(host, score, spans=False)
    assert sum(not math.isnan(v) for row in single.change for v in row) == 3


def test_representation_drift_report(tmp_path):
    base_host = tiny_host()
    model = base_host.model.eval()
    batches = [{"input_ids": IDS, "attention_mask": MASK}]
    with torch.no_grad():
        base_host.set_active(None)
        base_states = collect_hidden_states(model, batches)
        adapter_states = collect_hidden_states(model, batches, setup="t")
        full = tiny_host(seed=0).model.eval()
        for param in full.parameters():
            param.add_(torch.randn_like(param) * 0.5)
        full_states = collect_hidden_states(full, batches)
    assert len(base_states) == 4 and base_states[1].shape == (int(MASK.sum()), 32)
    report = representation_drift(base_states, {"adapter": adapter_states, "full": full_states})
    assert report["similarity"]["adapter"][0] == pytest.approx(1.0)  # no invertible adapter: embeddings unchanged
    assert report["similarity"]["adapter"][1] < 1.0 - 1e-6
    write_drift_report(report, tmp_path)
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_sweep_plot_and_recipe(tmp_path):
    records = [{"mode": mode, "learning_rate": lr, "seed": seed, "f1": 50 + 10 * seed + (lr * 1000 if mode == "full" else 1),
                "main_metric": "f1"} for mode in ("adapter", "full") for lr in (1e-4, 1e-3) for seed in (1, 2)]
    series = plot_sweep(records, tmp_path / "lr.png")
    assert series["adapter"]["learning_rates"] == [1e-4, 1e-3]
    assert series["full"]["f1"] == pytest.approx([65.1, 66.0])
    assert series["full"]["f1_per_seed"] == [pytest.approx([60.1, 70.1]), pytest.approx([61.0, 71.0])]
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no 'f1'"):
        plot_sweep([{"mode": "full", "learning_rate": 1.0, "main_metric": "f1"}], tmp_path / "x.png")
    subprocess.run(["bash", "-n", str(RECIPE)], check=True)
    missing = subprocess.run(["bash", str(RECIPE)], env={"PATH": "/usr/bin:/bin", "MODEL": str(tmp_path / "nope")},
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_lr_sweep_from_comparison_results(tmp_path):
    """The bare_task and full rows of comparison results made at two pairs of rates become one sweep per mode."""
    for folder, alr_gain in (("low", 0.0), ("high", 5.0)):
        for row, lang, seed in [(r, l, s) for r in ("bare_task", "full", "majority") for l in ("en", "tr") for s in (1, 2)]:
            path = tmp_path / folder / "pos" / row / "nall" / f"{lang}-seed{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            value = 60 + seed + (alr_gain if row == "bare_task" else 1.0) + (10 if lang == "en" else 0)
            path.write_text(json.dumps({"task": "pos", "row": row, "language": lang, "seed": seed, "train_size": "all",
                                        "accuracy": value, "main_metric": "accuracy"}))
    png = tmp_path / "lr.png"
    assert lr_sweep_main(["from-comparison", f"{tmp_path / 'low'}=1e-4,1e-5", f"{tmp_path / 'high'}=1e-3,5e-5",
                          "--language", "tr", "--output", str(png)]) == 0
    series = json.loads(png.with_suffix(".json").read_text())
    assert series["adapter"]["learning_rates"] == [1e-4, 1e-3] and series["full"]["learning_rates"] == [1e-5, 5e-5]
    assert series["adapter"]["accuracy"] == pytest.approx([61.5, 66.5])
    assert series["adapter"]["accuracy_std"] == pytest.approx([0.5, 0.5])
    assert "| adapter | 0.0001 | 61.5 ± 0.5 | 61.0, 62.0 |" in png.with_suffix(".md").read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert lr_sweep_main(["from-comparison", f"{tmp_path / 'low'}=1e-4,1e-5", "--language", "de",
                          "--output", str(png)]) == 1


def test_old_spellings_of_the_skip_switch_are_gone():
    """One name per concept (issue 14): the switch is "skip"; the removed_* spellings left with 0.1.0 (issue 25)."""
    host = TransformersHost(XLMRobertaModel(XLMRobertaConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                                                     num_attention_heads=2, intermediate_size=32)))
    assert not hasattr(host, "set_removed_layers") and not hasattr(host, "adapters_removed")
    host.set_skipped_layers([1])
    assert host.skipped_layers == frozenset({1})
