"""The CoNLL-U reader (words, multiword tokens, empty nodes, bad heads) and ``data-prep treebanks``."""

from __future__ import annotations

import json

import pytest

from data_prep.common import DataPrepError
from data_prep.treebanks import TreebankConfig, prepare, read_conllu

# Spanish "vámonos al mar": a multiword token 1-3 and 4-5, and an empty node 5.1 (enhanced graph only).
SENTENCE = """# sent_id = s1
# text = vámonos al mar
1-3\tvámonos\t_\t_\t_\t_\t_\t_\t_\t_
1\tvamos\tir\tVERB\t_\t_\t0\troot\t_\t_
2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_
3\t_\t_\tPRON\t_\t_\t1\texpl\t_\t_
4-5\tal\t_\t_\t_\t_\t_\t_\t_\t_
4\ta\ta\tADP\t_\t_\t6\tcase\t_\t_
5\tel\tel\tDET\t_\t_\t6\tdet\t_\t_
5.1\tva\tir\tVERB\t_\t_\t_\t_\t1:conj\t_
6\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_

"""


def test_reader_keeps_words_spans_and_lines(tmp_path):
    path = tmp_path / "x.conllu"
    path.write_text(SENTENCE + SENTENCE.replace("s1", "s2"), encoding="utf-8")
    sentences = read_conllu(path)
    assert len(sentences) == 2
    words = sentences[0].words
    assert [w.form for w in words] == ["vamos", "nos", "_", "a", "el", "mar"]
    assert [w.head for w in words] == [0, 1, 1, 6, 6, 1]
    assert [w.deprel for w in words] == ["root", "obj", "expl", "case", "det", "obl"]
    assert sentences[0].multiword == [(1, 3, "vámonos"), (4, 5, "al")]
    assert sentences[0].to_conllu() + "\n" == SENTENCE  # written back unchanged, empty node included


@pytest.mark.parametrize("bad, message", [
    ("6\tmar\tmar\tNOUN\t_\t_\t9\tobl\t_\t_", "HEAD 9, outside 0..6"),
    ("6\tmar\tmar\tNOUN\t_\t_\t6\tobl\t_\t_", "its own head"),
    ("6\tmar\tmar\tNOUN\t_\t_\tx\tobl\t_\t_", "HEAD 'x' is not a number"),
    ("7\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_", "word ID '7' should be 6"),
    ("6\tmar\tmar\tNOUN", "expected 10 tab-separated"),
])
def test_reader_errors_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "bad.conllu"
    path.write_text(SENTENCE.replace("6\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_", bad), encoding="utf-8")
    with pytest.raises(DataPrepError, match=message) as err:
        read_conllu(path)
    assert str(path) in str(err.value)
    root_less = tmp_path / "noroot.conllu"
    root_less.write_text(SENTENCE.replace("\t0\troot", "\t6\troot"), encoding="utf-8")
    with pytest.raises(DataPrepError, match="no root"):
        read_conllu(root_less)


def test_prepare_splits_two_domains(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for domain in ("web", "wiki"):
        text = "".join(SENTENCE.replace("s1", f"{domain}{i}") for i in range(40))
        (source / f"{domain}.conllu").write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    report = prepare(out, TreebankConfig(turkish_dir=str(source)))
    for domain in ("web", "wiki"):
        counts = report["domains"][domain]["sentences"]
        assert sum(counts.values()) == 40 and counts["train"] > counts["test"]
        kept = [s for split in ("train", "dev", "test") for s in read_conllu(out / f"{split}.{domain}.conllu")]
        assert sorted(s.lines[0] for s in kept) == sorted(f"# sent_id = {domain}{i}" for i in range(40))
    assert json.loads((out / "relations.json").read_text())[0] in ("root", "obl")
    assert (out / "words.txt").read_text().splitlines()[0] == "vamos nos _ a el mar"
    again = prepare(out, TreebankConfig(turkish_dir=str(source)))
    assert again["domains"]["web"]["skipped"] is True
    (source / "wiki.conllu").unlink()
    with pytest.raises(DataPrepError, match="wiki.conllu"):
        prepare(tmp_path / "other", TreebankConfig(turkish_dir=str(source)))
