"""The transformers translation host (xling.seq2seq): sites, routing in generate(), AdapterDrop, fusion, files."""

from __future__ import annotations

import pytest
import torch

from adapter_core import (AdapterDropConfig, Fuse, FingerprintMismatchError, PlacementError, Site, Stack,
                          UnknownAdapterError, bapna_firat_2019, compacter_2021, houlsby_2019)
from seq2seq_models import ARCHITECTURES, randomise_adapters, source_batch, tiny_model
from xling.seq2seq import RoutingError, Seq2SeqAdapterHost

LANGS = ("en", "de", "fr")
SRC = ["en", "de", "fr", "de"]
TGT = ["de", "fr", "en", "en"]


def host_with_adapters(arch: str, route_by: str, config=None) -> Seq2SeqAdapterHost:
    model = tiny_model(arch)
    host = Seq2SeqAdapterHost(model, route_by=route_by)
    config = config or bapna_firat_2019(16, 8)
    names = set()
    if route_by in ("lang", "lang+pair"):
        names.update(LANGS)
    if route_by in ("pair", "lang+pair"):
        names.update(f"{s}-{t}" for s, t in zip(SRC, TGT))
    for name in sorted(names):
        host.add_adapter(name, config)
    randomise_adapters(model)
    return host


def generate(host, ids, src, tgt, beams):
    return host.generate(ids, src_langs=src, tgt_langs=tgt, num_beams=beams, do_sample=False, max_new_tokens=8,
                         min_new_tokens=8, output_scores=True, return_dict_in_generate=True)


@pytest.mark.parametrize("beams", [1, 4])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_mixed_batch_equals_each_direction_alone(arch, beams):
    host = host_with_adapters(arch, "lang+pair")
    ids = source_batch(host.model)
    mixed = generate(host, ids, SRC, TGT, beams).sequences
    alone = [generate(host, ids[i:i + 1], [SRC[i]], [TGT[i]], beams).sequences[0] for i in range(len(SRC))]
    for i, sequence in enumerate(alone):
        assert mixed[i].tolist() == sequence.tolist(), f"sample {i} ({SRC[i]}-{TGT[i]})"
    # The routes matter: some sample translates differently without adapters or under another sample's route.
    bare = host.model.generate(ids, num_beams=beams, do_sample=False, max_new_tokens=8, min_new_tokens=8)
    rolled = generate(host, ids, SRC[1:] + SRC[:1], TGT[1:] + TGT[:1], beams).sequences
    assert bare.tolist() != mixed.tolist() and rolled.tolist() != mixed.tolist()


@pytest.mark.parametrize("route_by", ["pair", "lang"])
def test_each_route_mode_routes_per_sample_in_beam_search(route_by):
    host = host_with_adapters("nllb", route_by)
    ids = source_batch(host.model)
    mixed = generate(host, ids, SRC, TGT, 4)
    for i in range(len(SRC)):
        alone = generate(host, ids[i:i + 1], [SRC[i]], [TGT[i]], 4)
        assert mixed.sequences[i].tolist() == alone.sequences[0].tolist()
        assert torch.allclose(mixed.sequences_scores[i], alone.sequences_scores[0], atol=1e-5)


def test_language_adapters_go_source_in_encoder_target_in_decoder():
    host = host_with_adapters("m2m100", "lang")
    ids = source_batch(host.model, rows=1)
    labels = source_batch(host.model, rows=1, seed=5)
    with host.routed(["de"], ["fr"]):
        routed = host.model(input_ids=ids, labels=labels).logits
    host.set_active(encoder="de", decoder="fr")
    assert torch.equal(routed, host.model(input_ids=ids, labels=labels).logits)
    host.set_active(encoder="fr", decoder="de")
    assert not torch.allclose(routed, host.model(input_ids=ids, labels=labels).logits)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("config", [houlsby_2019(16, 8), houlsby_2019(16, 8).replace(
    placement="houlsby_cross_attention"), compacter_2021(16, reduction_factor=2)],
    ids=["houlsby", "houlsby+cross", "compacter"])
