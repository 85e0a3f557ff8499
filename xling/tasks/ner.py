"""NER as token classification, labelling the first sub-token of each word (MAD-X, WikiANN).

Two trivial baselines, for ``studies.xling_comparison``: ``majority_baseline`` tags
every word O (the majority tag; entity F1 0, so beating it says nothing) and
``capitalised_baseline`` tags every capitalised word but a sentence's first
as a name, runs of them as one entity (in English and Polish most names are
capitalised, and a sentence's first word is capitalised whether or not it is
a name).  The second is the comparison's baseline row.
"""

from __future__ import annotations

from collections import Counter

from datasets import Dataset
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from ..data import HubDatasetRef
from ..datasets_io import hub_rows, load_ner, tokenise
from ..metrics import entity_f1
from .batching import run_batches

MODEL_CLASS = AutoModelForTokenClassification
IGNORE = -100


def read(source, labels_path=None) -> Dataset:
    """PAN-X text or WikiANN parquet (a path), or a hub data set with tokens and ner_tags (``HubDatasetRef``)."""
    return hub_rows(source, "ner") if isinstance(source, HubDatasetRef) else load_ner(source)


def label_list(examples: Dataset) -> list[str]:
    """Sorted tags of the training data, with O first."""
    tags = sorted({t for tags in examples["tags"] for t in tags} - {"O"})
    return ["O"] + tags


def _encode_batch(batch: dict, tokenizer, label_ids: dict[str, int] | None, max_length: int) -> dict:
    """Sub-token features of a batch of sentences; the first sub-token of each word carries its tag.

    Everything is keyed by the word's index (``word_ids``), never by its rank among the words that got
    sub-tokens: a word the tokenizer gives no piece (a lone space, U+200B/U+200C, LRM/RLM, U+FEFF, U+00A0,
    U+3000 for XLM-R) has no label and no prediction, and the words after it keep theirs.
    """
    encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    all_labels, all_first, all_words = [], [], []
    for row, tags in enumerate(batch["tags"]):
        labels, first, words = [], [], []
        previous = None
        for position, word in enumerate(encoding.word_ids(row)):
            is_first = word is not None and word != previous
            if is_first:
                first.append(position)
                words.append(word)
            tag = tags[word] if is_first else None
            labels.append(IGNORE if tag is None or label_ids is None else label_ids.get(tag, 0))
            previous = word
        all_labels.append(labels)
        all_first.append(first)
        all_words.append(words)
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "labels": all_labels,
            "first_subtokens": all_first, "first_subtoken_words": all_words}


def encode_first_subtokens(examples: Dataset, tokenizer, label_ids: dict[str, int] | None, max_length: int) -> Dataset:
    """``input_ids``, ``attention_mask``, ``labels`` and ``first_subtokens`` per sentence (``Dataset.map``, batched,
    in the ``datasets`` cache); ``label_ids=None``: every label ignored (evaluation)."""
    return tokenise(examples, _encode_batch, tokenizer=tokenizer, label_ids=label_ids, max_length=max_length)


#: The columns of ``encode_first_subtokens`` that say which word each first sub-token starts (not model inputs).
WORD_COLUMNS = ["first_subtokens", "first_subtoken_words"]


def build_features(examples, tokenizer, labels: list[str], max_length: int = 128) -> Dataset:
    label_ids = {t: i for i, t in enumerate(labels)}
    unknown = sorted({t for tags in examples["tags"] for t in tags} - set(label_ids))
    if unknown:
        raise ValueError(f"tags {unknown} are not among the task's labels {labels}")
    return encode_first_subtokens(examples, tokenizer, label_ids, max_length).remove_columns(WORD_COLUMNS)


def collator(tokenizer):
    return DataCollatorForTokenClassification(tokenizer)


def predict_first_subtokens(model, tokenizer, examples, labels, batch_size, max_length, desc,
                            missing: str = "O") -> list[list[str]]:
    """The predicted tag of every word, by word index: the tag of its first sub-token, or ``missing`` for a
    word without one (cut off by truncation, or given no piece by the tokenizer)."""
    encoded = encode_first_subtokens(examples, tokenizer, None, max_length)
    batches = run_batches(model, encoded.remove_columns(WORD_COLUMNS), collator(tokenizer), batch_size, desc)
    predictions = [row.argmax(-1).tolist() for out in batches for row in out["logits"]]
    tagged = []
    for tokens, first, words, pred in zip(examples["tokens"], encoded["first_subtokens"],
                                          encoded["first_subtoken_words"], predictions):
        tags = [missing] * len(tokens)
        for position, word in zip(first, words):
            tags[word] = labels[pred[position]]
        tagged.append(tags)
    return tagged


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=128) -> dict:
    """Entity-level micro F1; words without a sub-token (cut off by truncation, or given no piece) are
    predicted 'O'."""
    gold = list(examples["tags"])
    return _scores(gold, predict_first_subtokens(model, tokenizer, examples, labels, batch_size, max_length,
                                                 "ner eval"))


def _scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    scores = entity_f1(gold, predicted)
    return {"f1": 100 * scores["f1"], "precision": 100 * scores["precision"], "recall": 100 * scores["recall"],
            "num_examples": len(gold), "main_metric": "f1"}


def majority_baseline(train_examples: Dataset, examples: Dataset) -> dict:
    """Entity F1 of tagging every word O, the majority tag: 0 (no entity predicted)."""
    gold = list(examples["tags"])
    return {**_scores(gold, [["O"] * len(tags) for tags in gold]), "majority_label": "O"}


def capitalised_tags(tokens: list[str], entity: str) -> list[str]:
    """IOB2 tags naming every run of capitalised words, the sentence's first word (the first with a letter) left out."""
    first = next((i for i, word in enumerate(tokens) if any(c.isalpha() for c in word)), len(tokens))
    tags, inside = [], False
    for i, word in enumerate(tokens):
        name = i > first and word[0].isupper()
        tags.append(("I-" if inside else "B-") + entity if name else "O")
        inside = name
    return tags


def capitalised_baseline(train_examples: Dataset, examples: Dataset) -> dict:
    """Entity F1 of ``capitalised_tags``, with the training data's most frequent entity type."""
    types = Counter(t[2:] for tags in train_examples["tags"] for t in tags if t.startswith("B-"))
    if not types:
        raise ValueError("the training data has no entity: no type for the capitalised-words baseline")
    entity = min(types, key=lambda t: (-types[t], t))
    return {**_scores(list(examples["tags"]), [capitalised_tags(tokens, entity) for tokens in examples["tokens"]]),
            "entity_type": entity}
