"""Reliability round 3 (issue 26): silent wrong results found by probing the commands and the API.

Each test goes through the command (``xling.cli.main``) or the public API, and failed on the code before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xling.data import DataError
from xling.datasets_io import load_panx


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- item 1: plain two-column CoNLL keeps text before ':' -------------------------------------


def test_plain_conll_keeps_text_before_a_colon(tmp_path):
    path = _write(tmp_path / "plain.conll", "Meet\tO\nat\tO\n10:30\tO\nhttp://x.org\tB-ORG\n1:1\tO\n:\tO\n")
    assert load_panx(path)["tokens"] == [["Meet", "at", "10:30", "http://x.org", "1:1", ":"]]


def test_panx_language_prefix_is_stripped_only_when_every_line_carries_it(tmp_path):
    panx = _write(tmp_path / "de.panx", "de:10:30\tO\nde:Berlin\tB-LOC\n\nde::\tO\n")
    assert load_panx(panx)["tokens"] == [["10:30", "Berlin"], [":"]]
    mixed = _write(tmp_path / "mixed.conll", "de:x\tO\nBerlin\tB-LOC\n")
    assert load_panx(mixed)["tokens"] == [["de:x", "Berlin"]]


# -- item 12 (reader part): BOM, tags with white space, IOB2 on parquet and hub tags ----------------


def test_bom_is_not_part_of_the_first_token(tmp_path):
    path = tmp_path / "bom.conll"
    path.write_bytes("\ufeffJohn\tB-PER\nran\tO\n".encode("utf-8"))
    assert load_panx(path)["tokens"] == [["John", "ran"]]
    path.write_bytes("\ufeffen:John\tB-PER\nen:ran\tO\n".encode("utf-8"))
    assert load_panx(path)["tokens"] == [["John", "ran"]]


def test_a_tag_with_white_space_is_refused(tmp_path):
    path = _write(tmp_path / "x.conll", "John\tB-PER X\n")
    with pytest.raises(DataError, match=rf"{path}:1: label 'B-PER X'"):
        load_panx(path)


def test_wikiann_parquet_and_hub_tags_get_the_iob2_check(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import ClassLabel, Dataset, Features, List, Value

    from xling.datasets_io import load_wikiann_parquet, tagged_rows

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": [["Juma", "anaishi"]], "ner_tags": [[2, 0]]}), path)  # I-PER after O is fine
    assert load_wikiann_parquet(path)["tags"] == [["I-PER", "O"]]
    pq.write_table(pa.table({"tokens": [["Juma"]], "ner_tags": [[0]]}), path)
    with pytest.raises(DataError, match="not an IOB2 tag"):
        load_wikiann_parquet(path, labels=["PER", "O"])
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=["O", "PERSON"]))})
    hub = Dataset.from_dict({"tokens": [["Juma"]], "ner_tags": [[1]]}, features=features)
    with pytest.raises(DataError, match="row 0: label 'PERSON' is not an IOB2 tag"):
        tagged_rows(hub, "wikiann/sw:test", iob2=True)
    assert tagged_rows(hub, "ud/sw:test")["tags"] == [["PERSON"]]  # POS: any tag without white space
