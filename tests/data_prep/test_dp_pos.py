"""data-prep pos: Brown and Turkish treebank files -> the 12 universal tags in the PAN-X layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.common import DataPrepError
from data_prep.pos_corpora import PosConfig, brown_universal, prepare, read_conllu_words

BROWN = ("\n\n\tThe/at Fulton/np-tl jury/nn said/vbd it's/pps+bez n't/* his/pp$ ``/`` 1/2/cd ''/'' ./.\n\n\n"
         "\tOh/uh ,/, she/pps ran/vbd up/rp to/to the/at mesa/fw-nn quickly/rb ./.\n")
CONLLU = """# sent_id = 1
# text = Açıklanmayan soru.
1	Açık	açık	NOUN	NN	_	2	ig	_	SpaceAfter=No
2	la	_	VERB	VB	_	3	ig	_	SpaceAfter=No
3	nmayan	_	ADJ	VJ	_	4	rcmod	_	_
4	soru	soru	NOUN	NN	_	0	root	_	SpaceAfter=No
5	.	.	PUNCT	.	_	4	p	_	_

# sent_id = 2
1	Ali	ali	PROPN	NNP	_	2	nsubj	_	_
2	geldi	gel	VERB	VB	_	0	root	_	_
"""


@pytest.mark.parametrize("tag,universal", [
    ("at", "DET"), ("NN-TL", "NOUN"), ("np$", "NOUN"), ("pps+bez", "PRT"), ("md+hv", "VERB"), ("bez*", "VERB"),
    ("*", "ADV"), ("pp$", "DET"), ("ap$", "PRT"), ("abl", "PRT"), ("abx", "DET"), ("ap", "ADJ"), ("cs", "ADP"),
    ("fw-nn-tl", "X"), ("od", "ADJ"), ("--", "."), ("vbg-hl", "VERB"), ("zz", None),
])
def test_brown_universal(tag, universal):
    assert brown_universal(tag) == universal


@pytest.fixture
def sources(tmp_path) -> PosConfig:
    brown, turkish = tmp_path / "brown", tmp_path / "tr"
    brown.mkdir()
    turkish.mkdir()
    (brown / "ca01").write_text(BROWN, encoding="utf-8")
    (brown / "README").write_text("not a corpus file /x\n", encoding="utf-8")
    (turkish / "web.conllu").write_text(CONLLU, encoding="utf-8")
    return PosConfig(brown_dir=str(brown), turkish_dir=str(turkish))


def test_inflectional_groups_become_one_word(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    from collections import Counter
    counts = Counter()
    assert read_conllu_words(path, counts) == [[("Açıklanmayan", "ADJ"), ("soru", "NOUN"), (".", ".")],
                                               [("Ali", "NOUN"), ("geldi", "VERB")]]
    assert counts["inflectional_groups_joined"] == 2


def test_prepare_writes_pos_files(sources, tmp_path):
    from xling.tasks.pos import read

    out = tmp_path / "out"
    report = prepare(out, sources)
    assert sum(report["languages"]["en"]["sentences"].values()) == 2
    assert sum(report["languages"]["tr"]["words"].values()) == 5
    words = {(t, g) for split in ("train", "dev", "test") if (out / f"{split}.en.pos").read_text().strip()
             for s in read(out / f"{split}.en.pos") for t, g in zip(s["tokens"], s["tags"])}
    assert {("1/2", "NUM"), ("it's", "PRT"), ("his", "DET"), ("mesa", "X"), ("Oh", "PRT")} <= words
    assert json.loads((out / "pos_counts.json").read_text())["tags"][-1] == "X"
    again = prepare(out, sources)
    assert all(info.get("skipped") for info in again["languages"].values())


def test_unknown_tag_is_a_one_line_error(sources, tmp_path, capsys):
    Path(sources.brown_dir, "ca02").write_text("\tword/qq ./.\n", encoding="utf-8")
    with pytest.raises(DataPrepError, match=r"ca02:1: Brown tag 'qq' has no universal tag"):
        prepare(tmp_path / "out", sources)
    Path(sources.brown_dir, "ca02").unlink()
    Path(sources.turkish_dir, "web.conllu").write_text("1\tx\tx\tFOO\t_\t_\t0\troot\t_\t_\n", encoding="utf-8")
    rc = main(["pos", "--output-dir", str(tmp_path / "cli"), "--brown-dir", sources.brown_dir, "--turkish-dir", sources.turkish_dir])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "web.conllu:1: UPOS 'FOO' has no universal tag" in err
