"""Routing along one channel: the route table built with the model and saved with it, ids from the batch."""

from __future__ import annotations

import json

import pytest
import torch

from nmt_corpus import render, sentences
from nmt_helpers import TRAIN_PAIRS, generate, load, make_sample, route_of


def _mixed(task):
    items = []
    for i, pair in enumerate(TRAIN_PAIRS):
        src, tgt = pair.split("-")
        items += [(src, tgt, render(src, s)) for s in sentences(2, seed=70 + i)]
    return make_sample(task, items[1::2] + items[0::2])


def test_the_route_table_is_saved_with_the_checkpoint(nmt_run):
    state = torch.load(nmt_run.pair, weights_only=False)
    routes = json.loads(state["cfg"]["model"].adapter_routes)
    assert routes == {side: {pair: pair for pair in TRAIN_PAIRS} for side in ("encoder", "decoder")}
    assert not any("route_ids" in key for key in state["model"])  # the id table is rebuilt, not a tensor of the model


def test_a_checkpoint_saved_before_the_table_loads_and_routes_the_same(nmt_run, tmp_path):
    state = torch.load(nmt_run.pair, weights_only=False)
    del state["cfg"]["model"].adapter_routes  # as checkpoints made before --adapter-routes existed
    old = tmp_path / "old.pt"
    torch.save(state, old)
    task, model, _ = load(nmt_run.data, nmt_run.pair)
    _, old_model, _ = load(nmt_run.data, old)
    sample = _mixed(task)
    expected = [f"{task.data_manager.lang_dict[int(s)]}-{task.data_manager.lang_dict[int(t)]}"
                for s, t in zip(sample["net_input"]["src_lang_id"].view(-1), sample["tgt_lang_id"].view(-1))]
    assert route_of(old_model, sample).keys("encoder") == expected == route_of(model, sample).keys("decoder")
    assert generate(task, old_model, sample) == generate(task, model, sample)


def test_the_model_routes_by_the_language_ids_it_is_given(nmt_run):
    from nmt.routing import AdapterRoute, RoutingError

    task, model, _ = load(nmt_run.data, nmt_run.pair)
    sample = _mixed(task)
    net = sample["net_input"]
    with torch.no_grad():
        by_ids = model(net["src_tokens"], net["src_lengths"], net["src_tokens"], src_lang_id=net["src_lang_id"],
                       tgt_lang_id=sample["tgt_lang_id"])[0]
        keys = route_of(model, sample).keys("encoder")
        by_keys = model(net["src_tokens"], net["src_lengths"], net["src_tokens"],
                        adapter_route=AdapterRoute.from_keys(keys, keys))[0]
    assert torch.equal(by_ids, by_keys)
    with pytest.raises(RoutingError, match="src_lang_id and tgt_lang_id"):
        model(net["src_tokens"], net["src_lengths"], net["src_tokens"])  # no ids, no global state to fall back on


def test_reordering_encoder_out_reorders_the_decoder_route(nmt_run):
    task, model, _ = load(nmt_run.data, nmt_run.pair)
    sample = _mixed(task)
    net = sample["net_input"]
    with torch.no_grad():
        encoder_out = model.encoder(net["src_tokens"], net["src_lengths"], src_lang_id=net["src_lang_id"],
                                    tgt_lang_id=sample["tgt_lang_id"])
    route = encoder_out["adapter_decoder_route"][0]
    new_order = torch.tensor([3, 3, 0, 5, 1])  # beam expansion and finished sentences dropped, as in generation
    moved = model.encoder.reorder_encoder_out(encoder_out, new_order)["adapter_decoder_route"][0]
    assert torch.equal(moved.ids, route.ids[new_order])
    keys = [moved.key_names[int(i)] for i in moved.ids]
    for name, index in moved.plan.groups:
        assert all(keys[int(j)] == name for j in index)
    assert moved.plan.size == 5
