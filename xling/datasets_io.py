"""The MAD-X data sets as Hugging Face ``datasets.Dataset`` objects, from local files or the local HF cache.

Every loader returns an Arrow-backed ``Dataset`` with the columns the tasks use:

- NER and POS (PAN-X/CoNLL text, WikiANN parquet): ``tokens``, ``tags`` (strings), ``origin``;
- sentence classification (jsonl ``{"text", "label"}``): ``text``, ``label`` (a string), ``origin``;
- extractive QA (SQuAD v1.1 JSON, also XQuAD and MLQA): the hub's SQuAD columns ``id``, ``context``,
  ``question``, ``answers`` (``{"text": [...], "answer_start": [...]}``);
- multiple choice (COPA/XCOPA jsonl, SIQA jsonl + labels file, or the generic jsonl
  ``{"context", "question", "choices": [...], "label"}`` of ``data-prep story-cloze``): ``context``,
  ``question``, ``choices``, ``label`` (0-based), ``origin``.

``origin`` ("file:line" or "file:row N") names the record in later errors.

How each format loads: WikiANN parquet through ``load_dataset("parquet", ...)``; the
others through ``Dataset.from_generator`` with a generator that checks each
record as it reads it, because ``datasets``' json builder cannot give one-line
errors naming the file and line (or JSON key), and rejects what these formats
allow (integer or string labels in one file; SIQA's separate labels file; PAN-X
is not JSON at all).  Both write Arrow files to the ``datasets`` cache
(``HF_DATASETS_CACHE``); the generator's cache key includes the file's SHA-256,
so an edited file is read again.  ``load_hub_dataset`` loads a named data set
(``--dataset wikiann --dataset-config de``) with ``load_dataset``, which with
``HF_DATASETS_OFFLINE=1`` reads the copy already in the local cache.

Malformed records raise ``DataError`` naming the file, the line (or JSON key)
and what is wrong; nothing is skipped silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from pathlib import Path

import datasets
from datasets import Dataset, Features, List, Value

from .data import WIKIANN_LABELS, DataError, HubDatasetRef, _is_int, _lines, _typed

NER_FEATURES = Features({"tokens": List(Value("string")), "tags": List(Value("string")), "origin": Value("string")})
TEXT_FEATURES = Features({"text": Value("string"), "label": Value("string"), "origin": Value("string")})
SQUAD_FEATURES = Features({"id": Value("string"), "context": Value("string"), "question": Value("string"),
                           "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))}})
CHOICE_FEATURES = Features({"context": Value("string"), "question": Value("string"), "choices": List(Value("string")),
                            "label": Value("int32"), "origin": Value("string")})
#: Columns of a hub NER/POS data set that may hold the tags (ClassLabel ids or strings), in order of preference.
HUB_TAG_COLUMNS = ("ner_tags", "pos_tags", "upos", "tags")


@contextlib.contextmanager
def _quiet():
    """No progress bars or cache notices from ``datasets``: bad input must end in one line on stderr."""
    bars_were_off = datasets.utils.are_progress_bars_disabled()
    verbosity = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if not bars_were_off:
            datasets.enable_progress_bars()


def tokenise(examples: Dataset, encode, with_indices: bool = False, **fn_kwargs) -> Dataset:
    """``examples.map(encode, batched=True, fn_kwargs=fn_kwargs)`` into new columns only (the rows may split, as
    QA's windows do); ``with_indices``: ``encode`` also gets the rows' indices.

    The result is cached by ``datasets``' fingerprint (of the data, ``encode`` and
    ``fn_kwargs``, the tokenizer included) in the data set's cache directory; a
    second run with the same data and tokenizer reads it instead of encoding again.
    """
    with _quiet():
        return examples.map(encode, batched=True, with_indices=with_indices, remove_columns=examples.column_names,
                            fn_kwargs=fn_kwargs)


def _checksum(*paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None:
            path = Path(path)
            digest.update(path.read_bytes() if path.is_file() else b"missing:" + str(path).encode())
    return digest.hexdigest()


def _from_generator(generator, features: Features, path, labels_path=None) -> Dataset:
    """``Dataset.from_generator`` over ``generator(path, labels_path)``; the cache key has the files' checksum."""
    kwargs = {"path": str(path), "labels_path": None if labels_path is None else str(labels_path),
              "checksum": _checksum(path, labels_path)}
    try:
        with _quiet():
            return Dataset.from_generator(generator, features=features, gen_kwargs=kwargs)
    except datasets.exceptions.DatasetGenerationError as err:
        if isinstance(err.__cause__, DataError):
            raise err.__cause__ from None
        raise


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- NER and POS -----------------------------------------------------------------------


