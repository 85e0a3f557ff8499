"""Seq2SeqTrainer trains only the adapters of a direction; the base stays bitwise the same."""

from __future__ import annotations

import pytest
import torch

from adapter_core import AdapterDropConfig, bapna_firat_2019
from seq2seq_models import source_batch, tiny_model
from xling.seq2seq import Seq2SeqAdapterHost
from xling.seq2seq_train import TranslationTrainingConfig, train_direction


def copy_task(model, rows: int = 32):
    """Target = source reversed: learnable by adapters on a frozen random base within a few dozen updates."""
    ids = source_batch(model, rows=rows, length=6, seed=3)
    eos = model.config.eos_token_id
    return [{"input_ids": row.tolist(), "labels": row[:-1].flip(0).tolist() + [eos]} for row in ids]


def loss(model, data) -> float:
    model.eval()
    with torch.no_grad():
        batch = {k: torch.tensor([d[k] for d in data]) for k in ("input_ids", "labels")}
        return float(model(**batch).loss)


@pytest.mark.parametrize("arch,route_by,trained", [("nllb", "pair", ["de-en"]), ("nllb", "lang", ["de", "en"]),
                                                    ("m2m100", "lang", ["de", "en"]), ("mbart50", "pair", ["de-en"]),
                                                    ("marian", "lang", ["de", "en"])])
def test_training_changes_only_the_direction_adapters(arch, route_by, trained, tmp_path):
    model = tiny_model(arch)
    host = Seq2SeqAdapterHost(model, route_by=route_by)
    host.add_adapter("fr-en" if route_by == "pair" else "fr", bapna_firat_2019(16, 8))  # another direction's
    base = {k: v.clone() for k, v in model.state_dict().items() if "seq2seq_adapters" not in k}
    others = {k: v.clone() for k, v in model.state_dict().items() if ".fr" in k}
    data = copy_task(model)
    config = TranslationTrainingConfig(src_lang="de", tgt_lang="en", output_dir=str(tmp_path), max_steps=30,
                                       batch_size=8, learning_rate=1e-2)
    names = train_direction(host, data, config, bapna_firat_2019(16, 8))
    assert names == trained
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in base.items()), "a base tensor changed"
    assert all(torch.equal(after[k], v) for k, v in others.items()), "another direction's adapter changed"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(any(f".adapters.{t}." in n for t in trained) for n in trainable)
    host.set_active(*(("de-en", "de-en") if route_by == "pair" else ("de", "en")))
    trained_loss = loss(model, data)
    host.set_active(None, None)
    assert trained_loss < loss(model, data) - 0.5


def test_adapter_drop_draw_follows_the_optimizer_step(tmp_path):
    host = Seq2SeqAdapterHost(tiny_model("m2m100"), route_by="pair")
    host.drop = AdapterDropConfig(mode="robust", max_dropped=1, seed=3)
    seen = []
    original = host._dropped
    host._dropped = lambda side, index: seen.append((host.step, host.model.training)) or original(side, index)
    config = TranslationTrainingConfig(src_lang="de", tgt_lang="en", output_dir=str(tmp_path), max_steps=3, batch_size=4)
    train_direction(host, copy_task(host.model, rows=8), config, bapna_firat_2019(16, 8))
    assert sorted({step for step, training in seen if training}) == [0, 1, 2]


def test_mixed_direction_batches_route_each_row_and_train_language_adapters_jointly(tmp_path):
    model = tiny_model("mbart50")
    host = Seq2SeqAdapterHost(model, route_by="lang")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    directions = [("de", "en"), ("fr", "en"), ("en", "de")]
    data = [dict(row, src_lang=s, tgt_lang=t) for i, row in enumerate(copy_task(model, rows=36))
            for s, t in [directions[i % 3]]]
    config = TranslationTrainingConfig(output_dir=str(tmp_path), max_steps=30, batch_size=9, learning_rate=1e-2)
    assert sorted(train_direction(host, data, config, bapna_firat_2019(16, 8))) == ["de", "en", "fr"]
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in base.items())
    # The batch key routes exactly as the routing context does, row by row, and never reaches the model.
    rows = data[:6]
    batch = {k: torch.tensor([d[k] for d in rows]) for k in ("input_ids", "labels")}
    pairs = [(d["src_lang"], d["tgt_lang"]) for d in rows]
    keyed = model(**batch, translation_directions=pairs)
    with host.routed([p[0] for p in pairs], [p[1] for p in pairs]):
        assert torch.equal(keyed.logits, model(**batch).logits)
    host.set_active(None, None)
    bare = model(**batch).loss
    assert float(keyed.loss) < float(bare) - 0.5
