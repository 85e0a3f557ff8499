"""BottleneckAdapter and coupling blocks: identity at init, parameter counts, invertibility."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter_core import (AdapterConfig, BottleneckAdapter, GLOWCoupling, NICECoupling, bapna_firat_2019,
                          build_adapter, houlsby_2019, madx_invertible, madx_language, madx_task)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_zero_up_init_is_exact_identity(layer_norm):
    config = AdapterConfig(hidden_dim=16, bottleneck_dim=4, init="zero_up", input_layer_norm=layer_norm)
    adapter = BottleneckAdapter(config)
    x = torch.randn(3, 5, 16)
    assert torch.equal(adapter(x), x)
    assert adapter.down.weight.abs().sum() > 0, "only the up-projection starts at zero"


def test_houlsby_init_is_near_identity_and_truncated():
    adapter = BottleneckAdapter(houlsby_2019(64, 16))
    for linear in (adapter.down, adapter.up):
        assert linear.weight.abs().max() <= 0.02 + 1e-7
        assert 0.004 < linear.weight.std() < 0.012
        assert torch.count_nonzero(linear.bias) == 0
    x = torch.randn(4, 64)
    assert (adapter(x) - x).abs().max() < 0.05


def test_bert_init_std():
    adapter = BottleneckAdapter(madx_language(256))
    assert abs(adapter.down.weight.std().item() - 0.02) < 0.002


@pytest.mark.parametrize("d,m,ln", [(16, 4, False), (16, 4, True), (512, 64, True), (33, 7, False)])
def test_parameter_count_formula(d, m, ln):
    adapter = BottleneckAdapter(AdapterConfig(hidden_dim=d, bottleneck_dim=m, input_layer_norm=ln))
    counted = sum(p.numel() for p in adapter.parameters())
    assert counted == 2 * m * d + d + m + (2 * d if ln else 0)
    assert counted == BottleneckAdapter.expected_parameter_count(d, m, ln)


def test_reduction_factor_sizing_and_presets():
    assert madx_language(768).resolved_bottleneck_dim == 384  # MAD-X: rf 2
    assert madx_task(768).resolved_bottleneck_dim == 48  # rf 16
    assert madx_invertible(768).resolved_bottleneck_dim == 192  # (H/2)/2
    assert bapna_firat_2019(512, 64).input_layer_norm
    assert madx_language(8).activation == "relu"


def test_separate_residual_pfeiffer_style():
    adapter = BottleneckAdapter(AdapterConfig(hidden_dim=8, bottleneck_dim=2, init="bert"))
    x, h = torch.randn(2, 8), torch.randn(2, 8)
    assert torch.allclose(adapter(x, residual=h), h + adapter.delta(x))


@pytest.mark.parametrize("bad", [dict(bottleneck_dim=None), dict(init="nope"), dict(activation="nope"),
                                 dict(hidden_dim=0), dict(bottleneck_dim=-1)])
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        AdapterConfig(**{"hidden_dim": 8, "bottleneck_dim": 2, **bad})


def test_unknown_kind_lists_known():
    with pytest.raises(ValueError, match="bottleneck"):
        build_adapter(AdapterConfig(kind="dora", hidden_dim=8, bottleneck_dim=2))


@pytest.mark.parametrize("kind", ["nice", "glow"])
@settings(max_examples=25, deadline=None)
@given(hidden=st.integers(2, 48), batch=st.integers(1, 4), scale=st.floats(0.1, 3.0))
def test_coupling_is_invertible(kind, hidden, batch, scale):
    block = build_adapter(madx_invertible(hidden, kind=kind, reduction_factor=1))
    for p in block.parameters():  # make the sub-networks far from zero
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(batch, 3, hidden) * scale
    y = block(x)
    assert not torch.allclose(y, x)
    assert torch.allclose(block.inverse(y), x, atol=1e-5 * max(1.0, scale), rtol=1e-5)


def test_glow_follows_its_formula_on_the_feature_dimension():
    """GLOW by hand, from its own weights: the halves are those of the last (feature) dimension, and
    y1 = x1 * exp(c(s2(x2))) + t2(x2), y2 = x2 * exp(c(s1(y1))) + t1(y1), c(s) = clamp * 0.636 * atan(s / clamp).
    AdapterHub's block splits dimension 1 (the sequence) and crashes when seq_len != hidden; here the sequence
    has 7 positions, the hidden size is 11 (halves of 5 and 6), and the weights are large enough that the clamp
    matters."""
    config = madx_invertible(11, kind="glow", reduction_factor=1)
    block = GLOWCoupling(config).double()
    assert config.activation == "relu" and block.clamp == 5.0
    for p in block.parameters():
        torch.nn.init.normal_(p, std=1.0)
    x = torch.randn(2, 7, 11, dtype=torch.float64)

    def subnet(net, v):  # Linear -> ReLU -> Linear
        return torch.relu(v @ net[0].weight.T + net[0].bias) @ net[2].weight.T + net[2].bias

    def c(s):
        return 5.0 * 0.636 * torch.atan(s / 5.0)

    x1, x2 = x[..., :5], x[..., 5:]
    s, t = subnet(block.s2, x2)[..., :5], subnet(block.s2, x2)[..., 5:]
    y1 = x1 * torch.exp(c(s)) + t
    s, t = subnet(block.s1, y1)[..., :6], subnet(block.s1, y1)[..., 6:]
    y2 = x2 * torch.exp(c(s)) + t
    assert (c(s) - s).abs().max() > 0.1  # the soft clamp changes some log-scales: leaving it out would show
    assert torch.allclose(block(x), torch.cat([y1, y2], dim=-1), rtol=1e-12, atol=1e-12)


def test_nice_shapes_match_madx():
    block = NICECoupling(madx_invertible(32))
    assert block.F[0].in_features == 16 and block.F[0].out_features == 8 and block.F[2].out_features == 16
    assert torch.count_nonzero(block.F[0].bias) == 0
