"""Shared pieces of every data_prep script: strict line readers, atomic
parallel writers, and a manifest that makes each step idempotent.

Bad input policy (documented in ``data-prep --help``):

* invalid UTF-8 and NUL bytes are errors naming ``file:line``, unless the
  caller passes ``on_bad="skip"``; then the pair is dropped, counted per
  reason, and the count plus the first few ``file:line`` places appear in
  the step's report;
* a blank source or target line is handled the same way (a pair with an
  empty side carries no translation);
* parallel files with different line counts are always an error naming
  both files and both counts;
* a corpus that ends up empty is always an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from adapter_core.io import atomic_write_files, atomic_write_json

logger = logging.getLogger("data_prep")

SPLITS = ("train", "valid", "test")


class DataPrepError(ValueError):
    """Bad input for a data_prep step; the message names the file and line."""


@dataclass
class SkipLog:
    """Lines dropped under ``on_bad="skip"``: counts per reason and a few places."""

    # reason -> number of dropped lines or pairs
    counts: Counter = field(default_factory=Counter)
    # the first ``keep`` places, as "file:line: reason"
    examples: list[str] = field(default_factory=list)
    # how many example places to keep
    keep: int = 20
    # UTF-8 byte-order marks removed from the start of input files (kept out of the first segment)
    boms_stripped: int = 0

    def add(self, place: str, reason: str) -> None:
        self.counts[reason] += 1
        if len(self.examples) < self.keep:
            self.examples.append(f"{place}: {reason}")

    def as_dict(self) -> dict:
        return {"skipped": dict(self.counts), "skipped_total": sum(self.counts.values()), "examples": self.examples,
                "utf8_boms_stripped": self.boms_stripped}


def invalid_utf8(line: bytes, start: int) -> str:
    """The reason for a line whose UTF-8 breaks at byte ``start``: "invalid UTF-8 (byte 0xff at column 5)"."""
    return f"invalid UTF-8 (byte 0x{line[start]:02x} at column {start + 1})"


#: What to do about a file that is not UTF-8, after its "file:line: invalid UTF-8 (...)".
NOT_UTF8_ADVICE = "re-encode the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8) or remove the line"


def check_line(raw: bytes, place: str) -> tuple[str | None, str | None]:
    """Decode one line (without its newline); return (text, None) or (None, reason)."""
    if b"\x00" in raw:
        return None, "NUL byte at column %d" % (raw.index(b"\x00") + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, invalid_utf8(raw, err.start)
    text = text.rstrip("\r")
    if not text.strip():
        return None, "blank line"
    return text, None


def raw_lines(path: Path, skips: SkipLog | None = None) -> list[bytes]:
    """The lines of a file as bytes, without newlines (a final newline adds no line) and without a UTF-8 BOM
    (counted in ``skips``)."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        if skips is not None:
            skips.boms_stripped += 1
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


