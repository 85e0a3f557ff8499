"""POS tagging as token classification (the 12 universal tags of Petrov et al. 2012), scored by token accuracy.

The first sub-token of each word carries its tag, as for NER (``ner._encode``).
Words cut off by truncation count as wrong.  The tag set is the training
data's; an evaluation file with another tag is an error naming its file and
line.  ``majority_baseline`` tags every word with the most frequent training tag.
"""

from __future__ import annotations

from collections import Counter

from transformers import AutoModelForTokenClassification

from ..data import DataError, NerSentence, read_panx
from ..metrics import accuracy
from .batching import run_batches
from .ner import _encode as encode_first_subtokens
from .ner import collator

MODEL_CLASS = AutoModelForTokenClassification
__all__ = ["MODEL_CLASS", "read", "label_list", "build_features", "collator", "evaluate", "majority_baseline"]


def read(path, labels_path=None) -> list[NerSentence]:
    """PAN-X layout (``lang:word<TAB>TAG``), any tag spelling; ``data-prep pos`` writes it."""
    return read_panx(path, iob2=False)


def label_list(examples: list[NerSentence]) -> list[str]:
    return sorted({t for s in examples for t in s.tags})


def check_tags(examples: list[NerSentence], labels: list[str]) -> None:
    known = set(labels)
    for sentence in examples:
        for i, tag in enumerate(sentence.tags):
            if tag not in known:
                line = sentence.origin.rsplit(":", 1)
                where = f"{line[0]}:{int(line[1]) + i}" if len(line) == 2 and line[1].isdigit() else sentence.origin
                raise DataError(f"{where}: tag {tag!r} is not in the task's tag set {labels} (the tags of its training data)")


def build_features(examples, tokenizer, labels: list[str], max_length: int = 128) -> list[dict]:
    check_tags(examples, labels)
    ids = {t: i for i, t in enumerate(labels)}
    return [encode_first_subtokens(s, tokenizer, ids, max_length)[0] for s in examples]


def scores(gold: list[list[str]], predicted: list[list[str]], num_examples: int) -> dict:
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in predicted for t in s]
    return {"accuracy": 100 * accuracy(flat_gold, flat_pred), "num_tokens": len(flat_gold),
            "num_examples": num_examples, "main_metric": "accuracy"}


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Token accuracy (percent) over all words."""
    check_tags(examples, labels)
    encoded = [encode_first_subtokens(s, tokenizer, None, max_length) for s in examples]
    batches = run_batches(model, [f for f, _ in encoded], collator(tokenizer), batch_size, "pos eval")
    predictions = [row.argmax(-1).tolist() for out in batches for row in out["logits"]]
    predicted = []
    for sentence, (_, first), pred in zip(examples, encoded, predictions):
        tags = [labels[pred[p]] for p in first]
        predicted.append(tags + [""] * (len(sentence.tags) - len(tags)))  # truncated words: wrong
    return scores([s.tags for s in examples], predicted, len(examples))


def majority_baseline(train_examples: list[NerSentence], examples: list[NerSentence]) -> dict:
    """Token accuracy of tagging every word with the most frequent training tag (ties: first in sorted order)."""
    labels = label_list(train_examples)
    check_tags(examples, labels)
    counts = Counter(t for s in train_examples for t in s.tags)
    majority = min(labels, key=lambda t: (-counts[t], t))
    return {**scores([s.tags for s in examples], [[majority] * len(s.tags) for s in examples], len(examples)),
            "majority_label": majority}
