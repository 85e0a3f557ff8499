"""Human-labelled xling data from the BIG-bench package (PyPI ``bigbench==1.0.0``, Srivastava et al. 2022).

The sdist (358 MB) carries the task files of several human-labelled data
sets; only these members are extracted, into the registry cache:

=========== ===================================================== ===========================================
task        member under ``bigbench/benchmark_tasks/``            written (``<out>/...``)
=========== ===================================================== ===========================================
squad       ``squad_shifts/squaddev_v1.1.json`` (Rajpurkar et al.  ``squad/{train,dev}.en.json``: SQuAD v1.1 JSON,
            2016; the SQuAD v1.1 dev set, 10,565 questions)       split by article (no context in both)
hi_qa       ``hindi_question_answering/task.json`` (6,610)        ``hi_qa/test.hi.json``: SQuAD v1.1 JSON
fa_qa       ``parsinlu_reading_comprehension/task.json``           ``fa_qa/test.fa.json``: SQuAD v1.1 JSON
            (ParsiNLU, Khashabi et al. 2021; 518 questions)
multiemo    ``multiemo/all_text_<lang>/task.json``, 11 languages  ``multiemo/{train,dev,test}.<lang>.jsonl``:
            (MultiEmo, Kocoń et al. 2021; 4-class sentiment)      ``{"id", "text", "label"}`` per line
pl_ner      ``polish_sequence_labeling/task.json`` (12,856)       ``pl_ner/{nam,wikiann,name}/{train,dev,test}.pl.panx``
=========== ===================================================== ===========================================

Conversions, and where they guess:

* QA answers carry no offsets in BIG-bench; ``answer_start`` is the first
  occurrence of the answer in the context (a later occurrence may be the
  one meant).  A question whose answer is not in its context is dropped and
  counted.  The Hindi ``input`` is the context and the question run
  together: consecutive inputs that share a long prefix share a paragraph,
  and the group's common prefix (cut back to white space) is the context;
  a paragraph with one question is cut after its last sentence end
  (``।``, ``.``, ``?``, ``!``) before the question.  Persian inputs are
  ``passage: '...' question: '...'``.
* MultiEmo: the label is the one class scoring 1 in ``target_scores``.  The
  Polish file (the original) holds one review more than the ten
  translations (item 6428, no translation: only without it do the label
  sequences of all 11 files agree, and its neighbours' texts match); it is
  dropped, then every language must have the same labels item by item.  The
  split (80/10/10) is a hash of the item index, so one review lands in the
  same split in every language.
* Polish NER: the tags have no B-/I- prefixes, so consecutive tokens with
  the same ``nam_*`` tag become one entity (``B-`` then ``I-``); two
  adjacent entities of one type therefore merge (the data cannot tell them
  apart).  Temporal (``t3_*``) and event tags become ``O``.  ``nam/`` keeps
  the 9 name types (``nam_num2``, 3 tokens, is read as ``nam_num``);
  ``wikiann/`` maps them onto WikiANN's PER/LOC/ORG (``nam_liv`` PER,
  ``nam_loc`` and ``nam_fac`` LOC, ``nam_org`` ORG, the rest O) so that
  an adapter trained on WikiANN-style data can be scored on it.
  BIG-bench 1.0.0 has no English NER task, so there is no typed English
  source here for zero-shot transfer to Polish; ``nam/`` supports in-language
  training (train split) and ``wikiann/`` scoring an adapter trained on
  WikiANN-style English data from elsewhere.
* ``name/`` is proper-name recognition, not typed NER: one type, ``NAME``,
  the target of an adapter trained on Brown's proper nouns
  (``data_prep.name_tags``: the registries hold no English NER data, and
  Brown's proper-noun tags have no types).  Every ``nam_*`` type (``nam_liv``,
  ``nam_loc``, ``nam_org``, ``nam_fac``, ``nam_pro``, ``nam_eve``,
  ``nam_oth``, ``nam_num``) is NAME, except ``nam_adj`` (adjectives of
  names, ``amerykańskich``), which is ``O`` because Brown tags such
  adjectives ``jj``, not ``np``.  A run of name tokens is one entity even
  when its types differ (Brown cannot tell two adjacent names apart
  either).  Lost: the types; and Polish spans cover whole names
  (``Sąd Najwyższy``) where Brown marks only the proper-noun words, see
  ``data_prep.name_tags``.

    data-prep bigbench --output-dir data/bigbench --tasks squad,hi_qa,fa_qa,multiemo,pl_ner
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text, read_json

from .common import DataPrepError, Manifest, files_fingerprint, fingerprint

logger = logging.getLogger("data_prep")

PACKAGE = ("pypi", "bigbench", "1.0.0")
#: Where the task files sit inside the sdist.
MEMBER_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"
TASKS = ("squad", "hi_qa", "fa_qa", "multiemo", "pl_ner")
MULTIEMO_LANGS = ("en", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
#: Items of a MultiEmo file that the other languages lack (found by aligning the label sequences, see above).
MULTIEMO_UNTRANSLATED = {"pl": (6428,)}
#: WikiANN types for the Polish name types (the others become O).
PL_TO_WIKIANN = {"nam_liv": "PER", "nam_loc": "LOC", "nam_fac": "LOC", "nam_org": "ORG"}
#: Tag spellings read as another tag.
PL_TAG_ALIASES = {"nam_num2": "nam_num"}
#: The Polish NER tag schemes written, one folder each: the 9 name types, WikiANN's 3, one NAME type.
PL_NER_SCHEMES = ("nam", "wikiann", "name")
#: Name types that the ``name`` scheme leaves O: adjectives of names (Brown tags them jj, not np).
PL_NOT_NAMES = ("nam_adj",)
#: Bump when an output format changes, so that old outputs are redone.
FORMAT_VERSION = 1


def task_members(config: "BigbenchConfig") -> dict[str, list[str]]:
    """Task -> its files, relative to ``benchmark_tasks/``."""
    return {"squad": ["squad_shifts/squaddev_v1.1.json"],
            "hi_qa": ["hindi_question_answering/task.json"],
            "fa_qa": ["parsinlu_reading_comprehension/task.json"],
            "multiemo": [f"multiemo/all_text_{lang}/task.json" for lang in config.multiemo_langs],
            "pl_ner": ["polish_sequence_labeling/task.json"]}


@dataclass
class BigbenchConfig:
    """What ``data-prep bigbench`` writes."""

    # Tasks to convert (a subset of TASKS).
    tasks: tuple[str, ...] = TASKS
    # MultiEmo languages to write.
    multiemo_langs: tuple[str, ...] = MULTIEMO_LANGS
    # Share of items (MultiEmo reviews, Polish sentences) in dev, by hash.
    dev_fraction: float = 0.1
    # Share of items in test, by hash.
    test_fraction: float = 0.1
    # Share of SQuAD articles in dev (the rest is train), by hash of the title.
    squad_dev_fraction: float = 0.1
    # Per language, MultiEmo items without a translation, dropped when the file holds exactly that many more items.
    multiemo_untranslated: dict = field(default_factory=lambda: dict(MULTIEMO_UNTRANSLATED))
    # A folder laid out like ``benchmark_tasks/`` to read instead of the package (tests, offline copies).
    source_dir: str | None = None


def hash_split(key: str, dev_fraction: float, test_fraction: float) -> str:
    """"train", "dev" or "test" for ``key``, fixed by its SHA-256 (no seed, same on every machine)."""
    value = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
    if value < test_fraction:
        return "test"
    return "dev" if value < test_fraction + dev_fraction else "train"


# -- reading BIG-bench task files -----------------------------------------------------------


def read_task_examples(path: Path) -> list:
    """The ``examples`` list of a BIG-bench ``task.json``."""
    document = read_json(path, DataPrepError)
    if not isinstance(document, dict) or not isinstance(document.get("examples"), list):
        raise DataPrepError(f"{path}: expected a BIG-bench task object with an 'examples' list")
    return document["examples"]


def example_field(path: Path, index: int, example, name: str, kinds: tuple):
    """``example[name]`` checked against ``kinds``; a one-line error naming file, example and field otherwise."""
    where = f"{path}: examples[{index}]"
    if not isinstance(example, dict):
        raise DataPrepError(f"{where}: expected a JSON object, got {type(example).__name__}")
    if name not in example:
        raise DataPrepError(f"{where}: missing field {name!r}")
    value = example[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise DataPrepError(f"{where}.{name}: expected {wanted}, got {type(value).__name__}")
    return value


# -- QA --------------------------------------------------------------------------------------


def squad_document(title: str, items: list[tuple[str, str, str, list[str]]]) -> tuple[dict, dict]:
    """SQuAD v1.1 JSON from (qid, context, question, answers); questions on one context share a paragraph.

    Answers not found in the context are dropped, then questions left without one; returns (document, counts)."""
    paragraphs: list[dict] = []
    counts = {"questions": 0, "dropped_answer_not_in_context": 0}
    for qid, context, question, answers in items:
        found = [{"text": a, "answer_start": context.index(a)} for a in dict.fromkeys(answers) if a and a in context]
        if not found:
            counts["dropped_answer_not_in_context"] += 1
            continue
        if not paragraphs or paragraphs[-1]["context"] != context:
            paragraphs.append({"context": context, "qas": []})
        paragraphs[-1]["qas"].append({"id": qid, "question": question, "answers": found})
        counts["questions"] += 1
    return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}, counts


def _common_prefix(texts: list[str]) -> str:
    return os.path.commonprefix(texts)


def split_hindi_inputs(inputs: list[str], min_shared: int = 40) -> list[tuple[str, str] | None]:
    """(context, question) for each BIG-bench Hindi input (context and question run together); None when no cut is found."""
    groups: list[list[int]] = []
    for i, text in enumerate(inputs):
        if groups:
            previous = inputs[groups[-1][-1]]
            shared = len(_common_prefix([previous, text]))
            if shared >= min_shared and shared >= 0.3 * min(len(previous), len(text)):
                groups[-1].append(i)
                continue
        groups.append([i])
    result: list[tuple[str, str] | None] = [None] * len(inputs)
    for group in groups:
        if len(group) > 1:
            prefix = _common_prefix([inputs[i] for i in group])
            cut = prefix.rfind(" ")
            cuts = {i: cut for i in group}
        else:
            text = inputs[group[0]]
            ends = [m.end() for m in re.finditer(r"[।.?!]\s", text[:-1])]
            cuts = {group[0]: ends[-1] if ends else -1}
        for i, cut in cuts.items():
            context, question = inputs[i][:max(cut, 0)].strip(), inputs[i][max(cut, 0):].strip()
            result[i] = (context, question) if cut > 0 and context and question else None
    return result


def convert_hindi(path: Path) -> tuple[dict, dict]:
    examples = read_task_examples(path)
    inputs = [example_field(path, i, e, "input", (str,)).strip() for i, e in enumerate(examples)]
    targets = [example_field(path, i, e, "target", (str,)).strip() for i, e in enumerate(examples)]
    items, no_cut = [], 0
    for i, (pair, answer) in enumerate(zip(split_hindi_inputs(inputs), targets)):
        if pair is None:
            no_cut += 1
            continue
        items.append((f"hi-{i}", pair[0], pair[1], [answer]))
    document, counts = squad_document("hindi_question_answering", items)
    return document, {**counts, "examples": len(examples), "dropped_no_context_question_cut": no_cut}


_PERSIAN_INPUT = re.compile(r"^passage: '(.*)' question: '(.*)'$", re.S)


def convert_persian(path: Path) -> tuple[dict, dict]:
    examples = read_task_examples(path)
    items = []
    for i, example in enumerate(examples):
        text = example_field(path, i, example, "input", (str,)).strip()
        match = _PERSIAN_INPUT.match(text)
        if not match:
            raise DataPrepError(f"{path}: examples[{i}].input: expected \"passage: '...' question: '...'\"")
        answers = example_field(path, i, example, "target", (list, str))
        answers = [answers] if isinstance(answers, str) else answers
        if not all(isinstance(a, str) for a in answers):
            raise DataPrepError(f"{path}: examples[{i}].target: expected strings")
        items.append((f"fa-{i}", match.group(1).strip(), match.group(2).strip(), [a.strip() for a in answers]))
    document, counts = squad_document("parsinlu_reading_comprehension", items)
    return document, {**counts, "examples": len(examples)}


def repair_answer(context: str, answer) -> dict | None:
    """The answer with its text stripped and ``answer_start`` moved to the nearest occurrence; None if absent.

    The SQuAD v1.1 dev set has 15 answers (of 34,680) with a leading space and
    an offset one off; the official scorer ignores offsets, xling's reader does not."""
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or not isinstance(answer.get("answer_start"), int):
        return None
    text, start = answer["text"].strip(), answer["answer_start"]
    if text and context[start:start + len(text)] == text and text == answer["text"]:
        return answer
    places = [m.start() for m in re.finditer(re.escape(text), context)] if text else []
    if not places:
        return None
    return {**answer, "text": text, "answer_start": min(places, key=lambda k: abs(k - start))}


