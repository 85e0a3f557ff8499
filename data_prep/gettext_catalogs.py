"""Parallel text from the gettext catalogs every Debian/Ubuntu machine has.

``/usr/share/locale/<locale>/LC_MESSAGES/<catalog>.mo`` maps English msgids
(coreutils, apt, glib, iso-codes, ...) to translations.  This builds en->xx
pairs per language, train/valid/test splits, multi-way test sets (de<->fr
from the same English source) for zero-shot evaluation, and a pair-count
report.

Cleaning, in order: drop the msgctxt; plural entries keep the singular msgid
and the first plural form; strip accelerator marks (``_File``, ``&Open``,
``(_F)``) and trailing newlines; a multi-line entry becomes one pair per line
when both sides have the same number of lines, and is dropped otherwise;
whitespace is collapsed; entries that are untranslated, identical to the
English (up to case, spacing and punctuation), longer than ``max_chars``,
near-empty (fewer than 3 letters outside placeholders and markup) or mostly
placeholders and markup (``%s``, ``%1$s``, ``{0}``, ``%(name)s``, ``$VAR``,
``<b>``, ``&amp;``) are dropped; exact duplicates are removed.  The report
counts, per language, the pairs each rule removed.

Splits: the split of a pair is a hash of the *normalised* English source
(lower-cased; digits, placeholders and punctuation removed).  So one English
source never sits in two splits, and neither do its near-duplicates that
differ only in numbers, placeholders, case or punctuation ("Cannot open %s"
vs "cannot open '%s'.").  On top, ``holdout_catalogs`` sends every string of
the named catalogs (and every string normalising to one of them) to test.

Locale directory -> language code (fairseq names cannot hold '-'):
``de`` -> ``de``; a region is merged into its language (``de_CH`` -> ``de``,
``pt_PT`` -> ``pt``) except for pt and zh: ``pt_BR`` -> ``pt_br``,
``zh_CN``/``zh_Hans`` -> ``zh_cn``, ``zh_TW``/``zh_Hant`` -> ``zh_tw``,
``zh_HK`` -> ``zh_hk``; script modifiers become suffixes: ``sr@latin`` and
``sr@Latn`` -> ``sr_latn``, ``uz@cyrillic`` -> ``uz_cyrl``; ``az_IR`` and
``pa_PK`` (Arabic script) -> ``az_arab``/``pa_arab``; other modifiers are
kept (``ca@valencia`` -> ``ca_valencia``).  English locales are the source
side and are skipped.  Where several directories share a code, the plain
one's catalogs come first, so its translation is the reference in valid/test.
"""

from __future__ import annotations

import gettext
import hashlib
import logging
import re
import struct
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import SPLITS, DataPrepError, Manifest, files_fingerprint, fingerprint, split_counts_table, write_parallel

logger = logging.getLogger("data_prep.gettext")


@dataclass
class GettextConfig:
    # the directory holding <locale>/LC_MESSAGES/*.mo
    locale_root: str = "/usr/share/locale"
    # languages (codes as in the module docstring) to write; empty: only count
    langs: tuple[str, ...] = ()
    # also write the N languages with the most pairs (added to ``langs``)
    top: int = 0
    # share of English sources (by hash) that go to valid
    valid_fraction: float = 0.02
    # share of English sources (by hash) that go to test
    test_fraction: float = 0.03
    # keep at most this many valid / test sources per direction (0: all);
    # the rest of those sources are dropped, never moved into train
    max_valid: int = 0
    max_test: int = 0
    # keep at most this many training pairs per direction (0: all), taken in
    # hash order, i.e. a random subset that is the same on every machine
    max_train: int = 0
    # catalogs (file stems, e.g. "coreutils") whose strings all go to test
    holdout_catalogs: tuple[str, ...] = ()
    # write test.<a>-<b> multi-way sets for every pair of non-English languages
    multiway: bool = True
    # drop pairs with a side longer than this many characters
    max_chars: int = 300
    # read every language's catalogs (for the full count report); False: only ``langs`` (faster)
    count_all: bool = True


