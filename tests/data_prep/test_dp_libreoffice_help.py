"""data-prep libreoffice-help on tiny hand-made help pages: alignment by paragraph id, inline switches,
cleaning, deduplication, the hash split, the held-out check; the Debian client of the registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest

from data_prep import libreoffice_help as lo
from data_prep import registry
from data_prep.cli import main as data_prep_main
from data_prep.common import DataPrepError
from data_prep.gettext_catalogs import normalise

PAGE = """<!DOCTYPE html><html><body><header><p dir="auto">Help for LibreOffice</p></header>
<div id="DisplayArea"><h1 id="hd_id1" dir="auto">{title}</h1>{body}</div></body></html>"""
WORDS = ("table chart cell sheet frame style page field macro filter border column row image index "
         "legend axis font margin header footer").split()
GERMAN = ("Tabelle Diagramm Zelle Blatt Rahmen Vorlage Seite Feld Makro Filter Rand Spalte Zeile Bild Index "
          "Legende Achse Schrift Abstand Kopfzeile Fußzeile").split()


def paragraph(ident: str, text: str) -> str:
    return f'<p id="{ident}" class="paragraph" dir="auto">{text}</p>\n'


def write_help(root, pages: dict[str, dict[str, str]]) -> None:
    """pages: language folder -> {page path: body html}."""
    for folder, files in pages.items():
        for name, body in files.items():
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(PAGE.format(title=f"Title {folder}", body=body), encoding="utf-8")


def corpus(root, count=20):
    """``count`` translated paragraphs plus one of each kind the cleaning drops."""
    en, de = [], []
    for i in range(count):
        a, b = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
        en.append(paragraph(f"par_id{i}", f"Select the {a} and then the {b} number {i // len(WORDS)} here."))
        de.append(paragraph(f"par_id{i}", f"Wählen Sie {GERMAN[i % len(WORDS)]} und dann "
                                          f"{GERMAN[(i * 7 + 3) % len(WORDS)]} Nummer {i // len(WORDS)} hier."))
    en.append(paragraph("par_idsame", "LibreOffice Calc Functions"))  # untranslated: target equals source
    de.append(paragraph("par_idsame", "LibreOffice Calc Functions"))
    en.append(paragraph("par_idonlyen", "Only the English page has this paragraph."))
    en.append(paragraph("par_idempty", "42"))  # near-empty
    de.append(paragraph("par_idempty", "42"))
    write_help(root, {"en-US": {"text/shared/a.html": "".join(en),
                                "text/shared/b.html": paragraph("par_id0", "Select the table and then the sheet "
                                                                "number 0 here.")},  # a duplicate English source
                      "de": {"text/shared/a.html": "".join(de),
                             "text/shared/b.html": paragraph("par_id0", "Eine andere Übersetzung.")}})


def test_read_page_keeps_the_default_variant_of_an_inline_switch_and_counts_repeated_ids(tmp_path):
    body = ('<p id="par_id7" dir="auto">Choose <span class="switchinline"><span hidden="true" id="MACtext_1" '
            'class="MAC"><span class="emph">LibreOffice - Preferences</span></span><span hidden="true" '
            'id="defaulttext_1"><span class="emph">Tools - Options</span></span></span> - Load.<br>Next</p>'
            '<p id="bm_x">bookmark text</p>'
            '<p id="par_id7">Embedded &amp; again</p><h2 id="hd_id9"><a href="x.html">Heading</a></h2>')
    (tmp_path / "p.html").write_text(PAGE.format(title="T", body=body), encoding="utf-8")
    got = lo.read_page(tmp_path / "p.html")
    assert got == {("hd_id1", 1): "T", ("par_id7", 1): "Choose Tools - Options - Load. Next",
                   ("par_id7", 2): "Embedded & again", ("hd_id9", 1): "Heading"}


def test_prepare_aligns_cleans_dedupes_and_keeps_held_out_sentences_out_of_training(tmp_path):
    corpus(tmp_path / "help")
    config = lo.HelpConfig(langs=("de",), valid_fraction=0.2, test_fraction=0.2, max_valid=0, max_test=0,
                           source_dir=str(tmp_path / "help"))
    report = lo.prepare(config, tmp_path / "out")
    row = report["directions"]["en-de"]
    out = tmp_path / "out"
    lines = {split: (out / f"{split}.en-de.en").read_text(encoding="utf-8").splitlines()
             for split in ("train", "valid", "test")}
    # 20 translated paragraphs + the title; the untranslated, the near-empty, the English-only and the duplicates
    # (page b repeats page a's title and first paragraph) drop
    assert row["distinct"] == 21 and sum(len(v) for v in lines.values()) == 21
    assert row["removed"]["target equals source"] == 1 and row["removed"]["near-empty"] == 1
    assert row["removed"]["no translation of the paragraph"] == 1
    assert row["removed"]["duplicate English source"] == 2
    assert all(len(v) > 0 for v in lines.values())
    assert not {normalise(s) for s in lines["train"]} & {normalise(s) for s in lines["test"] + lines["valid"]}
    assert row["leaks"] == {"valid.en": 0, "valid.de": 0, "test.en": 0, "test.de": 0}
    # the split follows the English source: the same sentence is in the same split in another run
    again = lo.prepare(lo.HelpConfig(langs=("de",), valid_fraction=0.2, test_fraction=0.2, max_valid=0,
                                     max_test=0, source_dir=str(tmp_path / "help")), tmp_path / "out2")
    assert again["directions"] == report["directions"]
    assert (tmp_path / "out2/test.en-de.de").read_bytes() == (out / "test.en-de.de").read_bytes()
    assert "| en-de |" in (out / "libreoffice_help_counts.md").read_text()


def test_split_drops_training_pairs_whose_target_is_held_out_and_caps_in_hash_order():
    rows = [(f"{WORDS[i]} {WORDS[-1 - i]} sentence", f"satz {WORDS[i]}") for i in range(20)]
    config = lo.HelpConfig(valid_fraction=0.3, test_fraction=0.3, max_valid=2, max_test=3)
    probe = lo.split_pairs(rows, config, Counter())
    assert len(probe["valid"]) == 2 and len(probe["test"]) == 3
    held = probe["test"][0][1]
    # an English source that the hash sends to train, translated like a test sentence
    source = next(f"another english source {w}" for w in WORDS if lo.split_of(f"another english source {w}", 0.3, 0.3)[0] == "train")
    removed = Counter()
    out = lo.split_pairs(rows + [(source, held)], config, removed)
    assert held not in [t for _, t in out["train"]] and removed["training target equals a held-out target"] == 1
    assert out["test"] == probe["test"] and len(out["train"]) == len(probe["train"])


def test_check_no_leak_fails_on_a_planted_leak(tmp_path):
    for split, en, de in (("train", "open the table\nclose it", "x\ny"), ("test", "Open the  table!", "z")):
        (tmp_path / f"{split}.en-de.en").write_text(en + "\n")
        (tmp_path / f"{split}.en-de.de").write_text(de + "\n")
    with pytest.raises(DataPrepError, match="held-out sentences appear in training"):
        lo.check_no_leak(tmp_path, "de")


def test_cli_writes_the_corpus_and_refuses_english_as_a_target(tmp_path, capsys):
    corpus(tmp_path / "help")
    code = data_prep_main(["libreoffice-help", "--source-dir", str(tmp_path / "help"), "--langs", "de",
                           "--valid-fraction", "0.2", "--test-fraction", "0.2", "--output-dir", str(tmp_path / "o")])
    assert code == 0 and json.loads(capsys.readouterr().out)["directions"]["en-de"]["train"] > 0
    code = data_prep_main(["libreoffice-help", "--source-dir", str(tmp_path / "help"), "--langs", "en",
                           "--output-dir", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "give target languages other than en" in err[0]
    code = data_prep_main(["libreoffice-help", "--source-dir", str(tmp_path / "help"), "--langs", "fr",
                           "--output-dir", str(tmp_path / "o3")])
    assert code == 2 and "no help folder for 'fr'" in capsys.readouterr().err


def test_package_names():
    assert lo.package_name("en") == "libreoffice-help-en-us"
    assert lo.package_name("pt_br") == "libreoffice-help-pt-br"


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian's dpkg) is not installed")
def test_debian_client_records_the_package_and_unpacks_it_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text("Package: libreoffice-help-xx\nVersion: 1:1.0-1\nArchitecture: all\n"
                                         "Maintainer: t <t@example.org>\nDescription: test\n")
    (tree / "usr/share/libreoffice/help/xx").mkdir(parents=True)
    (tree / "usr/share/libreoffice/help/xx/a.html").write_text("<p id='par_id1'>x</p>")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(tmp_path / "built.deb")],
                   check=True, capture_output=True)
    calls = []

    def fake_download(reg, name, version, into):
        calls.append((reg, name, version))
        return shutil.copy(tmp_path / "built.deb", into / f"{name}_{version.replace(':', '%3a')}_all.deb")

    monkeypatch.setattr(registry, "_download", fake_download)
    archive = registry.fetch_package("debian", "libreoffice-help-xx", "1:1.0-1")
    assert registry.fetch_package("debian", "libreoffice-help-xx", "1:1.0-1") == archive and len(calls) == 1
    entry = json.loads((tmp_path / "cache/manifest.json").read_text())["debian:libreoffice-help-xx==1:1.0-1"]
    assert entry["registry"] == "debian" and len(entry["sha256"]) == 64
    root = registry.unpack_deb(archive)
    page = root / "usr/share/libreoffice/help/xx/a.html"
    assert page.read_text() == "<p id='par_id1'>x</p>"
    page.write_text("changed")  # unpacked once: a second call keeps the folder
    assert registry.unpack_deb(archive) == root and page.read_text() == "changed"
    (tmp_path / "bad.deb").write_bytes(b"not a deb")
    with pytest.raises(DataPrepError, match="not a readable Debian package"):
        registry.unpack_deb(tmp_path / "bad.deb")
