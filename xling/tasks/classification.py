"""Sentence classification (MultiEmo sentiment): a task adapter with a classification head on the first token.

``AutoModelForSequenceClassification`` pools the first token: XLM-R's head
is dense + tanh + projection on ``<s>``, BERT's the pooler on ``[CLS]``
(Devlin et al. 2019); both sit outside the encoder, so they train and are
saved with the task adapter.  The label set is the sorted set of the
training labels (saved in ``task.json``); an evaluation file with another
label is an error naming its file and line.  Scores: accuracy (main) and
macro F1; ``majority_baseline`` scores the most frequent training label.
"""

from __future__ import annotations

from collections import Counter

from datasets import Dataset
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from ..data import DataError
from ..data import HubDatasetRef
from ..datasets_io import hub_rows, load_labelled_texts, tokenise
from ..metrics import accuracy, macro_f1
from .batching import run_batches

MODEL_CLASS = AutoModelForSequenceClassification


def read(source, labels_path=None) -> Dataset:
    """jsonl ``{"text", "label"}`` (a path), or a hub data set with text and label (``HubDatasetRef``)."""
    return hub_rows(source, "text") if isinstance(source, HubDatasetRef) else load_labelled_texts(source)


def label_list(examples: Dataset) -> list[str]:
    """The sorted labels of the training data."""
    return sorted(set(examples["label"]))


def check_labels(examples: Dataset, labels: list[str]) -> None:
    """A DataError naming the first example whose label is not in the task's label set."""
    known = set(labels)
    for label, origin in zip(examples["label"], examples["origin"]):
        if label not in known:
            raise DataError(f"{origin}: label {label!r} is not in the task's label set "
                            f"{labels} (the labels of its training data)")


def _encode_batch(batch: dict, tokenizer, label_ids: dict[str, int] | None, max_length: int) -> dict:
    encoding = tokenizer(batch["text"], truncation=True, max_length=max_length)
    features = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
    return features if label_ids is None else {**features, "labels": [label_ids[label] for label in batch["label"]]}


def encode(examples: Dataset, tokenizer, label_ids: dict[str, int] | None, max_length: int) -> Dataset:
    """Tokenised texts (``Dataset.map``, batched, in the ``datasets`` cache); ``labels`` unless ``label_ids`` is None."""
    return tokenise(examples, _encode_batch, tokenizer=tokenizer, label_ids=label_ids, max_length=max_length)


def build_features(examples, tokenizer, labels, max_length: int = 128) -> Dataset:
    check_labels(examples, labels)
    return encode(examples, tokenizer, {label: i for i, label in enumerate(labels)}, max_length)


def collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)


def scores(gold: list[str], predicted: list[str]) -> dict:
    return {"accuracy": 100 * accuracy(gold, predicted), "macro_f1": 100 * macro_f1(gold, predicted),
            "num_examples": len(gold), "main_metric": "accuracy"}


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Accuracy and macro F1 (percent) of the arg-max class."""
    check_labels(examples, labels)
    features = encode(examples, tokenizer, None, max_length)
    batches = run_batches(model, features, collator(tokenizer), batch_size, "classification eval")
    predicted = [labels[int(i)] for out in batches for i in out["logits"].argmax(-1)]
    return scores(list(examples["label"]), predicted)


def majority_baseline(train_examples: Dataset, examples: Dataset) -> dict:
    """Scores of predicting the most frequent training label (ties: the first in sorted order) for every example."""
    labels = label_list(train_examples)
    check_labels(examples, labels)
    counts = Counter(train_examples["label"])
    majority = min(labels, key=lambda label: (-counts[label], label))
    return {**scores(list(examples["label"]), [majority] * len(examples)), "majority_label": majority}