# -- locale names --------------------------------------------------------------
_KEEP_REGION = {"pt_BR": "pt_br", "zh_CN": "zh_cn", "zh_Hans": "zh_cn", "zh_TW": "zh_tw", "zh_Hant": "zh_tw",
                "zh_HK": "zh_hk", "az_IR": "az_arab", "pa_PK": "pa_arab"}
_MODIFIERS = {"latin": "latn", "latn": "latn", "cyrillic": "cyrl", "iqtelif": "latn"}


def locale_to_lang(locale: str) -> str | None:
    """The language code for a locale directory name; None for English and non-locales."""
    if not re.fullmatch(r"[A-Za-z]{2,3}(_[A-Za-z]{2,4})?(@[A-Za-z]+)?", locale):
        return None
    base, _, modifier = locale.partition("@")
    language = base.split("_")[0].lower()
    if language == "en":
        return None
    code = _KEEP_REGION.get(base, language)
    if modifier:
        code += "_" + _MODIFIERS.get(modifier.lower(), modifier.lower())
    return code


# -- reading .mo files -------------------------------------------------------
def _parse_mo_bytes(data: bytes, path: Path) -> dict:
    """Fallback .mo parser for catalogs whose header gettext cannot decode (a
    translator name in Latin-1 before the charset line): decode each string with
    the header's charset, replacing bad bytes."""
    if len(data) < 28:
        raise DataPrepError(f"{path}: truncated .mo file ({len(data)} bytes)")
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        raise DataPrepError(f"{path}: not a .mo file (magic 0x{magic:08x})")
    _, count, ids_at, strs_at = struct.unpack(order + "4I", data[4:20])

    def entry(table: int, i: int) -> bytes:
        length, offset = struct.unpack(order + "2I", data[table + 8 * i: table + 8 * i + 8])
        if offset + length > len(data):
            raise DataPrepError(f"{path}: string {i} points past the end of the file")
        return data[offset: offset + length]

    try:
        raw = [(entry(ids_at, i), entry(strs_at, i)) for i in range(count)]
    except struct.error as err:
        raise DataPrepError(f"{path}: truncated .mo table ({err})") from None
    header = dict(raw).get(b"", b"")
    found = re.search(rb"charset=([-\w]+)", header)
    charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        charset = "utf-8"
    catalog = {}
    for msgid, msgstr in raw:
        if not msgid:
            continue
        singular = msgid.split(b"\x00")[0].decode(charset, "replace")
        if b"\x00" in msgid:
            for i, form in enumerate(msgstr.split(b"\x00")):
                catalog[(singular, i)] = form.decode(charset, "replace")
        else:
            catalog[singular] = msgstr.decode(charset, "replace")
    return catalog


