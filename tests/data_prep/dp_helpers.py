"""Fixtures in the real formats: gettext .mo binaries (written with struct, as msgfmt does), TED TSVs,
WikiExtractor output, FLORES-200 folders."""

from __future__ import annotations

import struct
from pathlib import Path


def mo_bytes(entries: dict, charset: str = "UTF-8", header_extra: str = "") -> bytes:
    """A GNU .mo file: keys are msgids ("ctx\\x04id" for contexts, (singular, plural) for plurals),
    values are msgstrs (a list of forms for plurals)."""
    header = f"Project-Id-Version: test\n{header_extra}Content-Type: text/plain; charset={charset}\n" \
             "Plural-Forms: nplurals=2; plural=(n != 1);\n"
    items = [(b"", header.encode(charset))]
    for key, value in entries.items():
        msgid = ("\x00".join(key) if isinstance(key, tuple) else key).encode(charset)
        msgstr = ("\x00".join(value) if isinstance(value, list) else value).encode(charset)
        items.append((msgid, msgstr))
    items.sort()
    count = len(items)
    ids_at, strs_at = 28, 28 + 8 * count
    data_at = strs_at + 8 * count
    table_ids, table_strs, blob = b"", b"", b""
    for msgid, _ in items:
        table_ids += struct.pack("<2I", len(msgid), data_at + len(blob))
        blob += msgid + b"\x00"
    for _, msgstr in items:
        table_strs += struct.pack("<2I", len(msgstr), data_at + len(blob))
        blob += msgstr + b"\x00"
    return struct.pack("<7I", 0x950412DE, 0, count, ids_at, strs_at, 0, data_at) + table_ids + table_strs + blob


def write_mo(root: Path, locale: str, catalog: str, entries: dict, **kwargs) -> Path:
    path = Path(root) / locale / "LC_MESSAGES" / f"{catalog}.mo"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mo_bytes(entries, **kwargs))
    return path


GERMAN = {"Open file": "Datei öffnen", "_Save": "_Speichern", "&Quit": "&Beenden", "Close window\n": "Fenster schließen\n",
          "%s": "%s", "%d of %d": "%d von %d", "OK": "OK", "Untranslated": "", "menu\x04Edit": "Bearbeiten",
          ("%d file copied", "%d files copied"): ["%d Datei kopiert", "%d Dateien kopiert"],
          "Line one\nLine two": "Zeile eins\nZeile zwei", "Cannot open %s": "Kann %s nicht öffnen",
          "cannot open '%s'.": "kann »%s« nicht öffnen.", "Print page 12": "Seite 12 drucken",
          "Print page 13": "Seite 13 drucken"}
FRENCH = {"Open file": "Ouvrir le fichier", "_Save": "_Enregistrer", "&Quit": "&Quitter",
          "Close window\n": "Fermer la fenêtre\n", "Print page 12": "Imprimer la page 12"}


def english_words(i: int) -> str:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    return f"{words[i % 10]} {words[(i // 10) % 10]} {words[(i // 100) % 10]} item"


def build_locale_root(root: Path, many: int = 300) -> Path:
    """de, fr, pt_BR, sr@latin and English variants; ``many`` generated strings so every split is non-empty."""
    bulk_de = {english_words(i): f"{english_words(i)} auf Deutsch" for i in range(many)}
    bulk_fr = {english_words(i): f"{english_words(i)} en français" for i in range(0, many, 2)}
    write_mo(root, "de", "core", GERMAN)
    write_mo(root, "de", "bulk", bulk_de)
    write_mo(root, "de_CH", "core", {"Open file": "Datei öffnen (CH)"})
    write_mo(root, "fr", "core", FRENCH)
    write_mo(root, "fr", "bulk", bulk_fr)
    write_mo(root, "pt_BR", "core", {"Open file": "Abrir arquivo", "_Save": "_Salvar"})
    write_mo(root, "sr@latin", "core", {"Open file": "Otvori datoteku"})
    write_mo(root, "en_GB", "core", {"Open file": "Open the file"})
    # a Latin-1 catalog whose header gettext cannot decode (seen on real systems)
    write_mo(root, "fr", "legacy", {"Stop the process": "Arrêter le processus"}, charset="ISO-8859-1",
             header_extra="Last-Translator: Fran\u00e7ois <f@example.org>\n")
    return root
