"""LoRA (Hu et al. 2021) and prefix tuning (Li & Liang 2021) as adapter_core modules: init, counts, masks, I/O."""

from __future__ import annotations

import math

import pytest
import torch

from adapter_core import (ATTENTION_KINDS, KINDS, PLACEMENTS, SITE_PREFIX, AdapterConfig, LoRAAdapter, PrefixTuning,
                          Site, attention_config, build_adapter, load_adapter, lora_2021, prefix_tuning_2021,
                          prepend_prefixes, resolve_kind_placement, save_adapter, share_prefix_encoder)

XLING_LIKE = (Site.ATTENTION, Site.FFN, Site.FFN_PFEIFFER, Site.QUERY, Site.KEY, Site.VALUE, Site.PREFIX)
NMT_LIKE = (Site.LAYER, Site.ATTENTION, Site.FFN, Site.QUERY, Site.KEY, Site.VALUE)


def flat(d, length):
    return prefix_tuning_2021(d, prefix_length=length, mlp_dim=0)


def test_lora_is_exactly_the_identity_at_init_and_counts_r_times_in_plus_out():
    torch.manual_seed(0)
    module = build_adapter(lora_2021(32, rank=4))
    x, h = torch.randn(3, 5, 32), torch.randn(3, 5, 32)
    assert torch.equal(module(x, residual=h), h)  # B = 0: W x + s B A x == W x, bit for bit
    assert sum(p.numel() for p in module.parameters()) == LoRAAdapter.expected_parameter_count(32, 32, 4) == 256
    assert module.lora_A.abs().sum() > 0  # A is random (Kaiming-uniform), only B starts at zero
    bound = 1 / math.sqrt(32)  # kaiming_uniform_(a=sqrt(5)) on fan_in 32, as nn.Linear
    assert module.lora_A.abs().max() <= bound


def test_lora_update_is_scaled_low_rank_and_merges_into_the_weight():
    torch.manual_seed(0)
    config = lora_2021(16, rank=2, alpha=6.0)
    module = build_adapter(config)
    with torch.no_grad():
        module.lora_B.normal_()
    x = torch.randn(4, 16)
    update = module.delta(x)
    assert torch.allclose(update, x @ module.lora_A.T @ module.lora_B.T * 3.0, atol=1e-5)  # alpha / r = 3
    assert torch.linalg.matrix_rank(module.lora_B @ module.lora_A) == 2
    linear = torch.nn.Linear(16, 16)
    merged = torch.nn.functional.linear(x, module.merged_weight(linear.weight), linear.bias)
    assert torch.allclose(merged, module(x, residual=linear(x)), atol=1e-5)


def test_prefix_rows_count_and_layout():
    torch.manual_seed(0)
    module = build_adapter(flat(32, 6))
    assert sum(p.numel() for p in module.parameters()) == PrefixTuning.expected_parameter_count(32, 6) == 384
    keys, values = module.key_values(batch_size=2, num_heads=4)
    assert keys.shape == values.shape == (2, 4, 6, 8)
    assert torch.equal(keys[1, 2, 3], module.prefix_keys[3, 16:24])  # head 2 = columns 16..23 of row 3
    assert 0.5 < module.prefix_keys.std().item() < 1.5  # AdapterHub's flat init: N(0, 1)
    with pytest.raises(TypeError, match="prepend_prefixes"):
        module(torch.zeros(1, 32))


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_prepend_prefixes_sees_the_prefix_and_keeps_padding_masked(mask_kind):
    """Not an identity: every query attends to the prefix; padded keys stay masked; no prefix = unchanged."""
    torch.manual_seed(0)
    module = build_adapter(flat(8, 3))
    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    visible = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    visible[1, :, :, 3:] = False  # sample 1: the last two tokens are padding
    mask = {"none": None, "bool": visible,
            "float": torch.zeros(2, 1, 5, 5).masked_fill(~visible, torch.finfo(torch.float32).min)}[mask_kind]
    same = prepend_prefixes(k, v, mask, [])
    assert same[0] is k and same[1] is v and same[2] is mask
    k2, v2, mask2 = prepend_prefixes(k, v, mask, [module])
    assert k2.shape == v2.shape == (2, 2, 8, 4)
    assert torch.equal(k2[:, :, 3:], k) and torch.equal(v2[:, :, :3], module.key_values(2, 2)[1])
    base = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = torch.nn.functional.scaled_dot_product_attention(q, k2, v2, attn_mask=mask2)
    assert not torch.allclose(out, base, atol=1e-3)
    if mask is not None:
        assert mask2.shape == (2, 1, 5, 8) and mask2.dtype == mask.dtype
        # the padded keys keep no weight: moving their values does not move the output
        v3 = v2.clone()
        v3[1, :, 6:] += 100.0
        assert torch.allclose(torch.nn.functional.scaled_dot_product_attention(q, k2, v3, attn_mask=mask2), out)


def test_two_prefixes_stack_in_order():
    torch.manual_seed(0)
    first, second = (build_adapter(flat(8, n)) for n in (2, 3))
    k = torch.randn(1, 2, 4, 4)
    k2, _, _ = prepend_prefixes(k, k, None, [first, second])
    assert k2.shape[2] == 9 and torch.equal(k2[:, :, :2], first.key_values(1, 2)[0])


