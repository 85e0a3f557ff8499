"""``xling train-parser``: a biaffine dependency parser on an encoder, three ways: full fine-tuning, a plain task
adapter, or UDapter's generated adapters.

- ``full``: every encoder weight and the head train (the encoder at its own,
  smaller learning rate).
- ``adapter``: the encoder is frozen; a MAD-X task adapter (Pfeiffer
  placement, reduction factor 16) and the head train.  One adapter serves
  every treebank.
- ``generated``: the encoder is frozen; Üstün et al. (2020)'s UDapter: the
  adapter at each layer is generated (``adapter_core.generated``) from the
  embedding of the sentence's treebank (its language, or here its domain),
  and the embeddings, generators and head train.  Every sample of a batch
  reads its own condition.

The treebanks are ``data-prep treebanks`` output: ``{train,test}.<name>.conllu``
plus ``relations.json``; ``--treebanks web wiki`` names them.  The results JSON
has UAS and LAS per test treebank (MST decoding with one root, every word
scored), trainable parameter counts and seconds per step.

    xling train-parser --model DIR --data-dir data/treebanks --treebanks web wiki --method generated \\
        --max-steps 300 --seed 1 --output results/generated-1.json
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adapter_core import ConditionEmbedding, active_adapters, atomic_write_json, madx_task
from data_prep.common import DataPrepError
from data_prep.treebanks import TreebankSentence, read_conllu

from .attach import SLOT, TransformersHost
from .data import DataError

METHODS = ("full", "adapter", "generated")
ADAPTER_NAME = "parser"


@dataclass
class ParserTrainConfig:
    """One parser training run."""

    # "full" (fine-tune everything), "adapter" (plain task adapter) or "generated" (UDapter).
    method: str = "generated"
    # Optimizer steps.
    max_steps: int = 300
    # Sentences per step (drawn from every treebank together).
    batch_size: int = 16
    # Learning rate of the head, adapters, generators and condition embeddings (AdamW).
    learning_rate: float = 1e-3
    # Learning rate of the encoder's own weights under "full" (BERT-style fine-tuning).
    encoder_learning_rate: float = 5e-5
    # Bottleneck width m = d / reduction_factor (MAD-X task adapters: 16).
    reduction_factor: float = 16.0
    # Width k of the condition embedding that the generators read (UDapter: 32 for its 13+ languages).
    condition_dim: int = 8
    # Longest input in sub-tokens; longer training sentences are left out, longer test words count as wrong.
    max_length: int = 160
    # Test sentences scored per treebank (0: all).
    eval_sentences: int = 0
    # Random seed (initialisation, order, dropout).
    seed: int = 0
    # "auto" (cuda when there is one), "cpu" or "cuda".
    device: str = "auto"


class EncoderParser(nn.Module):
    """Encoder (+ TransformersHost adapters) + condition embeddings + biaffine head; row 0 of the word vectors is [CLS]."""

    def __init__(self, encoder: nn.Module, num_relations: int, treebanks: list[str], config: ParserTrainConfig):
        super().__init__()
        self.encoder = encoder
        self.method = config.method
        hidden = encoder.config.hidden_size
        from .tasks.dependency import BiaffineConfig, BiaffineParserHead  # xling.tasks imports transformers: not at --help

        self.head = BiaffineParserHead(BiaffineConfig(hidden_dim=hidden, num_relations=num_relations))
        self.conditions = None
        self.host = None
        if config.method in ("adapter", "generated"):
            self.host = TransformersHost(encoder)
            adapter = madx_task(hidden, config.reduction_factor)
            if config.method == "generated":
                adapter = adapter.replace(kind="generated", condition_dim=config.condition_dim)
                self.conditions = ConditionEmbedding(list(treebanks), config.condition_dim)
            self.host.add_adapter(ADAPTER_NAME, role="task", config=adapter, invertible=False)
            self.host.set_active(ADAPTER_NAME)
            self.host.train_only([ADAPTER_NAME], train_head=False)

    def word_vectors(self, batch: dict) -> torch.Tensor:
        slots = {SLOT: ADAPTER_NAME} if self.host is not None else {}
        if self.conditions is not None:
            slots["condition"] = self.conditions(batch["treebank_ids"])
        with active_adapters(**slots):
            hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        index = batch["word_index"].unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return hidden.gather(1, index)

    def loss(self, batch: dict) -> torch.Tensor:
        return self.head.loss(self.word_vectors(batch), batch["heads"], batch["labels"], batch["word_mask"])


def encode_sentence(tokenizer, sentence: TreebankSentence, max_length: int) -> dict:
    """Sub-token ids and each word's first sub-token (position 0 for the root); words cut off get position -1."""
    encoding = tokenizer([w.form for w in sentence.words], is_split_into_words=True, truncation=True,
                         max_length=max_length)
    first = [-1] * len(sentence.words)
    for position, word in enumerate(encoding.word_ids()):
        if word is not None and first[word] == -1:
            first[word] = position
    return {"input_ids": encoding["input_ids"], "word_index": [0] + first}


