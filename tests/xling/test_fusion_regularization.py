"""AdapterFusion's value regularisation (Pfeiffer et al. 2021): the fusion training loss adds
λ · Σ_l ||I − V_l||²_F, whose gradient with respect to V_l is 2λ (V_l − I)."""

from __future__ import annotations

import pytest
import torch
from transformers import TrainingArguments, XLMRobertaConfig, XLMRobertaForTokenClassification

from adapter_core import Fuse
from xling import fusion, train
from xling.adapter_io import save_madx_adapter
from xling.attach import TransformersHost
from xling.train import HeadTrainer, TrainOptions


def fused_host() -> tuple[TransformersHost, Fuse]:
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=1, num_labels=3,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    host = TransformersHost(XLMRobertaForTokenClassification(config))
    for name in ("a", "b"):
        host.add_adapter(name, role="task")
        with torch.no_grad():
            for tensor in host.adapter_tensors(name).values():
                tensor.normal_(0, 0.3)
    fuse = host.add_fusion(Fuse("a", "b"))
    host.set_active(fuse)
    host.train_only([fuse.name], train_head=True)
    with torch.no_grad():  # V away from its identity start, so that the penalty has a gradient
        for layer in host.fusion_layers(fuse.name):
            layer.value.weight.add_(torch.randn_like(layer.value.weight) * 0.1)
    return host, fuse


def value_gradients(host, fuse, regulariser, tmp_path) -> list[torch.Tensor]:
    arguments = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    trainer = HeadTrainer(model=host.model, args=arguments, regulariser=regulariser)
    inputs = {"input_ids": torch.tensor([[0, 5, 17, 33, 8, 2], [0, 9, 44, 12, 2, 1]]),
              "attention_mask": torch.tensor([[1] * 6, [1] * 5 + [0]]),
              "labels": torch.tensor([[-100, 0, 1, 2, 0, -100], [-100, 2, 1, 0, -100, -100]])}
    host.model.train().zero_grad(set_to_none=True)
    trainer.compute_loss(host.model, inputs).backward()
    return [layer.value.weight.grad.clone() for layer in host.fusion_layers(fuse.name)]


def test_value_regularisation_adds_two_lambda_v_minus_i_to_the_value_gradient(tmp_path):
    host, fuse = fused_host()
    lam = fusion.VALUE_REGULARIZATION
    assert lam == 0.01  # the AdapterFusion authors' weight (AdapterHub)
    plain = value_gradients(host, fuse, None, tmp_path)
    regularised = value_gradients(host, fuse, lambda: fusion.value_regularization_loss(host, fuse.name, lam), tmp_path)
    eye = torch.eye(32)
    for layer, without, with_ in zip(host.fusion_layers(fuse.name), plain, regularised):
        expected = 2 * lam * (layer.value.weight.detach() - eye)
        assert expected.abs().max() > 1e-3
        assert torch.allclose(with_ - without, expected, atol=1e-6)
    penalty = fusion.value_regularization_loss(host, fuse.name, lam)
    reference = lam * sum(((eye - layer.value.weight) ** 2).sum() for layer in host.fusion_layers(fuse.name))
    assert torch.allclose(penalty, reference)


@pytest.mark.parametrize("lam", [fusion.VALUE_REGULARIZATION, 0.5, 0.0])
def test_train_fusion_puts_the_penalty_into_the_training_loss(lam, workspace, tmp_path, monkeypatch):
    """train_fusion hands train_with_head a setup whose regulariser is λ · Σ||I − V||² (none for λ = 0)."""
    model = str(workspace["model"])
    adapters = []
    for name in ("a", "b"):  # two task adapters, untrained: their contents do not matter here
        setup = train.load_task_setup(model, "ner", str(workspace["data"] / "en.panx"), 0)
        host = TransformersHost(setup.model)
        host.add_adapter(name, role="task")
        adapters.append(str(save_madx_adapter(host, name, tmp_path / name)))
    seen = {}

    def capture(setup, options, folder, build, dropper=None):
        seen["setup"] = setup
        return tmp_path / "unused"

    monkeypatch.setattr(train, "train_with_head", capture)
    options = TrainOptions(output_dir=str(tmp_path / "out"), use_cpu=True)
    fusion.train_fusion(model, "ner", adapters, str(workspace["data"] / "en.panx"), options, value_regularization=lam)
    regulariser = seen["setup"].regulariser
    if lam == 0:
        assert regulariser is None
        return
    layers = [m for m in seen["setup"].model.modules() if type(m).__name__ == "AdapterFusionLayer"]
    with torch.no_grad():
        for layer in layers:
            layer.value.weight.add_(0.05)
    expected = lam * sum(((torch.eye(32) - layer.value.weight) ** 2).sum() for layer in layers)
    assert len(layers) == 2 and torch.allclose(regulariser(), expected)


def test_negative_value_regularisation_is_refused(workspace, tmp_path):
    with pytest.raises(ValueError, match="value_regularization must be >= 0"):
        fusion.train_fusion(str(workspace["model"]), "ner", ["x", "y"], "t", TrainOptions(output_dir=str(tmp_path)),
                            value_regularization=-1)
