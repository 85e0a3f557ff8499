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


def test_identity_key_and_key_count_mismatch():
    bank = make_bank()
    x = torch.randn(2, 8)
    assert torch.equal(bank(x, IDENTITY), x)
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


def test_routing_plan_is_reused_and_equals_per_call_grouping():
    from adapter_core import RoutingPlan

    bank = make_bank(batch_dim=1)
    names = ["en-de", "en-fr", "de-fr", IDENTITY]
    ids = torch.tensor([1, 3, 0, 1, 2, 0, 0])
    plan = RoutingPlan.build(ids, names)
    assert [key for key, _ in plan.groups] == ["en-de", "en-fr", "de-fr", IDENTITY]
    assert plan.groups[0][1].tolist() == [2, 5, 6]
    x = torch.randn(4, 7, 8)
    assert torch.equal(bank(x, plan), bank(x, ids, key_names=names))
    single = RoutingPlan.build(torch.tensor([2, 2]), names)
    assert single.inverse is None and single.groups == (("de-fr", None),)
    with pytest.raises(ValueError, match="got 7 keys for a batch of 3"):
        bank(torch.randn(4, 3, 8), plan)


def test_fusion_key_attends_over_adapter_outputs():
    bank = make_bank()
    fusion = bank.add_fusion("en-de", ["en-de", "en-fr", "de-fr"])  # the target's own adapter among the fused
    x = torch.randn(5, 8)
    deltas = torch.stack([bank.adapters[k].delta(x) for k in ("en-de", "en-fr", "de-fr")], dim=-2)
    # V starts near the identity: the output is the residual plus a convex mix of the adapters' contributions.
    weights = fusion.attention(x, deltas)
    expected = x + torch.einsum("bn,bnh->bh", weights, deltas)
    assert torch.allclose(bank(x, "en-de"), expected, atol=1e-5)
    assert torch.allclose(fusion.last_weights.sum(), torch.tensor(1.0), atol=1e-5)
    mixed = bank(x, ["en-de", "en-fr", "en-de", IDENTITY, "de-fr"])
    assert torch.allclose(mixed[1], bank.adapters["en-fr"](x[1:2])[0], atol=1e-6)
    assert "en-de" in bank and bank.fusion_sources["en-de"] == ("en-de", "en-fr", "de-fr")
    with pytest.raises(ValueError, match="at least two adapters"):
        bank.add_fusion("xx", ["en-de", "zz"])
    with pytest.raises(ValueError, match="already names an adapter"):
        bank.add_fusion("en-fr", ["en-de", "de-fr"])
