"""Dependency treebanks in CoNLL-U: a reader that knows the format's three kinds of line, and ``data-prep treebanks``.

CoNLL-U (Universal Dependencies, de Marneffe et al. 2021) has three kinds of
token line: syntactic words (ID ``1``, ``2`` ...), multiword tokens (ID
``1-2``: the written token that words 1 and 2 come from, no HEAD/DEPREL of
their own) and empty nodes (ID ``5.1``: enhanced-graph nodes, outside the
basic tree).  ``read_conllu`` keeps the words (the basic tree), keeps each
multiword token as a span over its words (its surface form), and skips empty
nodes; every HEAD must point at 0 or at a word of the same sentence, and each
sentence must have at least one root.

The data: the registries ship one treebank family in this format, the Turkish
Web Treebank (Sulubacak et al. 2016, Google's release) in PyPI
``turkish-treebanks==1.0.0`` (Apache-2.0): ``data/web.conllu`` (forums,
blogs ...: 2,540 sentences) and ``data/wiki.conllu`` (Wikipedia: 2,309).
Words are inflectional groups (relation ``ig``), as in the treebank.  The
search for treebanks in other languages is written down in
``reports/xling_udapter/README.md``; none was found, so the two files are
used as two *domains* (``web`` and ``wiki``) of one language.

Output: ``<out>/{train,dev,test}.<domain>.conllu`` (split 80/10/10 by a hash
of the sentence's place), ``<out>/relations.json`` (the relation labels of
the train splits, most frequent first), ``words.txt`` (every sentence's words, one
sentence a line: the text to trim an encoder's vocabulary to) and
``treebank_counts.json``.

    data-prep treebanks --output-dir data/treebanks
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .bigbench_tasks import hash_split
from .common import DataPrepError, Manifest, files_fingerprint, fingerprint

from .pos_corpora import TURKISH_PACKAGE  # noqa: E402  (one pinned version for both steps)
TURKISH_MEMBERS = ["data/web.conllu", "data/wiki.conllu"]
FORMAT_VERSION = 1


@dataclass
class TreebankWord:
    """One syntactic word (a CoNLL-U line whose ID is an integer)."""

    form: str  # FORM
    upos: str  # UPOS ("_" when absent)
    head: int  # HEAD: 0 for the root, else the 1-based index of the head word
    deprel: str  # DEPREL


@dataclass
class TreebankSentence:
    """One sentence: its words (the basic tree), its multiword spans, and its lines as read."""

    words: list[TreebankWord]
    # (first word, last word, surface form) of each multiword token, 1-based and inclusive.
    multiword: list[tuple[int, int, str]] = field(default_factory=list)
    # Every line of the sentence as read (comments, words, multiword tokens, empty nodes), to write back.
    lines: list[str] = field(default_factory=list)
    # Where the sentence starts in its file (for messages).
    origin: str = ""

    def to_conllu(self) -> str:
        return "\n".join(self.lines) + "\n"

    def check(self) -> "TreebankSentence":
        """Every HEAD is 0 or a word of the sentence, no word heads itself, there is a root, spans are in range."""
        n = len(self.words)
        for index, word in enumerate(self.words, start=1):
            if not 0 <= word.head <= n:
                raise DataPrepError(f"{self.origin}: word {index} has HEAD {word.head}, outside 0..{n}")
            if word.head == index:
                raise DataPrepError(f"{self.origin}: word {index} is its own head")
        if not any(w.head == 0 for w in self.words):
            raise DataPrepError(f"{self.origin}: no word has HEAD 0 (no root)")
        for first, last, _ in self.multiword:
            if not 1 <= first <= last <= n:
                raise DataPrepError(f"{self.origin}: multiword token {first}-{last} is outside words 1..{n}")
        return self


def read_conllu(path: str | Path) -> list[TreebankSentence]:
    """The sentences of a CoNLL-U file; a malformed line is a one-line error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataPrepError(f"{path}: no such CoNLL-U file")
    sentences: list[TreebankSentence] = []
    current = TreebankSentence([], origin=f"{path}:1")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if current.words:
                    sentences.append(current.check())
                current = TreebankSentence([], origin=f"{path}:{number + 1}")
                continue
            current.lines.append(line)
            if line.startswith("#"):
                continue
            columns = line.split("\t")
            if len(columns) != 10:
                raise DataPrepError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got {len(columns)}")
            ident = columns[0]
            if "." in ident:  # empty node: enhanced graph only, not part of the basic tree
                continue
            if "-" in ident:  # multiword token: a span over the words that follow
                first, _, last = ident.partition("-")
                if not (first.isdigit() and last.isdigit()):
                    raise DataPrepError(f"{path}:{number}: bad multiword ID {ident!r}")
                current.multiword.append((int(first), int(last), columns[1]))
                continue
            if not ident.isdigit() or int(ident) != len(current.words) + 1:
                raise DataPrepError(f"{path}:{number}: word ID {ident!r} should be {len(current.words) + 1}")
            if not columns[6].isdigit():
                raise DataPrepError(f"{path}:{number}: HEAD {columns[6]!r} is not a number")
            current.words.append(TreebankWord(columns[1], columns[3], int(columns[6]), columns[7]))
    if current.words:
        sentences.append(current.check())
    return sentences


