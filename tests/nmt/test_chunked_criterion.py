"""--criterion chunked_label_smoothed_cross_entropy trains as fairseq's label_smoothed_cross_entropy does."""

from __future__ import annotations

import pytest
import torch

from nmt_helpers import USER_DIR, adapter_train_argv, run_train

SHORT = ["--max-update", "6", "--disable-validation", "--label-smoothing", "0.1"]


def _state(path):
    return torch.load(path, weights_only=True)["model"]


def test_chunked_criterion_trains_the_same_adapters(nmt_run, tmp_path):
    for name, criterion in (("stock", ["--criterion", "label_smoothed_cross_entropy"]),
                            ("chunked", ["--criterion", "chunked_label_smoothed_cross_entropy", "--loss-chunk", "7"])):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / name, *SHORT, *criterion))
    stock, chunked = _state(tmp_path / "stock" / "checkpoint_last.pt"), _state(tmp_path / "chunked" / "checkpoint_last.pt")
    adapters = [k for k in stock if ".adapter_bank." in k]
    assert adapters and any(".up." in k and stock[k].abs().sum() > 0 for k in adapters)  # trained (up starts at 0)
    assert all(torch.allclose(stock[k], chunked[k], atol=1e-5) for k in adapters)


def test_full_fine_tuning_with_the_chunked_criterion_matches(nmt_run, tmp_path):
    """The output projection's (shared embeddings') gradient is written by the chunked backward too."""
    from nmt_helpers import LANG_FLAGS, SHAPE_FLAGS, TRAIN_FLAGS

    for name, criterion in (("stock", ["--criterion", "label_smoothed_cross_entropy"]),
                            ("chunked", ["--criterion", "chunked_label_smoothed_cross_entropy", "--loss-chunk", "5"])):
        run_train([str(nmt_run.data), "--user-dir", USER_DIR, "--task", "translation_multi_simple_epoch", *LANG_FLAGS,
                   "--arch", "transformer", *SHAPE_FLAGS, *TRAIN_FLAGS, "--finetune-from-model", str(nmt_run.base),
                   "--save-dir", str(tmp_path / name), *SHORT, *criterion])
    stock, chunked = _state(tmp_path / "stock" / "checkpoint_last.pt"), _state(tmp_path / "chunked" / "checkpoint_last.pt")
    embed = "encoder.embed_tokens.weight"
    assert not torch.equal(stock[embed], _state(nmt_run.base)[embed])
    # Left out: the attention key biases, whose true gradient is zero (a softmax over keys ignores a bias added to
    # every key), so Adam turns rounding noise into lr-sized steps in either run.  equal_nan: fairseq's sinusoidal
    # positions keep an uninitialised _float_tensor buffer.
    compared = [k for k in stock if not k.endswith("k_proj.bias")]
    assert all(torch.allclose(stock[k], chunked[k], atol=1e-5, equal_nan=True) for k in compared)


def test_report_accuracy_is_refused(nmt_run, tmp_path):
    with pytest.raises(ValueError, match="report-accuracy"):
        run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "x", *SHORT, "--criterion",
                                     "chunked_label_smoothed_cross_entropy", "--report-accuracy"))
