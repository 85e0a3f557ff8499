"""AdapterFusion layer (Pfeiffer et al. 2021) and representation similarity (linear CKA, RSA)."""

import pytest
import torch

from adapter_core import AdapterFusionLayer, Fuse, FusionConfig, Stack
from xling.analysis import drift_table, linear_cka, per_layer_similarity, rsa


def test_value_starts_at_identity_plus_small_noise():
    layer = AdapterFusionLayer(FusionConfig(hidden_dim=16))
    offset = layer.value.weight - torch.eye(16)
    assert 0 < offset.abs().max() < 1e-4
    assert layer.value_regularization() < 1e-6
    assert 0.015 < layer.query.weight.std() < 0.025 and 0.015 < layer.key.weight.std() < 0.025


def test_weights_form_a_distribution_and_output_mixes_adapter_outputs():
    torch.manual_seed(0)
    layer = AdapterFusionLayer(FusionConfig(hidden_dim=8, value=False))
    query, residual = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    outputs = torch.randn(2, 5, 3, 8)
    weights = layer.attention(query, outputs)
    assert weights.shape == (2, 5, 3) and torch.allclose(weights.sum(-1), torch.ones(2, 5))
    fused = layer(query, outputs, residual)
    assert torch.allclose(fused, residual + (weights.unsqueeze(-1) * outputs).sum(-2), atol=1e-6)
    assert torch.allclose(layer.last_weights, weights.reshape(-1, 3).mean(0), atol=1e-6)
    layer(query, outputs, residual)
    assert torch.allclose(layer.mean_weights(), layer.last_weights, atol=1e-6)
    layer.reset_statistics()
    assert layer.mean_weights() is None


def test_query_picks_the_matching_adapter_after_training():
    """Fusion learns to attend to the adapter whose output solves the task."""
    torch.manual_seed(0)
    layer = AdapterFusionLayer(FusionConfig(hidden_dim=8))
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(60):
        query, residual = torch.randn(16, 8), torch.zeros(16, 8)
        useful = 2 * query
        outputs = torch.stack([torch.randn(16, 8), useful, torch.randn(16, 8)], dim=1)
        loss = (layer(query, outputs, residual) - useful).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert layer.last_weights.argmax() == 1 and layer.last_weights[1] > 0.6


def test_temperature_anneals_to_one():
    layer = AdapterFusionLayer(FusionConfig(hidden_dim=4, temperature_start=50.0, temperature_steps=10))
    assert layer.temperature == 50.0
    for _ in range(10):
        layer(torch.randn(1, 4), torch.randn(1, 2, 4), torch.zeros(1, 4))
    assert layer.temperature == 1.0
    with pytest.raises(ValueError, match="temperature_start"):
        FusionConfig(hidden_dim=4, temperature_start=0.5)


def test_fuse_composition_is_plain_data():
    setup = Stack("en", Fuse("ner", "pos"))
    assert setup.to_json() == {"stack": ["en", {"fuse": ["ner", "pos"], "name": "ner,pos"}]}
    with pytest.raises(ValueError):
        Fuse("ner")
    with pytest.raises(ValueError):
        Fuse("ner", "ner")


def test_linear_cka_properties():
    torch.manual_seed(0)
    x = torch.randn(200, 16)
    q, _ = torch.linalg.qr(torch.randn(16, 16))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q + 1.0) == pytest.approx(1.0)  # orthogonal, scale, shift invariance
    assert linear_cka(x, torch.randn(200, 16)) < 0.2
    noisy = [linear_cka(x, x + s * torch.randn(200, 16)) for s in (0.1, 1.0, 3.0)]
    assert noisy[0] > noisy[1] > noisy[2]
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(x, x[:10])


def test_rsa_properties():
    torch.manual_seed(0)
    x = torch.randn(40, 8)
    assert rsa(x, x) == pytest.approx(1.0)
    assert rsa(x, 2 * x) == pytest.approx(1.0)
    assert abs(rsa(x, torch.randn(40, 8))) < 0.3


def test_per_layer_drift_table():
    torch.manual_seed(0)
    base = [torch.randn(50, 8) for _ in range(3)]
    near = [b + 0.1 * torch.randn(50, 8) for b in base]
    far = [b + 2.0 * torch.randn(50, 8) for b in base]
    table = drift_table(base, {"adapter": near, "full": far})
    assert all(a > f for a, f in zip(table["adapter"], table["full"]))
    assert len(per_layer_similarity(base, near, "rsa")) == 3
    with pytest.raises(ValueError, match="unknown similarity"):
        per_layer_similarity(base, near, "nope")
