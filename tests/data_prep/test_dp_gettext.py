"""gettext catalogs: .mo reading, cleaning, hash splits, multi-way sets, counts, idempotence and resume."""

from __future__ import annotations

import json

import pytest
from dp_helpers import build_locale_root, mo_bytes, write_mo
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep import gettext_catalogs as gc
from data_prep.common import DataPrepError


def test_locale_names_map_to_codes():
    assert [gc.locale_to_lang(x) for x in ["de", "de_CH", "pt_BR", "pt_PT", "zh_CN", "zh_Hant", "sr@latin",
                                           "sr@Latn", "uz@cyrillic", "ca@valencia", "en_GB", "en@quot",
                                           "locale.alias"]] == [
        "de", "de", "pt_br", "pt", "zh_cn", "zh_tw", "sr_latn", "sr_latn", "uz_cyrl", "ca_valencia", None, None, None]


def test_cleaning_rules():
    assert gc.clean_pairs("_Save", "_Speichern") == [("Save", "Speichern")]
    assert gc.clean_pairs("&Quit", "Beenden(&Q)") == [("Quit", "Beenden")]
    assert gc.clean_pairs("Open file\n", "Datei öffnen\n") == [("Open file", "Datei öffnen")]
    assert gc.clean_pairs("file_name is bad", "file_name ist schlecht") == [("file_name is bad", "file_name ist schlecht")]
    assert gc.clean_pairs("OK", "OK") == []  # identical
    assert gc.clean_pairs("Missing", "") == []  # untranslated
    assert gc.clean_pairs("%s: %s", "%s : %s") == []  # mostly placeholders
    assert gc.clean_pairs("%1$s {0}", "%1$s {0}!") == []
    assert gc.clean_pairs("a\nb c d", "x") == []  # multi-line mismatch
    assert gc.clean_pairs("First line\nSecond line", "Erste Zeile\nZweite Zeile") == [
        ("First line", "Erste Zeile"), ("Second line", "Zweite Zeile")]
    assert gc.normalise("Cannot open '%s' (2 times).") == gc.normalise("cannot open %d times") == "cannot open times"


def test_read_mo_plural_context_and_latin1_fallback(tmp_path):
    path = write_mo(tmp_path, "de", "x", {("%d file", "%d files"): ["%d Datei", "%d Dateien"], "ctx\x04Edit": "Bearbeiten"})
    entries = dict(gc.catalog_entries(gc.read_mo(path)))
    assert entries == {"%d file": "%d Datei", "Edit": "Bearbeiten"}
    legacy = write_mo(tmp_path, "fr", "y", {"Stop": "Arrêt"}, charset="ISO-8859-1",
                      header_extra="Last-Translator: Fran\u00e7ois\n")
    assert dict(gc.catalog_entries(gc.read_mo(legacy))) == {"Stop": "Arrêt"}
    broken = tmp_path / "broken.mo"
    broken.write_bytes(mo_bytes({"a": "b"})[:40])
    with pytest.raises(DataPrepError, match="broken.mo"):
        gc.read_mo(broken)


def _lines(path):
    return path.read_text("utf-8").splitlines()


def test_prepare_writes_splits_multiway_and_counts(tmp_path):
    root = build_locale_root(tmp_path / "locale")
    (root / "it" / "LC_MESSAGES").mkdir(parents=True)
    (root / "it" / "LC_MESSAGES" / "bad.mo").write_bytes(b"\x00" * 10)  # unreadable: counted, skipped
    out = tmp_path / "out"
    config = gc.GettextConfig(locale_root=str(root), langs=("de", "fr"), valid_fraction=0.1, test_fraction=0.2)
    report = gc.prepare(config, out, progress=False)
    counts = report["pairs_per_language"]
    assert set(counts) == {"de", "fr", "pt_br", "sr_latn"}  # en_GB is the source side; it has no pairs
    assert len(report["unreadable_catalogs"]) == 1 and "bad.mo" in report["unreadable_catalogs"][0]
    train_en, train_de = _lines(out / "train.en-de.en"), _lines(out / "train.en-de.de")
    assert len(train_en) == len(train_de)
    pairs = set()
    for split in gc.SPLITS:
        pairs |= set(zip(_lines(out / f"{split}.en-de.en"), _lines(out / f"{split}.en-de.de")))
    assert ("Save", "Speichern") in pairs and ("Close window", "Fenster schließen") in pairs
    assert ("Stop the process", "Arrêter le processus") in set(zip(*[
        sum((_lines(out / f"{s}.en-fr.{side}") for s in gc.SPLITS), []) for side in ("en", "fr")]))
    english = {text for text, _ in pairs}
    assert not english & {"OK", "%s", "%d of %d", "Untranslated"}
    assert "Edit" in english and "%d file copied" in english  # context stripped, plural singular kept
    # de_CH merged into de: both translations kept in train, the plain locale's is the reference in valid/test
    assert counts["de"] == len(pairs) + (1 if gc.split_of("Open file", 0.1, 0.2)[0] != "train" else 0)
    # near-duplicates share a split
    split_of = {text: split for split in gc.SPLITS for text in _lines(out / f"{split}.en-de.en")}
    assert split_of["Print page 12"] == split_of["Print page 13"]
    assert split_of["Cannot open %s"] == split_of["cannot open '%s'."]
    # multi-way: the same English source on both sides
    de_fr = list(zip(_lines(out / "test.de-fr.de"), _lines(out / "test.de-fr.fr")))
    assert de_fr
    de_of = dict(zip(_lines(out / "test.en-de.en"), _lines(out / "test.en-de.de")))
    fr_of = dict(zip(_lines(out / "test.en-fr.en"), _lines(out / "test.en-fr.fr")))
    assert set(de_fr) == {(de_of[e], fr_of[e]) for e in de_of if e in fr_of}
    saved = json.loads((out / "gettext_counts.json").read_text())
    assert saved["pairs_per_language"] == counts and "| de |" in (out / "gettext_counts.md").read_text()
    assert not list(out.glob(".*.tmp"))


