"""Domain adapters (Bapna & Firat 2019, sec. 5: one adapter per domain for one language pair).

Two domains of en-de, ``news`` and ``med``, each trained in its own run with
``--adapters-by domain --adapter-domains news,med --adapter-domain NAME`` on
that domain's data: the first run starts from the base, the second from the
first run's checkpoint.  Each run trains its own domain's adapter only, the
base stays bitwise unchanged (and its file byte-identical), and generation
routes by ``--adapter-domain``.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import torch

from adapter_core import UnknownAdapterError

from nmt_corpus import binarize, render
from nmt_helpers import adapter_train_argv, generate, load, make_sample, route_of, run_train

DOMAIN_FLAGS = ["--lang-pairs", "en-de", "--adapters-by", "domain", "--adapter-domains", "news,med",
                "--max-update", "15", "--disable-validation", "--lr", "0.02"]


def _domain_corpus(raw: Path, concepts: range, seed: int) -> None:
    """en-de sentences over a subset of the concept vocabulary: each domain has its own words."""
    raw.mkdir(parents=True)
    rng = random.Random(seed)
    data = [[rng.choice(concepts) for _ in range(rng.randint(2, 5))] for _ in range(300)]
    for lang in ("en", "de"):
        (raw / f"train.en-de.{lang}").write_text("".join(render(lang, c) + "\n" for c in data), encoding="utf-8")


def _adapters(checkpoint: Path, domain: str) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, weights_only=True)["model"]
    return {k: v for k, v in state.items() if f".adapter_bank.adapters.{domain}." in k}


def test_two_domains_trained_in_turn_leave_the_base_unchanged(nmt_run, tmp_path):
    base_hash = hashlib.sha256(nmt_run.base.read_bytes()).hexdigest()
    data = {}
    for domain, concepts, seed in (("news", range(0, 6), 1), ("med", range(6, 12), 2)):
        _domain_corpus(tmp_path / "raw" / domain, concepts, seed)
        data[domain] = binarize(tmp_path / "raw" / domain, tmp_path / "bin" / domain, ["en-de"], splits=("train",))

    run_train(adapter_train_argv(data["news"], nmt_run.base.parent, tmp_path / "news", *DOMAIN_FLAGS,
                                 "--adapter-domain", "news"))
    news_checkpoint = tmp_path / "news" / "checkpoint_last.pt"
    argv = adapter_train_argv(data["med"], nmt_run.base.parent, tmp_path / "med", *DOMAIN_FLAGS,
                              "--adapter-domain", "med")
    argv[argv.index("--finetune-from-model") + 1] = str(news_checkpoint)  # continue from the news run
    run_train(argv)
    both_checkpoint = tmp_path / "med" / "checkpoint_last.pt"

    news_after_news, med_after_news = _adapters(news_checkpoint, "news"), _adapters(news_checkpoint, "med")
    news_after_med, med_after_med = _adapters(both_checkpoint, "news"), _adapters(both_checkpoint, "med")
    assert len(news_after_news) == len(med_after_med) == 4 * 6  # 4 layers x (LayerNorm, down, up) x (weight, bias)
    ups = [k for k in news_after_news if k.endswith("up.weight")]
    assert all(news_after_news[k].abs().sum() > 0 for k in ups)  # the news run trained news ...
    assert all(med_after_news[k.replace(".news.", ".med.")].abs().sum() == 0 for k in ups)  # ... and not med
    assert all(med_after_med[k.replace(".news.", ".med.")].abs().sum() > 0 for k in ups)  # the med run trained med
    assert all(torch.equal(news_after_news[k], news_after_med[k]) for k in news_after_news)  # and left news alone

    base = torch.load(nmt_run.base, weights_only=True)["model"]
    trained = torch.load(both_checkpoint, weights_only=True)["model"]
    assert set(trained) - set(base) == {k for k in trained if ".adapter_bank." in k}
    assert all(torch.equal(tensor, trained[key]) for key, tensor in base.items())
    assert hashlib.sha256(nmt_run.base.read_bytes()).hexdigest() == base_hash

    task, model, _ = load(data["med"], both_checkpoint, "en", "de", "--lang-pairs", "en-de", "--adapter-domain", "med")
    sample = make_sample(task, [("en", "de", "en6 en7 en8"), ("en", "de", "en9 en10")])
    assert route_of(model, sample).keys("encoder") == ["med", "med"]
    task, model, _ = load(data["med"], both_checkpoint, "en", "de", "--lang-pairs", "en-de", "--adapter-domain", "law")
    with pytest.raises(UnknownAdapterError, match="no encoder adapter for domain 'law'.*med, news"):
        generate(task, model, sample)
