"""--adapters-by lang+pair: a pair adapter stacked on its languages' adapters (adapter_core.compose's Stack)."""

from __future__ import annotations

import json

import pytest
import torch

from adapter_core import IDENTITY, Stack

from nmt_corpus import render, sentences
from nmt_helpers import ADAPTER_DIM, TRAIN_PAIRS, adapter_train_argv, generate, load, logits, make_sample, route_of, \
    run_train

LANGS = ["de", "en", "fr"]


@pytest.fixture(scope="module")
def stacked(nmt_run, tmp_path_factory):
    """A lang run's adapters, exported, then pair adapters trained on them (frozen) with lang+pair."""
    from nmt.cli import export_adapters_main

    root = tmp_path_factory.mktemp("lang_pair")
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, root / "lang", "--adapters-by", "lang",
                                 "--max-epoch", "1"))
    assert export_adapters_main([str(root / "lang" / "checkpoint_last.pt"), "--output-dir", str(root / "langs")]) == 0
    dirs = ",".join(str(root / "langs" / lang) for lang in LANGS)
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, root / "stack", "--adapters-by", "lang+pair",
                                 "--adapter-dirs", dirs, "--max-epoch", "1", "--lr", "0.02"))
    return root


def _mixed_items():
    items = []
    for i, pair in enumerate(TRAIN_PAIRS):
        src, tgt = pair.split("-")
        items += [(src, tgt, render(src, s)) for s in sentences(3, seed=90 + i)]
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(1)).tolist()
    return [items[i] for i in order]


def test_fresh_stack_starts_as_the_base_and_counts_its_adapters(nmt_run):
    from fairseq import options, tasks

    from nmt.models.adapter_transformer import adapter_parameter_counts

    task, plain, _ = load(nmt_run.data, nmt_run.base)
    argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, nmt_run.root / "unused", "--adapters-by", "lang+pair",
                              "--adapter-lang-identity")
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    train_task = tasks.setup_task(args)
    model = train_task.build_model(args)
    model.load_state_dict(torch.load(nmt_run.base, weights_only=True)["model"], strict=True)  # adds the adapters
    model.eval()
    sample = make_sample(task, _mixed_items()[:6])
    net = sample["net_input"]
    with torch.no_grad():
        ours = model(net["src_tokens"], net["src_lengths"], net["src_tokens"], src_lang_id=net["src_lang_id"],
                     tgt_lang_id=sample["tgt_lang_id"])[0]
    assert torch.equal(ours, logits(plain, sample, [IDENTITY] * 6, [IDENTITY] * 6))
    # Encoder: source languages (de, en, fr) + 4 pairs; decoder: target languages + 4 pairs; 2 layers each side.
    assert model.adapter_keys("encoder") == sorted(LANGS + TRAIN_PAIRS) == model.adapter_keys("decoder")
    one = 2 * 32 + (32 * ADAPTER_DIM + ADAPTER_DIM) + (ADAPTER_DIM * 32 + 32)  # input LayerNorm, down, up
    assert adapter_parameter_counts(model) == {key: 4 * one for key in LANGS + TRAIN_PAIRS}  # 2 layers x 2 sides
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapters." in n and n.split(".adapters.")[1].split(".")[0] in TRAIN_PAIRS
                             for n in trainable)  # language adapters frozen by default, the base too
    routes = json.loads(model.args.adapter_routes)
    assert routes["encoder"]["en-de"] == Stack("en", "en-de").to_json()
    assert routes["decoder"]["en-de"] == Stack("de", "en-de").to_json()


def test_only_the_pair_adapters_move_and_the_languages_are_the_lang_runs(nmt_run, stacked):
    from safetensors.torch import load_file

    base = torch.load(nmt_run.base, weights_only=False)["model"]
    trained = torch.load(stacked / "stack" / "checkpoint_last.pt", weights_only=False)["model"]
    assert all(torch.equal(tensor, trained[key]) for key, tensor in base.items())
    for lang in LANGS:
        saved = load_file(stacked / "langs" / lang / "adapter_model.safetensors")
        for name, tensor in saved.items():  # e.g. encoder.layers.0.down.weight
            side, _, index, rest = name.split(".", 3)
            assert torch.equal(trained[f"{side}.layers.{index}.adapter_bank.adapters.{lang}.{rest}"], tensor), name
    ups = [k for k in trained if k.endswith("up.weight") and any(f".adapters.{p}." in k for p in TRAIN_PAIRS)]
    assert len(ups) == 4 * 4 and all(trained[k].abs().sum() > 0 for k in ups)  # zero_up init, trained


def test_mixed_batch_routes_each_sample_through_its_stack(nmt_run, stacked):
    task, model, _ = load(nmt_run.data, stacked / "stack" / "checkpoint_last.pt")
    items = _mixed_items()
    sample = make_sample(task, items)
    assert route_of(model, sample).keys("encoder") == [Stack(s, f"{s}-{t}") for s, t, _ in items]
    assert route_of(model, sample).keys("decoder") == [Stack(t, f"{s}-{t}") for s, t, _ in items]
    mixed = generate(task, model, sample, beam=3)
    for pair in TRAIN_PAIRS:
        positions = [j for j, (s, t, _) in enumerate(items) if f"{s}-{t}" == pair]
        alone = generate(task, model, make_sample(task, [items[j] for j in positions]), beam=3)
        assert [mixed[j] for j in positions] == alone, pair
    # The stack is what runs: the pair adapter alone (no language adapter below) scores differently.
    pairs = [f"{s}-{t}" for s, t, _ in items[:4]]
    stacks = route_of(model, make_sample(task, items[:4]))
    with torch.no_grad():
        net = make_sample(task, items[:4])["net_input"]
        by_stack = model(net["src_tokens"], net["src_lengths"], net["src_tokens"], adapter_route=stacks)[0]
    assert not torch.allclose(by_stack, logits(model, make_sample(task, items[:4]), pairs, pairs))


