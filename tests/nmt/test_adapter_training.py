"""Pair adapters on a tiny base: frozen base, parameter counts, loading, mixed batches, export."""

from __future__ import annotations

import torch

from adapter_core import AdapterBank, BottleneckAdapter, adapter_parameter_names

from nmt_corpus import render, sentences
from nmt_helpers import ADAPTER_DIM, generate, load, logits, make_sample

HIDDEN = 32


def test_base_is_bitwise_unchanged_and_adapters_trained(nmt_run):
    base = torch.load(nmt_run.base, weights_only=True)["model"]  # also checks the safe-globals registration
    trained = torch.load(nmt_run.pair, weights_only=True)["model"]
    adapter_keys = {k for k in trained if ".adapter_bank." in k}
    assert set(trained) - adapter_keys == set(base)
    for key, tensor in base.items():
        assert torch.equal(tensor, trained[key]), key
    ups = [k for k in adapter_keys if k.endswith("up.weight")]
    assert len(ups) == 4 * 4  # 4 pairs x (2 encoder + 2 decoder layers)
    assert all(trained[k].abs().sum() > 0 for k in ups)  # zero_up init, so training moved them


def test_parameter_counts_follow_the_formula(nmt_run):
    from nmt.models import adapter_parameter_counts

    _, model, _ = load(nmt_run.data, nmt_run.pair)
    per_module = 2 * ADAPTER_DIM * HIDDEN + HIDDEN + ADAPTER_DIM + 2 * HIDDEN  # 2md + d + m + 2d (LayerNorm)
    assert per_module == BottleneckAdapter.expected_parameter_count(HIDDEN, ADAPTER_DIM, True)
    banks = [m for m in model.modules() if isinstance(m, AdapterBank)]
    assert len(banks) == 4
    for bank in banks:
        assert sorted(bank.names) == ["de-en", "en-de", "en-fr", "fr-en"]
        for adapter in bank.adapters.values():
            assert sum(p.numel() for p in adapter.parameters()) == per_module
    assert adapter_parameter_counts(model) == {key: 4 * per_module for key in ["de-en", "en-de", "en-fr", "fr-en"]}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == adapter_parameter_names(model)  # the base is frozen


def test_checkpoint_without_adapters_loads_strictly_and_starts_at_identity(nmt_run):
    task, model, _ = load(nmt_run.data, nmt_run.pair)
    fresh = task.build_model(model.args)
    base_state = torch.load(nmt_run.base, weights_only=True)["model"]
    fresh.load_state_dict(dict(base_state), strict=True)  # upgrade_state_dict_named adds the adapter keys
    _, plain, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--missing-adapter", "identity")
    sample = make_sample(task, [("en", "de", render("en", s)) for s in sentences(3, seed=7)])
    keys = ["en-de"] * 3
    from adapter_core import IDENTITY
    assert torch.equal(logits(fresh.eval(), sample, keys, keys), logits(plain, sample, [IDENTITY] * 3, [IDENTITY] * 3))


def _perturb_adapters(model) -> None:
    """Large random up-projections, so that each pair's adapter visibly changes the output."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".adapter_bank." in name and name.endswith("up.weight"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def test_mixed_batch_equals_pair_by_pair_with_beam_search(nmt_run):
    task, model, _ = load(nmt_run.data, nmt_run.pair)
    _perturb_adapters(model)
    items = []
    for i, pair in enumerate(["en-de", "de-en", "en-fr", "fr-en"]):
        src, tgt = pair.split("-")
        items += [(src, tgt, render(src, s)) for s in sentences(3, seed=50 + i)]
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(0)).tolist()
    mixed_items = [items[i] for i in order]
    mixed = generate(task, model, make_sample(task, mixed_items), beam=3)
    for pair in ["en-de", "de-en", "en-fr", "fr-en"]:
        positions = [j for j, (s, t, _) in enumerate(mixed_items) if f"{s}-{t}" == pair]
        alone = generate(task, model, make_sample(task, [mixed_items[j] for j in positions]), beam=3)
        assert [mixed[j] for j in positions] == alone, pair
    # The routing matters: the same sentences through another pair's adapters score differently.
    sample = make_sample(task, mixed_items[:4])
    right = [f"{s}-{t}" for s, t, _ in mixed_items[:4]]
    assert not torch.allclose(logits(model, sample, right, right), logits(model, sample, ["en-fr"] * 4, ["en-fr"] * 4))


def test_export_then_load_on_the_base_gives_identical_outputs(nmt_run, tmp_path):
    from nmt.cli import export_adapters_main

    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(tmp_path / "adapters"), "--keys", "en-de,de-en"]) == 0
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["de-en", "en-de"]
    task, trained, _ = load(nmt_run.data, nmt_run.pair)
    dirs = f"{tmp_path / 'adapters' / 'en-de'},{tmp_path / 'adapters' / 'de-en'}"
    _, swapped, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--adapter-dirs", dirs)
    items = [("en", "de", render("en", s)) for s in sentences(4, seed=9)]
    items += [("de", "en", render("de", s)) for s in sentences(4, seed=10)]
    sample = make_sample(task, items)
    keys = [f"{s}-{t}" for s, t, _ in items]
    assert torch.equal(logits(trained, sample, keys, keys), logits(swapped, sample, keys, keys))
    assert generate(task, trained, sample) == generate(task, swapped, sample)
