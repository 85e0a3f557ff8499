"""Readers for the MAD-X data sets, from files the user downloaded.

- Monolingual text for MLM: one document or sentence per line.
- WikiANN: the Hugging Face parquet layout (``tokens``, ``ner_tags``) and the
  XTREME PAN-X layout (``lang:token<TAB>label``, a blank line between sentences).
- XQuAD, MLQA, SQuAD v1.1: SQuAD JSON.
- XCOPA, COPA, SIQA: jsonl; SIQA's gold labels (1-based) come in a separate file.

Malformed records raise ``DataError`` naming the file, the line (or JSON key)
and what is wrong; nothing is skipped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

#: WikiANN's label order (the ClassLabel of the Hugging Face data set).
WIKIANN_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


class DataError(ValueError):
    """A malformed input file; the message names the file and line or key."""


class ModelDirError(DataError):
    """A model directory that is missing, or that transformers cannot load (truncated or corrupt files)."""


_TYPE_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a string", int: "an integer"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(value, where: str, kind):
    """``value`` if it has the JSON type ``kind``, else a DataError naming ``where``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (int in kinds and isinstance(value, bool)):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise DataError(f"{where}: expected {wanted}, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _lines(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{number}: invalid UTF-8 ({err.reason} at byte {err.start})") from None
            if "\x00" in line:
                raise DataError(f"{path}:{number}: NUL byte")
            yield number, line.rstrip("\r\n")


def read_text(path: str | Path) -> list[str]:
    """Non-blank lines of a monolingual text file; an empty file is an error."""
    lines = [line.strip() for _, line in _lines(path) if line.strip()]
    if not lines:
        raise DataError(f"{path}: no text (the file is empty or blank)")
    return lines


# -- NER -----------------------------------------------------------------------


@dataclass
class NerSentence:
    """One sentence: words and their IOB2 tags."""

    # The words, as the data set splits them.
    tokens: list[str]
    # One IOB2 tag per word.
    tags: list[str]
    # Where the sentence came from, for error messages ("file:line").
    origin: str = ""


def _check_tag(tag: str, where: str) -> str:
    if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-")):
        raise DataError(f"{where}: label {tag!r} is not an IOB2 tag (O, B-X or I-X)")
    return tag


def read_panx(path: str | Path, iob2: bool = True) -> list[NerSentence]:
    """XTREME PAN-X: ``lang:token<TAB>label`` per line, sentences separated by blank lines.

    ``iob2=False`` accepts any label without white space (POS tags)."""
    sentences: list[NerSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for number, line in _lines(path):
        if not line.strip():
            if tokens:
                sentences.append(NerSentence(tokens, tags, f"{path}:{start}"))
                tokens, tags = [], []
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0]:
            raise DataError(f"{path}:{number}: expected 'lang:token<TAB>label', got {line!r}")
        token = parts[0].split(":", 1)[1] if ":" in parts[0] else parts[0]
        if not token:
            raise DataError(f"{path}:{number}: empty token")
        if not tokens:
            start = number
        tokens.append(token)
        tag = parts[1].strip()
        if not iob2 and (not tag or len(tag.split()) != 1):
            raise DataError(f"{path}:{number}: empty label or label with white space: {parts[1]!r}")
        tags.append(_check_tag(tag, f"{path}:{number}") if iob2 else tag)
    if tokens:
        sentences.append(NerSentence(tokens, tags, f"{path}:{start}"))
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def read_wikiann_parquet(path: str | Path, labels: list[str] = WIKIANN_LABELS) -> list[NerSentence]:
    """The Hugging Face WikiANN parquet layout: columns ``tokens`` and ``ner_tags`` (label ids)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["tokens", "ner_tags"])
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: cannot read a parquet file with columns tokens and ner_tags ({err})") from None
    sentences = []
    for row, (tokens, ids) in enumerate(zip(table.column("tokens").to_pylist(), table.column("ner_tags").to_pylist())):
        where = f"{path}:row {row}"
        if not tokens or ids is None or len(tokens) != len(ids):
            raise DataError(f"{where}: {len(tokens or [])} tokens but {len(ids or [])} ner_tags")
        for i in ids:
            if not _is_int(i) or not 0 <= i < len(labels):
                raise DataError(f"{where}: label id {i!r} out of range 0..{len(labels) - 1}")
        if not all(isinstance(t, str) and t for t in tokens):
            raise DataError(f"{where}: tokens must be non-empty strings")
        sentences.append(NerSentence(list(tokens), [labels[i] for i in ids], where))
    if not sentences:
        raise DataError(f"{path}: no sentences")
    return sentences


def read_ner(path: str | Path) -> list[NerSentence]:
    return read_wikiann_parquet(path) if str(path).endswith(".parquet") else read_panx(path)


# -- sentence classification ------------------------------------------------------


@dataclass
class TextExample:
    """One text with its class label (MultiEmo and other sentence classification sets)."""

    # The text to classify.
    text: str
    # Its class, as a string (integer labels are read as their decimal string).
    label: str
    # Where it came from, for error messages ("file:line").
    origin: str = ""


def read_labelled_texts(path: str | Path) -> list[TextExample]:
    """jsonl with ``{"text": str, "label": str or int}`` per line (other keys are ignored)."""
    examples = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON: {err.msg}") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise DataError(f"{where}: expected a JSON object with 'text' and 'label'")
        text, label = record["text"], record["label"]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: 'text' must be a non-empty string")
        if not (isinstance(label, str) and label.strip()) and not _is_int(label):
            raise DataError(f"{where}: 'label' must be a non-empty string or an integer, got {label!r}")
        examples.append(TextExample(text, str(label).strip(), where))
    if not examples:
        raise DataError(f"{path}: no records")
    return examples


# -- QA --------------------------------------------------------------------------


@dataclass
class QaExample:
    """One SQuAD-style question."""

    # The question's id.
    qid: str
    # The paragraph the answer is in.
    context: str
    # The question.
    question: str
    # Gold answer texts (SQuAD dev and XQuAD have one or more).
    answers: list[str] = field(default_factory=list)
    # Character offsets of the answers in the context.
    starts: list[int] = field(default_factory=list)


def read_squad(path: str | Path) -> list[QaExample]:
    """SQuAD v1.1 JSON (also XQuAD and MLQA); each answer must match its context at answer_start."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: invalid UTF-8 at byte {err.start}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: expected a SQuAD JSON object with a 'data' list")
    examples = []
    for a, article in enumerate(document["data"]):
        paragraphs = _typed(_typed(article, f"{path}: data[{a}]", dict).get("paragraphs", []),
                            f"{path}: data[{a}].paragraphs", list)
        for p, paragraph in enumerate(paragraphs):
            key = f"data[{a}].paragraphs[{p}]"
            paragraph = _typed(paragraph, f"{path}: {key}", dict)
            if not isinstance(paragraph.get("context"), str):
                raise DataError(f"{path}: {key}: missing 'context' (a string)")
            context = paragraph["context"]
            for q, qa in enumerate(_typed(paragraph.get("qas", []), f"{path}: {key}.qas", list)):
                where = f"{path}: {key}.qas[{q}]"
                qa = _typed(qa, where, dict)
                for required in ("id", "question", "answers"):
                    if required not in qa:
                        raise DataError(f"{where}: missing field {required!r}")
                _typed(qa["id"], f"{where}.id", (str, int))
                _typed(qa["question"], f"{where}.question", str)
                if not _typed(qa["answers"], f"{where}.answers", list):
                    raise DataError(f"{where}.answers: empty; SQuAD v1.1, XQuAD and MLQA give every question an answer")
                texts, starts = [], []
                for n, answer in enumerate(qa["answers"]):
                    answer = _typed(answer, f"{where}.answers[{n}]", dict)
                    text, start = answer.get("text"), answer.get("answer_start")
                    if not isinstance(text, str) or not text or not _is_int(start) or start < 0:
                        raise DataError(f"{where}.answers[{n}]: needs a non-empty 'text' and an integer 'answer_start' >= 0")
                    if context[start:start + len(text)] != text:
                        raise DataError(f"{where}.answers[{n}]: answer {text!r} does not match the context at "
                                        f"{start} ({context[start:start + len(text)]!r})")
                    texts.append(text)
                    starts.append(start)
                examples.append(QaExample(str(qa["id"]), context, qa["question"], texts, starts))
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples


