"""MAD-X adapters on tiny XLM-R and mBERT: placement, training, stacking, save/load, AdapterHub's pitfalls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForMaskedLM, XLMRobertaForMaskedLM, XLMRobertaForTokenClassification, XLMRobertaModel
from transformers.activations import gelu

from adapter_core import Stack, active_adapters, madx_invertible
from xling.adapter_io import load_madx_adapter, save_madx_adapter
from xling.attach import TransformersHost
from xling.train import TrainOptions, train_language_adapter
from xling.trainable_checkpoints import TRAINABLE_WEIGHTS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "adapterhub"
BEHAVIOUR = json.loads((FIXTURES / "adapterhub_behaviour.json").read_text())
IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])
MASK = (IDS != 1).long()


def perturb(host: TransformersHost, name: str, scale: float = 0.3) -> None:
    """Larger adapter weights than the N(0, 0.02) init, so that effects are visible."""
    with torch.no_grad():
        for tensor in host.adapter_tensors(name).values():
            tensor.normal_(0, scale)


@pytest.fixture
def mlm(workspace):
    return XLMRobertaForMaskedLM.from_pretrained(workspace["model"]).eval()


def test_language_adapter_defaults_follow_the_paper(mlm):
    host = TransformersHost(mlm)
    info = host.add_adapter("sw")
    task = host.add_adapter("ner", role="task")
    # AdapterHub's SeqBnInvConfig defaults to rf 16; MAD-X language adapters use 2, task adapters 16.
    assert BEHAVIOUR["seq_bn_inv_default_reduction_factor"] == 16
    assert info.config.resolved_bottleneck_dim == 16 and task.config.resolved_bottleneck_dim == 2
    assert info.invertible.kind == "nice" and info.invertible.resolved_bottleneck_dim == 8
    assert task.invertible is None
    down = mlm.roberta.encoder.layer[0].output.madx_adapters.adapters["sw"].down
    assert torch.all(down.bias == 0) and 0.01 < down.weight.std() < 0.03


def test_training_changes_only_adapter_and_invertible_weights(workspace, tmp_path):
    before = load_file(str(workspace["model"] / "model.safetensors"))
    out = train_language_adapter(str(workspace["model"]), "sw", [str(workspace["data"] / "sw.txt")],
                                 TrainOptions(output_dir=str(tmp_path), max_steps=3, batch_size=8, save_steps=10,
                                              use_cpu=True, learning_rate=1e-2))
    # the Trainer's last checkpoint holds what trained: adapter tensors only, no base weight (MLM head included)
    checkpoint = load_file(str(tmp_path / "checkpoints" / "checkpoint-3" / TRAINABLE_WEIGHTS))
    assert checkpoint and all("madx_" in k for k in checkpoint) and not set(checkpoint) & set(before)
    model = XLMRobertaForMaskedLM.from_pretrained(workspace["model"])
    host = TransformersHost(model)
    name = load_madx_adapter(host, out)
    trained = host.adapter_tensors(name)
    assert any(k.startswith("invertible.") for k in trained)
    # and training moved every adapter tensor away from the N(0, 0.02)/zero init
    init = TransformersHost(XLMRobertaForMaskedLM.from_pretrained(workspace["model"]))
    torch.manual_seed(0)
    init.add_adapter("sw")
    assert all(not torch.equal(v, init.adapter_tensors("sw")[k]) for k, v in trained.items() if k.endswith("bias"))


def test_mlm_head_is_frozen_while_the_language_adapter_trains(mlm):
    assert BEHAVIOUR["mlm_head_trainable_after_train_adapter"]  # AdapterHub leaves lm_head.* trainable
    host = TransformersHost(mlm)
    host.add_adapter("sw")
    trainable = host.train_only(["sw"], train_head=False)
    assert trainable and all("madx_" in n for n in trainable)
    assert not any(p.requires_grad for n, p in mlm.named_parameters() if n.startswith("lm_head"))
    assert any(n.startswith("roberta.embeddings.madx_invertible") for n in trainable)


def test_inverse_is_applied_before_the_tied_decoder(mlm):
    assert BEHAVIOUR["mlm_logits_equal_without_inverse"] and not BEHAVIOUR["mlm_logits_equal_with_inverse"]
    host = TransformersHost(mlm)
    host.add_adapter("sw")
    perturb(host, "sw")
    host.set_active("sw")
    with torch.no_grad():
        logits = mlm(input_ids=IDS, attention_mask=MASK).logits
        hidden = mlm.roberta(input_ids=IDS, attention_mask=MASK).last_hidden_state
        head = mlm.lm_head
        nice = mlm.roberta.embeddings.madx_invertible.adapters["sw"]
        # the layer norm without its module (whose hook applies the inverse)
        raw = torch.nn.functional.layer_norm(gelu(head.dense(hidden)), (32,), head.layer_norm.weight,
                                             head.layer_norm.bias, head.layer_norm.eps)
        expected = head.decoder(nice.inverse(raw))
        assert torch.allclose(logits, expected, atol=1e-5)
        assert not torch.allclose(logits, head.decoder(raw), atol=1e-3)


def test_glow_invertible_adapter_works(mlm):
    assert BEHAVIOUR["glow_error"] and "size of tensor" in BEHAVIOUR["glow_error"]
    host = TransformersHost(mlm)
    host.add_adapter("sw", invertible=madx_invertible(32, kind="glow"))
    perturb(host, "sw", 0.1)
    host.set_active("sw")
    glow = mlm.roberta.embeddings.madx_invertible.adapters["sw"]
    x = torch.randn(2, 5, 32)
    assert torch.allclose(glow.inverse(glow(x)), x, atol=1e-5)
    with torch.no_grad():
        assert torch.isfinite(mlm(input_ids=IDS, attention_mask=MASK).logits).all()


def test_config_is_not_mutated(workspace):
    assert BEHAVIOUR["config_keys_added_by_adapter_model"] == ["prediction_heads"]
    model = XLMRobertaForTokenClassification.from_pretrained(workspace["model"], num_labels=3)
    before = model.config.to_dict()
    host = TransformersHost(model)
    host.add_adapter("sw")
    host.add_adapter("ner", role="task")
    host.set_active(Stack("sw", "ner"))
    model(input_ids=IDS, attention_mask=MASK)
    assert model.config.to_dict() == before


def test_stacking_and_swapping_the_language_adapter(mlm):
    host = TransformersHost(mlm.roberta)
    for name, role in (("en", "language"), ("sw", "language"), ("ner", "task")):
        host.add_adapter(name, role=role)
        perturb(host, name)

    def run(setup):
        with torch.no_grad(), active_adapters(xling=setup):
            return mlm.roberta(input_ids=IDS, attention_mask=MASK).last_hidden_state

    none, en, en_ner, sw_ner = run(None), run("en"), run(Stack("en", "ner")), run(Stack("sw", "ner"))
    assert not torch.allclose(none, en) and not torch.allclose(en, en_ner) and not torch.allclose(en_ner, sw_ner)
    # a padded sample gives the same result alone
    with torch.no_grad(), active_adapters(xling=Stack("sw", "ner")):
        alone = mlm.roberta(input_ids=IDS[1:, :5], attention_mask=MASK[1:, :5]).last_hidden_state
    assert torch.allclose(alone, sw_ner[1:, :5], atol=1e-5)


def test_skip_last_layer_madx2(mlm):
    host = TransformersHost(mlm)
    info = host.add_adapter("sw", skip_last_layer=True)
    assert info.layers == [0] and "sw" not in mlm.roberta.encoder.layer[1].output.madx_adapters.adapters


def test_save_and_load_give_identical_outputs(workspace, tmp_path):
    a = XLMRobertaForMaskedLM.from_pretrained(workspace["model"]).eval()
    host = TransformersHost(a)
    host.add_adapter("sw", skip_last_layer=True)
    perturb(host, "sw")
    host.set_active("sw")
    save_madx_adapter(host, "sw", tmp_path / "sw")
    b = XLMRobertaForMaskedLM.from_pretrained(workspace["model"]).eval()
    other = TransformersHost(b)
    other.set_active(load_madx_adapter(other, tmp_path / "sw"))
    with torch.no_grad():
        assert torch.equal(a(input_ids=IDS).logits, b(input_ids=IDS).logits)
    assert other.adapters["sw"].layers == [0]


@pytest.mark.parametrize("setup", ["de_seq_bn", "sw_inv", "stack_sw_inv_ner", "stack_de_seq_bn_ner"])
def test_adapterhub_adapters_give_adapterhubs_hidden_states(setup):
    expected = load_file(str(FIXTURES / "expected.safetensors"))
    model = XLMRobertaModel.from_pretrained(FIXTURES / "base").eval()
    host = TransformersHost(model)
    for name in ("de_seq_bn", "sw_inv", "ner"):
        assert load_madx_adapter(host, FIXTURES / name) == name
    host.set_active(Stack(*setup.split("_", 1)[1].rsplit("_", 1)) if setup.startswith("stack") else setup)
    with torch.no_grad():
        out = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"], output_hidden_states=True)
    assert torch.allclose(out.last_hidden_state, expected[f"{setup}.last_hidden_state"], atol=1e-5)
    assert torch.allclose(out.hidden_states[0], expected[f"{setup}.embedding_output"], atol=1e-5)
    assert not torch.allclose(out.last_hidden_state, expected["none.last_hidden_state"], atol=1e-2)


def test_mbert_works():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=32)
    model = BertForMaskedLM(config).eval()
    host = TransformersHost(model)
    host.add_adapter("sw")
    host.add_adapter("ner", role="task")
    perturb(host, "sw")
    perturb(host, "ner")
    ids = torch.tensor([[2, 5, 9, 11, 3]])
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        host.set_active("sw")
        lang = model(input_ids=ids).logits
        host.set_active(Stack("sw", "ner"))
        stacked = model(input_ids=ids).logits
        hidden = model.bert(input_ids=ids).last_hidden_state
        nice = model.bert.embeddings.madx_invertible.adapters["sw"]
        host.set_active(None)  # the transform's own hook would apply the inverse: compute it without
        raw = model.cls.predictions.transform(hidden)
    assert torch.allclose(stacked, model.cls.predictions.decoder(nice.inverse(raw)), atol=1e-5)
    assert not torch.allclose(plain, lang) and not torch.allclose(lang, stacked)
    host.set_active("sw")
    host.train_only(["sw"], train_head=False)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all("madx_" in n and ".sw." in n for n in grads)