def test_export_then_load_on_the_base_translates_the_same(nmt_run, stacked, tmp_path):
    from nmt.cli import export_adapters_main

    checkpoint = stacked / "stack" / "checkpoint_last.pt"
    assert export_adapters_main([str(checkpoint), "--output-dir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(LANGS + TRAIN_PAIRS)
    dirs = ",".join(str(tmp_path / "out" / key) for key in LANGS + TRAIN_PAIRS)
    task, trained, _ = load(nmt_run.data, checkpoint)
    _, rebuilt, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--adapter-dirs", dirs)
    sample = make_sample(task, _mixed_items())
    assert route_of(rebuilt, sample).keys("encoder") == route_of(trained, sample).keys("encoder")
    assert generate(task, trained, sample) == generate(task, rebuilt, sample)


def _training_model(nmt_run, save_dir, *extra):
    from fairseq import options, tasks

    args = options.parse_args_and_arch(options.get_training_parser(),
                                       adapter_train_argv(nmt_run.data, nmt_run.base.parent, save_dir, *extra))
    return tasks.setup_task(args).build_model(args)


def test_adapter_dirs_in_training_start_the_language_adapters_of_a_fresh_run_only(nmt_run, stacked, tmp_path):
    dirs = ",".join(str(stacked / "langs" / lang) for lang in LANGS)
    fresh = _training_model(nmt_run, tmp_path / "new", "--adapters-by", "lang+pair", "--adapter-dirs", dirs)
    assert fresh.adapter_dirs_to_load == dirs.split(",")
    resumed = _training_model(nmt_run, stacked / "stack", "--adapters-by", "lang+pair", "--adapter-dirs", dirs)
    assert resumed.adapter_dirs_to_load == []  # its checkpoint_last.pt holds the language adapters
    with pytest.raises(ValueError, match="--adapter-dirs is for generation.*lang\\+pair"):
        _training_model(nmt_run, tmp_path / "pair", "--adapter-dirs", dirs)
    trained = _training_model(nmt_run, tmp_path / "both", "--adapters-by", "lang+pair", "--adapter-lang-training",
                              "trained")
    moving = {n.split(".adapters.")[1].split(".")[0] for n, p in trained.named_parameters() if p.requires_grad}
    assert moving == set(LANGS + TRAIN_PAIRS)


def test_language_adapters_of_another_width_train_and_load_back(nmt_run, tmp_path):
    """Language adapters narrower than the pair adapters (the demo: 12 and 64): --adapter-lang-dim records their width
    in the checkpoint's options, so the trained stack loads back for generation; without it, a one-line error."""
    from nmt.cli import export_adapters_main

    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "lang", "--adapters-by", "lang",
                                 "--adapter-dim", "4", "--max-update", "3", "--disable-validation"))
    assert export_adapters_main([str(tmp_path / "lang" / "checkpoint_last.pt"), "--output-dir",
                                 str(tmp_path / "langs")]) == 0
    dirs = ",".join(str(tmp_path / "langs" / lang) for lang in LANGS)
    with pytest.raises(ValueError, match=r"bottleneck 4, but this run builds language adapters of 8; pass "
                                         r"--adapter-lang-dim 4"):
        _training_model(nmt_run, tmp_path / "wrong", "--adapters-by", "lang+pair", "--adapter-dirs", dirs)
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "stack", "--adapters-by", "lang+pair",
                                 "--adapter-lang-dim", "4", "--adapter-dirs", dirs, "--max-update", "3",
                                 "--disable-validation"))
    task, model, _ = load(nmt_run.data, tmp_path / "stack" / "checkpoint_last.pt")
    down = {n: p.shape[0] for n, p in model.named_parameters() if n.endswith(".down.weight") and ".layers.0." in n}
    assert {n.split(".adapters.")[1].split(".")[0]: m for n, m in down.items() if n.startswith("encoder")} == \
        {"de": 4, "en": 4, "fr": 4, "en-de": ADAPTER_DIM, "de-en": ADAPTER_DIM, "en-fr": ADAPTER_DIM, "fr-en": ADAPTER_DIM}
    assert generate(task, model, make_sample(task, _mixed_items()))  # translates


def test_a_run_keeps_only_the_language_adapters_its_pairs_use(nmt_run, stacked, tmp_path):
    """--adapter-dirs may name every language of a lang run; a run on en-de keeps en in the encoder and de in the
    decoder only, so its checkpoint loads strictly into the model its options rebuild."""
    dirs = ",".join(str(stacked / "langs" / lang) for lang in LANGS)
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "en-de", "--adapters-by", "lang+pair",
                                 "--lang-pairs", "en-de", "--adapter-dirs", dirs, "--max-update", "2",
                                 "--disable-validation"))
    state = torch.load(tmp_path / "en-de" / "checkpoint_last.pt", weights_only=False)["model"]
    keys = {(name.split(".")[0], name.split(".adapters.")[1].split(".")[0]) for name in state if ".adapters." in name}
    assert keys == {("encoder", "en"), ("encoder", "en-de"), ("decoder", "de"), ("decoder", "en-de")}
    task, model, _ = load(nmt_run.data, tmp_path / "en-de" / "checkpoint_last.pt", "en", "de", "--lang-pairs", "en-de")
    assert generate(task, model, make_sample(task, [("en", "de", "the cat sat")]))