def check_tag(tag: str, where: str) -> str:
    if tag != "O" and not (len(tag) > 2 and tag[:2] in ("B-", "I-") and len(tag.split()) == 1):
        raise DataError(f"{where}: label {tag!r} is not an IOB2 tag (O, B-X or I-X, without white space)")
    return tag


#: PAN-X's prefix: a language code (``en``, ``zh-yue``, ``be_x_old``) and ':' before each token.
_PANX_PREFIX = re.compile(r"([a-z]{2,3}(?:[-_][a-z]+)*):")


def _token_columns(path: str):
    """``(line number, first column, rest)`` of each non-blank line; a UTF-8 BOM before the first is dropped."""
    for number, line in _lines(path):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            yield number, None, None
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0]:
            raise DataError(f"{path}:{number}: expected 'lang:token<TAB>label' (PAN-X) or 'token<TAB>label' "
                            f"(CoNLL), got {line!r}")
        yield number, parts[0], parts[1]


def panx_prefix(path: str) -> str | None:
    """The language prefix (``"en:"``) when every token line of the file starts with the same one (PAN-X);
    None for plain CoNLL, whose tokens are read whole (``10:30``, ``http://x.org``)."""
    prefixes = set()
    for _, token, _ in _token_columns(path):
        if token is not None:
            match = _PANX_PREFIX.match(token)
            prefixes.add(match.group(0) if match else None)
            if None in prefixes or len(prefixes) > 1:
                return None
    return prefixes.pop() if prefixes else None


def _panx_sentences(path: str, labels_path=None, checksum: str = "", iob2: bool = True):
    """Two-column CoNLL, ``token<TAB>label`` per line, sentences separated by blank lines; XTREME PAN-X's
    ``lang:token`` has its prefix removed when every line of the file carries the same one (``panx_prefix``)."""
    prefix = panx_prefix(path)
    tokens, tags, start, count = [], [], 0, 0
    for number, token, label in _token_columns(path):
        if token is None:
            if tokens:
                count += 1
                yield {"tokens": tokens, "tags": tags, "origin": f"{path}:{start}"}
                tokens, tags = [], []
            continue
        token = token[len(prefix):] if prefix else token
        if not token:
            raise DataError(f"{path}:{number}: empty token")
        if not tokens:
            start = number
        tokens.append(token)
        tag = label.strip()
        if not iob2 and (not tag or len(tag.split()) != 1):
            raise DataError(f"{path}:{number}: empty label or label with white space: {label!r}")
        tags.append(check_tag(tag, f"{path}:{number}") if iob2 else tag)
    if tokens:
        count += 1
        yield {"tokens": tokens, "tags": tags, "origin": f"{path}:{start}"}
    if not count:
        raise DataError(f"{path}: no sentences")


def _tagging_sentences(path: str, labels_path=None, checksum: str = ""):
    yield from _panx_sentences(path, labels_path, checksum, iob2=False)


def load_panx(path: str | Path, iob2: bool = True) -> Dataset:
    """PAN-X/CoNLL token-per-line text; ``iob2=False`` accepts any label without white space (POS tags)."""
    return _from_generator(_panx_sentences if iob2 else _tagging_sentences, NER_FEATURES, path)


