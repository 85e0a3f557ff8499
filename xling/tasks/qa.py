"""Extractive QA (SQuAD, XQuAD, MLQA): answer spans over windows of the context with a doc stride."""

from __future__ import annotations

import collections

from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

from ..data import QaExample, read_squad
from ..metrics import squad_scores
from .batching import run_batches

MODEL_CLASS = AutoModelForQuestionAnswering
DOC_STRIDE = 128
MAX_ANSWER_TOKENS = 30


def read(path, labels_path=None) -> list[QaExample]:
    return read_squad(path)


def label_list(examples) -> list[str]:
    return ["start", "end"]


def _question(question: str, tokenizer, limit: int) -> str:
    """The question, cut to ``limit`` tokens: a longer one leaves no room for the context windows (tokenizers panics)."""
    ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    return question if len(ids) <= limit else tokenizer.decode(ids[:limit])


def _windows(examples, tokenizer, max_length: int, stride: int):
    stride = min(stride, max_length // 4)
    questions = [_question(e.question, tokenizer, max_length // 2) for e in examples]
    return tokenizer(questions, [e.context for e in examples], truncation="only_second",
                     max_length=max_length, stride=stride, return_overflowing_tokens=True,
                     return_offsets_mapping=True)


def build_features(examples, tokenizer, labels, max_length: int = 384) -> list[dict]:
    """One feature per window; a window without the answer points at the first token (<s>)."""
    encoding = _windows(examples, tokenizer, max_length, DOC_STRIDE)
    features = []
    for i, offsets in enumerate(encoding["offset_mapping"]):
        example = examples[encoding["overflow_to_sample_mapping"][i]]
        sequence_ids = encoding.sequence_ids(i)
        start_char = example.starts[0]
        end_char = start_char + len(example.answers[0])
        context = [k for k, s in enumerate(sequence_ids) if s == 1]
        start = end = 0
        if context and offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char:
            start = next(k for k in context if offsets[k][1] > start_char)
            end = next(k for k in reversed(context) if offsets[k][0] < end_char)
        features.append({"input_ids": encoding["input_ids"][i], "attention_mask": encoding["attention_mask"][i],
                         "start_positions": start, "end_positions": end})
    return features


def collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=384) -> dict:
    """Best span (start <= end, at most 30 tokens) over all windows; SQuAD v1.1 or MLQA (``lang``) EM/F1."""
    encoding = _windows(examples, tokenizer, max_length, DOC_STRIDE)
    features = [{"input_ids": ids, "attention_mask": mask}
                for ids, mask in zip(encoding["input_ids"], encoding["attention_mask"])]
    batches = run_batches(model, features, collator(tokenizer), batch_size, "qa eval")
    starts = [row for out in batches for row in out["start_logits"]]
    ends = [row for out in batches for row in out["end_logits"]]
    best: dict[int, tuple[float, str]] = collections.defaultdict(lambda: (float("-inf"), ""))
    for i, offsets in enumerate(encoding["offset_mapping"]):
        index = encoding["overflow_to_sample_mapping"][i]
        context = examples[index].context
        sequence_ids = encoding.sequence_ids(i)
        candidates = [k for k, s in enumerate(sequence_ids) if s == 1]
        top = sorted(candidates, key=lambda k: -float(starts[i][k]))[:20]
        top_end = sorted(candidates, key=lambda k: -float(ends[i][k]))[:20]
        for s in top:
            for e in top_end:
                if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                    continue
                score = float(starts[i][s]) + float(ends[i][e])
                if score > best[index][0]:
                    best[index] = (score, context[offsets[s][0]:offsets[e][1]])
    predictions = {examples[i].qid: text for i, (_, text) in best.items()}
    gold = {e.qid: e.answers for e in examples}
    mlqa_lang = lang  # the caller passes a language only for MLQA-style scoring
    scores = squad_scores(predictions, gold, lang=mlqa_lang)
    return {**scores, "num_examples": len(examples), "main_metric": "f1",
            "normalisation": f"mlqa:{mlqa_lang}" if mlqa_lang else "squad_v1.1"}
