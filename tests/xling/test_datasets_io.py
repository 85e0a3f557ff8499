"""Data through Hugging Face ``datasets``: the tasks' features from ``Dataset.map`` equal the per-example
encoding the tasks used before, the map is cached, and ``--dataset NAME --dataset-config CONFIG`` loads a
data set from the local Hugging Face cache offline (one-line error when it is not there)."""

from __future__ import annotations

import json
import os

import pytest

from xling.cli import main
from xling.data import DataError, HubDatasetRef
from xling.datasets_io import load_panx
from xling.tasks import TASKS

WIKIANN_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


# -- the encoding before ``datasets``: one tokenizer call per sentence or example, written out here --------


def reference_tagging(tokens, tags, tokenizer, label_ids, max_length):
    encoding = tokenizer(tokens, is_split_into_words=True, truncation=True, max_length=max_length)
    labels, previous = [], None
    for word in encoding.word_ids():
        is_first = word is not None and word != previous
        labels.append(label_ids.get(tags[word], 0) if is_first else -100)
        previous = word
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "labels": labels}


def reference_qa(examples, tokenizer, max_length):
    stride = min(128, max_length // 4)
    encoding = tokenizer([e["question"] for e in examples], [e["context"] for e in examples], truncation="only_second",
                         max_length=max_length, stride=stride, return_overflowing_tokens=True,
                         return_offsets_mapping=True)
    features = []
    for i, offsets in enumerate(encoding["offset_mapping"]):
        example = examples[encoding["overflow_to_sample_mapping"][i]]
        start_char = example["answers"]["answer_start"][0]
        end_char = start_char + len(example["answers"]["text"][0])
        context = [k for k, s in enumerate(encoding.sequence_ids(i)) if s == 1]
        start = end = 0
        if context and offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char:
            start = next(k for k in context if offsets[k][1] > start_char)
            end = next(k for k in reversed(context) if offsets[k][0] < end_char)
        features.append({"input_ids": encoding["input_ids"][i], "attention_mask": encoding["attention_mask"][i],
                         "start_positions": start, "end_positions": end})
    return features


def reference_choice(example, tokenizer, max_length):
    first = [f"{example['context']} {example['question']}"] * len(example["choices"])
    encoding = tokenizer(first, list(example["choices"]), truncation=True, max_length=max_length)
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"], "labels": example["label"]}


@pytest.fixture(scope="module")
def pos_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pos") / "en.pos"
    path.write_text("en:john\tNOUN\nen:lives\tVERB\nen:in\tADP\nen:london\tNOUN\n\nen:mary\tNOUN\nen:went\tVERB\n",
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cls") / "en.jsonl"
    rows = [{"text": "john lives in london and works for acme corp", "label": "pos"},
            {"text": "mary went to paris", "label": 3}, {"text": "the cat sat on a mat " * 8, "label": "neg"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("task,max_length", [("ner", 8), ("pos", 6)])
def test_tagging_features_equal_the_per_sentence_encoding(workspace, pos_file, task, max_length):
    tokenizer, module = workspace["tokenizer"], TASKS[task]
    examples = module.read(workspace["data"] / "en.panx" if task == "ner" else pos_file)
    labels = module.label_list(examples)
    features = module.build_features(examples, tokenizer, labels, max_length)
    ids = {t: i for i, t in enumerate(labels)}
    expected = [reference_tagging(e["tokens"], e["tags"], tokenizer, ids, max_length) for e in examples]
    assert features.column_names == ["input_ids", "attention_mask", "labels"]
    assert list(features) == expected
    assert any(len(f["input_ids"]) == max_length for f in expected)  # truncation was exercised


def test_classification_qa_and_choice_features_equal_the_old_encoding(workspace, text_file):
    tokenizer, data = workspace["tokenizer"], workspace["data"]
    cls = TASKS["classification"]
    texts = cls.read(text_file)
    assert list(texts["label"]) == ["pos", "3", "neg"]  # integer labels read as their decimal string
    encoding = tokenizer(list(texts["text"]), truncation=True, max_length=10)
    ids = {label: i for i, label in enumerate(cls.label_list(texts))}
    assert list(cls.build_features(texts, tokenizer, cls.label_list(texts), 10)) == [
        {"input_ids": encoding["input_ids"][i], "attention_mask": encoding["attention_mask"][i], "labels": ids[e["label"]]}
        for i, e in enumerate(texts)]
    qa = TASKS["qa"]
    questions = qa.read(data / "en.squad.json")
    windows = qa.build_features(questions, tokenizer, qa.label_list(questions), 24)
    assert list(windows) == reference_qa(list(questions), tokenizer, 24) and len(windows) > len(questions)
    choices = TASKS["copa"].read(data / "siqa.jsonl", data / "siqa-labels.lst")
    assert list(TASKS["copa"].build_features(choices, tokenizer, None, 16)) == \
        [reference_choice(e, tokenizer, 16) for e in choices]


def test_features_come_from_the_datasets_cache_and_an_edited_file_is_read_again(workspace, tmp_path):
    path = tmp_path / "en.panx"
    path.write_text("en:john\tB-PER\nen:lives\tO\n", encoding="utf-8")
    ner, tokenizer = TASKS["ner"], workspace["tokenizer"]
    first = ner.build_features(ner.read(path), tokenizer, ["O", "B-PER"], 16)
    again = ner.build_features(ner.read(path), tokenizer, ["O", "B-PER"], 16)
    cache = os.environ["HF_DATASETS_CACHE"]
    assert first.cache_files and first.cache_files == again.cache_files  # the same fingerprint: read, not re-encoded
    assert all(f["filename"].startswith(cache) for f in first.cache_files)
    path.write_text("en:mary\tB-PER\n", encoding="utf-8")
    assert load_panx(path)["tokens"] == [["mary"]]  # the file's checksum is in the cache key


def cache_hub_dataset(root, name: str, config: str, rows: dict, features) -> None:
    """Put a data set in the Hugging Face cache the way ``load_dataset`` puts a downloaded one: its parquet
    splits in a folder whose README declares the config, loaded once (a local folder loads offline)."""
    import datasets
    from datasets import Dataset

    repo = root / "hub" / name
    (repo / config).mkdir(parents=True)
    for split in ("train", "validation", "test"):
        Dataset.from_dict(rows, features=features).to_parquet(repo / config / f"{split}.parquet")
    (repo / "README.md").write_text(f"---\nconfigs:\n- config_name: {config}\n  data_files:\n"
                                    + "".join(f"  - split: {s}\n    path: {config}/{s}.parquet\n"
                                              for s in ("train", "validation", "test")) + "---\n", encoding="utf-8")
    datasets.load_dataset(str(repo), config)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A WikiANN-like data set (hub columns: tokens, ner_tags as ClassLabel, langs, spans) in an empty Hugging
    Face cache; offline, and the cwd has no folder named like it (so the name is looked up in the cache)."""
    import datasets
    from datasets import ClassLabel, Features, List, Value

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    features = Features({"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=WIKIANN_LABELS)),
                         "langs": List(Value("string")), "spans": List(Value("string"))})
    rows = {"tokens": [["Hans", "lebt", "in", "Berlin"], ["Anna", "arbeitet", "bei", "Siemens", "AG"]] * 8,
            "ner_tags": [[1, 0, 0, 5], [1, 0, 0, 3, 4]] * 8, "langs": [["de"] * 4, ["de"] * 5] * 8,
            "spans": [["PER: Hans", "LOC: Berlin"], ["PER: Anna", "ORG: Siemens AG"]] * 8}
    cache_hub_dataset(tmp_path, "wikiann", "de", rows, features)
    monkeypatch.chdir(tmp_path)
    assert datasets.config.HF_DATASETS_OFFLINE and not (tmp_path / "wikiann").exists()
    return tmp_path


def test_wikiann_config_loads_from_the_local_cache_offline(hub_cache):
    examples = TASKS["ner"].read(HubDatasetRef("wikiann", "de", "test"))
    assert examples[0] == {"tokens": ["Hans", "lebt", "in", "Berlin"], "tags": ["B-PER", "O", "O", "B-LOC"],
                           "origin": "wikiann/de:test:row 0"}
    assert examples[1]["tags"] == ["B-PER", "O", "O", "B-ORG", "I-ORG"]
    with pytest.raises(DataError, match=r"^--dataset wikiann --dataset-config fr --dataset-split test: cannot load it "
                                        r"\(Couldn't find cache for wikiann for config 'fr'\); offline, only data "
                                        r"sets already in .*hf-cache load$"):
        TASKS["ner"].read(HubDatasetRef("wikiann", "fr", "test"))


def test_train_and_eval_with_dataset_flags(workspace, en_language_adapter, hub_cache, tmp_path, capsys):
    model, out = str(workspace["model"]), tmp_path / "task"
    assert main(["train-task", "--task", "ner", "--model", model, "--lang-adapter", str(en_language_adapter),
                 "--dataset", "wikiann", "--dataset-config", "de", "--output-dir", str(out), "--max-steps", "2",
                 "--batch-size", "8", "--cpu", "--save-steps", "2", "--max-length", "32"]) == 0
    info = json.loads((out / "adapter" / "task.json").read_text())
    assert info["train_file"] == "wikiann/de:train" and info["labels"] == ["O", "B-LOC", "B-ORG", "B-PER", "I-ORG"]
    results = tmp_path / "de.json"
    assert main(["eval", "--model", model, "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "de", "--dataset", "wikiann", "--dataset-config", "de",
                 "--output", str(results)]) == 0
    record = json.loads(results.read_text())
    assert record["data"] == "wikiann/de:test" and record["num_examples"] == 16
    capsys.readouterr()
    assert main(["eval", "--model", model, "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--dataset", "wikiann", "--dataset-config", "sw",
                 "--output", str(tmp_path / "sw.json")]) == 1
    error = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # not the weights' progress bar
    assert len(error) == 1 and error[0].startswith("xling: error: eval: --dataset wikiann --dataset-config sw "), error
    assert main(["eval", "--model", model, "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "de", "--output", str(results)]) == 1
    assert capsys.readouterr().err.strip() == \
        "xling: error: eval: give either --data FILE or --dataset NAME (with --dataset-config), not neither"


def test_squad_and_classification_columns_from_the_cache_are_checked(hub_cache):
    from datasets import ClassLabel, Features, List, Value

    squad = Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                      "question": Value("string"),
                      "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))}})
    cache_hub_dataset(hub_cache, "xquad_like", "xquad.de", {
        "id": ["a", "b"], "title": ["t", "t"], "context": ["Hans lebt in Berlin.", "Anna lebt in Bonn."],
        "question": ["Wo?", "Wo?"], "answers": [{"text": ["Berlin"], "answer_start": [13]},
                                                {"text": ["Bonn"], "answer_start": [0]}]}, squad)
    with pytest.raises(DataError, match=r"^xquad_like/xquad.de:validation:row 1.answers\[0\]: answer 'Bonn' does "
                                        r"not match the context at 0 \('Anna'\)$"):
        TASKS["qa"].read(HubDatasetRef("xquad_like", "xquad.de", "validation"))
    texts = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    cache_hub_dataset(hub_cache, "sentiment_like", "de", {"text": ["gut", "schlecht"], "label": [1, 0]}, texts)
    examples = TASKS["classification"].read(HubDatasetRef("sentiment_like", "de", "train"))
    assert list(examples["label"]) == ["positive", "negative"] and examples[0]["origin"] == "sentiment_like/de:train:row 0"


def test_full_fine_tuning_takes_the_dataset_flags_too(workspace, hub_cache, tmp_path, capsys):
    model, out = str(workspace["model"]), tmp_path / "full"
    assert main(["train-full", "--task", "ner", "--model", model, "--dataset", "wikiann", "--dataset-config", "de",
                 "--output-dir", str(out), "--max-steps", "1", "--batch-size", "8", "--cpu", "--save-steps", "1",
                 "--max-length", "32"]) == 0
    assert (out / "model" / "config.json").exists()
    capsys.readouterr()
    assert main(["train-full", "--task", "ner", "--model", model, "--output-dir", str(out)]) == 1
    assert capsys.readouterr().err.strip() == \
        "xling: error: train-full: give either --train FILE or --dataset NAME (with --dataset-config), not neither"