def write_conllu(path: str | Path, sentences: list[TreebankSentence]) -> None:
    """Sentences back to CoNLL-U (blank line after each), atomically."""
    atomic_write_text(Path(path), "".join(s.to_conllu() + "\n" for s in sentences))


@dataclass
class TreebankConfig:
    """What ``data-prep treebanks`` writes."""

    # Share of sentences in dev, by hash.
    dev_fraction: float = 0.1
    # Share of sentences in test, by hash.
    test_fraction: float = 0.1
    # A folder with web.conllu and wiki.conllu to read instead of the PyPI package (tests, offline copies).
    turkish_dir: str | None = None


def _turkish_files(config: TreebankConfig) -> dict[str, Path]:
    folder = config.turkish_dir
    if folder is None:
        from .registry import cache_root, extract_members, fetch_package

        target = cache_root() / "extracted" / "turkish-treebanks-1.0.0"
        extract_members(fetch_package(*TURKISH_PACKAGE), TURKISH_MEMBERS, target)
        folder = target / "data"
    files = {domain: Path(folder) / f"{domain}.conllu" for domain in ("web", "wiki")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataPrepError(f"missing treebank file(s): {', '.join(missing)}")
    return files


def prepare(out_dir: str | Path, config: TreebankConfig | None = None) -> dict:
    """Write ``{train,dev,test}.{web,wiki}.conllu``, ``relations.json`` and ``treebank_counts.json``."""
    config = config or TreebankConfig()
    out = Path(out_dir)
    manifest = Manifest(out)
    report: dict = {"source": "pypi:turkish-treebanks==1.0.0", "domains": {}}
    relations: Counter = Counter()
    lines: list[str] = []
    for domain, path in _turkish_files(config).items():
        key = fingerprint("treebanks", FORMAT_VERSION, domain, config.dev_fraction, config.test_fraction,
                          files_fingerprint([path]))
        started = time.monotonic()
        per_split: dict[str, list[TreebankSentence]] = {"train": [], "dev": [], "test": []}
        for number, sentence in enumerate(read_conllu(path)):
            per_split[hash_split(f"treebank:{domain}:{number}", config.dev_fraction, config.test_fraction)].append(sentence)
        relations.update(w.deprel for s in per_split["train"] for w in s.words)
        lines += [" ".join(w.form for w in s.words) for split in per_split.values() for s in split]
        if manifest.is_done(domain, key):
            report["domains"][domain] = {**manifest.info(domain), "skipped": True}
            continue
        outputs, info = [], {"sentences": {}, "words": {}}
        for split, sentences in per_split.items():
            outputs.append(out / f"{split}.{domain}.conllu")
            write_conllu(outputs[-1], sentences)
            info["sentences"][split] = len(sentences)
            info["words"][split] = sum(len(s.words) for s in sentences)
        info["seconds"] = round(time.monotonic() - started, 2)
        manifest.mark_done(domain, key, outputs, info)
        report["domains"][domain] = info
    report["relations"] = [label for label, _ in relations.most_common()]
    atomic_write_json(out / "relations.json", report["relations"])
    atomic_write_text(out / "words.txt", "\n".join(lines) + "\n")
    atomic_write_json(out / "treebank_counts.json", report)
    return report