def _tag_rows(batch: dict, indices: list[int], where: str, tag_column: str, names: list[str] | None,
              iob2: bool = False) -> dict:
    """Hub/parquet rows (tokens + tag ids or strings) as ``tokens``, ``tags``, ``origin``, each row checked
    (``iob2``: every tag an IOB2 tag, as for PAN-X files; else any tag without white space)."""
    out = {"tokens": [], "tags": [], "origin": []}
    for index, tokens, tags in zip(indices, batch["tokens"], batch[tag_column]):
        row = f"{where}:row {index}"
        if not tokens or tags is None or len(tokens) != len(tags):
            raise DataError(f"{row}: {len(tokens or [])} tokens but {len(tags or [])} {tag_column}")
        if names is not None:
            for i in tags:
                if not _is_int(i) or not 0 <= i < len(names):
                    raise DataError(f"{row}: label id {i!r} out of range 0..{len(names) - 1}")
            tags = [names[i] for i in tags]
        if not all(isinstance(t, str) and t for t in tokens):
            raise DataError(f"{row}: tokens must be non-empty strings")
        for tag in tags:
            if iob2:
                check_tag(str(tag), row)
            elif len(str(tag).split()) != 1:
                raise DataError(f"{row}: empty label or label with white space: {tag!r}")
        out["tokens"].append(list(tokens))
        out["tags"].append(list(tags))
        out["origin"].append(row)
    return out


def tagged_rows(dataset: Dataset, where: str, default_names: list[str] | None = None, iob2: bool = False) -> Dataset:
    """A dataset with ``tokens`` and a tag column (ClassLabel ids, plain ids, or strings) in the NER/POS columns;
    ``iob2``: NER, every tag checked as PAN-X files' are."""
    column = next((c for c in HUB_TAG_COLUMNS if c in dataset.column_names), None)
    if "tokens" not in dataset.column_names or column is None:
        raise DataError(f"{where}: expected columns tokens and one of {', '.join(HUB_TAG_COLUMNS)}, "
                        f"got {', '.join(dataset.column_names)}")
    feature = dataset.features[column].feature
    names = feature.names if isinstance(feature, datasets.ClassLabel) else \
        (default_names if feature.dtype.startswith("int") else None)
    with _quiet():
        return dataset.map(_tag_rows, batched=True, with_indices=True, remove_columns=dataset.column_names,
                           features=NER_FEATURES, fn_kwargs={"where": where, "tag_column": column, "names": names,
                                                              "iob2": iob2})


