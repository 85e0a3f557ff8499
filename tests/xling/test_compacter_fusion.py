"""Compacter++ and AdapterFusion on a tiny XLM-R (hidden 32)."""

from __future__ import annotations

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaModel

from adapter_core import Fuse, Stack, compacter_model_parameter_count, compacter_plus_plus_2021, summarize
from xling.adapter_io import load_madx_adapter, save_madx_adapter
from xling.attach import TransformersHost
from xling.fusion import fusion_report, fusion_weight_matrix, load_fusion, save_fusion, train_fusion
from xling.train import TrainOptions

IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])
MASK = (IDS != 1).long()


def tiny_config(**overrides) -> XLMRobertaConfig:
    settings = dict(vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                    max_position_embeddings=40, layer_norm_eps=1e-5, pad_token_id=1, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    settings.update(overrides)
    return XLMRobertaConfig(**settings)


def perturb(tensors: dict, scale: float = 0.3) -> None:
    with torch.no_grad():
        for tensor in tensors.values():
            tensor.normal_(0, scale)


def xlmr_parameter_count(vocab: int, hidden: int, layers: int, intermediate: int, positions: int, types: int) -> int:
    """XLMRobertaModel's parameters (with pooler), counted from its config."""
    embeddings = (vocab + positions + types) * hidden + 2 * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * (hidden * intermediate) + intermediate + hidden + 4 * hidden
    return embeddings + layers * layer + hidden * hidden + hidden


def test_compacter_plus_plus_shares_a_and_counts_match():
    torch.manual_seed(0)
    model = XLMRobertaModel(tiny_config()).eval()
    host = TransformersHost(model)
    host.add_adapter("c", role="task", config=compacter_plus_plus_2021(32, reduction_factor=4))
    modules = [block.madx_adapters.adapters["c"] for block in host.outputs]
    assert all(m.rule is modules[0].rule for m in modules)
    host.train_only(["c"], train_head=False)
    summary = summarize(model)
    assert summary.trainable == compacter_model_parameter_count(32, 8, num_adapters=3, phm_dim=4)
    assert summary.total == xlmr_parameter_count(64, 32, 3, 64, 40, types=2) + summary.trainable
    before = model(IDS, attention_mask=MASK).last_hidden_state
    host.set_active("c")
    assert not torch.allclose(model(IDS, attention_mask=MASK).last_hidden_state, before)


def test_compacter_save_load_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = XLMRobertaModel(tiny_config()).eval()
    host = TransformersHost(model)
    host.add_adapter("c", role="task", config=compacter_plus_plus_2021(32, reduction_factor=4))
    perturb(host.adapter_tensors("c"))
    host.set_active("c")
    expected = model(IDS, attention_mask=MASK).last_hidden_state
    assert sum(k.endswith("phm_rule.weight") for k in host.adapter_tensors("c")) == 1
    save_madx_adapter(host, "c", tmp_path / "c")
    fresh_host = TransformersHost(model.__class__(model.config).eval())
    fresh_host.model.load_state_dict({k: v for k, v in model.state_dict().items() if "madx_" not in k}, strict=False)
    name = load_madx_adapter(fresh_host, tmp_path / "c")
    fresh_host.set_active(name)
    assert torch.allclose(fresh_host.model(IDS, attention_mask=MASK).last_hidden_state, expected, atol=1e-6)


def test_xlmr_base_trainable_fraction():
    """XLM-R base (hidden 768, 12 layers, vocab 250002): Compacter++ trains ~0.01% of the model.

    That is below the paper's 0.05-0.2% (counted on T5-base, with layer norms
    trained; see tests/adapter_core/test_compacter.py), because 69% of
    XLM-R's 278M parameters are its 250k-token embedding matrix.
    """
    total = xlmr_parameter_count(250002, 768, 12, 3072, 514, types=1)
    assert abs(total - 278.04e6) < 0.01e6
    plus_plus = compacter_model_parameter_count(768, 48, num_adapters=12, phm_dim=4)  # rf 16, as MAD-X task adapters
    layer_norms = (1 + 2 * 12) * 2 * 768
    fraction = 100 * plus_plus / total
    assert 0.010 < fraction < 0.011
    assert 0.02 < 100 * (plus_plus + layer_norms) / total < 0.03
    body = total - 250002 * 768  # without the word embeddings
    assert 0.034 < 100 * plus_plus / body < 0.036


def _two_task_adapters(host: TransformersHost) -> None:
    for name in ("a", "b"):
        host.add_adapter(name, role="task")
        perturb(host.adapter_tensors(name))


def test_fusion_trains_only_fusion_and_head_and_exposes_weights(tmp_path):
    torch.manual_seed(0)
    model = XLMRobertaForTokenClassification(tiny_config(num_labels=3))
    host = TransformersHost(model)
    _two_task_adapters(host)
    fuse = host.add_fusion(Fuse("a", "b"))
    host.set_active(fuse)
    trainable = host.train_only([fuse.name], train_head=True)
    assert trainable and all("madx_fusion" in n or n.startswith("classifier") for n in trainable)
    model(IDS, attention_mask=MASK, labels=torch.zeros_like(IDS)).loss.backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == (name in trainable), name
    model.eval()
    with torch.no_grad():
        fused = model(IDS, attention_mask=MASK).logits
        singles = []
        for name in ("a", "b"):
            host.set_active(name)
            singles.append(model(IDS, attention_mask=MASK).logits)
    assert not any(torch.allclose(fused, s, atol=1e-4) for s in singles)
    matrix = fusion_weight_matrix(host, fuse.name)
    assert len(matrix) == 3 and all(len(r) == 2 and abs(sum(r) - 1) < 1e-5 for r in matrix)
    document = fusion_report(host, fuse.name, tmp_path / "report")
    assert document["adapters"] == ["a", "b"]
    assert (tmp_path / "report" / "fusion_weights.png").read_bytes()[:4] == b"\x89PNG"
    # save and load: same outputs
    host.set_active(fuse)
    save_madx_adapter(host, "a", tmp_path / "a")
    save_madx_adapter(host, "b", tmp_path / "b")
    save_fusion(host, fuse.name, tmp_path / "fusion")
    other = XLMRobertaForTokenClassification(tiny_config(num_labels=3)).eval()
    other.load_state_dict({k: v for k, v in model.state_dict().items() if "madx_" not in k}, strict=False)
    other_host = TransformersHost(other)
    for name in ("a", "b"):
        load_madx_adapter(other_host, tmp_path / name)
    other_host.set_active(load_fusion(other_host, tmp_path / "fusion"))
    with torch.no_grad():
        assert torch.allclose(other(IDS, attention_mask=MASK).logits, fused, atol=1e-5)


def test_fusion_under_a_language_adapter_and_errors():
    model = XLMRobertaModel(tiny_config()).eval()
    host = TransformersHost(model)
    host.add_adapter("en", invertible=False)
    _two_task_adapters(host)
    with pytest.raises(KeyError, match="add_fusion"):
        host.set_active(Stack("en", Fuse("a", "b")))
    with pytest.raises(KeyError, match="unknown adapter"):
        host.add_fusion(Fuse("a", "zz"))
    host.add_fusion(Fuse("a", "b"))
    host.set_active(Stack("en", Fuse("a", "b")))
    model(IDS, attention_mask=MASK)
    assert all(layer.last_weights is not None for layer in host.fusion_layers("a,b"))


def test_train_fusion_end_to_end(workspace, tmp_path):
    """Stage 2 with the Trainer: fused adapters stay frozen, fusion weights and head are written."""
    from transformers import XLMRobertaForTokenClassification as Model

    model = Model.from_pretrained(workspace["model"], num_labels=3)
    host = TransformersHost(model)
    _two_task_adapters(host)
    saved = {}
    for name in ("a", "b"):
        save_madx_adapter(host, name, tmp_path / name)
        saved[name] = {k: v.clone() for k, v in host.adapter_tensors(name).items()}
    out = train_fusion(str(workspace["model"]), "ner", [str(tmp_path / "a"), str(tmp_path / "b")],
                       str(workspace["data"] / "en.panx"),
                       TrainOptions(output_dir=str(tmp_path / "run"), max_steps=2, batch_size=8, save_steps=10,
                                    use_cpu=True, learning_rate=1e-2))
    for file in ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "fusion_weights.png"):
        assert (out / file).is_file(), file
    # checkpoints hold only what trains (issue 26): the fused adapters are frozen, so none of theirs is there,
    # while the fusion layers are
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-2" / "trainable.safetensors"
    from safetensors.torch import load_file

    state = load_file(str(checkpoint))
    assert any("fusion" in k for k in state)
    assert not [k for k in state if "madx_adapters.adapters.a." in k or "madx_adapters.adapters.b." in k]
