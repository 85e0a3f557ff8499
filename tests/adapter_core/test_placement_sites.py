"""Placement is data: sites, named placements (legacy names read), the presets' placements, and the one kind table."""

from __future__ import annotations

import json

import pytest

from adapter_core import (KINDS, LEGACY_NAMES, PLACEMENTS, SITE_PREFIX, AdapterConfig, PlacementError, Site, bapna_firat_2019,
                          canonical_placement, check_sites, compacter_2021, compacter_plus_plus_2021, houlsby_2019,
                          madx_invertible, madx_language, madx_task, philip_2020, placement_sites)


def test_presets_name_their_papers_sites():
    assert bapna_firat_2019(32).sites == philip_2020(32).sites == (Site.LAYER,)
    assert madx_language(32).sites == madx_task(32).sites == compacter_plus_plus_2021(32).sites == (Site.FFN_PFEIFFER,)
    assert houlsby_2019(32).sites == compacter_2021(32).sites == (Site.ATTENTION, Site.FFN)
    assert madx_invertible(32).sites == (Site.EMBEDDINGS,)
    houlsby = houlsby_2019(32, 8)
    assert (houlsby.init, houlsby.input_layer_norm, houlsby.placement) == ("houlsby", False, "houlsby")


def test_placements_are_named_after_their_sites_and_legacy_names_are_read():
    assert set(PLACEMENTS) == {"output", "pfeiffer", "houlsby", "houlsby_cross_attention", "embeddings",
                               "query_value", "query_key_value", "prefix"}
    assert canonical_placement("after_attention_and_ffn") == "houlsby"
    assert canonical_placement("ffn_output") == "pfeiffer" and canonical_placement("after_ffn") == "output"
    assert all(placement_sites(old) == PLACEMENTS[new] for old, new in LEGACY_NAMES.items())
    with pytest.raises(PlacementError, match="unknown adapter placement 'parallel'; known: embeddings, houlsby"):
        placement_sites("parallel")


def test_configs_hold_a_known_placement_name_and_round_trip():
    with pytest.raises(ValueError, match="unknown placement 'parallel'"):
        AdapterConfig(hidden_dim=8, bottleneck_dim=2, placement="parallel")
    old = AdapterConfig(hidden_dim=8, bottleneck_dim=2, placement="after_attention_and_ffn")  # a file from before
    assert old.placement == "houlsby" and old == AdapterConfig(hidden_dim=8, bottleneck_dim=2, placement="houlsby")
    config = houlsby_2019(16, 4)
    assert AdapterConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_one_kind_table_places_each_kind_the_same_in_both_hosts():
    from adapter_core import host_placement, host_placements, resolve_kind_placement

    nmt_sites, xling_sites = (Site.LAYER, Site.ATTENTION, Site.FFN), (Site.ATTENTION, Site.FFN, Site.FFN_PFEIFFER)
    assert host_placements(nmt_sites) == ("output", "houlsby") and host_placements(xling_sites) == ("pfeiffer", "houlsby")
    assert (host_placement(nmt_sites), host_placement(xling_sites)) == ("output", "pfeiffer")
    for sites in (nmt_sites, xling_sites):
        assert resolve_kind_placement("compacter", None, sites) == "houlsby"
        assert resolve_kind_placement("compacter++", None, sites) == host_placement(sites)
        assert resolve_kind_placement("bottleneck", "houlsby", sites) == "houlsby"
        with pytest.raises(ValueError, match="it is --adapter-kind compacter\\+\\+$"):
            resolve_kind_placement("compacter", host_placement(sites), sites)
        with pytest.raises(ValueError, match="it is --adapter-kind compacter$"):
            resolve_kind_placement("compacter++", "houlsby", sites)
    with pytest.raises(ValueError, match="this host offers output, houlsby"):
        resolve_kind_placement("bottleneck", "pfeiffer", nmt_sites)
    assert set(KINDS) == {"bottleneck", "compacter", "compacter++", "lora", "prefix_tuning"}
    assert KINDS["compacter"].placement == "houlsby"


def test_hosts_refuse_sites_they_do_not_offer():
    offered = (Site.LAYER, Site.ATTENTION, Site.FFN)
    assert check_sites("houlsby", offered, "host") == (Site.ATTENTION, Site.FFN)
    with pytest.raises(PlacementError, match="host has no adapter site ffn_pfeiffer .*its placements: "
                                             "houlsby, output"):
        check_sites("pfeiffer", offered, "host")


def test_site_prefixes_keep_the_one_adapter_files_unchanged():
    assert SITE_PREFIX[Site.LAYER] == SITE_PREFIX[Site.FFN_PFEIFFER] == ""
    assert {SITE_PREFIX[Site.ATTENTION], SITE_PREFIX[Site.FFN]} == {"attention.", "ffn."}
    assert set(SITE_PREFIX) == set(Site)
