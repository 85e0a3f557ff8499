"""Golden tests of the official scoring rules, and clear errors from the data readers."""

from __future__ import annotations

import json

import pytest

from xling.data import DataError
from xling.datasets_io import load_choices, load_panx, load_squad, load_wikiann_parquet
from xling.metrics import accuracy, entity_f1, normalize_mlqa, normalize_squad, qa_exact, qa_f1, squad_scores


def test_entity_f1_conlleval_rules():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # 3 gold entities, 3 predicted, 2 correct -> P = R = F1 = 2/3
    assert entity_f1(gold, pred)["f1"] == pytest.approx(2 / 3)
    # an I- tag starting an entity counts as its beginning (conlleval); a wrong span boundary is wrong
    assert entity_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == 1.0
    assert entity_f1([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_squad_v11_rules():
    assert normalize_squad("The  Eiffel-Tower!") == "eiffeltower"
    assert qa_exact("the Eiffel Tower", "Eiffel Tower.") == 1.0
    # tokens: pred [eiffel, tower, in, paris], gold [eiffel, tower] -> P 1/2, R 1 -> F1 2/3
    assert qa_f1("Eiffel Tower in Paris", "the Eiffel Tower") == pytest.approx(2 / 3)
    scores = squad_scores({"a": "Paris", "b": "in London"}, {"a": ["paris", "Paris France"], "b": ["London"], "c": ["x"]})
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_mlqa_language_rules():
    assert normalize_mlqa("Der Hund, die Katze", "de") == "hund katze"
    assert normalize_mlqa("el perro", "es") == "perro"
    # English articles are kept in Spanish, Unicode punctuation goes everywhere
    assert normalize_mlqa("the «perro»", "es") == "the perro"
    # zh: every CJK character is a token
    assert normalize_mlqa("北京大学", "zh") == "北 京 大 学"
    assert qa_f1("北京", "北京大学", lang="zh") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert qa_f1("北京", "北京大学") == 0.0  # SQuAD rules see one token each
    with pytest.raises(ValueError, match="no rules for language 'xx'"):
        normalize_mlqa("a", "xx")


def test_accuracy():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75


def test_panx_reader(tmp_path):
    path = tmp_path / "sw.panx"
    path.write_text("sw:Juma\tB-PER\nsw:anaishi\tO\n\nsw:Nairobi\tB-LOC\n", encoding="utf-8")
    sentences = load_panx(path)
    assert sentences["tokens"] == [["Juma", "anaishi"], ["Nairobi"]]
    path.write_text("sw:Juma\tB-PER\nsw:anaishi\tPERSON\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: label 'PERSON' is not an IOB2 tag"):
        load_panx(path)
    path.write_bytes(b"sw:Juma\tB-PER\nsw:\xff\tO\n")
    with pytest.raises(DataError, match=rf"{path}:2: invalid UTF-8"):
        load_panx(path)


def test_wikiann_parquet_reader(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": [["Juma", "anaishi"], ["Nairobi"]], "ner_tags": [[1, 0], [5]],
                             "langs": [["sw", "sw"], ["sw"]]}), path)
    assert load_wikiann_parquet(path)["tags"] == [["B-PER", "O"], ["B-LOC"]]
    pq.write_table(pa.table({"tokens": [["Juma"]], "ner_tags": [[9]]}), path)
    with pytest.raises(DataError, match="row 0: label id 9 out of range"):
        load_wikiann_parquet(path)


def test_squad_reader_checks_answer_spans(tmp_path):
    path = tmp_path / "xquad.json"
    qa = {"id": "q1", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 3}]}
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "In Paris.", "qas": [qa]}]}]}), encoding="utf-8")
    assert load_squad(path)[0]["answers"] == {"text": ["Paris"], "answer_start": [3]}
    qa["answers"][0]["answer_start"] = 0
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "In Paris.", "qas": [qa]}]}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]: answer 'Paris' does not match"):
        load_squad(path)
    del qa["question"]
    path.write_text(json.dumps({"data": [{"paragraphs": [{"context": "In Paris.", "qas": [qa]}]}]}), encoding="utf-8")
    with pytest.raises(DataError, match="missing field 'question'"):
        load_squad(path)


def test_choice_readers(tmp_path):
    copa = tmp_path / "xcopa.jsonl"
    row = {"premise": "p", "choice1": "a", "choice2": "b", "question": "effect", "label": 1, "idx": 0}
    copa.write_text(json.dumps(row) + "\n" + json.dumps({**row, "label": 2}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{copa}:2: label 2 out of range for 2 choices"):
        load_choices(copa)
    siqa, labels = tmp_path / "siqa.jsonl", tmp_path / "labels.lst"
    siqa.write_text(json.dumps({"context": "c", "question": "q", "answerA": "a", "answerB": "b", "answerC": "c"}) + "\n")
    labels.write_text("3\n")
    assert load_choices(siqa, labels)[0]["label"] == 2
    labels.write_text("3\n1\n")
    with pytest.raises(DataError, match="has 2 labels but .* has 1 records"):
        load_choices(siqa, labels)
