"""LibreOffice's help as an in-domain parallel corpus (software documentation), en -> xx.

Debian ships the help pages of each language as ``libreoffice-help-<lang>``
(``libreoffice-help-en-us`` for English): one HTML file per help page under
``usr/share/libreoffice/help/<lang>/``, the same file names in every language.
Every paragraph and heading carries a stable id (``<p id="par_id3146957">``,
``<h2 id="hd_id3143284">``) that the translations keep, so a paragraph aligns
with its translation by (page, id, occurrence), without heuristics.

Steps (``data-prep libreoffice-help``):

1. fetch the pinned packages with ``apt-get download`` into the cache and unpack
   them with ``dpkg-deb -x`` (``data_prep.registry``: version and sha256 recorded);
2. read every page: the text of each ``par_id``/``hd_id`` element, whitespace
   collapsed; of an inline switch (``<span class="switchinline">``: one variant
   per platform or module, all hidden until the page's script picks one) only the
   ``default`` variant is kept, as a reader on Linux sees it;
3. align by (page, id, occurrence) and clean with the gettext rules
   (``gettext_catalogs.clean_pairs``): empty, too long, markup or placeholders
   only, and untranslated (target equals source) pairs are dropped and counted;
4. deduplicate: one pair per normalised English source (the first by page and id);
5. split by a hash of the normalised English source (``gettext_catalogs.split_of``),
   so a paragraph is in the same split for every language; valid and test are
   capped in hash order; a training pair whose target equals a valid or test
   target is dropped (counted), and a final check reads the written files back and
   fails if any test or valid sentence (either side) appears in training;
6. write ``<split>.en-<xx>.{en,xx}`` (training pairs in hash order, so the first
   N lines are the same random subset on every machine) and
   ``libreoffice_help_counts.{json,md}``.

    data-prep libreoffice-help --langs de,es,fr --output-dir data/libreoffice-help
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError, Manifest, file_sha256, fingerprint, lang_code, read_text_lines, write_parallel
from .gettext_catalogs import clean_pairs, normalise, split_of

logger = logging.getLogger("data_prep.libreoffice_help")

# The Debian release the version below belongs to (bookworm); `apt-cache policy libreoffice-help-de` shows others.
DEBIAN_VERSION = "4:7.4.7-1+deb12u14"
HELP_ROOT = "usr/share/libreoffice/help"
ID_PREFIXES = ("par_id", "hd_id")
BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}


@dataclass(frozen=True)
class HelpConfig:
    """What ``data-prep libreoffice-help`` writes."""

    # target languages (Debian's suffixes: de, es, fr, pt-br ...); English is always the source
    langs: tuple[str, ...] = ("de", "es", "fr")
    # Debian version of every libreoffice-help-* package (all built from one source package)
    version: str = DEBIAN_VERSION
    # share of English sources (by hash) that go to valid / test
    valid_fraction: float = 0.03
    test_fraction: float = 0.03
    # caps per direction, in hash order (0: no cap)
    max_valid: int = 500
    max_test: int = 500
    # pairs with a side longer than this (characters) are dropped, as for the gettext base data
    max_chars: int = 300
    # a folder laid out like usr/share/libreoffice/help (one folder per language) to read instead of the packages
    source_dir: str | None = None


def package_name(lang: str) -> str:
    """The Debian package of a language's help: en -> libreoffice-help-en-us, pt_br -> libreoffice-help-pt-br."""
    return "libreoffice-help-" + ("en-us" if lang == "en" else lang.lower().replace("_", "-"))


def help_folder(root: Path, lang: str) -> Path:
    """``root``'s folder for ``lang`` (en -> en-US, pt_br -> pt-BR), matched without case and '-'/'_'."""
    wanted = "en-us" if lang == "en" else lang.lower().replace("_", "-")
    found = [path for path in Path(root).iterdir() if path.is_dir() and path.name.lower().replace("_", "-") == wanted]
    if not found:
        have = sorted(path.name for path in Path(root).iterdir() if path.is_dir())
        raise DataPrepError(f"{root}: no help folder for {lang!r} (expected {wanted}); it has: {', '.join(have) or 'none'}")
    return found[0]


