"""The biaffine parser head (shapes, loss), MST and greedy decoding, UAS/LAS by hand, and ``xling train-parser``
on a tiny encoder (full, adapter, generated): the base stays bitwise the same under adapters."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch

from xling.tasks.dependency import (BiaffineConfig, BiaffineParserHead, attachment_scores, greedy_heads, mst_heads)

from conftest import WORDS_EN


def test_head_shapes_and_loss():
    torch.manual_seed(0)
    head = BiaffineParserHead(BiaffineConfig(hidden_dim=32, num_relations=5, arc_dim=16, label_dim=8))
    vectors = torch.randn(2, 6, 32)  # row 0: root; 5 word slots
    assert head.arc_scores(vectors).shape == (2, 6, 6)
    heads = torch.tensor([[0, 0, 1, 1, 2, 0], [0, 2, 0, 0, 0, 0]])
    assert head.label_scores(vectors, heads).shape == (2, 6, 5)
    mask = torch.tensor([[False, True, True, True, True, False], [False, True, True, False, False, False]])
    labels = torch.zeros(2, 6, dtype=torch.long)
    loss = head.loss(vectors, heads, labels, mask)
    # U starts at zero: every candidate head equally likely, every label too
    expected = np.mean([np.log(5), np.log(5), np.log(5), np.log(5), np.log(3), np.log(3)]) + np.log(5)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert head.arc_weight.grad.abs().sum() > 0 and head.label_weight.grad.abs().sum() > 0


def test_attachment_scores_by_hand():
    gold_h, gold_l = [[2, 0, 2], [0, 1]], [["nsubj", "root", "obj"], ["root", "p"]]
    pred_h, pred_l = [[2, 0, 1], [0, 1]], [["nsubj", "root", "obj"], ["root", "amod"]]
    scores = attachment_scores(gold_h, gold_l, pred_h, pred_l)
    assert scores["words"] == 5
    assert scores["uas"] == pytest.approx(80.0)  # 4 of 5 heads
    assert scores["las"] == pytest.approx(60.0)  # 3 of 5 heads and labels
    with pytest.raises(ValueError, match="3 gold words but 2"):
        attachment_scores([[1, 0, 1]], [["a"] * 3], [[0, 1]], [["a"] * 2])


def _is_tree(heads) -> bool:
    n = len(heads)
    for start in range(1, n):
        seen, node = set(), start
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node]
    return True


def _brute_force(scores, single_root):
    n = len(scores)
    best, best_score = None, -np.inf
    for heads in itertools.product(range(n), repeat=n - 1):
        heads = (-1,) + heads
        if any(heads[i] == i for i in range(1, n)) or not _is_tree(heads):
            continue
        if single_root and sum(h == 0 for h in heads[1:]) != 1:
            continue
        total = sum(scores[i, heads[i]] for i in range(1, n))
        if total > best_score:
            best, best_score = heads, total
    return best_score


@pytest.mark.parametrize("seed", range(12))
def test_mst_is_the_best_tree(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(5, 5))
    for single_root in (True, False):
        heads = mst_heads(scores, single_root=single_root)
        assert heads[0] == -1 and _is_tree(heads)
        if single_root:
            assert (heads[1:] == 0).sum() == 1
        total = sum(scores[i, heads[i]] for i in range(1, 5))
        assert total == pytest.approx(_brute_force(scores, single_root))


def test_greedy_can_make_a_cycle_that_mst_breaks():
    scores = np.full((4, 4), -5.0)
    scores[1, 2], scores[2, 1] = 3.0, 3.0  # 1 <-> 2 like each other best
    scores[3, 1], scores[1, 0], scores[2, 0] = 2.0, 1.0, 0.5
    greedy = greedy_heads(scores)
    assert list(greedy[1:]) == [2, 1, 1] and not _is_tree(greedy)
    assert list(mst_heads(scores)[1:]) == [0, 1, 1]


def _write_treebank(path, n, seed):
    """Each word is headed by the word before it; the first is the root (a chain any encoder can learn)."""
    rng = random.Random(seed)
    blocks = []
    for s in range(n):
        words = [rng.choice(WORDS_EN) for _ in range(rng.randint(3, 7))]
        lines = [f"# sent_id = {seed}-{s}"] + [f"{i}\t{w}\t_\tX\t_\t_\t{i - 1}\t{'root' if i == 1 else 'next'}\t_\t_"
                                               for i, w in enumerate(words, start=1)]
        blocks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def treebanks(workspace):
    folder = workspace["root"] / "treebanks"
    folder.mkdir(exist_ok=True)
    for name, seed in (("a", 1), ("b", 2)):
        _write_treebank(folder / f"train.{name}.conllu", 40, seed)
        _write_treebank(folder / f"test.{name}.conllu", 8, seed + 10)
    (folder / "relations.json").write_text(json.dumps(["next", "root"]), encoding="utf-8")
    return folder


@pytest.mark.parametrize("method", ["full", "adapter", "generated"])
def test_train_parser_methods(workspace, treebanks, tmp_path, method, monkeypatch):
    from transformers import AutoModel

    from xling import parser_train

    encoders = []
    original = AutoModel.from_pretrained
    monkeypatch.setattr(AutoModel, "from_pretrained",
                        lambda *a, **k: encoders.append(original(*a, **k)) or encoders[-1])
    before = {k: v.clone() for k, v in original(str(workspace["model"]), add_pooling_layer=False).state_dict().items()}
    config = parser_train.ParserTrainConfig(method=method, max_steps=40, batch_size=8, learning_rate=3e-3,
                                            encoder_learning_rate=1e-3, condition_dim=4, device="cpu", seed=1)
    result = parser_train.train_parser(workspace["model"], treebanks, ["a", "b"], tmp_path / "r.json", config)
    assert json.loads((tmp_path / "r.json").read_text())["scores"] == result["scores"]
    assert set(result["scores"]) == {"a", "b"}
    assert all(0 <= s["las"] <= s["uas"] <= 100 for s in result["scores"].values())
    assert result["loss_last_10"] < result["loss_first_10"]
    after = encoders[0].state_dict()
    base_same = all(torch.equal(before[k], after[k]) for k in before)
    assert base_same == (method != "full")
    assert (result["adapter_parameters"] > 0) == (method != "full")
    if method == "generated":  # k (2md + m + d) per layer plus the 2 x k table
        d, m, layers = 32, 2, 2
        assert result["adapter_parameters"] == layers * 4 * (2 * m * d + m + d) + 2 * 4


def test_train_parser_bad_input(workspace, treebanks, tmp_path):
    from xling import parser_train
    from xling.data import DataError

    with pytest.raises(DataError, match="unknown method"):
        parser_train.train_parser(workspace["model"], treebanks, ["a"], tmp_path / "r.json",
                                  parser_train.ParserTrainConfig(method="lora"))
    with pytest.raises(DataError, match="relations.json"):
        parser_train.train_parser(workspace["model"], tmp_path, ["a"], tmp_path / "r.json",
                                  parser_train.ParserTrainConfig())


def test_parser_report_relations_and_table():
    from xling.parser_report import relation, summarize

    assert relation([80, 81, 82], [70, 71, 72]) == "holds"
    assert relation([70, 71, 72], [80, 81, 82]) == "reversed"
    assert relation([80, 84, 76], [79, 79, 79]) == "within spread"  # margin 1 < std 4

    def run(method, seed, las):
        scores = {"web": {"uas": las + 5, "las": las}, "wiki": {"uas": las + 6, "las": las + 1}}
        return {"method": method, "config": {"seed": seed}, "scores": scores,
                "mean": {"uas": las + 5.5, "las": las + 0.5}, "trainable_parameters": 10, "adapter_parameters": 4,
                "seconds_per_step": 1.0}

    table = summarize([run("adapter", s, 50 + s) for s in (1, 2, 3)] + [run("generated", s, 60 + s) for s in (1, 2, 3)])
    assert "| adapter | 1, 2, 3 | 10 | 4 | 57.0 ± 1.0 |" in table
    assert "| generated > adapter | holds | holds | holds |" in table
