"""Proper-name recognition data from Brown (data_prep.name_tags): runs of proper nouns -> NAME, in data-prep pos's split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.name_tags import NameConfig, is_proper_noun, name_tags, prepare
from data_prep.pos_corpora import PosConfig
from data_prep.pos_corpora import prepare as prepare_pos

# Brown's layout (tab-indented sentences, word/tag); the tags as the corpus spells them.
BROWN = ("\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn "
         "of/in Atlanta's/np$ recent/jj primary/nn election/nn ./.\n\n\n"
         "\tThe/at jury/nn praised/vbd the/at City/nn-tl of/in-tl Atlanta/np-tl and/cc Mayor-nominate/nn-tl "
         "Ivan/np Allen/np Jr./np ./.\n\n\n"
         "\tAmerican/jj voters/nns met/vbd Kitty's/np+bez friends/nns in/in d'Eiffel/fw-in+np-tl ./.\n")
FULTON = ["O", "B-NAME", "O", "O", "O", "O", "O", "O", "O", "O", "B-NAME", "O", "O", "O", "O"]
ALLEN = ["O", "O", "O", "O", "O", "O", "B-NAME", "O", "O", "B-NAME", "I-NAME", "I-NAME", "O"]
AMERICAN = ["O", "O", "O", "B-NAME", "O", "O", "B-NAME", "O"]


@pytest.mark.parametrize("tag,name", [
    ("np", True), ("NP-TL", True), ("nps", True), ("np$", True), ("nps$-hl", True), ("np-tl-hl", True),
    ("np-nc", True), ("fw-np", True), ("np+bez", True), ("fw-in+np-tl", True),
    ("nn-tl", False), ("nn$", False), ("nr", False), ("jj", False), ("at", False), ("pps+bez", False),
    ("fw-nn", False), ("in-tl", False),
])
def test_proper_noun_tags(tag, name):
    assert is_proper_noun(tag) is name


def test_a_run_of_proper_nouns_is_one_name():
    tags = ["at", "np-tl", "nn-tl", "np", "np", "np", "vbd", "np$", "nps", "in", "jj", "np", "."]
    assert name_tags(tags) == ["O", "B-NAME", "O", "B-NAME", "I-NAME", "I-NAME", "O", "B-NAME", "I-NAME", "O", "O",
                               "B-NAME", "O"]


@pytest.fixture
def brown(tmp_path) -> Path:
    folder = tmp_path / "brown"
    folder.mkdir()
    (folder / "ca01").write_text(BROWN, encoding="utf-8")
    (folder / "cb02").write_text("".join(f"\n\n\tThe/at man/nn number/nn {i}/cd met/vbd Boston/np ./.\n"
                                         for i in range(40)), encoding="utf-8")
    (folder / "README").write_text("not a corpus file /x\n", encoding="utf-8")
    return folder


def test_prepare_writes_names_in_the_pos_split(brown, tmp_path):
    from xling.tasks import ner, pos

    report = prepare(tmp_path / "names", NameConfig(brown_dir=str(brown), langs=("en",)))
    turkish = tmp_path / "tr"
    turkish.mkdir()
    (turkish / "t.conllu").write_text("1\tAli\tali\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\n"
                                      "2\tgeldi\tgel\tVERB\tVB\t_\t0\troot\t_\t_\n", encoding="utf-8")
    prepare_pos(tmp_path / "pos", PosConfig(brown_dir=str(brown), turkish_dir=str(turkish)))
    by_start = {}
    for split in ("train", "dev", "test"):
        names_file, pos_file = tmp_path / "names" / f"{split}.en.panx", tmp_path / "pos" / f"{split}.en.pos"
        names = ner.read(names_file) if names_file.read_text().strip() else []
        tagged = pos.read(pos_file) if pos_file.read_text().strip() else []
        assert [s["tokens"] for s in names] == [s["tokens"] for s in tagged]  # the same sentences, in the same split
        by_start.update({" ".join(s["tokens"][:2]): s["tags"] for s in names})
    assert by_start["The Fulton"] == FULTON and by_start["The jury"] == ALLEN and by_start["American voters"] == AMERICAN
    info = report["en"]
    assert sum(info["sentences"].values()) == 43 and sum(info["entities"].values()) == 46
    assert sum(info["name_tokens"].values()) == 48 and sum(info["sentences_with_names"].values()) == 43
    # Fulton (County/nn-tl), Atlanta (of/in-tl), Ivan Allen Jr. (Mayor-nominate/nn-tl): spans Brown cuts short
    assert info["entities_next_to_title_words"] == 3
    assert info["proper_noun_tags"]["np"] == 43 and info["proper_noun_tags"]["fw-in+np-tl"] == 1
    again = prepare(tmp_path / "names", NameConfig(brown_dir=str(brown), langs=("en",)))
    assert again["en"].get("skipped") is True


def test_bad_brown_input_is_a_one_line_error_and_writes_nothing(brown, tmp_path, capsys):
    (brown / "ca02").write_text("\tword/qq ./.\n", encoding="utf-8")
    assert main(["names", "--output-dir", str(tmp_path / "out"), "--brown-dir", str(brown), "--langs", "en"]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"data-prep names: error: {brown / 'ca02'}:1: Brown tag 'qq' has no universal tag"]
    assert not (tmp_path / "out" / "train.en.panx").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["names", "--output-dir", str(tmp_path / "out"), "--brown-dir", str(empty), "--langs", "en"]) != 0
    assert capsys.readouterr().err.strip() == f"data-prep names: error: {empty}: no Brown files (ca01 ...)"


# Two Turkish sentences in the treebanks' layout (proper nouns: NOUN with Proper=True): a two-word name
# ("Mustafa Kemal", one as UD's PROPN), a word derived from a name in an inflectional group ("Ankara" + "lı",
# an adjective: not a name), a name with its case suffix ("Bursa'da"); the second has no name.
CONLLU = ("1\tMustafa\tmustafa\tNOUN\tNNP\tCase=Bare|Proper=True\t2\tnn\t_\t_\n"
          "2\tKemal\tkemal\tPROPN\tNNP\t_\t6\tnsubj\t_\t_\n"
          "3\tAnkara\tankara\tNOUN\tNNP\tProper=True\t4\tig\t_\tSpaceAfter=No\n"
          "4\tlı\t_\tADJ\tJJ\tProper=False\t5\tamod\t_\t_\n"
          "5\tBursa'da\tbursa\tNOUN\tNNP\tApostrophe=True|Case=Loc|Proper=True\t6\tnpadvmod\t_\t_\n"
          "6\tkaldı\tkal\tVERB\tVB\tProper=False\t0\troot\t_\t_\n"
          "7\t.\t.\tPUNCT\t.\tProper=True\t6\tp\t_\t_\n\n"
          "1\tKitap\tkitap\tNOUN\tNN\tProper=False\t2\tobj\t_\t_\n"
          "2\tokudu\toku\tVERB\tVB\tProper=False\t0\troot\t_\t_\n\n")


def test_turkish_names_are_runs_of_propn_in_the_pos_split(brown, tmp_path, capsys):
    from xling.tasks import ner, pos

    turkish = tmp_path / "tr"
    turkish.mkdir()
    (turkish / "t.conllu").write_text(CONLLU * 20, encoding="utf-8")
    assert main(["names", "--output-dir", str(tmp_path / "names"), "--brown-dir", str(brown), "--turkish-dir",
                 str(turkish)]) == 0
    prepare_pos(tmp_path / "pos", PosConfig(brown_dir=str(brown), turkish_dir=str(turkish)))
    sentences = []
    for split in ("train", "dev", "test"):
        names_file, pos_file = tmp_path / "names" / f"{split}.tr.panx", tmp_path / "pos" / f"{split}.tr.pos"
        names = ner.read(names_file) if names_file.read_text().strip() else []
        tagged = pos.read(pos_file) if pos_file.read_text().strip() else []
        assert [s["tokens"] for s in names] == [s["tokens"] for s in tagged]  # data-prep pos's split
        sentences += names
    first = next(s for s in sentences if s["tokens"][0] == "Mustafa")
    assert first["tokens"] == ["Mustafa", "Kemal", "Ankaralı", "Bursa'da", "kaldı", "."]
    assert first["tags"] == ["B-NAME", "I-NAME", "O", "B-NAME", "O", "O"]
    assert all(s["tags"] == ["O", "O"] for s in sentences if s["tokens"][0] == "Kitap")
    report = json.loads((tmp_path / "names" / "names_counts.json").read_text())
    assert sum(report["tr"]["entities"].values()) == 40 and sum(report["tr"]["name_tokens"].values()) == 60
    assert report["en"]["sentences"]  # both languages by default
    assert main(["names", "--output-dir", str(tmp_path / "x"), "--langs", "en,xx", "--brown-dir", str(brown)]) != 0
    assert capsys.readouterr().err.strip() == "data-prep names: error: --langs en,xx: choose from en, tr"
