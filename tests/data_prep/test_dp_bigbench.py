"""data-prep bigbench on tiny task files in BIG-bench's layout (the real package is 358 MB)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_prep.bigbench_tasks import BigbenchConfig, bio_tags, prepare, split_hindi_inputs
from data_prep.cli import main
from data_prep.common import DataPrepError

LANGS = ("en", "de", "pl")


def write(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def task(examples: list) -> dict:
    return {"name": "t", "examples": examples}


@pytest.fixture
def source(tmp_path) -> Path:
    root = tmp_path / "benchmark_tasks"
    context = "Paris is the capital of France. It lies on the Seine."
    write(root / "squad_shifts" / "squaddev_v1.1.json", {"version": "1.1", "data": [
        {"title": f"article{a}", "paragraphs": [{"context": context, "qas": [
            {"id": f"q{a}", "question": "Where is Paris?", "answers": [{"text": " France", "answer_start": 24}]}]}]}
        for a in range(20)]})
    hindi_context = "भारत एक देश है। दिल्ली भारत की राजधानी है।"
    write(root / "hindi_question_answering" / "task.json", task([
        {"input": f"{hindi_context} भारत की राजधानी क्या है?", "target": "दिल्ली"},
        {"input": f"{hindi_context} भारत क्या है?", "target": "एक देश"},
        {"input": "गंगा एक नदी है। गंगा क्या है?", "target": "एक नदी"},
        {"input": "यह वाक्य है। उत्तर कहाँ है?", "target": "कहीं नहीं"}]))
    write(root / "parsinlu_reading_comprehension" / "task.json", task([
        {"input": "passage: 'تهران پایتخت ایران است.' question: 'پایتخت ایران کجاست؟'", "target": ["تهران", "x"]}]))
    for lang in LANGS:
        rows = [{"input": f"{lang} review {i}", "target_scores": {"positive": int(i % 3 == 0), "negative": int(i % 3 != 0)}}
                for i in range(30)]
        if lang == "pl":  # the original has one review the translations lack (BIG-bench's item 6428)
            rows.insert(10, {"input": "pl extra", "target_scores": {"positive": 0, "negative": 1}})
        write(root / "multiemo" / f"all_text_{lang}" / "task.json", task(rows))
    write(root / "polish_sequence_labeling" / "task.json", task(
        [{"input": "Jan Kowalski mieszka w Nowym Jorku", "target": "nam_liv nam_liv action O nam_loc nam_loc"},
         {"input": "", "target": ""}] + [{"input": f"Zdanie {i} Polska", "target": "O O nam_loc"} for i in range(20)]
        + [{"input": "Amerykański prezydent Joe Biden odwiedził Warszawę",
            "target": "nam_adj O nam_liv nam_liv action nam_loc"}]))
    return root


def config(source: Path, **kwargs) -> BigbenchConfig:
    return BigbenchConfig(source_dir=str(source), multiemo_langs=LANGS, multiemo_untranslated={"pl": (10,)}, **kwargs)


def test_bio_tags_merge_runs_of_one_type():
    tags = ["nam_liv", "nam_liv", "action", "nam_loc", "nam_org", "nam_org", "t3_date", "nam_fac", "nam_num2"]
    assert bio_tags(tags, "nam") == ["B-nam_liv", "I-nam_liv", "O", "B-nam_loc", "B-nam_org", "I-nam_org", "O",
                                     "B-nam_fac", "B-nam_num"]
    assert bio_tags(tags, "wikiann") == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-LOC", "O"]


def test_name_scheme_is_one_type_and_leaves_name_adjectives_out():
    tags = ["nam_liv", "nam_liv", "nam_adj", "nam_loc", "nam_org", "O", "nam_num2", "t3_date", "nam_adj", "nam_pro",
            "action", "nam_eve", "nam_fac", "nam_oth"]
    assert bio_tags(tags, "name") == ["B-NAME", "I-NAME", "O", "B-NAME", "I-NAME", "O", "B-NAME", "O", "O", "B-NAME",
                                      "O", "B-NAME", "I-NAME", "I-NAME"]
    with pytest.raises(ValueError, match="unknown Polish NER scheme 'names'"):
        bio_tags(tags, "names")


def test_name_scheme_files(source, tmp_path):
    from xling.tasks.ner import read

    out = tmp_path / "out"
    report = prepare(out, config(source, tasks=("pl_ner",)))
    sentences = {s["tokens"][0]: s["tags"] for split in ("train", "dev", "test")
                 for s in read(out / "pl_ner" / "name" / f"{split}.pl.panx") if s["tokens"][0] in ("Jan", "Amerykański")}
    assert sentences == {"Jan": ["B-NAME", "I-NAME", "O", "O", "B-NAME", "I-NAME"],
                         "Amerykański": ["O", "O", "B-NAME", "I-NAME", "O", "B-NAME"]}
    name_counts = report["tasks"]["pl_ner"]["counts"]["name"]
    assert sum(c["sentences"] for c in name_counts.values()) == 22
    assert sum(c["entities"] for c in name_counts.values()) == 2 + 20 + 2


def test_hindi_context_is_the_shared_prefix():
    shared = "क ख ग घ ङ च छ ज झ ञ ट ठ ड ढ ण त थ द ध न प फ ब भ म।"
    pairs = split_hindi_inputs([f"{shared} पहला प्रश्न?", f"{shared} दूसरा प्रश्न?", "अकेला वाक्य। अकेला प्रश्न?", "बिना"])
    assert pairs[0] == (shared, "पहला प्रश्न?") and pairs[1] == (shared, "दूसरा प्रश्न?")
    assert pairs[2] == ("अकेला वाक्य।", "अकेला प्रश्न?") and pairs[3] is None


def test_prepare_writes_xling_formats(source, tmp_path):
    from xling.datasets_io import load_labelled_texts, load_ner, load_squad

    out = tmp_path / "out"
    report = prepare(out, config(source))
    counts = {task: info["counts"] for task, info in report["tasks"].items()}
    assert counts["squad"]["answers_repaired"] == 20 and counts["squad"]["train"] + counts["squad"]["dev"] == 20
    squad = [q for split in ("train", "dev") if (out / "squad" / f"{split}.en.json").exists()
             for q in load_squad(out / "squad" / f"{split}.en.json") if q["id"]]
    assert len(squad) == 20 and squad[0]["answers"]["text"] == ["France"]
    hindi = load_squad(out / "hi_qa" / "test.hi.json")
    assert [q["answers"]["text"][0] for q in hindi] == ["दिल्ली", "एक देश", "एक नदी"]
    assert counts["hi_qa"]["dropped_answer_not_in_context"] == 1
    persian = load_squad(out / "fa_qa" / "test.fa.json")
    assert persian[0]["context"] == "تهران پایتخت ایران است." and persian[0]["answers"]["text"] == ["تهران"]
    # MultiEmo: the extra Polish review is dropped, item i is in the same split in every language
    by_lang = {lang: {split: load_labelled_texts(out / "multiemo" / f"{split}.{lang}.jsonl")
                      if (out / "multiemo" / f"{split}.{lang}.jsonl").stat().st_size else []
                      for split in ("train", "dev", "test")} for lang in LANGS}
    for split in ("train", "dev", "test"):
        numbers = [sorted(int(e["text"].split()[-1]) for e in by_lang[lang][split]) for lang in LANGS]
        assert numbers[0] == numbers[1] == numbers[2]
    assert sum(len(v) for v in by_lang["pl"].values()) == 30
    assert all(e["text"] != "pl extra" for v in by_lang["pl"].values() for e in v)
    sentences = [s for split in ("train", "dev", "test") for s in load_ner(out / "pl_ner" / "nam" / f"{split}.pl.panx")
                 if s["tokens"][0] == "Jan"]
    assert sentences[0]["tags"] == ["B-nam_liv", "I-nam_liv", "O", "O", "B-nam_loc", "I-nam_loc"]
    assert counts["pl_ner"]["skipped_empty"] == 1
    assert json.loads((out / "bigbench_counts.json").read_text())["tasks"]["fa_qa"]["counts"]["questions"] == 1


def test_rerun_skips_and_keeps_files(source, tmp_path):
    out = tmp_path / "out"
    prepare(out, config(source, tasks=("fa_qa", "pl_ner")))
    target = out / "fa_qa" / "test.fa.json"
    os.utime(target, (1, 1))
    again = prepare(out, config(source, tasks=("fa_qa", "pl_ner")))
    assert all(info.get("skipped") for info in again["tasks"].values())
    assert target.stat().st_mtime == 1
    assert not list(out.rglob("*.tmp*"))


def test_missing_field_is_a_one_line_error(source, tmp_path, capsys):
    write(source / "parsinlu_reading_comprehension" / "task.json", task([{"input": "passage: 'a' question: 'b'"}]))
    with pytest.raises(DataPrepError, match=r"task\.json: examples\[0\]: missing field 'target'"):
        prepare(tmp_path / "out", config(source, tasks=("fa_qa",)))
    rc = main(["bigbench", "--output-dir", str(tmp_path / "cli"), "--tasks", "fa_qa", "--source-dir", str(source)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "examples[0]: missing field 'target'" in err
    assert not (tmp_path / "cli" / "fa_qa").exists()


def test_tag_count_mismatch_and_unaligned_multiemo(source, tmp_path):
    write(source / "polish_sequence_labeling" / "task.json", task([{"input": "a b", "target": "O"}]))
    with pytest.raises(DataPrepError, match=r"examples\[0\]: 2 tokens but 1 tags"):
        prepare(tmp_path / "out", config(source, tasks=("pl_ner",)))
    write(source / "multiemo" / "all_text_de" / "task.json",
          task([{"input": "x", "target_scores": {"positive": 1, "negative": 0}}] * 30))
    with pytest.raises(DataPrepError, match="all_text_de.*item 1 is 'positive' but 'negative'"):
        prepare(tmp_path / "out", config(source, tasks=("multiemo",)))


@pytest.mark.slow
def test_real_package_counts(tmp_path):
    """The real files, when the package is already in the cache (data-prep bigbench fetched it once)."""
    from data_prep.registry import cache_root

    root = cache_root() / "extracted" / "bigbench-1.0.0" / "bigbench-1.0.0" / "bigbench" / "benchmark_tasks"
    if not (root / "multiemo" / "all_text_zh" / "task.json").is_file():
        pytest.skip("bigbench 1.0.0 not extracted in the cache")
    report = prepare(tmp_path / "out", BigbenchConfig(source_dir=str(root)))
    counts = {task: info["counts"] for task, info in report["tasks"].items()}
    assert counts["squad"]["train"] + counts["squad"]["dev"] == 10565
    assert counts["fa_qa"]["questions"] == 518 and counts["hi_qa"]["questions"] > 6500
    assert sum(counts["multiemo"]["pl"].values()) == sum(counts["multiemo"]["en"].values()) == 8210
