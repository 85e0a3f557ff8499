"""The option/placeholder tagging task made from gettext strings (make demo's MAD-X smoke run)."""

import pytest

from data_prep.gettext_tagging import prepare, tag_token, tagged_sentences


@pytest.mark.parametrize("token,label", [
    ("--verbose", "B-OPT"), ("-n", "B-OPT"), ("'--size=SIZE'", "B-OPT"), ("(-x)", "B-OPT"),
    ("%s", "B-PH"), ("«%1$d»", "B-PH"), ("{0}", "B-PH"), ("${HOME}", "B-PH"),
    ("file", "O"), ("-", "O"), ("50%", "O"), ("e-mail", "O"),
])
def test_tag_token(token, label):
    assert tag_token(token) == label


def test_only_sentences_with_an_entity_are_kept():
    kept = tagged_sentences(["use --force to overwrite", "nothing here", "cannot open %s"])
    assert [[t for t, _ in s] for s in kept] == [["use", "--force", "to", "overwrite"], ["cannot", "open", "%s"]]


def test_prepare_writes_panx_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, en, de in (("train", ["use --all", "cannot read %s", "plain"], ["nutze --all", "kann %s nicht lesen", "x"]),
                          ("test", ["print %d lines"], ["drucke %d Zeilen"])):
        (raw / f"{split}.en-de.en").write_text("\n".join(en) + "\n")
        (raw / f"{split}.en-de.de").write_text("\n".join(de) + "\n")
    report = prepare(raw, ["de"], tmp_path / "out")
    assert report["languages"] == {"en": {"train": 2, "test": 1}, "de": {"test": 3}}
    text = (tmp_path / "out" / "test.de.panx").read_text()
    assert "de:%d\tB-PH" in text and "de:--all\tB-OPT" in text
    with pytest.raises(FileNotFoundError, match="data-prep gettext"):
        prepare(raw, ["fr"], tmp_path / "out2")
