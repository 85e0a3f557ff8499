"""Adapter placements on fairseq's Transformer: Bapna & Firat's layer output, Houlsby's two sites, Compacter.

On the session's tiny base (2+2 layers, d 32, FFN 64, post-norm) and its data;
every model here is built from the base checkpoint as fairseq-train builds it.
"""

from __future__ import annotations

import copy

import pytest
import torch

from adapter_core import IDENTITY, AdapterBank, BottleneckAdapter, Site, adapter_parameter_names

from nmt_corpus import render, sentences
from nmt_helpers import ADAPTER_DIM, adapter_train_argv, generate, load, logits, make_sample, run_train

HIDDEN = 32
PAIRS = ["de-en", "en-de", "en-fr", "fr-en"]
SHORT = ["--max-update", "6", "--disable-validation"]
# (--adapter-placement, --adapter-kind, adapter sites per layer)
PLACEMENTS = [("output", "bottleneck", (Site.LAYER,)), ("houlsby", "bottleneck", (Site.ATTENTION, Site.FFN)),
              ("houlsby", "compacter", (Site.ATTENTION, Site.FFN)), ("output", "compacter++", (Site.LAYER,))]
IDS = [f"{p}-{k}" for p, k, _ in PLACEMENTS]


def _state(path):
    return torch.load(path, weights_only=True)["model"]


def _build(nmt_run, **options):
    """(task, model with the base's weights, plain base) for the adapter options given (fairseq names)."""
    task, pair, _ = load(nmt_run.data, nmt_run.pair)
    args = copy.deepcopy(pair.args)
    args.adapter_init, args.train_layer_norms = "preset", False
    for name, value in options.items():
        setattr(args, name, value)
    model = task.build_model(args)
    model.load_state_dict(dict(_state(nmt_run.base)), strict=True)  # upgrade_state_dict_named adds the adapters
    _, plain, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--missing-adapter", "identity")
    return task, model.eval(), plain


def _en_de(task, count=3, seed=7):
    return make_sample(task, [("en", "de", render("en", s)) for s in sentences(count, seed=seed)])


@pytest.mark.parametrize("placement,kind,sites", PLACEMENTS, ids=IDS)
def test_each_placement_starts_at_the_frozen_base(nmt_run, placement, kind, sites):
    task, model, plain = _build(nmt_run, adapter_placement=placement, adapter_kind=kind, adapter_phm_dim=4)
    assert all(layer.adapter_sites == sites for layer in list(model.encoder.layers) + list(model.decoder.layers))
    sample, keys = _en_de(task), ["en-de"] * 3
    base = logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3)
    adapted = logits(model, sample, keys, keys)
    if (placement, kind) == ("output", "bottleneck"):
        assert torch.equal(adapted, base)  # zero_up: exactly the identity
    else:  # near-identity inits (Houlsby's N(0, 0.01); Compacter's small A_i): close, but the adapters act
        assert not torch.equal(adapted, base)
        assert torch.allclose(adapted, base, atol=0.05, rtol=0), (adapted - base).abs().max()
        assert adapted.argmax(-1).eq(base.argmax(-1)).float().mean() > 0.95


def test_houlsby_zero_up_init_is_exactly_the_base(nmt_run):
    task, model, plain = _build(nmt_run, adapter_placement="houlsby", adapter_init="zero_up")
    sample, keys = _en_de(task), ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3))


def test_houlsby_adapters_read_the_sublayer_outputs_before_the_residual(nmt_run):
    """Attention site: the self-attention's output (never the cross-attention's); FFN site: fc2's output."""
    task, model, _ = _build(nmt_run, adapter_placement="houlsby")
    seen, handles = {}, []

    def keep(name, take=lambda out: out):
        def hook(module, args, output):
            seen.setdefault(name, []).append(take(output))
        return hook

    for side, stack in (("encoder", model.encoder), ("decoder", model.decoder)):
        for i, layer in enumerate(stack.layers):
            handles += [layer.self_attn.register_forward_hook(keep(f"{side}{i}.self_attn", lambda out: out[0])),
                        layer.fc2.register_forward_hook(keep(f"{side}{i}.fc2")),
                        layer.attention_adapter_bank.register_forward_pre_hook(
                            lambda m, a, name=f"{side}{i}.attention": seen.setdefault(name, []).append(a[0])),
                        layer.ffn_adapter_bank.register_forward_pre_hook(
                            lambda m, a, name=f"{side}{i}.ffn": seen.setdefault(name, []).append(a[0]))]
    logits(model, _en_de(task), ["en-de"] * 3, ["en-de"] * 3)  # dropout is off in eval: h is the projection's output
    for handle in handles:
        handle.remove()
    for prefix in ("encoder0", "encoder1", "decoder0", "decoder1"):
        assert len(seen[f"{prefix}.attention"]) == len(seen[f"{prefix}.ffn"]) == 1
        assert torch.equal(seen[f"{prefix}.attention"][0], seen[f"{prefix}.self_attn"][0])
        assert torch.equal(seen[f"{prefix}.ffn"][0], seen[f"{prefix}.fc2"][0])