class _Paragraphs(HTMLParser):
    """Text of each element whose id starts with par_id/hd_id, keyed by (id, occurrence in the page)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[tuple[str, int], str] = {}
        self._seen: Counter = Counter()
        self._key: tuple[str, int] | None = None
        self._block = ""  # the tag that opened the current paragraph
        self._text: list[str] = []
        self._stack: list[bool] = []  # per open tag inside the paragraph: does it hide its text?

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        ident = attrs.get("id") or ""
        if self._key is None:
            if tag in BLOCKS and ident.startswith(ID_PREFIXES):
                self._seen[ident] += 1
                self._key, self._block, self._text, self._stack = (ident, self._seen[ident]), tag, [], []
            return
        if tag in ("br", "img", "input", "meta", "link", "hr", "wbr"):  # void elements: no end tag
            if tag == "br":
                self._text.append(" ")
            return
        # a hidden variant of an inline switch (MAC, CALC, WIN ...) is left out; its "default" variant is kept
        hides = "hidden" in attrs and not ident.startswith("default")
        self._stack.append(hides or (bool(self._stack) and self._stack[-1]))

    def handle_endtag(self, tag):
        if self._key is None:
            return
        if tag == self._block and not self._stack:
            text = " ".join("".join(self._text).split())
            if text:
                self.paragraphs[self._key] = text
            self._key = None
        elif self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if self._key is not None and not (self._stack and self._stack[-1]):
            self._text.append(data)


def read_page(path: Path) -> dict[tuple[str, int], str]:
    """(id, occurrence) -> text of one help page."""
    try:
        parser = _Paragraphs()
        parser.feed(Path(path).read_text(encoding="utf-8"))
        parser.close()
    except (OSError, UnicodeDecodeError) as err:
        raise DataPrepError(f"{path}: cannot read the help page ({err})") from None
    return parser.paragraphs


def read_help(folder: Path) -> dict[tuple[str, str, int], str]:
    """(page, id, occurrence) -> text of every page under one language's help folder."""
    pages = sorted(Path(folder).rglob("*.html"))
    if not pages:
        raise DataPrepError(f"{folder}: no *.html help pages")
    out = {}
    for page in pages:
        relative = page.relative_to(folder).as_posix()
        for (ident, seen), text in read_page(page).items():
            out[(relative, ident, seen)] = text
    return out


def aligned_pairs(english: dict, other: dict, max_chars: int, removed: Counter) -> list[tuple[str, str]]:
    """Cleaned (en, xx) pairs, one per normalised English source, in (page, id) order."""
    rows, seen = [], set()
    removed["no translation of the paragraph"] += sum(1 for key in english if key not in other)
    for key in sorted(english):
        if key not in other:
            continue
        for src, tgt in clean_pairs(english[key], other[key], max_chars, removed):
            norm = normalise(src)
            if not norm:
                removed["no letters in the source"] += 1
                continue
            if norm in seen:
                removed["duplicate English source"] += 1
                continue
            seen.add(norm)
            rows.append((src, tgt))
    return rows


def split_pairs(rows: list[tuple[str, str]], config: HelpConfig, removed: Counter) -> dict[str, list[tuple[str, str]]]:
    """train/valid/test by the hash of the English source, each in hash order; caps; training pairs whose target
    is a held-out target are dropped."""
    keyed = {"train": [], "valid": [], "test": []}
    for src, tgt in rows:
        split, value = split_of(src, config.valid_fraction, config.test_fraction)
        keyed[split].append((value, src, tgt))
    out = {split: [(s, t) for _, s, t in sorted(items)] for split, items in keyed.items()}
    for split, cap in (("valid", config.max_valid), ("test", config.max_test)):
        if cap:
            out[split] = out[split][:cap]
    held_out = {normalise(t) for split in ("valid", "test") for _, t in out[split]}
    train = [(s, t) for s, t in out["train"] if normalise(t) not in held_out]
    removed["training target equals a held-out target"] += len(out["train"]) - len(train)
    out["train"] = train
    return out


def check_no_leak(out_dir: Path, lang: str) -> dict[str, int]:
    """Read the written files back: how many valid/test sentences (either side, normalised) are in training.

    Raises when any is: a held-out sentence seen in training would inflate every in-domain score."""
    def side(split, code):
        path = Path(out_dir) / f"{split}.en-{lang}.{code}"
        return {normalise(line) for line in read_text_lines(path)} if path.exists() else set()
    found = {}
    for split in ("valid", "test"):
        for code in ("en", lang):
            found[f"{split}.{code}"] = len(side(split, code) & side("train", code))
    if any(found.values()):
        raise DataPrepError(f"{out_dir}: en-{lang}: held-out sentences appear in training {found}")
    return found


