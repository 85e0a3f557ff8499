"""Monolingual text for MAD-X language adapters (masked-LM training).

Three sources, one output format: ``<out>/train.<lang>`` and
``<out>/valid.<lang>``, one unit per line (a paragraph by default, a sentence
or a whole document on request), de-duplicated, split by a hash of the line.

* plain UTF-8 text files;
* WikiExtractor output: directories ``AA/wiki_00`` ... holding
  ``<doc id="..." url="..." title="...">`` ... ``</doc>`` blocks; the first
  line of a block (the title, repeated by WikiExtractor) is dropped;
* a prepared gettext directory (``data-prep gettext``): the translated side
  of ``train.en-<lang>`` / ``valid.en-<lang>`` (and the English side for ``en``).

A malformed WikiExtractor file (text outside a doc, a doc inside a doc, a
doc never closed), invalid UTF-8 or a NUL byte is a ``file:line`` error, or
with ``on_bad="skip"`` a counted skip.  Blank lines separate paragraphs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError, Manifest, SkipLog, check_line, file_sha256, fingerprint, raw_lines, text_file_lines

DOC_OPEN = re.compile(r'^<doc id="[^"]*"( url="[^"]*")?( title="[^"]*")?>$')
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+(?=\S)")


def split_sentences(paragraph: str) -> list[str]:
    """A simple punctuation splitter (no abbreviation list): good enough for MLM text."""
    return [s for s in SENTENCE_END.split(paragraph) if s.strip()]


def _units(paragraphs: list[str], unit: str) -> list[str]:
    if unit == "document":
        return [" ".join(paragraphs)] if paragraphs else []
    if unit == "sentence":
        return [s for p in paragraphs for s in split_sentences(p)]
    return paragraphs


def read_plain(path: Path, unit: str = "paragraph", on_bad: str = "error", skips: SkipLog | None = None) -> list[str]:
    """Plain text: paragraphs are runs of non-blank lines (joined with spaces)."""
    skips = skips if skips is not None else SkipLog()
    paragraphs, current = [], []
    for number, raw in enumerate(raw_lines(path), start=1):
        text, reason = check_line(raw, "")
        if reason == "blank line":
            if current:
                paragraphs.append(" ".join(current))
            current = []
            continue
        if reason:
            if on_bad == "skip":
                skips.add(f"{path}:{number}", reason)
                continue
            raise DataPrepError(f"{path}:{number}: {reason}")
        current.append(" ".join(text.split()))
    if current:
        paragraphs.append(" ".join(current))
    return _units(paragraphs, unit)


def read_wikiextractor(path: Path, unit: str = "paragraph", on_bad: str = "error",
                       skips: SkipLog | None = None) -> list[str]:
    """One WikiExtractor output file -> units (paragraphs, sentences or documents)."""
    skips = skips if skips is not None else SkipLog()
    out: list[str] = []
    doc: list[str] | None = None  # paragraphs of the open doc
    open_line = 0
    title_pending = False

    def problem(number: int, reason: str) -> None:
        if on_bad == "skip":
            skips.add(f"{path}:{number}", reason)
        else:
            raise DataPrepError(f"{path}:{number}: {reason}")

    for number, raw in enumerate(raw_lines(path), start=1):
        text, reason = check_line(raw, "")
        if reason == "blank line":
            continue
        if reason:
            problem(number, reason)
            continue
        stripped = text.strip()
        if stripped.startswith("<doc "):
            if not DOC_OPEN.match(stripped):
                problem(number, f"malformed <doc> tag {stripped[:60]!r}")
                continue
            if doc is not None:
                problem(number, f"<doc> opened inside the doc opened at line {open_line}")
            doc, open_line, title_pending = [], number, True
        elif stripped == "</doc>":
            if doc is None:
                problem(number, "</doc> without an open <doc>")
                continue
            out.extend(_units(doc, unit))
            doc = None
        elif doc is None:
            problem(number, "text outside <doc> ... </doc>")
        elif title_pending:
            title_pending = False  # WikiExtractor repeats the title as the first line
        else:
            doc.append(" ".join(stripped.split()))
    if doc is not None:
        problem(open_line, "<doc> never closed (missing </doc>)")
    return out


def wikiextractor_files(root: Path) -> list[Path]:
    files = sorted(p for p in Path(root).rglob("wiki_*") if p.is_file())
    if not files:
        raise DataPrepError(f"{root}: no WikiExtractor files (AA/wiki_00, ...) found")
    return files


def _write(out_dir: Path, lang: str, units: list[str], valid_fraction: float, source: str) -> tuple[list[Path], dict]:
    unique = list(dict.fromkeys(u for u in units if u.strip()))
    if not unique:
        raise DataPrepError(f"empty corpus: no text for {lang} in {source}")
    splits = {"train": [], "valid": []}
    for line in unique:
        value = int(hashlib.sha1(line.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
        splits["valid" if value < valid_fraction else "train"].append(line)
    paths = []
    for split, lines in splits.items():
        path = Path(out_dir) / f"{split}.{lang}"
        atomic_write_text(path, "".join(line + "\n" for line in lines))
        paths.append(path)
    return paths, {split: len(lines) for split, lines in splits.items()}


def prepare(kind: str, inputs: list[Path], lang: str, out_dir: Path, unit: str = "paragraph",
            valid_fraction: float = 0.01, on_bad: str = "error") -> dict:
    """``kind`` is "plain" (files) or "wiki" (WikiExtractor output directories)."""
    out_dir = Path(out_dir)
    if kind == "wiki":
        files = [f for root in inputs for f in wikiextractor_files(Path(root))]
        reader = read_wikiextractor
    elif kind == "plain":
        files, reader = [Path(p) for p in inputs], read_plain
    else:
        raise DataPrepError(f"unknown monolingual source kind {kind!r} (plain or wiki)")
    manifest = Manifest(out_dir)
    step = f"mono:{lang}"
    key = fingerprint(kind, unit, valid_fraction, on_bad, [[str(f), file_sha256(f)] for f in files])
    if manifest.is_done(step, key):
        return manifest.info(step)
    skips = SkipLog()
    units = [u for f in files for u in reader(f, unit, on_bad, skips)]
    paths, counts = _write(out_dir, lang, units, valid_fraction, ", ".join(map(str, inputs)))
    info = {"counts": counts, **skips.as_dict()}
    manifest.mark_done(step, key, paths, info=info)
    return info


def from_gettext(gettext_dir: Path, langs: list[str], out_dir: Path) -> dict:
    """The catalogs' own text per language (``en`` from the English side of every pair)."""
    gettext_dir, out_dir = Path(gettext_dir), Path(out_dir)
    manifest = Manifest(out_dir)
    report = {}
    for lang in langs:
        if lang == "en":
            sources = {split: sorted(gettext_dir.glob(f"{split}.en-*.en")) for split in ("train", "valid")}
        else:
            sources = {split: [gettext_dir / f"{split}.en-{lang}.{lang}"] for split in ("train", "valid")}
        have = sorted({p.name.split(".")[1].split("-")[1] for p in gettext_dir.glob("train.en-*.en")})
        for split, files in sources.items():
            if not files or not all(f.exists() for f in files):
                raise DataPrepError(f"{gettext_dir}: no {split} text for {lang!r}; prepared languages: {have}")
        step = f"gettext-mono:{lang}"
        key = fingerprint([[str(f), file_sha256(f)] for split in sources for f in sources[split]])
        if manifest.is_done(step, key):
            report[lang] = manifest.info(step)
            continue
        outputs, counts = [], {}
        for split, files in sources.items():
            lines = list(dict.fromkeys(line for f in files for line in text_file_lines(f)[0] if line))
            if not lines:
                raise DataPrepError(f"empty corpus: {split} text for {lang} in {gettext_dir}")
            path = out_dir / f"{split}.{lang}"
            atomic_write_text(path, "".join(line + "\n" for line in lines))
            outputs.append(path)
            counts[split] = len(lines)
        manifest.mark_done(step, key, outputs, info={"counts": counts})
        report[lang] = {"counts": counts}
    atomic_write_json(out_dir / "mono_report.json", report)
    return report
