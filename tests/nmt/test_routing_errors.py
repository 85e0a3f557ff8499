"""Clear errors: a pair without adapter, an unknown language, a foreign or misshapen adapter."""

from __future__ import annotations

import pytest
import torch

from adapter_core import (AdapterFormatError, FingerprintMismatchError, UnknownAdapterError, bapna_firat_2019,
                          save_adapter)

from nmt_corpus import render, sentences
from nmt_helpers import generate, load, make_sample, route_of


def test_pair_without_adapter_names_the_existing_pairs(nmt_run):
    task, model, _ = load(nmt_run.data, nmt_run.pair)
    sample = make_sample(task, [("de", "fr", render("de", s)) for s in sentences(2, seed=1)])
    with pytest.raises(UnknownAdapterError) as info:
        generate(task, model, sample)  # the encoder groups the batch by the table's ids, and finds no adapter
    message = str(info.value)
    assert "'de-fr'" in message and all(p in message for p in ["en-de", "de-en", "en-fr", "fr-en"])
    assert "--missing-adapter identity" in message


def test_missing_adapter_identity_falls_back_to_the_base(nmt_run):
    task, model, _ = load(nmt_run.data, nmt_run.pair, "de", "fr", "--missing-adapter", "identity")
    _, base, _ = load(nmt_run.data, nmt_run.base, "de", "fr", "--missing-adapter", "identity")
    sample = make_sample(task, [("de", "fr", render("de", s)) for s in sentences(3, seed=2)])
    assert route_of(model, sample).keys("encoder") == ["__identity__"] * 3
    assert generate(task, model, sample) == generate(task, base, sample)


def test_unknown_language_is_an_error_listing_the_languages(nmt_run):
    # fairseq's data manager already refuses it (a ValueError naming the languages), before our own check
    with pytest.raises(ValueError, match=r"xx.*en.*de.*fr"):
        load(nmt_run.data, nmt_run.pair, "xx", "de")


def test_adapter_for_another_base_is_refused_unless_forced(nmt_run, tmp_path):
    from nmt.adapter_files import export_adapters, load_adapter_dirs

    _, model, _ = load(nmt_run.data, nmt_run.pair)
    export_adapters(model, tmp_path, ["en-de"])
    _, other, _ = load(nmt_run.data, nmt_run.pair)
    with torch.no_grad():
        other.encoder.embed_tokens.weight.add_(0.01)  # another base
    with pytest.raises(FingerprintMismatchError, match="was trained on base"):
        load_adapter_dirs(other, [tmp_path / "en-de"])
    assert load_adapter_dirs(other, [tmp_path / "en-de"], force=True) == ["en-de"]


def test_adapter_shapes_that_do_not_fit_name_both_shapes(nmt_run, tmp_path):
    from nmt.adapter_files import load_adapter_dirs
    from adapter_core import fingerprint_model

    _, model, _ = load(nmt_run.data, nmt_run.pair)
    config = bapna_firat_2019(32, 8)
    tensors = {f"encoder.layers.0.{k}": v for k, v in model.encoder.layers[0].adapter_bank.adapters["en-de"]
               .state_dict().items()}
    tensors["encoder.layers.0.down.weight"] = torch.zeros(4, 32)
    meta = {"encoder_layers": [0], "decoder_layers": [], "adapters_by": "pair"}
    save_adapter(tmp_path / "bad", tensors, config, fingerprint_model(model), name="en-de", metadata=meta)
    with pytest.raises(AdapterFormatError, match=r"shape \(4, 32\) in the adapter but \(8, 32\) in the host"):
        load_adapter_dirs(model, [tmp_path / "bad"])
    save_adapter(tmp_path / "wide", tensors, bapna_firat_2019(16, 8), fingerprint_model(model), name="xx-yy",
                 metadata=meta)
    with pytest.raises(AdapterFormatError, match="hidden size 16, the model's layers 32"):
        load_adapter_dirs(model, [tmp_path / "wide"])


@pytest.mark.parametrize("pairs, message", [
    ("en-de,en-de", "'en-de' is listed twice"),
    ("en-en", "'en-en' translates a language into itself"),
])
def test_fairseq_train_refuses_bad_lang_pairs_with_a_message(nmt_run, tmp_path, pairs, message):
    """These used to end in an AdapterBank traceback ('adapter already exists') or a KeyError."""
    from nmt_helpers import adapter_train_argv, run_train

    argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path, "--max-update", "1")
    argv[argv.index("--lang-pairs") + 1] = pairs
    with pytest.raises(ValueError, match=message):
        run_train(argv)
