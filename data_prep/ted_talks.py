"""The 58-language TED talks corpus of Qi et al. (2018), as used by Philip et al. (2020).

Input: the directory of ``all_talks_train.tsv``, ``all_talks_dev.tsv`` and
``all_talks_test.tsv`` (from ``ted_talks.tar.gz``).  Each is a TSV with a
header row: ``talk_name`` then one column per language code (``en``, ``de``,
``pt-br``, ``zh-cn``, ...); one row per aligned sentence; ``__NULL__`` (or
``_ _ NULL _ _`` after tokenisation) or an empty cell marks a missing
sentence.  The text is kept as distributed (it is already tokenised).

Output (splits train/valid/test from train/dev/test; codes with '-' become
'_', so ``pt-br`` is ``pt_br`` in file names):

* ``<split>.<a>-<b>.<a|b>`` for every chosen pair (default: every pair of the
  chosen languages, English first), rows where both sides are present;
* ``test.multiway.<lang>``: the test rows where *every* chosen language is
  present, line-aligned across languages, for zero-shot evaluation.

Bad input: a row whose field count differs from the header, invalid UTF-8 or
a NUL byte is a ``file:line`` error, or with ``on_bad="skip"`` a counted skip
listed in ``ted_report.json``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import (DataPrepError, Manifest, SkipLog, check_line, file_sha256, fingerprint, lang_code, raw_lines,
                     write_parallel)

logger = logging.getLogger("data_prep.ted")

TED_FILES = {"train": "all_talks_train.tsv", "valid": "all_talks_dev.tsv", "test": "all_talks_test.tsv"}
MISSING = ("__NULL__", "_ _ NULL _ _")


@dataclass
class TedConfig:
    # the directory holding all_talks_{train,dev,test}.tsv
    tsv_dir: str = "ted_talks"
    # language codes as in the TSV header (e.g. "en", "de", "pt-br")
    langs: tuple[str, ...] = ("en", "de")
    # directions "a-b" (TSV codes) to write; empty: every pair of ``langs``, English first
    pairs: tuple[str, ...] = ()
    # "error": stop at the first bad row; "skip": drop it, count it, report it
    on_bad: str = "error"


def read_ted_tsv(path: Path, langs: tuple[str, ...], on_bad: str = "error", skips: SkipLog | None = None):
    """Rows of ``{lang: sentence or None}`` for the requested languages."""
    skips = skips if skips is not None else SkipLog()
    lines = raw_lines(path)
    if not lines:
        raise DataPrepError(f"{path}: empty file (expected a header row: talk_name, then language codes)")
    header_text, reason = check_line(lines[0], "")
    if reason:
        raise DataPrepError(f"{path}:1: {reason} in the header row")
    header = header_text.split("\t")
    if header[0] != "talk_name":
        raise DataPrepError(f"{path}:1: the header must start with 'talk_name', found {header[0]!r}")
    missing = [lang for lang in langs if lang not in header]
    if missing:
        raise DataPrepError(f"{path}:1: language(s) {missing} not in the header; it has {header[1:]}")
    columns = {lang: header.index(lang) for lang in langs}
    rows = []
    for number, raw in enumerate(lines[1:], start=2):
        text, reason = check_line(raw, "")
        fields = text.split("\t") if text is not None else []
        if reason is None and len(fields) != len(header):
            reason = f"{len(fields)} fields, the header has {len(header)}"
        if reason is not None:
            if on_bad == "skip":
                skips.add(f"{path}:{number}", reason)
                continue
            raise DataPrepError(f"{path}:{number}: {reason}")
        row = {}
        for lang, column in columns.items():
            cell = " ".join(fields[column].split())
            row[lang] = None if not cell or any(mark in cell for mark in MISSING) else cell
        rows.append(row)
    return rows


def default_pairs(langs: tuple[str, ...]) -> list[tuple[str, str]]:
    ordered = sorted(langs, key=lambda lang: (lang != "en", lang))
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]]


def prepare(config: TedConfig, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    tsv_dir = Path(config.tsv_dir)
    repeated = sorted({lang for lang in config.langs if config.langs.count(lang) > 1})
    if repeated:
        raise DataPrepError(f"--langs names {', '.join(repeated)} more than once; name each language once")
    pairs = [tuple(p.split("-", 1)) if p.count("-") == 1 else _split_pair(p, config.langs) for p in config.pairs] \
        or default_pairs(config.langs)
    for pair in pairs:
        if pair[0] == pair[1]:
            raise DataPrepError(f"pair {'-'.join(pair)}: a direction needs two different languages")
        for lang in pair:
            if lang not in config.langs:
                raise DataPrepError(f"pair {'-'.join(pair)}: {lang!r} is not among the chosen languages {config.langs}")
    manifest = Manifest(out_dir)
    report = {"config": asdict(config), "written": {}, "skipped": {}}
    for split, name in TED_FILES.items():
        path = tsv_dir / name
        if not path.exists():
            raise DataPrepError(f"{path}: missing (expected {sorted(TED_FILES.values())} in {tsv_dir})")
        key = fingerprint(asdict(config), file_sha256(path), [list(p) for p in pairs])
        if manifest.is_done(split, key):
            report["written"].update(manifest.info(split).get("written", {}))
            continue
        skips = SkipLog()
        rows = read_ted_tsv(path, tuple(config.langs), config.on_bad, skips)
        outputs, written = [], {}
        for a, b in pairs:
            kept = [(row[a], row[b]) for row in rows if row[a] and row[b]]
            if not kept:
                raise DataPrepError(f"{path}: no rows with both {a} and {b}: empty corpus for {a}-{b}")
            outputs += write_parallel(out_dir, split, lang_code(a), lang_code(b), kept)
            written[f"{split}.{lang_code(a)}-{lang_code(b)}"] = len(kept)
        if split == "test":
            full = [row for row in rows if all(row[lang] for lang in config.langs)]
            for lang in config.langs:
                target = out_dir / f"test.multiway.{lang_code(lang)}"
                atomic_write_text(target, "".join(row[lang] + "\n" for row in full))
                outputs.append(target)
            written["test.multiway"] = len(full)
        report["written"].update(written)
        report["skipped"][str(path)] = skips.as_dict()
        manifest.mark_done(split, key, outputs, info={"written": written})
    atomic_write_json(out_dir / "ted_report.json", report)
    return report


def _split_pair(pair: str, langs: tuple[str, ...]) -> tuple[str, str]:
    """Split "pt-br-en" style directions using the known language codes."""
    for lang in langs:
        if pair.startswith(lang + "-") and pair[len(lang) + 1:] in langs:
            return lang, pair[len(lang) + 1:]
    raise DataPrepError(f"cannot split direction {pair!r} into two of {langs}")
