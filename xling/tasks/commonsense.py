"""Commonsense reasoning as multiple choice: XCOPA, COPA and SIQA (MAD-X trains on SIQA, then COPA), and any data set
in the generic form ``{"context", "question", "choices": [...], "label"}`` (the Story Cloze Test of
``data-prep story-cloze``)."""

from __future__ import annotations

from collections import Counter

import torch
from datasets import Dataset
from transformers import AutoModelForMultipleChoice

from ..data import HubDatasetRef
from ..datasets_io import hub_rows, load_choices, tokenise
from ..metrics import accuracy
from .batching import run_batches

MODEL_CLASS = AutoModelForMultipleChoice


def read(source, labels_path=None) -> Dataset:
    """COPA/XCOPA, SIQA (+ its labels file) or generic multiple-choice jsonl, or a hub data set in their columns
    (``HubDatasetRef``)."""
    return hub_rows(source, "choice") if isinstance(source, HubDatasetRef) else load_choices(source, labels_path)


def label_list(examples) -> list[str]:
    """The choice indices ("0", "1", ...) of the records with the most choices; none for no records (the multiple-choice
    head scores each choice and needs no label names: ``eval-full`` passes ``[]``)."""
    if not len(examples):
        return []
    return [str(i) for i in range(max(len(choices) for choices in examples["choices"]))]


def _encode_batch(batch: dict, tokenizer, max_length: int, num_choices: int) -> dict:
    """One (choices x tokens) block per example: "context question" paired with each choice."""
    firsts, seconds = [], []
    for context, question, choices, origin in zip(batch["context"], batch["question"], batch["choices"], batch["origin"]):
        if len(choices) != num_choices:
            raise ValueError(f"{origin}: {len(choices)} choices, but the other records have {num_choices}")
        firsts += [f"{context} {question}"] * num_choices
        seconds += list(choices)
    encoding = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    blocks = range(0, len(firsts), num_choices)
    return {"input_ids": [encoding["input_ids"][k:k + num_choices] for k in blocks],
            "attention_mask": [encoding["attention_mask"][k:k + num_choices] for k in blocks],
            "labels": batch["label"]}


def build_features(examples, tokenizer, labels, max_length: int = 128) -> Dataset:
    """One (choices x tokens) block per example (``Dataset.map``, batched, in the ``datasets`` cache); all examples
    of one file have the same number of choices.

    The model scores each choice on its own, so a head trained on SIQA (3
    choices) evaluates COPA/XCOPA (2 choices), as in MAD-X.
    """
    return tokenise(examples, _encode_batch, tokenizer=tokenizer, max_length=max_length,
                    num_choices=len(examples[0]["choices"]))


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
    return {"accuracy": 100 * accuracy(list(examples["label"]), predicted), "num_examples": len(examples),
            "main_metric": "accuracy"}


def majority_baseline(train_examples: Dataset, examples: Dataset) -> dict:
    """Accuracy of always picking the choice at the most frequent training label index (ties: the lowest index)."""
    counts = Counter(train_examples["label"])
    majority = min(counts, key=lambda label: (-counts[label], label))
    predicted = [majority] * len(examples)
    return {"accuracy": 100 * accuracy(list(examples["label"]), predicted), "num_examples": len(examples),
            "main_metric": "accuracy", "majority_label": majority}