def split_squad(path: Path, dev_fraction: float) -> tuple[dict[str, dict], dict]:
    """SQuAD v1.1 dev split into train/dev by article title, every answer checked against its context."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataPrepError(f"{path}: not a readable SQuAD JSON file ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataPrepError(f"{path}: expected a SQuAD JSON object with a 'data' list")
    splits: dict[str, list] = {"train": [], "dev": []}
    counts = {"train": 0, "dev": 0, "articles_train": 0, "articles_dev": 0, "answers_repaired": 0}
    for a, article in enumerate(document["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataPrepError(f"{path}: data[{a}]: expected an object with a 'paragraphs' list")
        title = str(article.get("title", a))
        split = "dev" if hash_split(f"squad:{title}", dev_fraction, 0.0) == "dev" else "train"
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise DataPrepError(f"{path}: data[{a}].paragraphs[{p}]: missing 'context' (a string)")
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict) or not qa.get("answers") or not isinstance(qa.get("question"), str):
                    raise DataPrepError(f"{where}: needs a 'question' and a non-empty 'answers' list")
                for n, answer in enumerate(qa["answers"]):
                    repaired = repair_answer(context, answer)
                    if repaired is None:
                        raise DataPrepError(f"{where}.answers[{n}]: {answer!r} is not in the context")
                    counts["answers_repaired"] += repaired != answer
                    qa["answers"][n] = repaired
                counts[split] += 1
        splits[split].append(article)
        counts[f"articles_{split}"] += 1
    return {s: {"version": "1.1", "data": arts} for s, arts in splits.items()}, counts


# -- MultiEmo --------------------------------------------------------------------------------


def multiemo_records(path: Path) -> list[tuple[str, str]]:
    """(text, label) per example; the label is the one class with score 1 (the text may be empty)."""
    records = []
    for i, example in enumerate(read_task_examples(path)):
        text = example_field(path, i, example, "input", (str,)).strip()
        scores = example_field(path, i, example, "target_scores", (dict,))
        best = [label for label, score in scores.items() if score == 1]
        if len(best) != 1 or any(score not in (0, 1) for score in scores.values()):
            raise DataPrepError(f"{path}: examples[{i}].target_scores: expected exactly one class scoring 1, got {scores}")
        records.append((" ".join(text.split()), best[0]))
    return records


def align_multiemo(files: dict[str, Path], untranslated: dict) -> dict[str, list[tuple[str, str]]]:
    """Per language the records in item order, the untranslated extra items dropped; labels must agree."""
    records = {lang: multiemo_records(path) for lang, path in files.items()}
    sizes = {lang: len(r) for lang, r in records.items()}
    size = min(sizes.values())
    for lang, extra in untranslated.items():
        if lang in records and sizes[lang] == size + len(extra):
            records[lang] = [r for i, r in enumerate(records[lang]) if i not in set(extra)]
    reference_lang = next(iter(records))
    reference = records[reference_lang]
    for lang, rows in records.items():
        if len(rows) != len(reference):
            raise DataPrepError(f"{files[lang]}: {len(rows)} reviews but {files[reference_lang]} has {len(reference)}; "
                                "the languages must hold the same items")
        for i, ((_, label), (_, ref_label)) in enumerate(zip(rows, reference)):
            if label != ref_label:
                raise DataPrepError(f"{files[lang]}: item {i} is {label!r} but {ref_label!r} in "
                                    f"{files[reference_lang]}; the files are not aligned")
    return records


def drop_empty(records: dict[str, list[tuple[str, str]]]) -> tuple[dict[str, list[tuple[int, str, str]]], int]:
    """(item index, text, label) per language, without the items whose text is empty in some language."""
    size = len(next(iter(records.values())))
    empty = {i for rows in records.values() for i, (text, _) in enumerate(rows) if not text}
    kept = {lang: [(i, text, label) for i, (text, label) in enumerate(rows) if i not in empty]
            for lang, rows in records.items()}
    return kept, len(empty) if size else 0


# -- Polish NER ------------------------------------------------------------------------------


def entity_type(tag: str, scheme: str) -> str | None:
    """The entity type of a Polish tag in a scheme (``nam``, ``wikiann``, ``name``); None for O."""
    tag = PL_TAG_ALIASES.get(tag, tag)
    if scheme == "nam":
        return tag if tag.startswith("nam_") else None
    if scheme == "wikiann":
        return PL_TO_WIKIANN.get(tag)
    if scheme == "name":
        return "NAME" if tag.startswith("nam_") and tag not in PL_NOT_NAMES else None
    raise ValueError(f"unknown Polish NER scheme {scheme!r}; known: {', '.join(PL_NER_SCHEMES)}")


def bio_tags(tags: list[str], scheme: str) -> list[str]:
    """IOB2 tags from prefix-less tags: a run of one entity type is one entity."""
    out, previous = [], None
    for tag in tags:
        kind = entity_type(tag, scheme)
        out.append("O" if kind is None else ("I-" if kind == previous else "B-") + kind)
        previous = kind
    return out


def polish_sentences(path: Path) -> tuple[list[tuple[list[str], list[str]]], int]:
    """(tokens, raw tags) per non-empty example, and the number of empty ones skipped."""
    sentences, empty = [], 0
    for i, example in enumerate(read_task_examples(path)):
        tokens = example_field(path, i, example, "input", (str,)).split()
        tags = example_field(path, i, example, "target", (str,)).split()
        if len(tokens) != len(tags):
            raise DataPrepError(f"{path}: examples[{i}]: {len(tokens)} tokens but {len(tags)} tags")
        bad = next((t for t in tags if not re.fullmatch(r"[A-Za-z][\w]*", t)), None)
        if bad is not None:
            raise DataPrepError(f"{path}: examples[{i}].target: {bad!r} is not a tag")
        if not tokens:
            empty += 1
            continue
        sentences.append((tokens, tags))
    return sentences, empty


def panx_text(lang: str, sentences: list[tuple[list[str], list[str]]]) -> str:
    return "\n\n".join("\n".join(f"{lang}:{t}\t{g}" for t, g in zip(tokens, tags)) for tokens, tags in sentences) + "\n"


# -- the steps -------------------------------------------------------------------------------


def source_files(config: BigbenchConfig, tasks: tuple[str, ...]) -> Path:
    """The folder holding ``benchmark_tasks/``'s files: ``config.source_dir``, or the package extracted into the cache."""
    if config.source_dir:
        return Path(config.source_dir)
    from .registry import cache_root, extract_members, fetch_package

    archive = fetch_package(*PACKAGE)
    members = task_members(config)
    wanted = [f"{MEMBER_ROOT}/{m}" for task in tasks for m in members[task]]
    target = cache_root() / "extracted" / "bigbench-1.0.0"
    extract_members(archive, wanted, target)
    return target / MEMBER_ROOT


