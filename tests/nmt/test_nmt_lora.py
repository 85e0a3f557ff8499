"""LoRA (Hu et al. 2021) in fairseq's Transformer: --adapter-kind lora on the self-attention's W_q and W_v
(placement query_value).

On the session's tiny base (2+2 layers, d 32); as the other placements are
tested (tests/nmt/test_nmt_placement.py): identity at init, the count
r (d + d) per projection, only LoRA tensors moving, export then load.
"""

from __future__ import annotations

import copy

import pytest
import torch

from adapter_core import IDENTITY, AdapterBank, LoRAAdapter, Site

from nmt_corpus import render, sentences
from nmt_helpers import ADAPTER_DIM, adapter_train_argv, generate, load, make_sample, run_train

SHORT = ["--max-update", "6", "--disable-validation"]


def _state(path):
    return torch.load(path, weights_only=True)["model"]


def _lora_model(nmt_run):
    task, pair, _ = load(nmt_run.data, nmt_run.pair)
    args = copy.deepcopy(pair.args)
    args.adapter_init, args.train_layer_norms, args.adapter_kind, args.adapter_placement = "preset", False, "lora", ""
    model = task.build_model(args)
    model.load_state_dict(dict(_state(nmt_run.base)), strict=True)
    _, plain, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--missing-adapter", "identity")
    return task, model.eval(), plain.eval()


def logits(model, sample, encoder_keys, decoder_keys) -> torch.Tensor:
    """Teacher-forced scores with the source as decoder input, right-padded as fairseq pads targets.

    (nmt_helpers.logits feeds the left-padded source: a decoder row that sees only padding is NaN in
    fairseq's unfused attention path, the one generation and LoRA use; training never pads targets on the left.)
    """
    from fairseq.data import data_utils

    from nmt.routing import AdapterRoute

    net, pad = sample["net_input"], model.decoder.dictionary.pad()
    rows = [row[row.ne(pad)] for row in net["src_tokens"]]
    with torch.no_grad():
        out, _ = model(net["src_tokens"], net["src_lengths"], data_utils.collate_tokens(rows, pad, left_pad=False),
                       adapter_route=AdapterRoute.from_keys(encoder_keys, decoder_keys))
    return out


def _en_de(task, count=3, seed=7):
    return make_sample(task, [("en", "de", render("en", s)) for s in sentences(count, seed=seed)])


def test_lora_starts_at_the_base_and_counts_r_times_2d(nmt_run):
    task, model, plain = _lora_model(nmt_run)
    layers = list(model.encoder.layers) + list(model.decoder.layers)
    assert all(layer.adapter_sites == (Site.QUERY, Site.VALUE) for layer in layers)
    sample, keys = _en_de(task), ["en-de"] * 3
    base = logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3)
    # B = 0: the update is exactly zero; the unfused attention path differs from torch's fused one in rounding only
    adapted = logits(model, sample, keys, keys)
    assert torch.allclose(adapted, base, atol=1e-5), (adapted - base).abs().max()
    banks = [m for m in model.modules() if isinstance(m, AdapterBank)]
    assert len(banks) == 2 * 4
    from nmt.models import adapter_parameter_counts

    per_key = 4 * 2 * LoRAAdapter.expected_parameter_count(32, 32, ADAPTER_DIM)
    assert set(adapter_parameter_counts(model).values()) == {per_key}


def test_training_moves_only_lora_and_export_reloads_identically(nmt_run, tmp_path):
    from nmt.adapter_files import export_adapters

    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "l", "--adapter-kind", "lora", *SHORT))
    base, state = _state(nmt_run.base), _state(tmp_path / "l" / "checkpoint_last.pt")
    added = set(state) - set(base)
    assert added and all(".query_adapter_bank." in k or ".value_adapter_bank." in k for k in added)
    assert not any(not torch.equal(base[k], state[k]) for k in base)  # the base bitwise unchanged
    bs = [k for k in added if k.endswith("lora_B")]
    assert len(bs) == 4 * 4 * 2 and all(state[k].any() for k in bs)  # every B left zero: every adapter trained
    task, model, _ = load(nmt_run.data, tmp_path / "l" / "checkpoint_last.pt")
    exported = export_adapters(model, tmp_path / "export", ["en-de"])
    _, reloaded, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--adapter-dirs", str(exported[0]))
    sample, keys = _en_de(task), ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(reloaded, sample, keys, keys))
    mixed_items = [("en", "de", render("en", s)) for s in sentences(2, seed=5)]
    mixed_items += [("de", "en", render("de", s)) for s in sentences(2, seed=6)]
    mixed = generate(task, model, make_sample(task, mixed_items), beam=3)
    alone = generate(task, model, make_sample(task, mixed_items[:2]), beam=3)
    assert mixed[:2] == alone  # per-sample routing through the projections' hooks, with beam search


def test_lora_refuses_a_placement():
    from argparse import Namespace

    from nmt.config import adapter_module_config

    args = Namespace(adapter_kind="lora", adapter_placement="houlsby", adapter_phm_dim=4, adapter_dim=8,
                     adapters_by="pair", adapter_init="preset", no_adapter_input_layer_norm=False, adapter_lora_alpha=8.0)
    with pytest.raises(ValueError, match="--adapter-kind lora goes at query_value or query_key_value, not "
                                         "--adapter-placement houlsby"):
        adapter_module_config(args, 16)
    args.adapter_kind, args.adapter_placement = "compacter", "query_value"
    with pytest.raises(ValueError, match="inside the self-attention: --adapter-kind lora, not compacter"):
        adapter_module_config(args, 16)
    args.adapter_kind, args.adapter_placement = "prefix_tuning", ""
    with pytest.raises(ValueError, match="goes at placement prefix, which this host does not offer"):
        adapter_module_config(args, 16)
    args.adapter_kind, args.adapter_placement = "bottleneck", "query_key_value"  # as a plain base built for a LoRA
    config = adapter_module_config(args, 16)  # run's --adapter-dirs reads it: the placement names the kind
    assert config.kind == "lora" and args.adapter_kind == "lora" and config.placement == "query_key_value"
    assert (config.bottleneck_dim, config.lora_alpha) == (8, 8.0)
