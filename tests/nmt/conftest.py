"""Session fixtures: a tiny 3-language corpus, a 2-layer base and pair adapters, each trained once."""

from __future__ import annotations

import argparse
import os

import pytest

from nmt_corpus import binarize, write_corpus
from nmt_helpers import LANG_FLAGS, SHAPE_FLAGS, TRAIN_FLAGS, TRAIN_PAIRS, USER_DIR, adapter_train_argv, run_train


@pytest.fixture(scope="session")
def nmt_run(tmp_path_factory) -> argparse.Namespace:
    """Data, a base trained with translation_multi_simple_epoch, and pair adapters trained on top."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = tmp_path_factory.mktemp("nmt")
    write_corpus(root / "raw", TRAIN_PAIRS, {"train": 600, "valid": 40, "test": 12})
    write_corpus(root / "raw", ["de-fr"], {"test": 12})
    data = binarize(root / "raw", root / "bin", TRAIN_PAIRS)
    binarize(root / "raw", root / "bin", ["de-fr"], splits=("test",))
    base = root / "base"
    run_train([str(data), "--user-dir", USER_DIR, "--task", "translation_multi_simple_epoch", *LANG_FLAGS,
               "--arch", "transformer", *SHAPE_FLAGS, *TRAIN_FLAGS, "--max-epoch", "4", "--save-dir", str(base)])
    pair = root / "pair"
    run_train(adapter_train_argv(data, base, pair, "--max-epoch", "2", "--lr", "0.02"))
    return argparse.Namespace(root=root, data=data, base=base / "checkpoint_best.pt",
                              pair=pair / "checkpoint_last.pt")
