"""adapter_core.compose: Stack, Fuse and per-sample routing in one function, as both hosts call it."""

import pytest
import torch

from adapter_core import (IDENTITY, AdapterBank, AdapterConfig, AdapterFusionLayer, Fuse, FusionConfig, RoutingPlan,
                          Stack, UnknownAdapterError, compose, setup_from_json, setup_names, setup_steps)


def make_bank(batch_dim=0):
    torch.manual_seed(0)
    bank = AdapterBank(AdapterConfig(hidden_dim=8, bottleneck_dim=3, init="bert", input_layer_norm=True),
                       ["de", "en", "en-de", "de-en"], batch_dim=batch_dim)
    bank.add_fusion("mix", ["de", "en"])
    return bank


def test_stack_runs_its_adapters_bottom_first():
    bank = make_bank()
    x = torch.randn(4, 8)
    out = compose(Stack("de", "en-de"), x, bank.adapters)
    assert torch.equal(out, bank.adapters["en-de"](bank.adapters["de"](x)))
    assert not torch.allclose(out, compose(Stack("en-de", "de"), x, bank.adapters))  # the order matters
    assert torch.equal(bank(x, Stack("de", "en-de")), out)  # the bank takes setups too


def test_fuse_attends_over_the_adapters_outputs():
    bank = make_bank()
    x = torch.randn(4, 8)
    deltas = torch.stack([bank.adapters["de"].delta(x), bank.adapters["en"].delta(x)], dim=-2)
    expected = bank.fusions["mix"](x, deltas, x)
    assert torch.equal(compose(Fuse("de", "en", name="mix"), x, bank.adapters, bank.fusions), expected)
    assert torch.equal(bank(x, "mix"), expected)  # a route key that names a fusion of the bank
    stacked = compose(Stack("en-de", Fuse("de", "en", name="mix")), x, bank.adapters, bank.fusions)
    assert torch.equal(stacked, compose(Fuse("de", "en", name="mix"), bank.adapters["en-de"](x), bank.adapters,
                                        bank.fusions))


@pytest.mark.parametrize("batch_dim", [0, 1])
def test_a_plan_routes_each_sample_through_its_own_setup(batch_dim):
    bank = make_bank(batch_dim)
    names = [IDENTITY, Stack("de", "en-de"), Stack("en", "de-en"), "en-de"]
    ids = torch.tensor([1, 2, 0, 1, 3, 2])
    x = torch.randn(6, 5, 8) if batch_dim == 0 else torch.randn(5, 6, 8)
    mixed = compose(RoutingPlan.build(ids, names), x, bank.adapters, batch_dim=batch_dim)
    for i, key in enumerate(ids.tolist()):
        alone = compose(names[key], x.narrow(batch_dim, i, 1), bank.adapters, batch_dim=batch_dim)
        assert torch.allclose(mixed.narrow(batch_dim, i, 1), alone, atol=1e-6)
    assert torch.equal(mixed.narrow(batch_dim, 2, 1), x.narrow(batch_dim, 2, 1))
    assert torch.equal(bank(x, ids, key_names=names), mixed)


def test_read_and_extras_say_what_an_adapter_reads():
    bank = make_bank()
    h, x = torch.randn(4, 8), torch.randn(4, 8)
    norm = torch.nn.LayerNorm(8)

    def read(r, adapter, x):  # xling's Pfeiffer site: the adapter reads LN(r + x), its output adds to r
        return norm(r + x)

    first = bank.adapters["de"](norm(h + x), residual=h)
    expected = bank.adapters["en-de"](norm(first + x), residual=first)
    assert torch.equal(compose(Stack("de", "en-de"), h, bank.adapters, read=read, extras=(x,)), expected)
    plan = RoutingPlan.build(torch.tensor([0, 1, 0, 1]), [Stack("de", "en-de"), IDENTITY])
    routed = compose(plan, h, bank.adapters, read=read, extras=(x,))
    assert torch.allclose(routed[0::2], expected[0::2], atol=1e-6) and torch.equal(routed[1::2], h[1::2])


def test_missing_adapters_raise_or_are_skipped():
    bank = make_bank()
    x = torch.randn(2, 8)
    with pytest.raises(UnknownAdapterError, match="'fr'.*de, de-en, en, en-de"):
        compose(Stack("de", "fr"), x, bank.adapters)
    assert torch.equal(compose(Stack("de", "fr"), x, bank.adapters, missing="skip"), bank.adapters["de"](x))
    with pytest.raises(UnknownAdapterError, match="no fusion 'other'"):
        compose(Fuse("de", "en", name="other"), x, bank.adapters, bank.fusions)
    assert compose(Stack("fr", IDENTITY), x, bank.adapters, missing="skip") is x  # nothing ran: the input itself
    assert compose(None, x, bank.adapters) is x


def test_setups_serialise_and_list_their_names():
    setup = Stack("en", Fuse("ner", "pos", name="f"))
    assert setup_from_json(setup.to_json()) == setup
    assert setup_steps(setup) == ("en", Fuse("ner", "pos", name="f"))
    assert setup_names(setup) == ("en", "ner", "pos")
    assert setup_steps("en") == ("en",) and setup_steps(None) == ()
    with pytest.raises(TypeError, match="a name, a Fuse or a Stack"):
        setup_steps(3)


def test_fusion_layer_of_another_host_module():
    # xling keeps its fusion layers beside the bank (block.madx_fusion): compose takes any mapping
    bank = make_bank()
    layer = AdapterFusionLayer(FusionConfig(hidden_dim=8))
    x = torch.randn(3, 8)
    deltas = torch.stack([bank.adapters["en"].delta(x), bank.adapters["de-en"].delta(x)], dim=-2)
    assert torch.equal(compose(Fuse("en", "de-en", name="t"), x, bank.adapters, {"t": layer}), layer(x, deltas, x))
