"""Compacter (Karimi Mahabadi et al. 2021): PHM algebra, rank-1 factors, shared A, counts, save/load."""

import pytest
import torch
from torch import nn

from adapter_core import (AdapterConfig, CompacterAdapter, PHMLinear, PHMRule, build_adapter, compacter_2021,
                          compacter_model_parameter_count, compacter_plus_plus_2021, fingerprint_tensors, load_adapter,
                          save_adapter, share_phm_rule)


def test_phm_weight_is_sum_of_kronecker_products():
    rule = PHMRule(4, init_range=0.5)
    layer = PHMLinear(16, 8, phm_dim=4, rank=1, rule=rule)
    fast = layer.left @ layer.right  # B_i = s_i t_i^T
    expected = sum(torch.kron(rule.weight[i], fast[i]) for i in range(4))
    assert expected.shape == (8, 16)
    assert torch.allclose(layer.weight(), expected, atol=1e-6)
    x = torch.randn(3, 16)
    assert torch.allclose(layer(x), x @ expected.T + layer.bias, atol=1e-5)
    assert all(torch.linalg.matrix_rank(fast[i]) == 1 for i in range(4))


def test_sizes_must_divide_by_n():
    with pytest.raises(ValueError, match="not divisible by phm_dim"):
        build_adapter(AdapterConfig(kind="compacter", hidden_dim=30, bottleneck_dim=8, phm_dim=4))


@pytest.mark.parametrize("k,d,n,rank", [(32, 8, 4, 1), (768, 48, 4, 1), (768, 24, 8, 2)])
def test_parameter_count_formula(k, d, n, rank):
    config = AdapterConfig(kind="compacter", hidden_dim=k, bottleneck_dim=d, phm_dim=n, phm_rank=rank)
    adapter = build_adapter(config)
    assert isinstance(adapter, CompacterAdapter)
    # 2r(k + d) factor weights + k + d biases, plus its own n^3 A until shared
    assert sum(p.numel() for p in adapter.parameters()) == 2 * rank * (k + d) + k + d + n ** 3
    assert CompacterAdapter.expected_parameter_count(k, d, rank) == 2 * rank * (k + d) + k + d


def test_shared_rule_is_counted_once_and_gets_gradients_from_every_layer():
    config = compacter_plus_plus_2021(32, reduction_factor=4)
    adapters = nn.ModuleList(build_adapter(config) for _ in range(3))
    rule = share_phm_rule(adapters)
    assert all(a.rule is rule for a in adapters) and share_phm_rule(adapters) is rule  # idempotent
    assert sum(p.numel() for p in adapters.parameters()) == compacter_model_parameter_count(32, 8, 3, 4)
    # no two state-dict entries share storage, so safetensors can save it
    pointers = [t.data_ptr() for t in adapters.state_dict().values()]
    assert len(pointers) == len(set(pointers))
    for i, adapter in enumerate(adapters):  # a loss on one layer alone reaches the shared A
        rule.weight.grad = None
        adapter(torch.randn(2, 32)).pow(2).sum().backward()
        assert rule.weight.grad is not None and rule.weight.grad.abs().sum() > 0, i


def test_unshared_config_keeps_one_rule_per_layer():
    config = compacter_plus_plus_2021(32, reduction_factor=4).replace(phm_shared_rule=False)
    adapters = [build_adapter(config) for _ in range(2)]
    share_phm_rule(adapters)
    assert adapters[0].rule is not adapters[1].rule


def test_save_and_load_through_adapter_core_io(tmp_path):
    config = compacter_plus_plus_2021(32, reduction_factor=4)
    adapters = nn.ModuleList(build_adapter(config) for _ in range(2))
    share_phm_rule(adapters)
    tensors = dict(adapters.state_dict())
    save_adapter(tmp_path / "c", tensors, config, fingerprint_tensors([]), name="c")
    saved = load_adapter(tmp_path / "c")
    assert saved.config == config and saved.config.phm_dim == 4
    fresh = nn.ModuleList(build_adapter(saved.config) for _ in range(2))
    share_phm_rule(fresh)
    fresh.load_state_dict(saved.tensors)
    x = torch.randn(2, 5, 32)
    for old, new in zip(adapters, fresh):
        assert torch.equal(old(x), new(x))
    assert fresh[1].rule is fresh[0].rule


def test_old_config_json_without_phm_fields_still_loads():
    old = {"kind": "bottleneck", "hidden_dim": 16, "bottleneck_dim": 4, "reduction_factor": None, "activation": "relu",
           "input_layer_norm": False, "init": "bert", "placement": "pfeiffer", "preset": ""}
    config = AdapterConfig.from_dict(old)
    assert config.phm_dim == 4 and config.resolved_bottleneck_dim == 4


def test_presets():
    assert compacter_2021(768).placement == "houlsby"
    assert compacter_plus_plus_2021(768).placement == "pfeiffer"
    assert compacter_plus_plus_2021(768, reduction_factor=16).resolved_bottleneck_dim == 48  # rf on the full width


def test_t5_base_counts_reproduce_the_papers_fractions():
    """Karimi Mahabadi et al. (2021), Table 1, T5-base: Compacter 0.073%, Compacter++ 0.047% trainable.

    T5-base (d 768, d_ff 3072, 12+12 layers, vocab 32128, no biases): 222.9M
    parameters.  The paper also trains the layer norms (2 per encoder layer,
    3 per decoder layer, 2 final ones); reduction factor 32, n = 4.
    """
    d, ff, layers = 768, 3072, 12
    encoder = layers * (4 * d * d + 2 * d * ff + 2 * d)
    decoder = layers * (8 * d * d + 2 * d * ff + 3 * d)
    total = 32128 * d + encoder + decoder + 2 * d + 2 * 32 * 12
    assert abs(total - 222.9e6) < 0.1e6
    norms = (2 * layers + 3 * layers + 2) * d
    plus_plus = compacter_model_parameter_count(d, d // 32, num_adapters=2 * layers, phm_dim=4) + norms
    full = compacter_model_parameter_count(d, d // 32, num_adapters=4 * layers, phm_dim=4) + norms
    assert round(100 * plus_plus / total, 3) == 0.047
    assert abs(100 * full / total - 0.073) < 0.001
