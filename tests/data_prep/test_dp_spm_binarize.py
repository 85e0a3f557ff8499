"""SentencePiece + fairseq binarisation: joined dictionary, langs.txt, idempotent and stale-aware re-runs."""

from __future__ import annotations

import pytest

from data_prep import spm_binarize
from data_prep.common import DataPrepError

WORDS = "house tree water fire stone river light night day sun moon star road city".split()


def corpus(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, n in (("train", 120), ("valid", 10), ("test", 10)):
        for tgt, suffix in (("de", "en"), ("fr", "eau")):
            lines = [" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 5)) for i in range(n)]
            (raw / f"{split}.en-{tgt}.en").write_text("".join(line + "\n" for line in lines))
            (raw / f"{split}.en-{tgt}.{tgt}").write_text("".join(f"{line} {suffix}\n" for line in lines))
    (raw / "test.de-fr.de").write_text("house en\ntree en\n")
    (raw / "test.de-fr.fr").write_text("house eau\ntree eau\n")
    return raw


def test_spm_binarize_and_rerun(tmp_path):
    raw, out = corpus(tmp_path), tmp_path / "out"
    config = spm_binarize.SpmBinarizeConfig(vocab_size=40, max_lines_per_lang=100)
    result = spm_binarize.prepare(raw, out, config)
    assert (out / "langs.txt").read_text() == "de,en,fr\n"
    assert (out / "lang_pairs.txt").read_text() == "en-de,en-fr\n"
    assert result["pairs"] == ["de-fr", "en-de", "en-fr"]
    for name in ("train.en-de.en.bin", "valid.en-fr.fr.idx", "test.de-fr.de.bin", "dict.fr.txt"):
        assert (out / "bin" / name).exists(), name
    assert not (out / "bin" / "train.de-fr.de.bin").exists()  # test-only pair: no stand-in train left behind
    assert (out / "bin" / "dict.de.txt").read_text() == (out / "dict.txt").read_text()
    from fairseq.data import data_utils, Dictionary
    dictionary = Dictionary.load(str(out / "dict.txt"))
    dataset = data_utils.load_indexed_dataset(str(out / "bin" / "test.de-fr.fr"), dictionary)
    assert len(dataset) == 2 and dictionary.string(dataset[0]).replace(" ", "").replace("\u2581", " ").strip() == "house eau"
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "bin").iterdir()}
    spm_binarize.prepare(raw, out, config)  # nothing to do
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "bin").iterdir()}
    (raw / "test.de-fr.de").write_text("stone en\nriver en\n")  # a changed input redoes what depends on it
    spm_binarize.prepare(raw, out, config)
    assert (out / "spm" / "test.de-fr.de").read_text().replace(" ", "").replace("\u2581", " ").split() == [
        "stone", "en", "river", "en"]
    changed = {p.name for p in (out / "bin").iterdir() if stamps.get(p.name) != p.stat().st_mtime_ns}
    assert "test.de-fr.de.bin" in changed and "train.en-de.en.bin" not in changed


def test_spm_binarize_bad_input(tmp_path):
    raw = corpus(tmp_path)
    (raw / "valid.en-de.de").write_text("only one line\n")
    with pytest.raises(DataPrepError, match=r"valid.en-de.en has 10 lines, .*valid.en-de.de has 1 lines"):
        spm_binarize.prepare(raw, tmp_path / "out")
    (raw / "valid.en-de.de").unlink()
    with pytest.raises(DataPrepError, match="its other side .*valid.en-de.de is missing"):
        spm_binarize.prepare(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # bad input: --output-dir is not even made
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataPrepError, match="no parallel files"):
        spm_binarize.prepare(tmp_path / "empty", tmp_path / "out2")


def test_line_breaks_inside_lines_do_not_misalign_the_sides(tmp_path):
    """U+2028, U+0085, form feed and a lone CR inside a line used to split it (str.splitlines): a source of
    N + k lines against a target of N, binarised with exit 0.  Now they are spaces, and counted."""
    from data_prep.cli import main as data_prep_main

    raw = corpus(tmp_path)
    path = raw / "train.en-de.en"
    lines = path.read_text().split("\n")
    lines[3] = lines[3].replace(" ", "\u2028", 1)
    lines[5] = lines[5].replace(" ", "\x0c", 1).replace(" ", "\r", 1)
    lines[7] = lines[7] + "\u0085end"
    path.write_text("\n".join(lines))
    assert data_prep_main(["spm-bin", "--raw-dir", str(raw), "--output-dir", str(tmp_path / "out"),
                           "--vocab-size", "40", "--max-lines-per-lang", "100"]) == 0
    encoded = tmp_path / "out" / "spm"
    assert len((encoded / "train.en-de.en").read_text().split("\n")) == \
        len((encoded / "train.en-de.de").read_text().split("\n")) == 121
    from fairseq.data import Dictionary, data_utils
    dictionary = Dictionary.load(str(tmp_path / "out" / "dict.txt"))
    for lang in ("en", "de"):
        assert len(data_utils.load_indexed_dataset(str(tmp_path / "out" / "bin" / f"train.en-de.{lang}"),
                                                   dictionary)) == 120
    report = spm_binarize.prepare(raw, tmp_path / "out2", spm_binarize.SpmBinarizeConfig(vocab_size=40))
    assert report["line_breaks_made_spaces"] == {"train.en-de.en": 4}


def test_two_clean_runs_give_identical_spm_models(tmp_path):
    """SentencePiece stored its random temporary input path in spm.model, so clean runs differed byte for byte."""
    raw = corpus(tmp_path)
    config = spm_binarize.SpmBinarizeConfig(vocab_size=40, max_lines_per_lang=100)
    models = []
    for name in ("first", "second"):
        out = tmp_path / name / "out"
        spm_binarize.prepare(raw, out, config)
        models.append((out / "spm.model").read_bytes())
        assert not (out / ".spm-training").exists()
    assert models[0] == models[1]


def test_invalid_utf8_is_a_file_line_error_before_anything_is_written(tmp_path, capsys):
    """Invalid UTF-8 in a valid split used to be a UnicodeDecodeError traceback after SentencePiece had been
    trained and written: now it is one line naming the file and line, and --output-dir is not even made."""
    from data_prep.cli import main as data_prep_main

    raw = corpus(tmp_path)
    path = raw / "valid.en-de.de"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:4] + b"\xff" + lines[2][4:]
    path.write_bytes(b"\n".join(lines))
    out = tmp_path / "out"
    assert data_prep_main(["spm-bin", "--raw-dir", str(raw), "--output-dir", str(out), "--vocab-size", "40",
                           "--max-lines-per-lang", "100"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"data-prep spm-bin: error: {path}:3: invalid UTF-8 (byte 0xff at column 5)")
    assert "re-encode" in line
    assert not out.exists()