def test_two_site_placements_hook_every_sub_layer(arch, config):
    host = Seq2SeqAdapterHost(tiny_model(arch))
    ids, labels = source_batch(host.model), source_batch(host.model, seed=5)
    bare = host.model(input_ids=ids, labels=labels).logits
    host.add_adapter("de-en", config)
    sites = {side: sorted({site.value for _, site, _ in host.site_banks(side)}) for side in ("encoder", "decoder")}
    assert sites["encoder"] == ["attention", "ffn"]
    assert sites["decoder"] == sorted(s.value for s in config.sites)
    host.set_active("de-en")
    randomise_adapters(host.model)
    adapted = host.model(input_ids=ids, labels=labels).logits
    assert not torch.allclose(bare, adapted, atol=1e-4)
    if config.kind == "compacter":  # one A shared by every module of the adapter (Karimi Mahabadi et al. 2021)
        rules = {id(bank.adapters["de-en"].rule) for side in ("encoder", "decoder")
                 for _, _, bank in host.site_banks(side)}
        assert len(rules) == 1


def test_bad_names_models_and_batches_are_clear_errors():
    host = Seq2SeqAdapterHost(tiny_model("marian"), route_by="lang")
    with pytest.raises(UnknownAdapterError, match="no adapter 'xx'"):
        host.set_active("xx")
    with pytest.raises(PlacementError, match="not a supported translation model"):
        Seq2SeqAdapterHost(torch.nn.Linear(2, 2))
    host.add_adapter("en", bapna_firat_2019(16, 8))
    with pytest.raises(RoutingError, match="4 samples"):
        with host.routed(["en"] * 4, ["en"] * 4):
            host.model(input_ids=source_batch(host.model, rows=3), labels=source_batch(host.model, rows=3))


def test_adapter_drop_and_skipped_layers_leave_those_layers_bare():
    host = host_with_adapters("m2m100", "pair")
    ids, labels = source_batch(host.model, rows=1), source_batch(host.model, rows=1, seed=5)
    logits = lambda: host.model(input_ids=ids, labels=labels).logits  # noqa: E731
    with host.routed(["en"], ["de"]):
        full = logits()
        host.drop = AdapterDropConfig(mode="specialised", num_dropped=2)
        dropped_all = logits()
        host.drop = AdapterDropConfig(mode="specialised", num_dropped=1)
        dropped_one = logits()
        host.drop = None
        host.set_skipped_layers("encoder", [0])
        host.set_skipped_layers("decoder", [0])
        skipped = logits()
    bare = logits()
    assert torch.equal(dropped_all, bare)
    assert torch.equal(dropped_one, skipped)
    assert not torch.allclose(dropped_one, full) and not torch.allclose(dropped_one, bare)


def test_fusion_over_pair_adapters():
    host = host_with_adapters("mbart50", "pair")
    fuse = host.add_fusion(Fuse("en-de", "de-fr"))
    ids, labels = source_batch(host.model, rows=2), source_batch(host.model, rows=2, seed=5)
    host.set_active(fuse)
    fused = host.model(input_ids=ids, labels=labels).logits
    host.set_active("en-de")
    assert not torch.allclose(fused, host.model(input_ids=ids, labels=labels).logits)
    assert set(host.train_only([fuse.name])) and all(".fusions." in n for n in host.train_only([fuse.name]))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_save_then_load_gives_the_same_translations_and_refuses_another_base(arch, tmp_path):
    host = host_with_adapters(arch, "lang")
    ids = source_batch(host.model)
    before = generate(host, ids, SRC, TGT, 4).sequences
    for name in LANGS:
        host.save_adapter(tmp_path / name, name)
    fresh = Seq2SeqAdapterHost(tiny_model(arch), route_by="lang")
    for name in LANGS:
        assert fresh.load_adapter(tmp_path / name) == name
    assert generate(fresh, ids, SRC, TGT, 4).sequences.tolist() == before.tolist()
    other = Seq2SeqAdapterHost(tiny_model(arch, seed=9), route_by="lang")
    with pytest.raises(FingerprintMismatchError):
        other.load_adapter(tmp_path / "en")
    assert "en" not in other.adapters