def _write_qa(out: Path, task: str, lang: str, document: dict) -> list[Path]:
    path = out / task / f"test.{lang}.json"
    atomic_write_json(path, document)
    return [path]


def run_task(task: str, files: list[Path], out: Path, config: BigbenchConfig) -> tuple[list[Path], dict]:
    """Convert one task; returns (outputs, counts)."""
    if task == "squad":
        documents, counts = split_squad(files[0], config.squad_dev_fraction)
        paths = []
        for split, document in documents.items():
            paths.append(out / "squad" / f"{split}.en.json")
            atomic_write_json(paths[-1], document)
        return paths, counts
    if task == "hi_qa":
        document, counts = convert_hindi(files[0])
        return _write_qa(out, task, "hi", document), counts
    if task == "fa_qa":
        document, counts = convert_persian(files[0])
        return _write_qa(out, task, "fa", document), counts
    if task == "multiemo":
        records, empty = drop_empty(align_multiemo(dict(zip(config.multiemo_langs, files)), config.multiemo_untranslated))
        paths, counts = [], {"dropped_empty_text": empty}
        for lang, rows in records.items():
            counts[lang] = {}
            for split in ("train", "dev", "test"):
                lines = [json.dumps({"id": i, "text": text, "label": label}, ensure_ascii=False)
                         for i, text, label in rows
                         if hash_split(f"multiemo:{i}", config.dev_fraction, config.test_fraction) == split]
                paths.append(out / "multiemo" / f"{split}.{lang}.jsonl")
                atomic_write_text(paths[-1], "".join(line + "\n" for line in lines))
                counts[lang][split] = len(lines)
        return paths, counts
    if task == "pl_ner":
        sentences, empty = polish_sentences(files[0])
        splits = [hash_split(f"pl_ner:{i}", config.dev_fraction, config.test_fraction) for i in range(len(sentences))]
        paths, counts = [], {"skipped_empty": empty}
        for scheme in PL_NER_SCHEMES:
            counts[scheme] = {}
            for split in ("train", "dev", "test"):
                chosen = [(tokens, bio_tags(tags, scheme)) for (tokens, tags), s in zip(sentences, splits) if s == split]
                paths.append(out / "pl_ner" / scheme / f"{split}.pl.panx")
                atomic_write_text(paths[-1], panx_text("pl", chosen))
                entities = sum(t.startswith("B-") for _, tags in chosen for t in tags)
                counts[scheme][split] = {"sentences": len(chosen), "entities": entities}
        return paths, counts
    raise AssertionError(task)


