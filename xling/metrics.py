"""Metrics for the MAD-X tasks, written from the official scoring rules.

- NER: entity-level micro F1 (seqeval, the conlleval.pl rules).
- QA: SQuAD v1.1 exact match and token F1 (``evaluate-v1.1.py``), and MLQA's
  language-specific normalisation (``mlqa_evaluation_v1.py``, Lewis et al.
  2020): per-language article lists, whitespace tokenisation except for zh,
  which is scored by character.
- Multiple choice and POS tagging: accuracy; sentence classification: accuracy and macro F1.

The ``evaluate`` library loads its metric scripts from the hub, which fails
offline, so the rules are implemented here and pinned by golden tests.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from typing import Iterable, Mapping, Sequence

# -- NER ---------------------------------------------------------------------


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision, recall and F1 over IOB2 tag sequences (seqeval, default mode)."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted ones")
    gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
    return {
        "precision": float(precision_score(gold, predicted)),
        "recall": float(recall_score(gold, predicted)),
        "f1": float(f1_score(gold, predicted)),
    }


# -- QA ----------------------------------------------------------------------

#: MLQA's article lists (mlqa_evaluation_v1.py); languages without articles use none.
MLQA_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}

_MLQA_PUNCT = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}.union(string.punctuation)
_SQUAD_PUNCT = frozenset(string.punctuation)
_MLQA_WHITESPACE_LANGS = {"en", "es", "hi", "vi", "de", "ar"}
_MLQA_MIXED_SEGMENTATION_LANGS = {"zh"}


def normalize_squad(text: str) -> str:
    """SQuAD v1.1: lower case, drop ASCII punctuation, the articles a/an/the, and extra white space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _SQUAD_PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokenisation: every CJK character or punctuation mark alone, other runs by white space."""
    segs: list[str] = []
    buffer = ""
    for char in text:
        if re.search(r"[\u4e00-\u9fa5]", char) or char in _MLQA_PUNCT:
            if buffer:
                segs.extend(buffer.split())
                buffer = ""
            segs.append(char)
        else:
            buffer += char
    if buffer:
        segs.extend(buffer.split())
    return segs


def normalize_mlqa(text: str, lang: str) -> str:
    """MLQA: lower case, drop all Unicode punctuation, the language's articles, and extra white space."""
    if lang not in MLQA_ARTICLES:
        raise ValueError(f"MLQA normalisation has no rules for language {lang!r}; known: {', '.join(sorted(MLQA_ARTICLES))}")
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _MLQA_PUNCT)
    pattern = MLQA_ARTICLES[lang]
    if pattern is not None:
        text = re.sub(pattern, " ", text)
    if lang in _MLQA_WHITESPACE_LANGS:
        tokens = text.split()
    else:
        tokens = _mixed_segmentation(text)
    return " ".join(t for t in tokens if t.strip())


def _tokens(text: str, lang: str | None) -> list[str]:
    if lang is None:
        return normalize_squad(text).split()
    return normalize_mlqa(text, lang).split()


def qa_f1(prediction: str, gold: str, lang: str | None = None) -> float:
    """Token-overlap F1 of one prediction against one gold answer (SQuAD v1.1; MLQA rules when ``lang``)."""
    pred, ref = _tokens(prediction, lang), _tokens(gold, lang)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def qa_exact(prediction: str, gold: str, lang: str | None = None) -> float:
    if lang is None:
        return float(normalize_squad(prediction) == normalize_squad(gold))
    return float(normalize_mlqa(prediction, lang) == normalize_mlqa(gold, lang))


def squad_scores(predictions: Mapping[str, str], answers: Mapping[str, Iterable[str]], lang: str | None = None) -> dict[str, float]:
    """EM and F1 in percent, each the max over gold answers, averaged over questions.

    As in the official scripts, a question without a prediction scores 0.
    ``lang`` switches to MLQA's language-specific normalisation.
    """
    if not answers:
        raise ValueError("no gold answers to score against")
    exact = f1 = 0.0
    for qid, golds in answers.items():
        golds = list(golds)
        if qid not in predictions:
            continue
        pred = predictions[qid]
        exact += max(qa_exact(pred, g, lang) for g in golds)
        f1 += max(qa_f1(pred, g, lang) for g in golds)
    return {"exact_match": 100.0 * exact / len(answers), "f1": 100.0 * f1 / len(answers)}


# -- multiple choice ---------------------------------------------------------


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("accuracy of an empty set")
    return sum(int(g == p) for g, p in zip(gold, predicted)) / len(gold)


# -- classification ----------------------------------------------------------


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over the classes in gold or predicted (scikit-learn's ``f1_score(average="macro")``).

    >>> round(macro_f1(["a", "a", "b", "c"], ["a", "b", "b", "b"]), 4)
    0.3889
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("macro F1 of an empty set")
    scores = []
    for label in sorted(set(gold) | set(predicted)):
        tp = sum(1 for g, p in zip(gold, predicted) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted) if g == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)