def test_placements_and_file_keys_of_the_attention_sites():
    assert PLACEMENTS["query_value"] == (Site.QUERY, Site.VALUE)
    assert PLACEMENTS["prefix"] == (Site.PREFIX,)
    assert SITE_PREFIX[Site.QUERY] == "query." and SITE_PREFIX[Site.PREFIX] == "prefix."
    assert set(ATTENTION_KINDS) == {"lora", "prefix_tuning"} <= set(KINDS)
    assert KINDS["lora"].placement == lora_2021(8).placement == "query_value"
    assert KINDS["prefix_tuning"].placement == prefix_tuning_2021(8).placement == "prefix"
    with pytest.raises(ValueError, match="LoRA takes init"):
        lora_2021(8).replace(init="houlsby")
    with pytest.raises(ValueError, match="prefix tuning takes init"):
        prefix_tuning_2021(8).replace(init="lora")


@pytest.mark.parametrize("config", [lora_2021(16, rank=3, alpha=4.0), flat(16, 5), prefix_tuning_2021(16, 5, 8)],
                         ids=["lora", "prefix_tuning", "prefix_tuning_mlp"])
def test_configs_round_trip_through_the_core_format(tmp_path, config):
    torch.manual_seed(0)
    module = build_adapter(config)
    tensors = {f"layers.0.{k}": v for k, v in module.named_parameters()}
    save_adapter(tmp_path / "a", tensors, config, "base-fp", name="a")
    saved = load_adapter(tmp_path / "a", expected_fingerprint="base-fp")
    assert saved.config == config and AdapterConfig.from_dict(config.to_dict()) == config
    assert all(torch.equal(saved.tensors[k], v) for k, v in tensors.items())


def test_reparametrised_prefix_counts_shares_and_ejects_to_the_same_rows():
    """Li & Liang's MLP: E, W1, b1 shared by the layers, W2_i, b2_i per layer (AdapterHub's control_trans sliced);
    ejecting gives flat rows equal to what the MLP makes, 2 l d weights per layer."""
    torch.manual_seed(0)
    config = prefix_tuning_2021(16, prefix_length=5, mlp_dim=8)
    layers = [build_adapter(config) for _ in range(3)]
    encoder = share_prefix_encoder(layers)
    assert share_prefix_encoder(layers) is encoder  # idempotent
    params = {id(p): p for m in layers for p in m.parameters()}  # the shared encoder once
    assert sum(p.numel() for p in params.values()) == PrefixTuning.training_parameter_count(16, 5, 8, 3)
    assert sum(p.numel() for p in params.values()) == 5 * 16 + 8 * 16 + 8 + 3 * (2 * 16 * 8 + 2 * 16)
    assert layers[0].encoder is encoder and layers[1].encoder is None  # the owner registers it, the others read it
    keys, values = layers[1].rows()
    assert keys.shape == values.shape == (5, 16)
    expected = torch.tanh(encoder.embedding @ encoder.mlp_in.weight.T + encoder.mlp_in.bias) @ layers[1].mlp_out.weight.T
    expected = expected + layers[1].mlp_out.bias
    assert torch.allclose(torch.cat([keys, values], dim=1), expected, atol=1e-6)
    ejected = layers[1].ejected()
    assert ejected.config.prefix_mlp_dim == 0 and ejected.config.bottleneck_dim == 5
    assert sum(p.numel() for p in ejected.parameters()) == PrefixTuning.expected_parameter_count(16, 5) == 160
    assert torch.equal(ejected.prefix_keys, keys.detach()) and torch.equal(ejected.prefix_values, values.detach())
    with torch.no_grad():
        encoder.embedding.add_(1.0)  # a change to the shared part moves every layer's rows
    assert not torch.allclose(layers[2].rows()[0], keys)


@pytest.mark.parametrize("kind, placement, offered, message", [
    ("lora", "houlsby", XLING_LIKE, "goes at query_value or query_key_value, not --adapter-placement houlsby"),
    ("bottleneck", "query_value", XLING_LIKE, "inside the self-attention: --adapter-kind lora, not bottleneck"),
    ("compacter++", "prefix", XLING_LIKE, "--adapter-kind prefix_tuning, not compacter\\+\\+"),
    ("prefix_tuning", None, NMT_LIKE, "goes at placement prefix, which this host does not offer"),
])
def test_the_kind_table_refuses_a_kind_at_another_kinds_place(kind, placement, offered, message):
    with pytest.raises(ValueError, match=message):
        resolve_kind_placement(kind, placement, offered)


def test_kinds_resolve_to_their_own_placements_in_both_hosts():
    assert resolve_kind_placement("lora", None, NMT_LIKE) == resolve_kind_placement("lora", None, XLING_LIKE) == "query_value"
    assert resolve_kind_placement("lora", "query_key_value", NMT_LIKE) == "query_key_value"
    assert resolve_kind_placement("prefix_tuning", None, XLING_LIKE) == "prefix"
    config = attention_config("lora", 16, "query_key_value", dim=4, lora_alpha=2.0)
    assert (config.bottleneck_dim, config.lora_alpha, config.sites) == (4, 2.0, (Site.QUERY, Site.KEY, Site.VALUE))
    assert attention_config("prefix_tuning", 16, "prefix").bottleneck_dim == 30  # AdapterHub's defaults
    assert attention_config("prefix_tuning", 16, "prefix").prefix_mlp_dim == 512
    assert attention_config("lora", 16, "query_value").bottleneck_dim == 8
    with pytest.raises(ValueError, match="--adapter-lora-alpha applies to --adapter-kind lora only"):
        attention_config("prefix_tuning", 16, "prefix", lora_alpha=4.0)
    with pytest.raises(ValueError, match="--adapter-prefix-mlp-dim applies to --adapter-kind prefix_tuning only"):
        attention_config("lora", 16, "query_value", prefix_mlp_dim=4)