def test_houlsby_parameter_counts_follow_the_formula(nmt_run):
    d, m = HIDDEN, ADAPTER_DIM
    per_adapter = 2 * d * m + d + m  # Houlsby et al.: 2md + d + m, no input LayerNorm
    assert per_adapter == BottleneckAdapter.expected_parameter_count(d, m, False)
    layer_norms = 2 * (2 * 2 * d) + 2 * (3 * 2 * d)  # post-norm: 2 per encoder layer, 3 per decoder layer
    for train_norms in (False, True):
        _, model, _ = _build(nmt_run, adapter_placement="houlsby", train_layer_norms=train_norms)
        banks = [m for m in model.modules() if isinstance(m, AdapterBank)]
        assert len(banks) == 2 * 4  # two sites in each of 2 + 2 layers
        from nmt.models import adapter_parameter_counts

        assert adapter_parameter_counts(model) == {key: 4 * 2 * per_adapter for key in PAIRS}
        trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
        norms = {n for n in trainable if "layer_norm" in n and n not in adapter_parameter_names(model)}
        assert set(trainable) - norms == adapter_parameter_names(model)
        assert sum(trainable.values()) == 4 * 4 * 2 * per_adapter + (layer_norms if train_norms else 0)
        assert bool(norms) == train_norms


@pytest.mark.parametrize("placement,train_norms", [("output", False), ("output", True), ("houlsby", False),
                                                   ("houlsby", True)])
def test_training_moves_only_adapters_and_asked_for_layer_norms(nmt_run, tmp_path, placement, train_norms):
    # zero_up: every up-projection starts at zero, so a non-zero one after training has moved
    extra = ["--adapter-placement", placement, "--adapter-init", "zero_up"]
    extra += ["--train-layer-norms"] if train_norms else []
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "t", *extra, *SHORT))
    base, state = _state(nmt_run.base), _state(tmp_path / "t" / "checkpoint_last.pt")
    banks = {"output": (".adapter_bank.",), "houlsby": (".attention_adapter_bank.", ".ffn_adapter_bank.")}[placement]
    added = set(state) - set(base)
    assert added and all(any(b in k for b in banks) for k in added)
    assert all(any(f"{b}adapters." in k for k in added) for b in banks)  # every site of the placement got adapters
    moved = {k for k in base if not torch.equal(base[k], state[k])}
    norms = {k for k in base if "layer_norm" in k and k.endswith((".weight", ".bias"))}
    assert norms and moved == (norms if train_norms else set())
    ups = [k for k in added if k.endswith("up.weight")]
    assert len(ups) == 4 * 4 * len(banks) and all(state[k].any() for k in ups)  # every adapter trained


