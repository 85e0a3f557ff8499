"""Beyond the two papers, in the fairseq plugin: Compacter++, AdapterDrop, AdapterFusion, layer ablation.

All on the session's tiny base (2+2 layers, d 32) and its pair adapters
(en-de, de-en, en-fr, fr-en), trained through fairseq_cli as a user would.
"""

from __future__ import annotations

import json

import pytest
import torch

from adapter_core import IDENTITY, CompacterAdapter, compacter_model_parameter_count

from nmt_corpus import render, sentences
from nmt_helpers import adapter_train_argv, load, logits, make_sample, run_train

SHORT = ["--max-update", "6", "--disable-validation"]
ALL_KEYS = "en-de,de-en,en-fr,fr-en"


def _state(path):
    return torch.load(path, weights_only=True)["model"]


def _en_de(task, count=3, seed=7):
    return make_sample(task, [("en", "de", render("en", s)) for s in sentences(count, seed=seed)])


# -- Compacter++ ----------------------------------------------------------------------------------


def test_compacter_kind_trains_shared_rules_and_exports(nmt_run, tmp_path):
    from nmt.adapter_files import export_adapters

    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "c", "--adapter-kind", "compacter++",
                                 "--adapter-phm-dim", "4", *SHORT))
    checkpoint = tmp_path / "c" / "checkpoint_last.pt"
    state, base = _state(checkpoint), _state(nmt_run.base)
    for key, tensor in base.items():
        assert torch.equal(tensor, state[key]), key
    rules = sorted(k for k in state if k.endswith("phm_rule.weight"))
    assert rules == [f"encoder.layers.0.adapter_bank.adapters.{k}.phm_rule.weight" for k in sorted(ALL_KEYS.split(","))]

    task, model, _ = load(nmt_run.data, checkpoint)
    adapters = [m for bank in (b for _, b in model.adapter_banks("encoder") + model.adapter_banks("decoder"))
                for k, m in bank.adapters.items() if k == "en-de"]
    assert len(adapters) == 4 and all(isinstance(a, CompacterAdapter) for a in adapters)
    assert all(a.rule is adapters[0].rule for a in adapters)  # one A for the key, in every layer and side
    from nmt.models import adapter_parameter_counts

    # 4 adapters of hidden 32, bottleneck 8, rank 1, plus n^3 = 64 shared weights counted once.
    assert adapter_parameter_counts(model)["en-de"] == compacter_model_parameter_count(32, 8, 4, phm_dim=4)
    moved = [k for k in state if ".adapters.en-de." in k and k.endswith(".left")]
    assert moved and any(not torch.equal(state[k], state[k.replace(".left", ".right")]) for k in moved)

    exported = export_adapters(model, tmp_path / "export", ["en-de"])
    _, reloaded, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--adapter-dirs", str(exported[0]))
    sample = _en_de(task)
    keys = ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(reloaded, sample, keys, keys))


def test_compacter_phm_dim_must_divide_the_sizes(nmt_run, tmp_path):
    with pytest.raises(ValueError, match="not divisible by --adapter-phm-dim"):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "bad", "--adapter-kind",
                                     "compacter++", "--adapter-phm-dim", "3", *SHORT))


# -- AdapterDrop --------------------------------------------------------------------------------------


def test_dropping_every_layer_at_inference_is_the_base_model(nmt_run):
    task, dropped_all, _ = load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-drop-inference", "2")
    _, with_all, _ = load(nmt_run.data, nmt_run.pair)
    _, one, _ = load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-drop-inference", "1")
    _, skip_lowest, _ = load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-skip-layers", "both:0")
    _, plain, _ = load(nmt_run.data, nmt_run.base, "en", "de", "--missing-adapter", "identity")
    sample = _en_de(task)
    keys, none = ["en-de"] * 3, [IDENTITY] * 3
    base_out = logits(plain, sample, none, none)
    assert torch.equal(logits(dropped_all, sample, keys, keys), base_out)
    assert torch.equal(logits(one, sample, keys, keys), logits(skip_lowest, sample, keys, keys))
    assert not torch.allclose(logits(one, sample, keys, keys), logits(with_all, sample, keys, keys))
    assert not torch.allclose(logits(one, sample, keys, keys), base_out)


