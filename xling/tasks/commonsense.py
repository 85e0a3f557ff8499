"""Commonsense reasoning as multiple choice: XCOPA, COPA and SIQA (MAD-X trains on SIQA, then COPA)."""

from __future__ import annotations

import torch
from transformers import AutoModelForMultipleChoice

from ..data import ChoiceExample, read_choices
from ..metrics import accuracy
from .batching import run_batches

MODEL_CLASS = AutoModelForMultipleChoice


def read(path, labels_path=None) -> list[ChoiceExample]:
    return read_choices(path, labels_path)


def label_list(examples) -> list[str]:
    return [str(i) for i in range(max(len(e.choices) for e in examples))]


def _encode(example: ChoiceExample, tokenizer, max_length: int, num_choices: int) -> dict:
    if len(example.choices) != num_choices:
        raise ValueError(f"{example.origin}: {len(example.choices)} choices, but the other records have {num_choices}")
    first = [f"{example.context} {example.question}"] * num_choices
    encoding = tokenizer(first, list(example.choices), truncation=True, max_length=max_length)
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "labels": example.label}


def build_features(examples, tokenizer, labels, max_length: int = 128) -> list[dict]:
    """One (choices x tokens) block per example; all examples of one file have the same number of choices.

    The model scores each choice on its own, so a head trained on SIQA (3
    choices) evaluates COPA/XCOPA (2 choices), as in MAD-X.
    """
    return [_encode(e, tokenizer, max_length, len(examples[0].choices)) for e in examples]


def collator(tokenizer):
    """Pads the (choices x length) blocks of a batch to one length."""
    def collate(features: list[dict]) -> dict:
        length = max(len(ids) for f in features for ids in f["input_ids"])
        pad = tokenizer.pad_token_id
        ids = [[row + [pad] * (length - len(row)) for row in f["input_ids"]] for f in features]
        mask = [[row + [0] * (length - len(row)) for row in f["attention_mask"]] for f in features]
        batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}
        if "labels" in features[0]:
            batch["labels"] = torch.tensor([f["labels"] for f in features])
        return batch
    return collate


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    features = build_features(examples, tokenizer, labels, max_length)
    batches = run_batches(model, features, collator(tokenizer), batch_size, "copa eval")
    predicted = [int(i) for out in batches for i in out["logits"].argmax(-1)]
    return {"accuracy": 100 * accuracy([e.label for e in examples], predicted), "num_examples": len(examples),
            "main_metric": "accuracy"}