def sources(config: HelpConfig, cache_dir: Path) -> tuple[Path, dict]:
    """The help root (one folder per language) and what it came from."""
    if config.source_dir:
        return Path(config.source_dir), {"source_dir": str(config.source_dir)}
    from .registry import fetch_package, unpack_deb
    roots, packages = [], {}
    for lang in ("en",) + tuple(config.langs):
        archive = fetch_package("debian", package_name(lang), config.version)
        packages[package_name(lang)] = {"version": config.version, "file": archive.name, "sha256": file_sha256(archive)}
        roots.append(unpack_deb(archive) / HELP_ROOT)
    # every package unpacks into its own tree; link each language folder into one root
    root = Path(cache_dir) / "help"
    root.mkdir(parents=True, exist_ok=True)
    for lang, tree in zip(("en",) + tuple(config.langs), roots):
        folder = help_folder(tree, lang)
        link = root / folder.name
        if link.is_symlink() and link.resolve() != folder.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(folder.resolve(), target_is_directory=True)
    return root, packages


def counts_markdown(report: dict) -> str:
    lines = ["# LibreOffice help: aligned paragraphs", "",
             f"Source: {report['source']}", "",
             "| direction | English paragraphs | aligned, cleaned, distinct | train | valid | test |",
             "|---|---:|---:|---:|---:|---:|"]
    for direction, row in report["directions"].items():
        lines.append(f"| {direction} | {report['english_paragraphs']} | {row['distinct']} | {row['train']} | "
                     f"{row['valid']} | {row['test']} |")
    lines += ["", "Removed (per direction):", ""]
    for direction, row in report["directions"].items():
        lines.append(f"- {direction}: " + ", ".join(f"{k} {v}" for k, v in sorted(row["removed"].items()) if v))
    lines += ["", "Held-out sentences found in training (checked on the written files): "
              + ", ".join(f"{d} {sum(r['leaks'].values())}" for d, r in report["directions"].items())]
    return "\n".join(lines) + "\n"


def prepare(config: HelpConfig, out_dir: Path) -> dict:
    """Fetch, align, clean, deduplicate, split and write every en-xx direction; returns the counts report."""
    langs = tuple(dict.fromkeys(lang_code(lang) for lang in config.langs))
    if not langs or "en" in langs:
        raise DataPrepError(f"--langs {','.join(config.langs) or '(none)'}: give target languages other than en")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root, source = sources(config, out_dir / ".packages")
    key = fingerprint(asdict(config), source)
    manifest = Manifest(out_dir)
    report_path = out_dir / "libreoffice_help_counts.json"
    if manifest.is_done("all", key) and report_path.exists():
        logger.info("%s is up to date; nothing to do", out_dir)
        return manifest.info("all")
    logger.info("reading the English help pages")
    english = read_help(help_folder(root, "en"))
    directions, outputs = {}, []
    for lang in langs:
        logger.info("en-%s: reading, aligning, splitting", lang)
        removed: Counter = Counter()
        rows = aligned_pairs(english, read_help(help_folder(root, lang)), config.max_chars, removed)
        per_split = split_pairs(rows, config, removed)
        empty = [split for split, items in per_split.items() if not items]
        if empty:
            raise DataPrepError(f"en-{lang}: split(s) {empty} would be empty ({len(rows)} pairs in all); "
                                "raise --valid-fraction/--test-fraction")
        for split, items in per_split.items():
            outputs += write_parallel(out_dir, split, "en", lang, items)
        directions[f"en-{lang}"] = {"distinct": len(rows), **{s: len(i) for s, i in per_split.items()},
                                    "removed": dict(sorted(removed.items())), "leaks": check_no_leak(out_dir, lang)}
    report = {"source": source, "config": asdict(config), "english_paragraphs": len(english), "directions": directions}
    atomic_write_json(report_path, report)
    atomic_write_text(out_dir / "libreoffice_help_counts.md", counts_markdown(report))
    manifest.mark_done("all", key, outputs + [report_path, out_dir / "libreoffice_help_counts.md"], info=report)
    return report