def read_mo(path: Path) -> dict:
    """The catalog of one .mo file: ``{msgid: msgstr}`` plus ``{(msgid, n): form}`` for plurals."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return dict(gettext.GNUTranslations(handle)._catalog)
    except (OSError, UnicodeDecodeError, IndexError, ValueError, struct.error):
        return _parse_mo_bytes(path.read_bytes(), path)


def catalog_entries(catalog: dict):
    """(English, translation) per entry; a plural entry gives its first form."""
    for key, value in catalog.items():
        if isinstance(key, tuple):
            if key[1] != 0:
                continue
            key = key[0]
        if not key:  # the header
            continue
        yield key.split("\x04")[-1], value


# -- cleaning ---------------------------------------------------------------------
PLACEHOLDER = re.compile(
    r"%(\d+\$)?[-+ #0']*(\*|\d+)?(\.(\*|\d+))?(hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGaAcspnmSC%]"
    r"|%<PRI\w+>|%\([A-Za-z_]\w*\)[sdrif]|%\d+|\{[A-Za-z_0-9]*(:[^{}]*)?\}|\$\{?[A-Za-z_]\w*\}?")
_ACCEL_PAREN = re.compile(r"\s*\([_&][A-Za-z0-9]\)")
_ACCEL = re.compile(r"(?<![\w&])[_&](?=\w)")


def strip_accelerators(text: str) -> str:
    text = _ACCEL_PAREN.sub("", text)
    return _ACCEL.sub("", text)


MARKUP = re.compile(r"<[^<>]*>|&[A-Za-z]+;|&#\d+;")


def removal_reason(text: str) -> str | None:
    """Why one side of a pair carries no translatable text, or None.

    "near-empty": fewer than 3 letters once placeholders and markup are gone;
    "placeholders or markup only": placeholders and tags outnumber the words."""
    found = PLACEHOLDER.findall(text) + MARKUP.findall(text)
    rest = MARKUP.sub(" ", PLACEHOLDER.sub(" ", text))
    if sum(c.isalpha() for c in rest) < 3:
        return "near-empty"
    if len(found) > len(rest.split()):
        return "placeholders or markup only"
    return None


def mostly_placeholders(text: str) -> bool:
    """True when fewer than 3 letters remain without placeholders and markup, or those outweigh words."""
    return removal_reason(text) is not None


def normalise(text: str) -> str:
    """The split key: lower case without placeholders, digits or punctuation."""
    text = PLACEHOLDER.sub(" ", text.lower())
    return " ".join(re.sub(r"[\W\d_]+", " ", text).split())


def same_text(src: str, tgt: str) -> bool:
    """The target equals the source up to case, spacing and punctuation (an untranslated copy)."""
    def key(text):
        return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())
    return src == tgt or key(src) == key(tgt)


def clean_pairs(english: str, translation: str, max_chars: int = 300, removed: Counter | None = None):
    """The (en, xx) pairs an entry gives after cleaning (zero, one, or one per line).

    ``removed`` (optional) counts each dropped pair under the rule that dropped it."""
    removed = Counter() if removed is None else removed
    if not translation or not english:
        removed["untranslated"] += 1
        return []
    src_lines = [line for line in english.strip("\n").split("\n")]
    tgt_lines = [line for line in translation.strip("\n").split("\n")]
    if len(src_lines) != len(tgt_lines):
        removed["line counts differ"] += 1
        return []
    out = []
    for src, tgt in zip(src_lines, tgt_lines):
        src, tgt = " ".join(strip_accelerators(src).split()), " ".join(strip_accelerators(tgt).split())
        if not src or not tgt:
            removed["untranslated"] += 1
            continue
        if max(len(src), len(tgt)) > max_chars:
            removed["too long"] += 1
            continue
        reason = removal_reason(src) or removal_reason(tgt)
        if reason:
            removed[reason] += 1
            continue
        if same_text(src, tgt):
            removed["target equals source"] += 1
            continue
        out.append((src, tgt))
    return out


def split_of(english: str, valid_fraction: float, test_fraction: float) -> tuple[str, float]:
    """(split, hash in [0, 1)) of an English source, from its normalised form."""
    value = int(hashlib.sha1(normalise(english).encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
    if value < test_fraction:
        return "test", value
    if value < test_fraction + valid_fraction:
        return "valid", value
    return "train", value


# -- scanning -------------------------------------------------------------------------
@dataclass
class Scan:
    """What the catalogs hold: per language, English -> translations (first is the reference)."""

    # lang -> {english: [translation, ...]} in preference order
    pairs: dict = field(default_factory=lambda: defaultdict(dict))
    # lang -> {english: set of catalog stems it came from}
    catalogs: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    # lang -> the locale directories read
    locales: dict = field(default_factory=lambda: defaultdict(list))
    # "path: why" for catalogs that could not be read (skipped, counted)
    unreadable: list = field(default_factory=list)
    # lang -> {cleaning rule: pairs it removed} ("duplicate" counts exact repeats)
    removed: dict = field(default_factory=lambda: defaultdict(Counter))


def mo_files(locale_root: Path) -> list[tuple[str, Path]]:
    """(lang, path) for every catalog, the plain locale of each language first."""
    found = []
    for path in sorted(Path(locale_root).glob("*/LC_MESSAGES/*.mo")):
        locale = path.parent.parent.name
        lang = locale_to_lang(locale)
        if lang is not None:
            found.append((lang, locale != lang, locale, path))
    found.sort(key=lambda item: item[:3] + (item[3].name,))
    return [(lang, path) for lang, _, _, path in found]


def scan(locale_root: Path, max_chars: int = 300, progress: bool = True, only: tuple[str, ...] = ()) -> Scan:
    result = Scan()
    files = [(lang, path) for lang, path in mo_files(locale_root) if not only or lang in only]
    if not files:
        raise DataPrepError(f"{locale_root}: no */LC_MESSAGES/*.mo catalogs found")
    try:
        from tqdm import tqdm
        iterator = tqdm(files, desc="reading .mo catalogs", disable=not progress, mininterval=2)
    except ImportError:  # pragma: no cover
        iterator = files
    for lang, path in iterator:
        try:
            catalog = read_mo(path)
        except (DataPrepError, OSError) as err:
            result.unreadable.append(f"{path}: {err}")
            continue
        locale = path.parent.parent.name
        if locale not in result.locales[lang]:
            result.locales[lang].append(locale)
        table, sources = result.pairs[lang], result.catalogs[lang]
        for english, translation in catalog_entries(catalog):
            for src, tgt in clean_pairs(english, translation, max_chars, result.removed[lang]):
                options = table.setdefault(src, [])
                if tgt not in options:
                    options.append(tgt)
                else:
                    result.removed[lang]["duplicate"] += 1
                sources[src].add(path.stem)
    return result


def pair_counts(result: Scan) -> dict[str, int]:
    return {lang: sum(len(v) for v in table.values()) for lang, table in result.pairs.items() if table}


# -- splitting and writing ---------------------------------------------------------------
def assign_splits(result: Scan, config: GettextConfig) -> dict[str, tuple[str, float]]:
    """English source -> (split, hash), identical for every language."""
    held = set()
    if config.holdout_catalogs:
        wanted = set(config.holdout_catalogs)
        for sources in result.catalogs.values():
            held.update(normalise(src) for src, stems in sources.items() if stems & wanted)
    out = {}
    for table in result.pairs.values():
        for src in table:
            if src not in out:
                split, value = split_of(src, config.valid_fraction, config.test_fraction)
                out[src] = ("test", value) if normalise(src) in held else (split, value)
    return out


def language_splits(table: dict, splits: dict, config: GettextConfig) -> dict[str, list[tuple[str, str]]]:
    """train: every distinct pair; valid/test: one reference per source, by hash order, capped."""
    out = {split: [] for split in SPLITS}
    for src in sorted(table, key=lambda s: (splits[s][1], s)):
        split = splits[src][0]
        if split == "train":
            out["train"].extend((src, tgt) for tgt in table[src])
        else:
            out[split].append((src, table[src][0]))
    for split, cap in (("train", config.max_train), ("valid", config.max_valid), ("test", config.max_test)):
        if cap:
            out[split] = out[split][:cap]
    return out


def multiway_test(tables: dict, splits: dict, a: str, b: str, cap: int) -> list[tuple[str, str]]:
    """(a, b) test pairs whose English source both languages translate."""
    shared = [src for src in tables[a] if src in tables[b] and splits[src][0] == "test"]
    shared.sort(key=lambda s: (splits[s][1], s))
    if cap:
        shared = shared[:cap]
    return [(tables[a][src][0], tables[b][src][0]) for src in shared]


def prepare(config: GettextConfig, out_dir: Path, progress: bool = True) -> dict:
    """Scan, count, split and write; returns the report (also written as JSON + Markdown)."""
    out_dir = Path(out_dir)
    root = Path(config.locale_root)
    manifest = Manifest(out_dir)
    catalogs = mo_files(root)
    all_key = fingerprint(asdict(config), files_fingerprint(p for _, p in catalogs))
    report_path = out_dir / "gettext_counts.json"
    if manifest.is_done("all", all_key) and report_path.exists():
        logger.info("%s is up to date; nothing to do", out_dir)
        return manifest.info("all")
    if not catalogs:
        raise DataPrepError(f"{root}: no */LC_MESSAGES/*.mo catalogs found")
    only = tuple(config.langs) if not config.count_all and config.langs and not config.top else ()
    with_catalogs = {lang for lang, _ in catalogs}
    result = scan(root, config.max_chars, progress, only) if not only or with_catalogs & set(only) else Scan()
    counts = pair_counts(result)
    # --selected-only reads only the --langs catalogs: the languages it did not read count as available when
    # they have catalogs, so that an error names every language, not the subset that was read
    available = sorted(set(counts) | (with_catalogs - set(only) if only else set()))
    if not available:
        raise DataPrepError(f"{root}: the catalogs hold no usable translated pairs")
    langs = list(dict.fromkeys(config.langs))
    if config.top:
        langs += [lang for lang in sorted(counts, key=lambda k: (-counts[k], k))[: config.top] if lang not in langs]
    unknown = [lang for lang in langs if lang not in counts]
    if unknown:
        raise DataPrepError(f"unknown language(s) {unknown}; the catalogs under {root} have: {available}")
    splits = assign_splits(result, config)
    split_counts = {}
    for lang in langs:
        step = f"en-{lang}"
        table = result.pairs[lang]
        key = fingerprint(all_key, step)
        per_split = language_splits(table, splits, config)
        split_counts[step] = {split: len(rows) for split, rows in per_split.items()}
        if manifest.is_done(step, key):
            continue
        empty = [split for split, rows in per_split.items() if not rows]
        if empty:
            raise DataPrepError(f"en-{lang}: split(s) {empty} would be empty ({counts[lang]} pairs in all); "
                                "raise valid/test fractions or choose a language with more strings")
        outputs = []
        for split, rows in per_split.items():
            outputs += write_parallel(out_dir, split, "en", lang, rows)
        manifest.mark_done(step, key, outputs)
    if config.multiway:
        for i, a in enumerate(sorted(langs)):
            for b in sorted(langs)[i + 1:]:
                step = f"{a}-{b}"
                key = fingerprint(all_key, step)
                rows = multiway_test(result.pairs, splits, a, b, config.max_test)
                split_counts[step] = {"test": len(rows)}
                if manifest.is_done(step, key):
                    continue
                if not rows:
                    logger.warning("no shared test sources for %s-%s; no multi-way set written", a, b)
                    continue
                manifest.mark_done(step, key, write_parallel(out_dir, "test", a, b, rows))
    report = {
        "locale_root": str(root), "config": asdict(config), "languages": len(counts),
        "pairs_total": sum(counts.values()), "pairs_per_language": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "locales_per_language": {k: v for k, v in sorted(result.locales.items()) if k in counts},
        "unreadable_catalogs": result.unreadable, "written": split_counts,
        "removed_per_language": {lang: dict(sorted(result.removed[lang].items())) for lang in langs},
    }
    atomic_write_json(report_path, report)
    atomic_write_text(out_dir / "gettext_counts.md", counts_markdown(report))
    outputs = [Path(p) for step in split_counts if step in manifest.steps for p in manifest.steps[step]["outputs"]]
    manifest.mark_done("all", all_key, outputs + [report_path, out_dir / "gettext_counts.md"], info=report)
    return report


def counts_markdown(report: dict) -> str:
    counts = report["pairs_per_language"]
    lines = [f"# gettext catalogs under {report['locale_root']}", "",
             f"{report['pairs_total']} pairs over {report['languages']} languages; "
             f"{sum(v >= 10000 for v in counts.values())} languages have 10k pairs or more; "
             f"{len(report['unreadable_catalogs'])} catalogs unreadable (skipped).", "",
             "| language | en-xx pairs |", "|---|---:|"]
    lines += [f"| {lang} | {count} |" for lang, count in counts.items()]
    written = {k: v for k, v in report["written"].items()}
    if written:
        lines += ["", split_counts_table(written, "Written splits").rstrip()]
    removed = report.get("removed_per_language") or {}
    if removed:
        rules = sorted({rule for counts in removed.values() for rule in counts})
        lines += ["", "## Pairs removed by cleaning", "", "| language | " + " | ".join(rules) + " |",
                  "|---|" + "---:|" * len(rules)]
        lines += [f"| {lang} | " + " | ".join(str(counts.get(rule, 0)) for rule in rules) + " |"
                  for lang, counts in removed.items()]
    return "\n".join(lines) + "\n"
