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

from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding

from ..data import DataError, TextExample, read_labelled_texts
from ..metrics import accuracy, macro_f1
from .batching import run_batches

MODEL_CLASS = AutoModelForSequenceClassification


def read(path, labels_path=None) -> list[TextExample]:
    return read_labelled_texts(path)


def label_list(examples: list[TextExample]) -> list[str]:
    """The sorted labels of the training data."""
    return sorted({e.label for e in examples})


def check_labels(examples: list[TextExample], labels: list[str]) -> None:
    """A DataError naming the first example whose label is not in the task's label set."""
    known = set(labels)
    for example in examples:
        if example.label not in known:
            raise DataError(f"{example.origin}: label {example.label!r} is not in the task's label set "
                            f"{labels} (the labels of its training data)")


def build_features(examples, tokenizer, labels, max_length: int = 128) -> list[dict]:
    check_labels(examples, labels)
    ids = {label: i for i, label in enumerate(labels)}
    encoding = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
    return [{"input_ids": encoding["input_ids"][i], "attention_mask": encoding["attention_mask"][i],
             "labels": ids[e.label]} for i, e in enumerate(examples)]


def collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)


def scores(gold: list[str], predicted: list[str]) -> dict:
    return {"accuracy": 100 * accuracy(gold, predicted), "macro_f1": 100 * macro_f1(gold, predicted),
            "num_examples": len(gold), "main_metric": "accuracy"}


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Accuracy and macro F1 (percent) of the arg-max class."""
    check_labels(examples, labels)
    encoding = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
    features = [{"input_ids": ids, "attention_mask": mask}
                for ids, mask in zip(encoding["input_ids"], encoding["attention_mask"])]
    batches = run_batches(model, features, collator(tokenizer), batch_size, "classification eval")
    predicted = [labels[int(i)] for out in batches for i in out["logits"].argmax(-1)]
    return scores([e.label for e in examples], predicted)


def majority_baseline(train_examples: list[TextExample], examples: list[TextExample]) -> dict:
    """Scores of predicting the most frequent training label (ties: the first in sorted order) for every example."""
    labels = label_list(train_examples)
    check_labels(examples, labels)
    counts = Counter(e.label for e in train_examples)
    majority = min(labels, key=lambda label: (-counts[label], label))
    return {**scores([e.label for e in examples], [majority] * len(examples)), "majority_label": majority}