def collate(items: list[dict], relation_ids: dict[str, int], device) -> dict:
    """Pad a list of encoded sentences (with their gold heads and labels) into batch tensors."""
    tokens = max(len(x["input_ids"]) for x in items)
    words = max(len(x["word_index"]) for x in items)
    batch = {"input_ids": torch.ones(len(items), tokens, dtype=torch.long),  # XLM-R's pad id is 1; masked anyway
             "attention_mask": torch.zeros(len(items), tokens, dtype=torch.long),
             "word_index": torch.zeros(len(items), words, dtype=torch.long),
             "word_mask": torch.zeros(len(items), words, dtype=torch.bool),
             "heads": torch.zeros(len(items), words, dtype=torch.long),
             "labels": torch.zeros(len(items), words, dtype=torch.long),
             "treebank_ids": torch.tensor([x["treebank_id"] for x in items])}
    for b, x in enumerate(items):
        n = len(x["input_ids"])
        batch["input_ids"][b, :n] = torch.tensor(x["input_ids"])
        batch["attention_mask"][b, :n] = 1
        index = torch.tensor(x["word_index"])
        batch["word_index"][b, :len(index)] = index.clamp(min=0)
        batch["word_mask"][b, 1:len(index)] = index[1:] >= 0
        batch["heads"][b, 1:len(index)] = torch.tensor([w.head for w in x["sentence"].words])
        batch["labels"][b, 1:len(index)] = torch.tensor([relation_ids.get(w.deprel, 0) for w in x["sentence"].words])
    return {k: v.to(device) for k, v in batch.items()}


def _read(path: Path) -> list[TreebankSentence]:
    try:
        return read_conllu(path)
    except DataPrepError as err:
        raise DataError(str(err)) from None


@torch.no_grad()
def evaluate(model: EncoderParser, items: list[dict], relations: list[str], relation_ids: dict, device,
             batch_size: int = 32) -> dict:
    """UAS/LAS of MST-decoded trees; a word whose sub-tokens were cut off counts as wrong."""
    from .tasks.dependency import attachment_scores, mst_heads

    model.eval()
    gold_h, gold_l, pred_h, pred_l = [], [], [], []
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        batch = collate(chunk, relation_ids, device)
        vectors = model.word_vectors(batch)
        arcs = model.head.arc_scores(vectors).float().cpu().numpy()
        trees = []
        for b, x in enumerate(chunk):
            n = len(x["word_index"])
            scores = arcs[b, :n, :n].copy()
            cut = [i for i in range(1, n) if x["word_index"][i] < 0]
            scores[:, cut] = -1e9  # a cut-off word can head nothing
            trees.append(mst_heads(scores))
        heads = torch.zeros_like(batch["heads"])
        for b, tree in enumerate(trees):
            heads[b, 1:len(tree)] = torch.tensor(tree[1:])
        labels = model.head.label_scores(vectors, heads).argmax(-1).cpu()
        for b, x in enumerate(chunk):
            words = x["sentence"].words
            gold_h.append([w.head for w in words])
            gold_l.append([w.deprel for w in words])
            cut = [x["word_index"][i + 1] < 0 for i in range(len(words))]
            pred_h.append([-1 if c else int(h) for c, h in zip(cut, trees[b][1:])])
            pred_l.append([relations[int(labels[b, i + 1])] for i in range(len(words))])
    model.train()
    return attachment_scores(gold_h, gold_l, pred_h, pred_l)