#: Characters that str.splitlines() (but not a "\\n" split) treats as line ends: inside a line they are spaces.
INLINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def text_file_lines(path: Path) -> tuple[list[str], int]:
    """The lines of a UTF-8 file split on "\\n" only (as the line counts and fairseq do), and how many
    characters were turned into spaces: a line-ending "\\r" is dropped; U+2028, U+0085, form feed, a lone
    CR and the like inside a line become a space (``str.splitlines`` would break the line there and
    misalign parallel files).  Invalid UTF-8 is a ``DataPrepError`` naming ``file:line``."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")  # not read_text: its universal newlines split on a lone CR
    except UnicodeDecodeError as err:
        number, start = data.count(b"\n", 0, err.start) + 1, data.rfind(b"\n", 0, err.start) + 1
        raise DataPrepError(f"{path}:{number}: {invalid_utf8(data[start:], err.start - start)}; "
                            f"{NOT_UTF8_ADVICE}") from None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    changed = sum(len(INLINE_BREAKS.findall(line)) for line in lines)
    return ([INLINE_BREAKS.sub(" ", line) for line in lines] if changed else lines), changed


def count_utf8_lines(path: Path) -> int:
    """The "\\n"-separated lines of a file (as fairseq counts them), each checked to be UTF-8: invalid UTF-8
    is a ``DataPrepError`` naming ``file:line``, found before anything is written."""
    number = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataPrepError(f"{path}:{number}: {invalid_utf8(line, err.start)}; {NOT_UTF8_ADVICE}") from None
    return number


def read_text_lines(path: Path, on_bad: str = "error", skips: SkipLog | None = None) -> list[str]:
    """Read a UTF-8 text file line by line, checking every line."""
    skips = skips if skips is not None else SkipLog()
    out = []
    for number, raw in enumerate(raw_lines(path, skips), start=1):
        text, reason = check_line(raw, f"{path}:{number}")
        if reason is None:
            out.append(text)
        elif on_bad == "skip":
            skips.add(f"{path}:{number}", reason)
        else:
            raise DataPrepError(f"{path}:{number}: {reason}")
    return out


def read_parallel(src_path: Path, tgt_path: Path, on_bad: str = "error",
                  skips: SkipLog | None = None) -> list[tuple[str, str]]:
    """Read two line-aligned files into pairs; line counts must match."""
    skips = skips if skips is not None else SkipLog()
    src_raw, tgt_raw = raw_lines(src_path, skips), raw_lines(tgt_path, skips)
    if len(src_raw) != len(tgt_raw):
        raise DataPrepError(
            f"parallel files differ in length: {src_path} has {len(src_raw)} lines, "
            f"{tgt_path} has {len(tgt_raw)} lines")
    pairs = []
    for number, (s_raw, t_raw) in enumerate(zip(src_raw, tgt_raw), start=1):
        s_text, s_reason = check_line(s_raw, "")
        t_text, t_reason = check_line(t_raw, "")
        if s_reason is None and t_reason is None:
            pairs.append((s_text, t_text))
            continue
        path, reason = (src_path, s_reason) if s_reason else (tgt_path, t_reason)
        if on_bad == "skip":
            skips.add(f"{path}:{number}", reason)
        else:
            raise DataPrepError(f"{path}:{number}: {reason}")
    if not pairs:
        raise DataPrepError(f"empty corpus: no usable pairs in {src_path} / {tgt_path}")
    return pairs


def one_line(text: str) -> str:
    """Collapse all whitespace (tabs, newlines) so a segment fits on one line."""
    return " ".join(text.split())


def parallel_contents(out_dir: Path, split: str, src: str, tgt: str,
                      pairs: Sequence[tuple[str, str]]) -> dict[Path, bytes]:
    """The two files of one split in fairseq naming, ``<split>.<src>-<tgt>.<src>`` and ``.<tgt>``, by path."""
    return {Path(out_dir) / f"{split}.{src}-{tgt}.{lang}": "".join(one_line(p[side]) + "\n" for p in pairs).encode()
            for side, lang in ((0, src), (1, tgt))}


def write_parallel(out_dir: Path, split: str, src: str, tgt: str, pairs: Sequence[tuple[str, str]]) -> list[Path]:
    """Write ``<split>.<src>-<tgt>.<src>`` and ``.<tgt>`` (fairseq naming), atomically and together: a failed
    write (a full disk) leaves neither side changed."""
    contents = parallel_contents(out_dir, split, src, tgt, pairs)
    atomic_write_files(contents)
    return list(contents)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*parts) -> str:
    """A stable hash of JSON-able parts (configs, input file stats)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def files_fingerprint(paths: Iterable[Path]) -> list:
    """Path, size and mtime of each input: cheap staleness detection for big inputs."""
    out = []
    for path in sorted(Path(p) for p in paths):
        stat = path.stat()
        out.append([str(path), stat.st_size, int(stat.st_mtime)])
    return out


class Manifest:
    """``<out>/.manifest.json``: which steps are done, with what inputs, making which files.

    A step is done when its recorded key (a hash of config and inputs) is the
    same and each output file still exists with the recorded SHA-256.  Each
    step is recorded right after its outputs are written, so an interrupted
    run resumes at the first step not recorded.
    """

    def __init__(self, out_dir: Path, name: str = ".manifest.json"):
        self.path = Path(out_dir) / name
        try:
            self.steps = json.loads(self.path.read_text()).get("steps", {}) if self.path.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            logger.warning("%s is unreadable; redoing every step", self.path)
            self.steps = {}

    def is_done(self, step: str, key: str) -> bool:
        entry = self.steps.get(step)
        if not entry or entry.get("key") != key:
            return False
        for path, digest in entry.get("outputs", {}).items():
            if not Path(path).exists() or file_sha256(Path(path)) != digest:
                logger.info("step %s is stale: %s changed or is missing", step, path)
                return False
        return True

    def mark_done(self, step: str, key: str, outputs: Iterable[Path], info: dict | None = None) -> None:
        self.steps[step] = {"key": key, "outputs": {str(p): file_sha256(Path(p)) for p in outputs},
                            "info": info or {}}
        atomic_write_json(self.path, {"steps": self.steps})

    def info(self, step: str) -> dict:
        return self.steps.get(step, {}).get("info", {})


def lang_code(code: str) -> str:
    """A language code usable in fairseq file names: no '-' (it separates pairs)."""
    return code.replace("-", "_")


def split_counts_table(counts: dict[str, dict[str, int]], title: str) -> str:
    """Markdown: one row per language, one column per split."""
    lines = [f"# {title}", "", "| language | " + " | ".join(SPLITS) + " | total |", "|---|" + "---:|" * (len(SPLITS) + 1)]
    for lang, row in sorted(counts.items(), key=lambda kv: -sum(kv[1].get(s, 0) for s in SPLITS)):
        values = [row.get(s, 0) for s in SPLITS]
        lines.append(f"| {lang} | " + " | ".join(str(v) for v in values) + f" | {sum(values)} |")
    return "\n".join(lines) + "\n"


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(asctime)s %(name)s: %(message)s")