def load_wikiann_parquet(path: str | Path, labels: list[str] = WIKIANN_LABELS) -> Dataset:
    """The Hugging Face WikiANN parquet layout: columns ``tokens`` and ``ner_tags`` (label ids)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found")
    try:
        with _quiet():
            table = datasets.load_dataset("parquet", data_files={"data": str(path)}, split="data")
    except Exception as err:  # noqa: BLE001 - any failure to parse the file is bad input, named in one line
        raise DataError(f"{path}: cannot read a parquet file with columns tokens and ner_tags "
                        f"({_first_line(err)})") from None
    if not {"tokens", "ner_tags"} <= set(table.column_names):
        raise DataError(f"{path}: cannot read a parquet file with columns tokens and ner_tags "
                        f"(it has {', '.join(table.column_names)})")
    if not len(table):
        raise DataError(f"{path}: no sentences")
    return tagged_rows(table.select_columns(["tokens", "ner_tags"]), str(path), labels, iob2=True)


def load_ner(path: str | Path) -> Dataset:
    return load_wikiann_parquet(path) if str(path).endswith(".parquet") else load_panx(path)


# -- sentence classification ---------------------------------------------------------------


def _labelled_texts(path: str, labels_path=None, checksum: str = ""):
    """jsonl with ``{"text": str, "label": str or int}`` per line (other keys are ignored)."""
    count = 0
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
        count += 1
        yield text_row(record["text"], record["label"], where)
    if not count:
        raise DataError(f"{path}: no records")


def text_row(text, label, where: str) -> dict:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: 'text' must be a non-empty string")
    if not (isinstance(label, str) and label.strip()) and not _is_int(label):
        raise DataError(f"{where}: 'label' must be a non-empty string or an integer, got {label!r}")
    return {"text": text, "label": str(label).strip(), "origin": where}


def load_labelled_texts(path: str | Path) -> Dataset:
    return _from_generator(_labelled_texts, TEXT_FEATURES, path)


# -- QA --------------------------------------------------------------------------------------


def _squad_questions(path: str, labels_path=None, checksum: str = ""):
    """SQuAD v1.1 JSON (also XQuAD and MLQA); each answer must match its context at answer_start."""
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found")
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: invalid UTF-8 at byte {err.start}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: expected a SQuAD JSON object with a 'data' list")
    count = 0
    for a, article in enumerate(document["data"]):
        paragraphs = _typed(_typed(article, f"{path}: data[{a}]", dict).get("paragraphs", []),
                            f"{path}: data[{a}].paragraphs", list)
        for p, paragraph in enumerate(paragraphs):
            key = f"data[{a}].paragraphs[{p}]"
            paragraph = _typed(paragraph, f"{path}: {key}", dict)
            if not isinstance(paragraph.get("context"), str):
                raise DataError(f"{path}: {key}: missing 'context' (a string)")
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
                answers = [_typed(answer, f"{where}.answers[{n}]", dict) for n, answer in enumerate(qa["answers"])]
                count += 1
                yield squad_row(qa["id"], paragraph["context"], qa["question"],
                                [a.get("text") for a in answers], [a.get("answer_start") for a in answers], where)
    if not count:
        raise DataError(f"{path}: no questions")


def squad_row(qid, context: str, question: str, texts: list, starts: list, where: str) -> dict:
    """One question in the hub's SQuAD columns; every answer must match the context at its start."""
    if not isinstance(context, str) or not isinstance(question, str) or not texts or len(texts) != len(starts):
        raise DataError(f"{where}: needs a string 'context' and 'question' and one 'answer_start' per answer 'text'")
    for n, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or not text or not _is_int(start) or start < 0:
            raise DataError(f"{where}.answers[{n}]: needs a non-empty 'text' and an integer 'answer_start' >= 0")
        if context[start:start + len(text)] != text:
            raise DataError(f"{where}.answers[{n}]: answer {text!r} does not match the context at "
                            f"{start} ({context[start:start + len(text)]!r})")
    return {"id": str(qid), "context": context, "question": question,
            "answers": {"text": list(texts), "answer_start": list(starts)}}


def load_squad(path: str | Path) -> Dataset:
    return _from_generator(_squad_questions, SQUAD_FEATURES, path)


# -- commonsense multiple choice -----------------------------------------------------------

_COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def choice_row(record, where: str, label_line: tuple[str, str] | None = None) -> dict:
    """A COPA/XCOPA, SIQA or generic record as ``context``, ``question``, ``choices``, ``label`` (0-based), ``origin``.

    The generic form (``data-prep story-cloze``) has a ``choices`` list of two or
    more strings and a 0-based integer ``label``.  ``label_line``: SIQA's gold
    label (1-based) from its labels file, with the file:line it came from.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    if "choices" in record:  # generic: context, question, choices, label (0-based)
        missing = [k for k in ("context", "question", "choices", "label") if k not in record]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        if not isinstance(record["choices"], list) or len(record["choices"]) < 2:
            raise DataError(f"{where}: 'choices' must be a list of at least 2 strings, got {record['choices']!r}")
        choices, context, question, label = list(record["choices"]), record["context"], record["question"], record["label"]
        if not _is_int(label):
            raise DataError(f"{where}: label must be an integer (0-based), got {label!r}")
    elif "premise" in record:  # COPA / XCOPA
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
        if label_line is None:
            if "label" not in record:
                raise DataError(f"{where}: SIQA record without a label; pass the labels file")
            if not re.fullmatch(r"[0-9]+", str(record["label"]).strip()):
                raise DataError(f"{where}: label {record['label']!r} is not a number 1..{len(choices)}")
            label = int(str(record["label"]).strip()) - 1
        else:
            line_where, text = label_line
            if not re.fullmatch(r"[0-9]+", text):
                raise DataError(f"{line_where}: label {text!r} is not a number")
            label = int(text) - 1
    for text in (context, question, *choices):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: premise/context, question and choices must be non-empty strings, got {text!r}")
    if not _is_int(label) or not 0 <= label < len(choices):
        raise DataError(f"{where}: label {label!r} out of range for {len(choices)} choices")
    return {"context": context, "question": question, "choices": choices, "label": label, "origin": where}


def _choice_records(path: str, labels_path=None, checksum: str = ""):
    """COPA/XCOPA jsonl (premise, choice1, choice2, question, label), SIQA jsonl (+ labels file) or generic jsonl
    (context, question, choices, label)."""
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
        labels = [(f"{labels_path}:{n}", l.strip()) for n, l in _lines(labels_path) if l.strip()]
        if len(labels) != len(records):
            raise DataError(f"{labels_path} has {len(labels)} labels but {path} has {len(records)} records")
    for i, (number, record) in enumerate(records):
        yield choice_row(record, f"{path}:{number}", None if labels is None else labels[i])
    if not records:
        raise DataError(f"{path}: no records")


def load_choices(path: str | Path, labels_path: str | Path | None = None) -> Dataset:
    return _from_generator(_choice_records, CHOICE_FEATURES, path, labels_path)


# -- named data sets from the Hugging Face cache ----------------------------------------------


def load_hub_dataset(ref: HubDatasetRef) -> Dataset:
    """``load_dataset(name, config, split=split)``; offline (``HF_DATASETS_OFFLINE=1``) it reads the local cache."""
    try:
        with _quiet():
            return datasets.load_dataset(ref.name, ref.config, split=ref.split)
    except Exception as err:  # noqa: BLE001 - missing, not cached, unknown config or split: one line naming it
        flags = f"--dataset {ref.name}" + (f" --dataset-config {ref.config}" if ref.config else "")
        where = "" if not datasets.config.HF_HUB_OFFLINE else \
            f"; offline, only data sets already in {datasets.config.HF_DATASETS_CACHE} load"
        raise DataError(f"{flags} --dataset-split {ref.split}: cannot load it ({_first_line(err)}){where}") from None


def _map_rows(dataset: Dataset, row, features: Features, where: str) -> Dataset:
    """Each row of a hub data set through ``row(record, where)``, the task's own check and column layout."""
    def convert(batch: dict, indices: list[int]) -> dict:
        records = [dict(zip(batch, values)) for values in zip(*batch.values())]
        rows = [row(record, f"{where}:row {index}") for index, record in zip(indices, records)]
        return {name: [r[name] for r in rows] for name in features}

    with _quiet():
        return dataset.map(convert, batched=True, with_indices=True, remove_columns=dataset.column_names,
                           features=features)


def hub_rows(ref: HubDatasetRef, layout: str) -> Dataset:
    """A hub data set in the columns of one of the layouts: "ner" (IOB2 tags), "tagged", "text", "squad" or
    "choice"."""
    dataset, where = load_hub_dataset(ref), str(ref)
    if not len(dataset):
        raise DataError(f"{where}: no records")
    if layout in ("ner", "tagged"):
        return tagged_rows(dataset, where, iob2=layout == "ner")
    if layout == "text":
        label = dataset.features.get("label")
        names = label.names if isinstance(label, datasets.ClassLabel) else None
        return _map_rows(dataset, lambda record, row: _hub_text_row(record, row, names), TEXT_FEATURES, where)
    if layout == "squad":
        return _map_rows(dataset, _hub_squad_row, SQUAD_FEATURES, where)
    return _map_rows(dataset, choice_row, CHOICE_FEATURES, where)


def _hub_text_row(record: dict, where: str, names: list[str] | None) -> dict:
    label = record.get("label")
    if names is not None:
        if not _is_int(label) or not 0 <= label < len(names):  # e.g. -1: GLUE-style unlabelled test splits
            raise DataError(f"{where}: label id {label!r} out of range 0..{len(names) - 1}")
        label = names[label]
    return text_row(record.get("text"), label, where)


def _hub_squad_row(record: dict, where: str) -> dict:
    answers = record.get("answers") or {}
    return squad_row(record.get("id", where), record.get("context"), record.get("question"),
                     answers.get("text") or [], answers.get("answer_start") or [], where)