def test_specialised_drop_trains_only_the_upper_adapters_without_autograd_below(nmt_run, tmp_path):
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "d", "--adapter-drop-mode",
                                 "specialised", "--adapter-drop-layers", "1", *SHORT))
    start, state = _state(nmt_run.base), _state(tmp_path / "d" / "checkpoint_last.pt")
    for side in ("encoder", "decoder"):
        lower = f"{side}.layers.0.adapter_bank.adapters.en-de.up.weight"
        upper = f"{side}.layers.1.adapter_bank.adapters.en-de.up.weight"
        assert lower not in start and not state[lower].any()  # zero_up init, never trained
        assert state[upper].any()

    task, model, _ = load(nmt_run.data, tmp_path / "d" / "checkpoint_last.pt")
    assert model.encoder.inference_dropped_layers == 1  # specialised: the same n at inference
    model.train()
    seen = []
    hook = model.encoder.layers[0].register_forward_hook(lambda m, i, out: seen.append(out.requires_grad))
    net = _en_de(task)["net_input"]
    model.set_training_dropped_layers(model.training_dropped_layers(update_num=0))
    out, _ = model(net["src_tokens"], net["src_lengths"], net["src_tokens"], src_lang_id=net["src_lang_id"],
                   tgt_lang_id=_en_de(task)["tgt_lang_id"])
    hook.remove()
    assert seen == [False]  # nothing below the lowest active adapter is recorded by autograd
    out.sum().backward()
    assert model.encoder.layers[1].adapter_bank.adapters["en-de"].up.weight.grad is not None
    assert model.encoder.layers[0].adapter_bank.adapters["en-de"].up.weight.grad is None


def test_robust_drop_draws_a_reproducible_count_per_update(nmt_run, tmp_path):
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "r", "--adapter-drop-mode", "robust",
                                 "--adapter-drop-layers", "1", *SHORT))
    _, model, _ = load(nmt_run.data, tmp_path / "r" / "checkpoint_last.pt")
    draws = [model.training_dropped_layers(u) for u in range(60)]
    assert set(draws) == {0, 1} and draws == [model.training_dropped_layers(u) for u in range(60)]
    assert model.encoder.inference_dropped_layers == 0  # robust: all adapters at inference


def test_drop_must_leave_a_layer_to_train(nmt_run, tmp_path):
    with pytest.raises(ValueError, match="--adapter-drop-layers 2: must be 0..1"):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "x", "--adapter-drop-mode",
                                     "robust", "--adapter-drop-layers", "2", *SHORT))


def test_skip_layers_spec_errors(nmt_run):
    with pytest.raises(ValueError, match="the encoder has layers 0..1"):
        load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-skip-layers", "encoder:1-3")
    with pytest.raises(ValueError, match="is not SIDE:N"):
        load(nmt_run.data, nmt_run.pair, "en", "de", "--adapter-skip-layers", "middle:0")


# -- AdapterFusion -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fused(nmt_run, tmp_path_factory):
    """A checkpoint with AdapterFusion en-fr over the trained pair adapters en-de, de-en, en-fr."""
    save_dir = tmp_path_factory.mktemp("fusion")
    argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, save_dir, "--lang-pairs", "en-fr",
                              "--adapter-encoder-keys", ALL_KEYS, "--adapter-decoder-keys", ALL_KEYS,
                              "--adapter-fusion-keys", "en-fr", "--adapter-fusion-over", "en-de,de-en,en-fr", *SHORT)
    run_train(_with_checkpoint(argv, nmt_run.pair))  # fuse the trained pair adapters
    return save_dir / "checkpoint_last.pt"