def prepare(out_dir: str | Path, config: BigbenchConfig | None = None) -> dict:
    """Convert the chosen tasks into ``out_dir``; each task is a manifest step (skipped when done, redone when its input changed).

    Returns, and writes to ``<out>/bigbench_counts.json``, the counts per task and the seconds each took."""
    config = config or BigbenchConfig()
    unknown = [t for t in config.tasks if t not in TASKS]
    if unknown:
        raise DataPrepError(f"unknown bigbench task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    out = Path(out_dir)
    root = source_files(config, tuple(config.tasks))
    manifest = Manifest(out)
    members = task_members(config)
    report: dict = {"package": "==".join(PACKAGE[1:]), "tasks": {}}
    for task in config.tasks:
        files = [root / m for m in members[task]]
        for path in files:
            if not path.is_file():
                raise DataPrepError(f"{path}: missing (expected {task}'s file from {'=='.join(PACKAGE[1:])})")
        settings = {k: v for k, v in vars(config).items() if k not in ("tasks", "source_dir")}
        if task == "pl_ner":  # a new scheme redoes pl_ner only
            settings["schemes"] = PL_NER_SCHEMES
        key = fingerprint("bigbench", FORMAT_VERSION, task, settings, files_fingerprint(files))
        if manifest.is_done(task, key):
            logger.info("bigbench %s: up to date", task)
            report["tasks"][task] = {**manifest.info(task), "skipped": True}
            continue
        started = time.monotonic()
        outputs, counts = run_task(task, files, out, config)
        counts = {"counts": counts, "seconds": round(time.monotonic() - started, 2)}
        manifest.mark_done(task, key, outputs, counts)
        report["tasks"][task] = counts
        logger.info("bigbench %s: %s", task, counts)
    atomic_write_json(out / "bigbench_counts.json", report)
    return report