# -- commonsense multiple choice ---------------------------------------------------


@dataclass
class ChoiceExample:
    """One multiple-choice question (COPA, XCOPA or SIQA)."""

    # The premise or context.
    context: str
    # The question (COPA: "cause" or "effect" turned into a question).
    question: str
    # The candidate answers.
    choices: list[str]
    # The index of the right answer.
    label: int
    # Where it came from, for error messages ("file:line").
    origin: str = ""


_COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def read_choices(path: str | Path, labels_path: str | Path | None = None) -> list[ChoiceExample]:
    """COPA/XCOPA jsonl (premise, choice1, choice2, question, label) or SIQA jsonl (+ labels file)."""
    records = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: invalid JSON: {err.msg}") from None
    labels = None
    if labels_path is not None:
        labels = [(n, l.strip()) for n, l in _lines(labels_path) if l.strip()]
        if len(labels) != len(records):
            raise DataError(f"{labels_path} has {len(labels)} labels but {path} has {len(records)} records")
    examples = []
    for i, (number, record) in enumerate(records):
        where = f"{path}:{number}"
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object")
        if "premise" in record:  # COPA / XCOPA
            missing = [k for k in ("premise", "choice1", "choice2", "question", "label") if k not in record]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
            if not isinstance(record["question"], str) or record["question"] not in _COPA_QUESTIONS:
                raise DataError(f"{where}: question must be 'cause' or 'effect', got {record['question']!r}")
            choices = [record["choice1"], record["choice2"]]
            context, question, label = record["premise"], _COPA_QUESTIONS[record["question"]], record["label"]
            if not _is_int(label):
                raise DataError(f"{where}: label must be an integer, got {label!r}")
        else:  # SIQA
            missing = [k for k in ("context", "question", "answerA", "answerB", "answerC") if k not in record]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
            choices = [record["answerA"], record["answerB"], record["answerC"]]
            context, question = record["context"], record["question"]
            if labels is None:
                if "label" not in record:
                    raise DataError(f"{where}: SIQA record without a label; pass the labels file")
                if not re.fullmatch(r"[0-9]+", str(record["label"]).strip()):
                    raise DataError(f"{where}: label {record['label']!r} is not a number 1..{len(choices)}")
                label = int(str(record["label"]).strip()) - 1
            else:
                lnum, text = labels[i]
                if not re.fullmatch(r"[0-9]+", text):
                    raise DataError(f"{labels_path}:{lnum}: label {text!r} is not a number")
                label = int(text) - 1
        for text in (context, question, *choices):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: premise/context, question and choices must be non-empty strings, got {text!r}")
        if not _is_int(label) or not 0 <= label < len(choices):
            raise DataError(f"{where}: label {label!r} out of range for {len(choices)} choices")
        examples.append(ChoiceExample(context, question, choices, label, where))
    if not examples:
        raise DataError(f"{path}: no records")
    return examples