def test_rerun_is_idempotent_and_interrupted_run_resumes(tmp_path, monkeypatch):
    root = build_locale_root(tmp_path / "locale")
    config = gc.GettextConfig(locale_root=str(root), langs=("de", "fr"), valid_fraction=0.1, test_fraction=0.2)
    reference = tmp_path / "reference"
    gc.prepare(config, reference, progress=False)
    out = tmp_path / "out"
    real_write, calls = gc.write_parallel, []

    def crash_on_fr(out_dir, split, src, tgt, pairs):
        calls.append((split, src, tgt))
        if tgt == "fr":
            raise KeyboardInterrupt  # killed half-way
        return real_write(out_dir, split, src, tgt, pairs)

    monkeypatch.setattr(gc, "write_parallel", crash_on_fr)
    with pytest.raises(KeyboardInterrupt):
        gc.prepare(config, out, progress=False)
    assert (out / "train.en-de.de").exists() and not (out / "train.en-fr.fr").exists()
    stamp = (out / "train.en-de.de").stat().st_mtime_ns
    calls.clear()
    monkeypatch.setattr(gc, "write_parallel", lambda *a: (calls.append(a[1:4]), real_write(*a))[1])
    gc.prepare(config, out, progress=False)
    assert all(tgt != "de" for _, src, tgt in calls if src == "en")  # en-de was not redone
    assert (out / "train.en-de.de").stat().st_mtime_ns == stamp
    for path in reference.glob("*.*-*.*"):
        assert (out / path.name).read_bytes() == path.read_bytes()
    calls.clear()
    gc.prepare(config, out, progress=False)
    assert calls == []  # complete: nothing redone
    (out / "test.en-de.de").write_text("tampered\n")  # a stale output is detected and rebuilt
    gc.prepare(config, out, progress=False)
    assert (out / "test.en-de.de").read_bytes() == (reference / "test.en-de.de").read_bytes()


def test_unknown_language_and_empty_catalogs(tmp_path):
    root = build_locale_root(tmp_path / "locale")
    with pytest.raises(DataPrepError, match=r"unknown language.*'xx'.*have: \['de', 'fr'"):
        gc.prepare(gc.GettextConfig(locale_root=str(root), langs=("xx",)), tmp_path / "o", progress=False)
    empty = tmp_path / "empty"
    write_mo(empty, "de", "c", {"OK": "OK"})
    with pytest.raises(DataPrepError, match="no usable translated pairs"):
        gc.prepare(gc.GettextConfig(locale_root=str(empty)), tmp_path / "o2", progress=False)
    with pytest.raises(DataPrepError, match="no .*catalogs found"):
        gc.prepare(gc.GettextConfig(locale_root=str(tmp_path / "nothing")), tmp_path / "o3", progress=False)


english_text = st.text(alphabet=st.sampled_from(list("abcAB %s12{}0.'_&")), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["de", "fr", "es"]),
                       st.dictionaries(english_text, st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=2),
                                       min_size=1, max_size=25), min_size=1))
def test_no_english_source_in_two_splits(tables):
    """The split property: across every language, one (normalised) English source sits in one split only."""
    result = gc.Scan()
    for lang, table in tables.items():
        result.pairs[lang] = {src: list(dict.fromkeys(tgts)) for src, tgts in table.items()}
    config = gc.GettextConfig(valid_fraction=0.3, test_fraction=0.3)
    splits = gc.assign_splits(result, config)
    seen: dict[str, str] = {}
    for lang, table in result.pairs.items():
        for split, rows in gc.language_splits(table, splits, config).items():
            for src, _ in rows:
                assert seen.setdefault(gc.normalise(src), split) == split


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_mo_reader_fuzz(data):
    """Any bytes give a catalog or a DataPrepError naming the file, never another exception."""
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.mo"
        path.write_bytes(data)
        try:
            catalog = gc.read_mo(path)
        except DataPrepError as err:
            assert "fuzz.mo" in str(err)
        else:
            list(gc.catalog_entries(catalog))


@pytest.mark.parametrize("langs", ["de,xx", "xx"])
def test_selected_only_names_every_language_the_catalogs_have(tmp_path, capsys, langs):
    """--selected-only reads only the --langs catalogs; a missing language was reported against that subset
    ("have: ['de']"), or, when none was found, as "no catalogs found" at all."""
    from data_prep.cli import main as data_prep_main

    root = build_locale_root(tmp_path / "locale")
    out = tmp_path / "out"
    assert data_prep_main(["gettext", "--output-dir", str(out), "--locale-root", str(root), "--langs", langs,
                           "--selected-only"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f"data-prep gettext: error: unknown language(s) ['xx']; the catalogs under {root} have: "
                    "['de', 'fr', 'pt_br', 'sr_latn']")
    assert not out.exists()
