"""AdapterBank routing, and the active-adapter context."""

import threading

import pytest
import torch

from adapter_core import IDENTITY, AdapterBank, AdapterConfig, Stack, UnknownAdapterError, active_adapters, current


def make_bank(batch_dim=0):
    bank = AdapterBank(AdapterConfig(hidden_dim=8, bottleneck_dim=3, init="bert", input_layer_norm=True),
                       ["en-de", "en-fr", "de-fr"], batch_dim=batch_dim)
    return bank


@pytest.mark.parametrize("batch_dim", [0, 1])
def test_mixed_batch_equals_each_sample_alone(batch_dim):
    bank = make_bank(batch_dim)
    keys = ["en-fr", "en-de", IDENTITY, "en-fr", "de-fr", "en-de"]
    x = torch.randn(6, 5, 8) if batch_dim == 0 else torch.randn(5, 6, 8)
    mixed = bank(x, keys)
    for i, key in enumerate(keys):
        alone = bank(x.narrow(batch_dim, i, 1), key)
        assert torch.allclose(mixed.narrow(batch_dim, i, 1), alone, atol=1e-6)
    assert torch.equal(mixed.narrow(batch_dim, 2, 1), x.narrow(batch_dim, 2, 1))


def test_tensor_ids_route_like_names():
    bank = make_bank()
    names = ["en-de", "en-fr", "de-fr"]
    ids = torch.tensor([2, 0, 0, 1])
    x = torch.randn(4, 8)
    assert torch.allclose(bank(x, ids, key_names=names), bank(x, [names[i] for i in ids]))


def test_routing_gradients_reach_only_used_adapters():
    bank = make_bank()
    bank(torch.randn(3, 8), ["en-de", "en-de", IDENTITY]).sum().backward()
    assert bank.adapters["en-de"].down.weight.grad is not None
    assert bank.adapters["en-fr"].down.weight.grad is None


def test_separate_residual_routed_too():
    bank = make_bank()
    x, h = torch.randn(4, 8), torch.randn(4, 8)
    out = bank(x, ["en-de", IDENTITY, "en-fr", "en-de"], residual=h)
    assert torch.equal(out[1], h[1])
    assert torch.allclose(out[2], bank.adapters["en-fr"](x[2:3], h[2:3])[0])


def test_unknown_key_lists_known():
    bank = make_bank()
    with pytest.raises(UnknownAdapterError) as err:
        bank(torch.randn(2, 8), ["en-de", "xx-yy"])
    assert "xx-yy" in str(err.value) and "de-fr, en-de, en-fr" in str(err.value)


def test_alias_identity_and_key_count_mismatch():
    bank = make_bank()
    bank.alias_identity("en-es")
    x = torch.randn(2, 8)
    assert torch.equal(bank(x, "en-es"), x)
    with pytest.raises(ValueError, match="3 keys for a batch of 2"):
        bank(x, ["en-de"] * 3)


def test_bad_names():
    bank = make_bank()
    with pytest.raises(ValueError):
        bank.add("en-de")
    with pytest.raises(ValueError):
        bank.add("a.b")


def test_context_nests_and_is_thread_local():
    seen = {}
    with active_adapters(encoder="de", decoder="fr"):
        with active_adapters(decoder=Stack("fr", "ner")):
            assert current("encoder") == "de"
            assert current("decoder") == Stack("fr", "ner")
            thread = threading.Thread(target=lambda: seen.setdefault("other", current("encoder")))
            thread.start()
            thread.join()
        assert current("decoder") == "fr"
    assert current("encoder") is None
    assert seen["other"] is None
    with pytest.raises(ValueError):
        Stack()