def train_parser(model_dir: str | Path, data_dir: str | Path, treebanks: list[str], output: str | Path,
                 config: ParserTrainConfig) -> dict:
    """Train one parser on every named treebank's train split, score each test split, write the results JSON."""
    from transformers import AutoModel, AutoTokenizer

    if config.method not in METHODS:
        raise DataError(f"unknown method {config.method!r}; known: {', '.join(METHODS)}")
    data_dir = Path(data_dir)
    relations_path = data_dir / "relations.json"
    if not relations_path.is_file():
        raise DataError(f"{relations_path}: missing (run data-prep treebanks first)")
    relations = json.loads(relations_path.read_text(encoding="utf-8"))
    relation_ids = {r: i for i, r in enumerate(relations)}
    random.seed(config.seed), np.random.seed(config.seed), torch.manual_seed(config.seed)
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if config.device == "auto" else config.device))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoder = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
    model = EncoderParser(encoder, len(relations), treebanks, config).to(device)
    train, tests, skipped = [], {}, 0
    for tid, name in enumerate(treebanks):
        for sentence in _read(data_dir / f"train.{name}.conllu"):
            item = encode_sentence(tokenizer, sentence, config.max_length)
            if min(item["word_index"][1:]) < 0:
                skipped += 1
                continue
            train.append({**item, "sentence": sentence, "treebank_id": tid})
        test = _read(data_dir / f"test.{name}.conllu")
        test = test[:config.eval_sentences] if config.eval_sentences else test
        tests[name] = [{**encode_sentence(tokenizer, s, config.max_length), "sentence": s, "treebank_id": tid}
                       for s in test]
    head_params = list(model.head.parameters()) + (list(model.conditions.parameters()) if model.conditions else [])
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": head_params, "lr": config.learning_rate}]
    if encoder_params:
        lr = config.encoder_learning_rate if config.method == "full" else config.learning_rate
        groups.append({"params": encoder_params, "lr": lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    warmup = max(1, config.max_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (config.max_steps - s) / max(1, config.max_steps - warmup))))
    trainable = sum(p.numel() for g in groups for p in g["params"])
    adapter_params = sum(p.numel() for p in encoder_params) if config.method != "full" else 0
    adapter_params += sum(p.numel() for p in model.conditions.parameters()) if model.conditions else 0
    model.train()
    order: list[int] = []
    losses, started = [], time.monotonic()
    for step in range(config.max_steps):
        if len(order) < config.batch_size:
            order += random.sample(range(len(train)), len(train))
        chunk = [train[i] for i in order[:config.batch_size]]
        del order[:config.batch_size]
        loss = model.loss(collate(chunk, relation_ids, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 5.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    seconds = time.monotonic() - started
    scores = {name: evaluate(model, items, relations, relation_ids, device) for name, items in tests.items()}
    result = {"method": config.method, "config": asdict(config), "treebanks": list(treebanks),
              "model": str(model_dir), "scores": scores,
              "mean": {k: float(np.mean([s[k] for s in scores.values()])) for k in ("uas", "las")},
              "trainable_parameters": trainable, "adapter_parameters": adapter_params,
              "head_parameters": sum(p.numel() for p in model.head.parameters()),
              "train_sentences": len(train), "train_sentences_too_long": skipped,
              "loss_first_10": float(np.mean(losses[:10])), "loss_last_10": float(np.mean(losses[-10:])),
              "seconds_per_step": seconds / max(1, config.max_steps), "device": str(device)}
    atomic_write_json(Path(output), result)
    return result


def add_command(sub) -> None:
    """``xling train-parser``."""
    parser = sub.add_parser("train-parser", help="biaffine dependency parser: full fine-tuning, a task adapter, "
                                                 "or UDapter's generated adapters")
    defaults = ParserTrainConfig()
    parser.add_argument("--model", required=True, help="local encoder directory (e.g. written by trim-vocab)")
    parser.add_argument("--data-dir", required=True, help="data-prep treebanks output ({train,test}.<name>.conllu)")
    parser.add_argument("--treebanks", nargs="+", required=True, help="treebank names, e.g. web wiki")
    parser.add_argument("--method", choices=METHODS, default=defaults.method, help="what trains")
    parser.add_argument("--output", required=True, help="results JSON")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="sentences per step")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help="head/adapter/generator learning rate")
    parser.add_argument("--encoder-learning-rate", type=float, default=defaults.encoder_learning_rate,
                        help="encoder learning rate under --method full")
    parser.add_argument("--reduction-factor", type=float, default=defaults.reduction_factor, help="adapter d/m")
    parser.add_argument("--condition-dim", type=int, default=defaults.condition_dim,
                        help="width of the treebank embedding (generated)")
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="longest input in sub-tokens")
    parser.add_argument("--eval-sentences", type=int, default=defaults.eval_sentences,
                        help="test sentences per treebank (0: all)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu or cuda")


def run(args) -> None:
    config = ParserTrainConfig(method=args.method, max_steps=args.max_steps, batch_size=args.batch_size,
                               learning_rate=args.learning_rate, encoder_learning_rate=args.encoder_learning_rate,
                               reduction_factor=args.reduction_factor, condition_dim=args.condition_dim,
                               max_length=args.max_length, eval_sentences=args.eval_sentences, seed=args.seed,
                               device=args.device)
    result = train_parser(args.model, args.data_dir, list(args.treebanks), args.output, config)
    shown = ", ".join(f"{k} UAS {v['uas']:.1f} LAS {v['las']:.1f}" for k, v in result["scores"].items())
    print(f"{config.method} seed {config.seed}: {shown} ({result['seconds_per_step']:.2f} s/step) -> {args.output}")
