"""POS tagging as token classification (the 12 universal tags of Petrov et al. 2012), scored by token accuracy.

The first sub-token of each word carries its tag, as for NER (``ner.encode_first_subtokens``).
Words cut off by truncation count as wrong.  The tag set is the training
data's; an evaluation file with another tag is an error naming its file and
line.  ``majority_baseline`` tags every word with the most frequent training tag.
"""

from __future__ import annotations

from collections import Counter

from datasets import Dataset
from transformers import AutoModelForTokenClassification

from ..data import DataError
from ..data import HubDatasetRef
from ..datasets_io import hub_rows, load_panx
from ..metrics import accuracy
from .ner import WORD_COLUMNS, collator, encode_first_subtokens, predict_first_subtokens

MODEL_CLASS = AutoModelForTokenClassification
__all__ = ["MODEL_CLASS", "read", "label_list", "build_features", "collator", "evaluate", "majority_baseline"]


def read(source, labels_path=None) -> Dataset:
    """PAN-X layout (``lang:word<TAB>TAG``), any tag spelling (``data-prep pos`` writes it), or a hub data set
    with tokens and pos_tags/upos (``HubDatasetRef``)."""
    return hub_rows(source, "tagged") if isinstance(source, HubDatasetRef) else load_panx(source, iob2=False)


def label_list(examples: Dataset) -> list[str]:
    return sorted({t for tags in examples["tags"] for t in tags})


def check_tags(examples: Dataset, labels: list[str]) -> None:
    known = set(labels)
    for tags, origin in zip(examples["tags"], examples["origin"]):
        for i, tag in enumerate(tags):
            if tag not in known:
                line = origin.rsplit(":", 1)
                where = f"{line[0]}:{int(line[1]) + i}" if len(line) == 2 and line[1].isdigit() else origin
                raise DataError(f"{where}: tag {tag!r} is not in the task's tag set {labels} (the tags of its training data)")


def build_features(examples, tokenizer, labels: list[str], max_length: int = 128) -> Dataset:
    check_tags(examples, labels)
    ids = {t: i for i, t in enumerate(labels)}
    return encode_first_subtokens(examples, tokenizer, ids, max_length).remove_columns(WORD_COLUMNS)


def scores(gold: list[list[str]], predicted: list[list[str]], num_examples: int) -> dict:
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in predicted for t in s]
    return {"accuracy": 100 * accuracy(flat_gold, flat_pred), "num_tokens": len(flat_gold),
            "num_examples": num_examples, "main_metric": "accuracy"}


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Token accuracy (percent) over all words."""
    check_tags(examples, labels)
    gold = list(examples["tags"])
    # words without a sub-token (truncated, or given no piece) count as wrong
    predicted = predict_first_subtokens(model, tokenizer, examples, labels, batch_size, max_length, "pos eval",
                                        missing="")
    return scores(gold, predicted, len(examples))


def majority_baseline(train_examples: Dataset, examples: Dataset) -> dict:
    """Token accuracy of tagging every word with the most frequent training tag (ties: first in sorted order)."""
    labels = label_list(train_examples)
    check_tags(examples, labels)
    counts = Counter(t for tags in train_examples["tags"] for t in tags)
    majority = min(labels, key=lambda t: (-counts[t], t))
    gold = list(examples["tags"])
    return {**scores(gold, [[majority] * len(tags) for tags in gold], len(examples)),
            "majority_label": majority}
