"""NER as token classification, labelling the first sub-token of each word (MAD-X, WikiANN).

Two trivial baselines, for ``xling.comparison``: ``majority_baseline`` tags
every word O (the majority tag; entity F1 0, so beating it says nothing) and
``capitalised_baseline`` tags every capitalised word but a sentence's first
as a name, runs of them as one entity (in English and Polish most names are
capitalised, and a sentence's first word is capitalised whether or not it is
a name).  The second is the comparison's baseline row.
"""

from __future__ import annotations

from collections import Counter

from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from ..data import NerSentence, read_ner
from ..metrics import entity_f1
from .batching import run_batches

MODEL_CLASS = AutoModelForTokenClassification
IGNORE = -100


def read(path, labels_path=None) -> list[NerSentence]:
    return read_ner(path)


def label_list(examples: list[NerSentence]) -> list[str]:
    """Sorted tags of the training data, with O first."""
    tags = sorted({t for s in examples for t in s.tags} - {"O"})
    return ["O"] + tags


def _encode(sentence: NerSentence, tokenizer, label_ids: dict[str, int] | None, max_length: int) -> dict:
    encoding = tokenizer(sentence.tokens, is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = encoding.word_ids()
    labels, first = [], []
    previous = None
    for position, word in enumerate(word_ids):
        is_first = word is not None and word != previous
        if is_first:
            first.append(position)
        tag = sentence.tags[word] if is_first else None
        labels.append(IGNORE if tag is None or label_ids is None else label_ids.get(tag, 0))
        previous = word
    feature = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "labels": labels}
    return feature, first


def build_features(examples, tokenizer, labels: list[str], max_length: int = 128) -> list[dict]:
    label_ids = {t: i for i, t in enumerate(labels)}
    unknown = sorted({t for s in examples for t in s.tags} - set(label_ids))
    if unknown:
        raise ValueError(f"tags {unknown} are not among the task's labels {labels}")
    return [_encode(s, tokenizer, label_ids, max_length)[0] for s in examples]


def collator(tokenizer):
    return DataCollatorForTokenClassification(tokenizer)


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Entity-level micro F1; words cut off by truncation are predicted 'O'."""
    encoded = [_encode(s, tokenizer, None, max_length) for s in examples]
    features = [f for f, _ in encoded]
    batches = run_batches(model, features, collator(tokenizer), batch_size, "ner eval")
    predictions = [row.argmax(-1).tolist() for out in batches for row in out["logits"]]
    predicted_tags = []
    for sentence, (_, first), pred in zip(examples, encoded, predictions):
        tags = [labels[pred[p]] for p in first]
        predicted_tags.append(tags + ["O"] * (len(sentence.tags) - len(tags)))
    return _scores(examples, predicted_tags)


def _scores(examples: list[NerSentence], predicted: list[list[str]]) -> dict:
    scores = entity_f1([s.tags for s in examples], predicted)
    return {"f1": 100 * scores["f1"], "precision": 100 * scores["precision"], "recall": 100 * scores["recall"],
            "num_examples": len(examples), "main_metric": "f1"}


def majority_baseline(train_examples: list[NerSentence], examples: list[NerSentence]) -> dict:
    """Entity F1 of tagging every word O, the majority tag: 0 (no entity predicted)."""
    return {**_scores(examples, [["O"] * len(s.tags) for s in examples]), "majority_label": "O"}


def capitalised_tags(tokens: list[str], entity: str) -> list[str]:
    """IOB2 tags naming every run of capitalised words, the sentence's first word (the first with a letter) left out."""
    first = next((i for i, word in enumerate(tokens) if any(c.isalpha() for c in word)), len(tokens))
    tags, inside = [], False
    for i, word in enumerate(tokens):
        name = i > first and word[0].isupper()
        tags.append(("I-" if inside else "B-") + entity if name else "O")
        inside = name
    return tags


def capitalised_baseline(train_examples: list[NerSentence], examples: list[NerSentence]) -> dict:
    """Entity F1 of ``capitalised_tags``, with the training data's most frequent entity type."""
    types = Counter(t[2:] for s in train_examples for t in s.tags if t.startswith("B-"))
    if not types:
        raise ValueError("the training data has no entity: no type for the capitalised-words baseline")
    entity = min(types, key=lambda t: (-types[t], t))
    return {**_scores(examples, [capitalised_tags(s.tokens, entity) for s in examples]), "entity_type": entity}
