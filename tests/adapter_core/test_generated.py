"""Generated adapters (UDapter's contextual parameter generation): shapes, counts, per-sample conditions,
identity at init, gradients into the condition embeddings, frozen base, JSON round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapter_core import (AdapterConfig, ConditionEmbedding, GeneratedBottleneckAdapter, active_adapters,
                          adapter_parameter_names, build_adapter, freeze_base)
from adapter_core.generated import MissingConditionError


def _config(**changes) -> AdapterConfig:
    return AdapterConfig(**{"kind": "generated", "hidden_dim": 32, "bottleneck_dim": 4, "condition_dim": 3, **changes})


def test_shapes_and_parameter_count():
    adapter = build_adapter(_config())
    assert isinstance(adapter, GeneratedBottleneckAdapter)
    count = sum(p.numel() for p in adapter.parameters())
    assert count == GeneratedBottleneckAdapter.expected_parameter_count(32, 4, 3) == 3 * (2 * 4 * 32 + 4 + 32)
    x = torch.randn(2, 5, 32)
    with active_adapters(condition=torch.randn(3)):
        assert adapter(x).shape == (2, 5, 32)
    down_w, down_b, up_w, up_b = adapter.generate(torch.randn(7, 3))
    assert down_w.shape == (7, 4, 32) and down_b.shape == (7, 4) and up_w.shape == (7, 32, 4) and up_b.shape == (7, 32)


def test_per_sample_conditions_match_one_condition_at_a_time():
    torch.manual_seed(0)
    adapter = build_adapter(_config())
    nn.init.normal_(adapter.generator, std=0.3)  # far from init, so a mix-up of samples would show
    x, conditions = torch.randn(3, 4, 32), torch.randn(3, 3)
    with active_adapters(condition=conditions):
        mixed = adapter(x)
    for b in range(3):
        with active_adapters(condition=conditions[b]):
            torch.testing.assert_close(mixed[b:b + 1], adapter(x[b:b + 1]))
    assert not torch.allclose(mixed[0], mixed[1])


def test_zero_up_is_identity_and_missing_condition_is_an_error():
    adapter = build_adapter(_config(init="zero_up"))
    x = torch.randn(2, 3, 32)
    with active_adapters(condition=torch.randn(2, 3)):
        assert torch.equal(adapter(x), x)
    with pytest.raises(MissingConditionError):
        adapter(x)
    with active_adapters(condition=torch.randn(4)), pytest.raises(ValueError, match="width 4"):
        adapter(x)


def test_generated_scale_follows_the_init_scheme():
    torch.manual_seed(0)
    adapter = build_adapter(AdapterConfig(kind="generated", hidden_dim=64, bottleneck_dim=16, condition_dim=32))
    embedding = ConditionEmbedding(["a"], 32)
    assert 0.7 < float(embedding("a").detach().abs().sum()) < 1.3  # mean L1 norm 1
    down_w, _, up_w, _ = (t.detach() for t in adapter.generate(embedding("a")))
    assert 0.006 < float(down_w.std()) < 0.014 and 0.006 < float(up_w.std()) < 0.014  # Houlsby: 1e-2


def test_one_adam_step_moves_generated_weights_like_a_plain_adapters():
    """Under Adam a generated weight moves by about lr * |e|_1: about lr, as a plain adapter's, at init scale."""
    torch.manual_seed(0)
    adapter = build_adapter(_config(condition_dim=8))
    embedding = ConditionEmbedding(["a"], 8)
    condition = embedding("a").detach()
    before = adapter.generate(condition)[0].detach()
    optimizer = torch.optim.Adam([adapter.generator], lr=1e-3)
    with active_adapters(condition=condition):
        adapter(torch.randn(4, 3, 32)).pow(2).sum().backward()
    optimizer.step()
    moved = (adapter.generate(condition)[0].detach() - before).abs().mean()
    assert 0.3e-3 < float(moved) < 3e-3


@pytest.mark.parametrize("features", [None, torch.randn(2, 6)])
def test_gradients_reach_the_condition_embeddings(features):
    torch.manual_seed(0)
    embedding = ConditionEmbedding(["web", "wiki"], 3, features=features)
    adapter = build_adapter(_config())
    x = torch.randn(2, 4, 32)
    with active_adapters(condition=embedding(["web", "wiki"])):
        adapter(x).pow(2).sum().backward()
    assert adapter.generator.grad is not None and adapter.generator.grad.abs().sum() > 0
    grads = [p.grad for p in embedding.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    with pytest.raises(KeyError, match="known: web, wiki"):
        embedding("news")


def test_base_frozen_and_only_generator_and_embeddings_move():
    torch.manual_seed(0)

    class Host(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Linear(32, 32)
            self.adapter = build_adapter(_config())
            self.conditions = ConditionEmbedding(["a", "b"], 3)

        def forward(self, x, ids):
            with active_adapters(condition=self.conditions(ids)):
                return self.adapter(self.base(x))

    host = Host()
    freeze_base(host)
    trainable = {n for n, p in host.named_parameters() if p.requires_grad}
    assert trainable == adapter_parameter_names(host) == {"adapter.generator", "conditions.table.weight"}
    before = {n: p.detach().clone() for n, p in host.named_parameters()}
    optimizer = torch.optim.SGD([p for p in host.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        host(torch.randn(4, 2, 32), torch.tensor([0, 1, 0, 1])).pow(2).mean().backward()
        optimizer.step()
    for name, param in host.named_parameters():
        moved = not torch.equal(param, before[name])
        assert moved == (name in trainable), name


def test_config_round_trip_and_bad_values():
    config = _config(init="bert")
    assert AdapterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="condition_dim"):
        _config(condition_dim=0)
    with pytest.raises(ValueError, match="input LayerNorm"):
        build_adapter(_config(input_layer_norm=True))