def test_fusion_trains_only_fusion_layers_and_reports_weights(nmt_run, fused, tmp_path):
    from nmt.fusion_report import main as fusion_main

    tmp_path.joinpath("f").mkdir()
    tmp_path.joinpath("f", "checkpoint_last.pt").symlink_to(fused)
    before, after = _state(nmt_run.pair), _state(tmp_path / "f" / "checkpoint_last.pt")
    for key, tensor in before.items():
        assert torch.equal(tensor, after[key]), key  # base and every adapter frozen
    fusion_keys = [k for k in after if ".adapter_bank.fusions.en-fr." in k]
    assert len(fusion_keys) == 4 * 5  # 4 layers x (query w+b, key w+b, value w)
    value = after["encoder.layers.0.adapter_bank.fusions.en-fr.value.weight"]
    assert not torch.equal(value, torch.eye(32)) and torch.allclose(value, torch.eye(32), atol=0.2)

    task, model, _ = load(nmt_run.data, tmp_path / "f" / "checkpoint_last.pt", "en", "de")
    _, pair_model, _ = load(nmt_run.data, nmt_run.pair)
    sample, keys = _en_de(task), ["en-de"] * 3
    assert torch.equal(logits(model, sample, keys, keys), logits(pair_model, sample, keys, keys))  # en-de unfused

    out = tmp_path / "fusion_report"
    assert fusion_main(["--output-dir", str(out), "--", str(nmt_run.data), "--path",
                        str(tmp_path / "f" / "checkpoint_last.pt"), *_lang_flags(), "-s", "en", "-t", "fr",
                        "--gen-subset", "valid", "--cpu", "--max-tokens", "400"]) == 0
    report = json.loads((out / "fusion_weights.json").read_text())
    for side in ("encoder", "decoder"):
        entry = report["sides"][side]["en-fr"]
        assert entry["adapters"] == ["en-de", "de-en", "en-fr"] and entry["layers"] == [0, 1]
        for row in entry["weights"]:
            assert abs(sum(row) - 1) < 1e-4 and all(0 < w < 1 for w in row)
    assert (out / "fusion_weights.png").stat().st_size > 1000


def test_fusion_exports_as_adapter_directories_and_loads_onto_the_base(nmt_run, fused, tmp_path):
    """``nmt export`` writes the fusion as ``fusion-en-fr`` (the core format, with the adapters it fuses); the
    plain base with those directories (``--adapter-dirs``, in any order) computes what the fused checkpoint does."""
    from adapter_core import is_fusion_directory, load_fusion
    from nmt.cli import export_adapters_main

    out = tmp_path / "exported"
    assert export_adapters_main([str(fused), "--output-dir", str(out), "--keys", "en-fr"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["de-en", "en-de", "en-fr", "fusion-en-fr"]
    assert is_fusion_directory(out / "fusion-en-fr") and not is_fusion_directory(out / "en-fr")
    saved = load_fusion(out / "fusion-en-fr")
    assert saved.metadata["fusion_of"] == ["en-de", "de-en", "en-fr"] and saved.name == "en-fr"
    assert len(saved.tensors) == 4 * 5  # 4 layers x (query w+b, key w+b, value w)

    task, model, _ = load(nmt_run.data, fused, "en", "fr")
    dirs = ",".join(str(out / name) for name in ("fusion-en-fr", "en-de", "de-en", "en-fr"))  # fusion first
    _, rebuilt, _ = load(nmt_run.data, nmt_run.base, "en", "fr", "--adapter-dirs", dirs)
    assert sorted(rebuilt.encoder.layers[0].adapter_bank.fusions) == ["en-fr"]
    sample = make_sample(task, [("en", "fr", render("en", s)) for s in sentences(3, seed=7)])
    keys = ["en-fr"] * 3
    fused_out = logits(model, sample, keys, keys)
    assert torch.equal(logits(rebuilt, sample, keys, keys), fused_out)
    _, unfused, _ = load(nmt_run.data, nmt_run.base, "en", "fr", "--adapter-dirs",
                         ",".join(str(out / name) for name in ("en-de", "de-en", "en-fr")))
    assert not torch.allclose(logits(unfused, sample, keys, keys), fused_out)  # the fusion changes the output


def test_fusion_directory_without_its_adapters_is_refused(nmt_run, fused, tmp_path):
    from adapter_core import AdapterFormatError
    from nmt.cli import export_adapters_main

    out = tmp_path / "exported"
    assert export_adapters_main([str(fused), "--output-dir", str(out)]) == 0
    with pytest.raises(AdapterFormatError, match="fuses en-de, de-en, en-fr, which the model's encoder layer 0"):
        load(nmt_run.data, nmt_run.base, "en", "fr", "--adapter-dirs", str(out / "fusion-en-fr"))


def test_fusion_needs_adapters_that_exist(nmt_run, tmp_path):
    with pytest.raises(ValueError, match="neither side has all of these adapters"):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "bad", "--adapter-fusion-keys",
                                     "en-fr", "--adapter-fusion-over", "en-de,xx-yy", *SHORT))


