"""Extractive QA (SQuAD, XQuAD, MLQA): answer spans over windows of the context with a doc stride."""

from __future__ import annotations

import collections

from datasets import Dataset
from transformers import AutoModelForQuestionAnswering, DataCollatorWithPadding

from ..data import HubDatasetRef
from ..datasets_io import hub_rows, load_squad, tokenise
from ..metrics import squad_scores
from .batching import run_batches

MODEL_CLASS = AutoModelForQuestionAnswering
DOC_STRIDE = 128
MAX_ANSWER_TOKENS = 30


def read(source, labels_path=None) -> Dataset:
    """SQuAD JSON (a path), or a hub data set in SQuAD's columns (``HubDatasetRef``)."""
    return hub_rows(source, "squad") if isinstance(source, HubDatasetRef) else load_squad(source)


def label_list(examples) -> list[str]:
    return ["start", "end"]


def _question(question: str, tokenizer, limit: int) -> str:
    """The question, cut to ``limit`` tokens: a longer one leaves no room for the context windows (tokenizers panics)."""
    ids = tokenizer(question, add_special_tokens=False)["input_ids"]
    return question if len(ids) <= limit else tokenizer.decode(ids[:limit])


def _windows(batch: dict, tokenizer, max_length: int, stride: int):
    """Windows of each context (``batch``: columns ``question`` and ``context``) with a doc stride."""
    stride = min(stride, max_length // 4)
    questions = [_question(question, tokenizer, max_length // 2) for question in batch["question"]]
    return tokenizer(questions, batch["context"], truncation="only_second",
                     max_length=max_length, stride=stride, return_overflowing_tokens=True,
                     return_offsets_mapping=True)


def _train_windows(batch: dict, tokenizer, max_length: int) -> dict:
    """One feature per window; a window without the answer points at the first token (<s>)."""
    encoding = _windows(batch, tokenizer, max_length, DOC_STRIDE)
    starts, ends = [], []
    for i, offsets in enumerate(encoding["offset_mapping"]):
        answers = batch["answers"][encoding["overflow_to_sample_mapping"][i]]
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        context = [k for k, s in enumerate(encoding.sequence_ids(i)) if s == 1]
        start = end = 0
        if context and offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char:
            start = next(k for k in context if offsets[k][1] > start_char)
            end = next(k for k in reversed(context) if offsets[k][0] < end_char)
        starts.append(start)
        ends.append(end)
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"],
            "start_positions": starts, "end_positions": ends}


def _eval_windows(batch: dict, indices: list[int], tokenizer, max_length: int) -> dict:
    """Windows with their question's index and the character offsets of their context tokens (None elsewhere)."""
    encoding = _windows(batch, tokenizer, max_length, DOC_STRIDE)
    offsets = [[list(o) if s == 1 else None for o, s in zip(offsets, encoding.sequence_ids(i))]
               for i, offsets in enumerate(encoding["offset_mapping"])]
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "offsets": offsets,
            "example_index": [indices[k] for k in encoding["overflow_to_sample_mapping"]]}


def build_features(examples, tokenizer, labels, max_length: int = 384) -> Dataset:
    """Window features with answer positions (``Dataset.map``, batched, in the ``datasets`` cache)."""
    return tokenise(examples, _train_windows, tokenizer=tokenizer, max_length=max_length)


def collator(tokenizer):
    return DataCollatorWithPadding(tokenizer)


def evaluate(model, tokenizer, examples, labels, lang=None, batch_size=32, max_length=384) -> dict:
    """Best span (start <= end, at most 30 tokens) over all windows; SQuAD v1.1 or MLQA (``lang``) EM/F1."""
    windows = tokenise(examples, _eval_windows, with_indices=True, tokenizer=tokenizer, max_length=max_length)
    batches = run_batches(model, windows.select_columns(["input_ids", "attention_mask"]), collator(tokenizer),
                          batch_size, "qa eval")
    starts = [row for out in batches for row in out["start_logits"]]
    ends = [row for out in batches for row in out["end_logits"]]
    contexts, qids = examples["context"], examples["id"]
    best: dict[int, tuple[float, str]] = collections.defaultdict(lambda: (float("-inf"), ""))
    for i, (offsets, index) in enumerate(zip(windows["offsets"], windows["example_index"])):
        context = contexts[index]
        candidates = [k for k, o in enumerate(offsets) if o is not None]
        top = sorted(candidates, key=lambda k: -float(starts[i][k]))[:20]
        top_end = sorted(candidates, key=lambda k: -float(ends[i][k]))[:20]
        for s in top:
            for e in top_end:
                if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                    continue
                score = float(starts[i][s]) + float(ends[i][e])
                if score > best[index][0]:
                    best[index] = (score, context[offsets[s][0]:offsets[e][1]])
    predictions = {qids[i]: text for i, (_, text) in best.items()}
    gold = {qid: answers["text"] for qid, answers in zip(qids, examples["answers"])}
    mlqa_lang = lang  # the caller passes a language only for MLQA-style scoring
    scores = squad_scores(predictions, gold, lang=mlqa_lang)
    return {**scores, "num_examples": len(examples), "main_metric": "f1",
            "normalisation": f"mlqa:{mlqa_lang}" if mlqa_lang else "squad_v1.1"}
