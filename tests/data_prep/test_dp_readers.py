"""Plain parallel files, FLORES-200, TED TSVs and monolingual text: real formats, malformed input, fuzzing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep import cli, monolingual, ted_talks
from data_prep.common import DataPrepError, SkipLog, read_parallel
from data_prep.parallel_files import ParallelConfig, flores_to_iso, prepare_files, prepare_flores


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# -- plain parallel files ---------------------------------------------------------
def test_parallel_length_mismatch_names_both_files_and_counts(tmp_path, capsys):
    src = write(tmp_path / "corpus.en", "a\nb\nc\n")
    tgt = write(tmp_path / "corpus.de", "x\ny\n")
    out = tmp_path / "out"
    code = cli.main(["parallel", "--src", str(src), "--tgt", str(tgt), "--src-lang", "en", "--tgt-lang", "de",
                     "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"{src} has 3 lines" in err and f"{tgt} has 2 lines" in err
    assert not out.exists() or not any(out.iterdir())  # nothing partial


@pytest.mark.parametrize("bad, reason", [(b"ok\n\xff\xfe bad\n", "invalid UTF-8"), (b"ok\nnul\x00 here\n", "NUL byte"),
                                         (b"ok\n   \n", "blank line")])
def test_bad_lines_are_file_line_errors_or_counted_skips(tmp_path, bad, reason):
    src = write(tmp_path / "c.en", b"one\ntwo\n")
    tgt = write(tmp_path / "c.de", bad)
    with pytest.raises(DataPrepError, match=rf"{tgt}:2: {reason}"):
        read_parallel(src, tgt)
    skips = SkipLog()
    assert read_parallel(src, tgt, "skip", skips) == [("one", "ok")]
    assert sum(skips.counts.values()) == 1 and skips.examples[0].startswith(f"{tgt}:2: {reason}")


def test_empty_corpus_is_an_error(tmp_path):
    src, tgt = write(tmp_path / "e.en", ""), write(tmp_path / "e.de", "")
    with pytest.raises(DataPrepError, match="empty corpus"):
        read_parallel(src, tgt)
    src, tgt = write(tmp_path / "b.en", "\n"), write(tmp_path / "b.de", "x\n")
    with pytest.raises(DataPrepError, match="empty corpus"):
        read_parallel(src, tgt, "skip")


def test_parallel_splits_by_source_hash_and_reruns(tmp_path):
    lines = [f"sentence {i}" for i in range(200)] + ["sentence 5"]  # a repeated source
    src = write(tmp_path / "c.en", "".join(x + "\n" for x in lines))
    tgt = write(tmp_path / "c.de", "".join(f"Satz {i}\n" for i in range(len(lines))))
    out = tmp_path / "out"
    config = ParallelConfig(valid_fraction=0.1, test_fraction=0.1)
    info = prepare_files(src, tgt, "en", "de", out, config)
    assert sum(info["counts"].values()) == len(lines) and min(info["counts"].values()) > 0
    where = {}
    for split in ("train", "valid", "test"):
        for text in (out / f"{split}.en-de.en").read_text().splitlines():
            assert where.setdefault(text, split) == split
    stamp = (out / "train.en-de.en").stat().st_mtime_ns
    assert prepare_files(src, tgt, "en", "de", out, config) == info
    assert (out / "train.en-de.en").stat().st_mtime_ns == stamp


# -- FLORES-200 ----------------------------------------------------------------------
def test_flores_dev_devtest(tmp_path):
    root = tmp_path / "flores200_dataset"
    for folder, n in (("dev", 3), ("devtest", 4)):
        for code, word in (("eng_Latn", "house"), ("deu_Latn", "Haus"), ("zho_Hans", "房子")):
            write(root / folder / f"{code}.{folder}", "".join(f"{word} {i}\n" for i in range(n)))
    out = tmp_path / "out"
    prepare_flores(root, ["deu_Latn", "eng_Latn", "zho_Hans"], out)
    assert (out / "valid.en-de.en").read_text().splitlines() == [f"house {i}" for i in range(3)]
    assert (out / "test.de-zh_cn.zh_cn").read_text().splitlines() == [f"房子 {i}" for i in range(4)]
    assert flores_to_iso("yor_Latn") == "yor"
    write(root / "devtest" / "deu_Latn.devtest", "Haus\n")
    with pytest.raises(DataPrepError, match=r"deu_Latn.devtest has 1 lines, .*eng_Latn.devtest has 4 lines|"
                                            r"eng_Latn.devtest has 4 lines, .*deu_Latn.devtest has 1 lines"):
        prepare_flores(root, ["eng_Latn", "deu_Latn"], tmp_path / "out2")
    with pytest.raises(DataPrepError, match="fra_Latn.dev: missing; .* has"):
        prepare_flores(root, ["eng_Latn", "fra_Latn"], tmp_path / "out3")


# -- TED talks ---------------------------------------------------------------------
TED_HEADER = "talk_name\ten\tde\tpt-br\tzh-cn\n"


def ted_dir(tmp_path: Path, extra: str = "") -> Path:
    rows = ("talk_a\tHello .\tHallo .\tOlá .\t你好 。\n"
            "talk_a\tThanks .\t__NULL__\tObrigado .\t谢谢 。\n"
            "talk_b\tYes .\tJa .\t_ _ NULL _ _\t是 。\n"
            "talk_b\tNo .\tNein .\tNão .\t\n")
    for name in ted_talks.TED_FILES.values():
        write(tmp_path / "ted" / name, TED_HEADER + rows + extra)
    return tmp_path / "ted"


def test_ted_bilingual_and_multiway(tmp_path):
    out = tmp_path / "out"
    report = ted_talks.prepare(ted_talks.TedConfig(tsv_dir=str(ted_dir(tmp_path)), langs=("en", "de", "pt-br")), out)
    assert (out / "train.en-de.de").read_text().splitlines() == ["Hallo .", "Ja .", "Nein ."]
    assert (out / "valid.en-pt_br.pt_br").read_text().splitlines() == ["Olá .", "Obrigado .", "Não ."]
    assert (out / "test.de-pt_br.de").read_text().splitlines() == ["Hallo .", "Nein ."]
    assert (out / "test.multiway.pt_br").read_text().splitlines() == ["Olá .", "Não ."]
    assert report["written"]["test.en-de"] == 3


def test_ted_malformed(tmp_path):
    folder = ted_dir(tmp_path, extra="talk_c\tonly two fields\n")
    with pytest.raises(DataPrepError, match=r"all_talks_(train|dev|test).tsv:6: 2 fields, the header has 5"):
        ted_talks.prepare(ted_talks.TedConfig(tsv_dir=str(folder), langs=("en", "de")), tmp_path / "o")
    report = ted_talks.prepare(ted_talks.TedConfig(tsv_dir=str(folder), langs=("en", "de"), on_bad="skip"),
                               tmp_path / "o2")
    assert all(entry["skipped_total"] == 1 for entry in report["skipped"].values())
    with pytest.raises(DataPrepError, match=r"\['fr'\] not in the header; it has \['en', 'de', 'pt-br', 'zh-cn'\]"):
        ted_talks.prepare(ted_talks.TedConfig(tsv_dir=str(folder), langs=("en", "fr")), tmp_path / "o3")


# -- monolingual ------------------------------------------------------------------
WIKI = ('<doc id="1" url="https://de.wikipedia.org/wiki?curid=1" title="Haus">\nHaus\n\n'
        "Ein Haus ist ein Gebäude. Es hat ein Dach.\n\nHäuser sind alt.\n</doc>\n"
        '<doc id="2" url="https://de.wikipedia.org/wiki?curid=2" title="Baum">\nBaum\nEin Baum wächst.\n</doc>\n')


def test_wikiextractor_units(tmp_path):
    write(tmp_path / "wiki" / "AA" / "wiki_00", WIKI)
    path = tmp_path / "wiki" / "AA" / "wiki_00"
    assert monolingual.read_wikiextractor(path) == ["Ein Haus ist ein Gebäude. Es hat ein Dach.", "Häuser sind alt.",
                                                    "Ein Baum wächst."]
    assert monolingual.read_wikiextractor(path, "sentence")[:2] == ["Ein Haus ist ein Gebäude.", "Es hat ein Dach."]
    assert len(monolingual.read_wikiextractor(path, "document")) == 2
    info = monolingual.prepare("wiki", [tmp_path / "wiki"], "de", tmp_path / "out", valid_fraction=0.0)
    assert info["counts"] == {"train": 3, "valid": 0}


@pytest.mark.parametrize("text, message", [
    ("stray text\n" + WIKI, ":1: text outside <doc>"),
    (WIKI.replace("</doc>\n<doc", "<doc", 1), r":7: <doc> opened inside the doc opened at line 1"),
    (WIKI.rsplit("</doc>", 1)[0], r":8: <doc> never closed"),
    (WIKI.replace("Baum wächst", "Baum w\x00chst"), r":10: NUL byte"),
])
def test_wikiextractor_malformed(tmp_path, text, message):
    path = write(tmp_path / "AA" / "wiki_00", text)
    with pytest.raises(DataPrepError, match=f"wiki_00{message}"):
        monolingual.read_wikiextractor(path)
    skips = SkipLog()
    monolingual.read_wikiextractor(path, on_bad="skip", skips=skips)
    assert sum(skips.counts.values()) >= 1


def test_plain_and_gettext_monolingual(tmp_path):
    path = write(tmp_path / "de.txt", "Erste Zeile\nnoch mehr\n\nZweiter Absatz.\n\nZweiter Absatz.\n")
    assert monolingual.read_plain(path) == ["Erste Zeile noch mehr", "Zweiter Absatz.", "Zweiter Absatz."]
    info = monolingual.prepare("plain", [path], "de", tmp_path / "out", valid_fraction=0.0)
    assert info["counts"]["train"] == 2  # de-duplicated
    with pytest.raises(DataPrepError, match="empty corpus"):
        monolingual.prepare("plain", [write(tmp_path / "empty.txt", "\n\n")], "de", tmp_path / "o2")
    raw = tmp_path / "gettext"
    for split in ("train", "valid"):
        write(raw / f"{split}.en-de.en", "Open\nClose\n")
        write(raw / f"{split}.en-de.de", "Öffnen\nSchließen\n")
        write(raw / f"{split}.en-fr.en", "Open\nQuit\n")
        write(raw / f"{split}.en-fr.fr", "Ouvrir\nQuitter\n")
    report = monolingual.from_gettext(raw, ["en", "de"], tmp_path / "mono")
    assert (tmp_path / "mono" / "train.en").read_text().splitlines() == ["Open", "Close", "Quit"]
    assert report["de"]["counts"] == {"train": 2, "valid": 2}
    with pytest.raises(DataPrepError, match=r"no train text for 'es'; prepared languages: \['de', 'fr'\]"):
        monolingual.from_gettext(raw, ["es"], tmp_path / "mono")


# -- fuzzing -----------------------------------------------------------------------
line_bytes = st.lists(st.binary(max_size=12) | st.sampled_from([b"", b" ", b"<doc id=\"1\">", b"</doc>", b"ok"]),
                      max_size=8)


@settings(max_examples=60, deadline=None)
@given(line_bytes, line_bytes, st.sampled_from(["error", "skip"]))
def test_readers_fuzz(src_lines, tgt_lines, on_bad):
    """Random bytes: a result or a DataPrepError naming the file, never a stray exception."""
    with tempfile.TemporaryDirectory() as tmp:
        src = write(Path(tmp) / "f.src", b"\n".join(src_lines))
        tgt = write(Path(tmp) / "f.tgt", b"\n".join(tgt_lines))
        tsv = write(Path(tmp) / "all_talks_train.tsv", b"talk_name\ten\tde\n" + b"\n".join(src_lines))
        for call in (lambda: read_parallel(src, tgt, on_bad), lambda: ted_talks.read_ted_tsv(tsv, ("en", "de"), on_bad),
                     lambda: monolingual.read_wikiextractor(src, "paragraph", on_bad),
                     lambda: monolingual.read_plain(src, "sentence", on_bad)):
            try:
                result = call()
            except DataPrepError as err:
                assert "f.src" in str(err) or "f.tgt" in str(err) or "all_talks_train.tsv" in str(err)
            else:
                assert isinstance(result, list)