def test_fusion_sides_follow_the_routed_keys(nmt_run):
    _, model, _ = load(nmt_run.data, nmt_run.pair)
    over = ["en-de", "de-en"]
    assert model.fusion_sides(["en-fr"], over, ["en-fr"]) == ["encoder", "decoder"]  # pair keys route both sides
    model.args.adapters_by = "lang"  # language keys: en-fr routes "en" in the encoder and "fr" in the decoder
    assert model.fusion_sides(["fr"], over, ["en-fr"]) == ["decoder"]
    assert model.fusion_sides(["en"], over, ["en-fr"]) == ["encoder"]
    assert model.fusion_sides(["zz"], over, ["en-fr"]) == ["encoder", "decoder"]  # routed nowhere: every holder
    with pytest.raises(ValueError, match="the decoder has no adapters xx-yy"):
        model.add_fusions(["fr"], ["en-de", "xx-yy"], ["decoder"])


def _with_checkpoint(argv, checkpoint):
    argv[argv.index("--finetune-from-model") + 1] = str(checkpoint)
    return argv


def _lang_flags():
    from nmt_helpers import LANG_FLAGS

    return ["--task", "adapter_translation", *LANG_FLAGS]


# -- layer ablation ---------------------------------------------------------------------------------------


def test_ablation_heatmap_over_every_span(nmt_run, tmp_path):
    from nmt.ablation import main as ablate_main

    out = tmp_path / "ablation"
    assert ablate_main(["--output-dir", str(out), "--", str(nmt_run.data), "--path", str(nmt_run.pair),
                        *_lang_flags(), "-s", "en", "-t", "de", "--gen-subset", "test", "--cpu", "--beam", "2",
                        "--max-tokens", "400"]) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert report["baseline"]["sentences"] > 5
    for side in ("encoder", "decoder"):
        spans = report["sides"][side]["spans"]
        assert [(r["first"], r["last"]) for r in spans] == [(0, 0), (0, 1), (1, 1)]
        for row in spans:
            assert row["bleu_change"] == pytest.approx(row["bleu"] - report["baseline"]["bleu"], abs=1e-3)
    assert any(r["bleu_change"] != 0 for s in report["sides"].values() for r in s["spans"])
    assert (out / "ablation.png").stat().st_size > 1000


def test_activation_checkpointing_recomputes_routed_layers_exactly(nmt_run, tmp_path):
    """fairseq's --checkpoint-activations re-runs layers in backward, outside the encoder's forward."""
    for name, extra in (("plain", []), ("ckpt", ["--checkpoint-activations"])):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / name, "--adapter-drop-mode",
                                     "robust", "--adapter-drop-layers", "1", *SHORT, *extra))
    plain, checkpointed = _state(tmp_path / "plain" / "checkpoint_last.pt"), _state(tmp_path / "ckpt" / "checkpoint_last.pt")
    adapters = [k for k in plain if ".adapter_bank." in k]
    assert adapters and all(torch.allclose(plain[k], checkpointed[k], atol=1e-6) for k in adapters)
    assert any(not torch.equal(plain[k], _state(nmt_run.pair)[k]) for k in adapters)


def test_lean_ops_train_exactly_as_the_stock_ops(nmt_run, tmp_path):
    """--adapter-lean-ops (bool-mask ReLU before a frozen fc2) gives the same adapters as fairseq's ReLU."""
    for name, extra in (("stock", []), ("lean", ["--adapter-lean-ops"])):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / name, *SHORT, *extra))
    stock, lean = _state(tmp_path / "stock" / "checkpoint_last.pt"), _state(tmp_path / "lean" / "checkpoint_last.pt")
    adapters = [k for k in stock if ".adapter_bank." in k]
    assert adapters and all(torch.allclose(stock[k], lean[k], atol=1e-6) for k in adapters)
    from nmt.modules.lean_ops import lean_relu

    _, model, _ = load(nmt_run.data, tmp_path / "lean" / "checkpoint_last.pt")
    assert all(layer.activation_fn is lean_relu for layer in list(model.encoder.layers) + list(model.decoder.layers))
