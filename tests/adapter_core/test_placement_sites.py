"""Placement is data: sites, named placements, aliases, and the presets' placements."""

from __future__ import annotations

import json

import pytest

from adapter_core import (ALIASES, PLACEMENTS, SITE_PREFIX, AdapterConfig, PlacementError, Site, bapna_firat_2019,
                          canonical_placement, check_sites, compacter_2021, compacter_plus_plus_2021, houlsby_2019,
                          madx_invertible, madx_language, madx_task, philip_2020, placement_sites)


def test_presets_name_their_papers_sites():
    assert bapna_firat_2019(32).sites == philip_2020(32).sites == (Site.LAYER,)
    assert madx_language(32).sites == madx_task(32).sites == compacter_plus_plus_2021(32).sites == (Site.FFN_PFEIFFER,)
    assert houlsby_2019(32).sites == compacter_2021(32).sites == (Site.ATTENTION, Site.FFN)
    assert madx_invertible(32).sites == (Site.EMBEDDINGS,)
    houlsby = houlsby_2019(32, 8)
    assert (houlsby.init, houlsby.input_layer_norm, houlsby.placement) == ("houlsby", False, "after_attention_and_ffn")


def test_aliases_resolve_and_unknown_names_list_the_known_ones():
    assert canonical_placement("houlsby") == "after_attention_and_ffn"
    assert canonical_placement("pfeiffer") == "ffn_output" and canonical_placement("bapna_firat") == "after_ffn"
    assert all(placement_sites(alias) == PLACEMENTS[target] for alias, target in ALIASES.items())
    with pytest.raises(PlacementError, match="unknown adapter placement 'parallel'; known: after_attention_and_ffn"):
        placement_sites("parallel")


def test_configs_hold_a_known_placement_name_and_round_trip():
    with pytest.raises(ValueError, match="unknown placement 'houlsby'"):
        AdapterConfig(hidden_dim=8, bottleneck_dim=2, placement="houlsby")  # aliases are for command lines
    config = houlsby_2019(16, 4)
    assert AdapterConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_hosts_refuse_sites_they_do_not_offer():
    offered = (Site.LAYER, Site.ATTENTION, Site.FFN)
    assert check_sites("houlsby", offered, "host") == (Site.ATTENTION, Site.FFN)
    with pytest.raises(PlacementError, match="host has no adapter site ffn_pfeiffer .*its placements: "
                                             "after_attention_and_ffn, after_ffn"):
        check_sites("ffn_output", offered, "host")


def test_site_prefixes_keep_the_one_adapter_files_unchanged():
    assert SITE_PREFIX[Site.LAYER] == SITE_PREFIX[Site.FFN_PFEIFFER] == ""
    assert {SITE_PREFIX[Site.ATTENTION], SITE_PREFIX[Site.FFN]} == {"attention.", "ffn."}
    assert set(SITE_PREFIX) == set(Site)