def test_houlsby_mixed_batch_equals_pair_by_pair_with_beam_search(nmt_run):
    task, model, _ = _build(nmt_run, adapter_placement="houlsby")
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "adapter_bank." in name and name.endswith("up.weight"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    items = []
    for i, pair in enumerate(PAIRS):
        src, tgt = pair.split("-")
        items += [(src, tgt, render(src, s)) for s in sentences(2, seed=80 + i)]
    mixed = generate(task, model, make_sample(task, items), beam=3)
    for pair in PAIRS:
        positions = [j for j, (s, t, _) in enumerate(items) if f"{s}-{t}" == pair]
        alone = generate(task, model, make_sample(task, [items[j] for j in positions]), beam=3)
        assert [mixed[j] for j in positions] == alone, pair


@pytest.mark.parametrize("kind", ["bottleneck", "compacter"])
def test_houlsby_export_then_load_on_the_plain_base(nmt_run, tmp_path, kind):
    from nmt.adapter_files import export_adapters

    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "h", "--adapter-placement", "houlsby",
                                 "--adapter-kind", kind, "--adapter-phm-dim", "4", *SHORT))
    task, model, _ = load(nmt_run.data, tmp_path / "h" / "checkpoint_last.pt")
    if kind == "compacter":  # Compacter: one A per key, shared by both sites of every layer and side
        adapters = [bank.adapters["en-de"] for side in ("encoder", "decoder")
                    for _, _, bank in model.adapter_site_banks(side)]
        assert len(adapters) == 8 and all(a.rule is adapters[0].rule for a in adapters)
    exported = export_adapters(model, tmp_path / "export", ["en-de"])
    from safetensors.torch import load_file

    names = load_file(str(exported[0] / "adapter_model.safetensors"))
    assert any(".layers.0.attention." in n for n in names) and any(".layers.1.ffn." in n for n in names)
    _, reloaded, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--adapter-dirs", str(exported[0]))
    assert reloaded.args.adapter_placement == "houlsby"
    sample, keys = _en_de(task), ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(reloaded, sample, keys, keys))
    from adapter_core import AdapterFormatError

    with pytest.raises(AdapterFormatError, match="is placed 'houlsby'"):
        load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-dirs", str(exported[0]))  # output layers


def test_layer_norm_training_is_not_exported_and_fusion_keeps_its_placement(nmt_run, tmp_path):
    from nmt.adapter_files import export_adapters

    _, model, _ = _build(nmt_run, adapter_placement="houlsby", train_layer_norms=True)
    with pytest.raises(ValueError, match="--train-layer-norms"):
        export_adapters(model, tmp_path / "export", ["en-de"])
    with pytest.raises(ValueError, match="AdapterFusion runs on the layer output"):
        model.add_fusions(["en-fr"], ["en-de", "de-en"], ["encoder"])
    with pytest.raises(ValueError, match="--train-layer-norms: AdapterFusion"):
        _build(nmt_run, train_layer_norms=True, adapter_fusion_keys="en-fr", adapter_fusion_over="en-de,de-en")


def test_skip_and_drop_leave_out_both_houlsby_adapters_of_a_layer(nmt_run):
    task, model, plain = _build(nmt_run, adapter_placement="houlsby")
    model.set_skipped_layers({"encoder": {0, 1}, "decoder": {0, 1}})
    sample, keys = _en_de(task), ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3))
    model.set_skipped_layers({})
    model.set_inference_dropped_layers(2)
    assert torch.equal(logits(model, sample, keys, keys), logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3))


def test_report_spec_counts_houlsby_adapters_and_trained_layer_norms(nmt_run, tmp_path):
    from studies.nmt_report_spec import checkpoint_parameter_counts

    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "n", "--adapter-placement", "houlsby",
                                 "--train-layer-norms", *SHORT))
    counts = checkpoint_parameter_counts(tmp_path / "n" / "checkpoint_last.pt")
    per_adapter = 2 * HIDDEN * ADAPTER_DIM + HIDDEN + ADAPTER_DIM
    layer_norms = 2 * (2 * 2 * HIDDEN) + 2 * (3 * 2 * HIDDEN)
    assert counts["adapter_parameters"] == 4 * 4 * 2 * per_adapter
    assert counts["trainable_parameters"] == counts["adapter_parameters"] + layer_norms



def test_houlsby_with_activation_checkpointing_trains_as_without(nmt_run, tmp_path):
    """fairseq re-runs checkpointed layers in backward: each run must send its residual adds to the same sites."""
    for name, extra in (("plain", []), ("ckpt", ["--checkpoint-activations"])):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / name, "--adapter-placement",
                                     "houlsby", "--train-layer-norms", *SHORT, *extra))
    plain = _state(tmp_path / "plain" / "checkpoint_last.pt")
    checkpointed = _state(tmp_path / "ckpt" / "checkpoint_last.pt")
    assert all(torch.allclose(plain[k], checkpointed[k], atol=1e-6) for k in plain)
    base = _state(nmt_run.base)
    assert any(not torch.equal(base[k], checkpointed[k]) for k in base if "layer_norm" in k)
