"""translate() and the xling translate / train-translation verbs on a tiny NLLB-style model with its tokenizer."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from adapter_core import bapna_firat_2019
from seq2seq_models import randomise_adapters, save_tiny_nllb
from xling.cli import main
from xling.seq2seq import RoutingError, Seq2SeqAdapterHost
from xling.seq2seq_translate import TranslationOptions, generate_by_language_tokens, languages_from_tokens, translate

LANGS = ("eng_Latn", "deu_Latn", "swh_Latn", "fra_Latn")
TEXTS = ["Hello there!", "Guten Tag.", "Habari yako?", "Bonjour!", "Good night.", "Danke sehr!", "Asante.", "Merci."]
SRC = ["eng_Latn", "deu_Latn", "swh_Latn", "fra_Latn", "eng_Latn", "deu_Latn", "swh_Latn", "fra_Latn"]
TGT = ["deu_Latn", "swh_Latn", "fra_Latn", "eng_Latn", "swh_Latn", "fra_Latn", "eng_Latn", "deu_Latn"]


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory):
    return save_tiny_nllb(tmp_path_factory.mktemp("nllb"))


def language_host(nllb_dir):
    model = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir).eval()
    host = Seq2SeqAdapterHost(model, route_by="lang")
    for lang in LANGS:
        host.add_adapter(lang, bapna_firat_2019(16, 8))
    randomise_adapters(model)
    return host, AutoTokenizer.from_pretrained(nllb_dir)


@pytest.mark.parametrize("beams", [1, 4])
def test_translate_mixes_eight_directions_and_keeps_input_order(nllb_dir, beams):
    host, tokenizer = language_host(nllb_dir)
    options = TranslationOptions(batch_size=8, num_beams=beams, max_new_tokens=10)
    mixed = translate(host, tokenizer, TEXTS, SRC, TGT, options)
    alone = [translate(host, tokenizer, [t], [s], [g], options)[0] for t, s, g in zip(TEXTS, SRC, TGT)]
    assert mixed == alone
    assert len(set(mixed)) > 1  # the tiny model does not say the same thing for every input
    in_pairs = translate(host, tokenizer, TEXTS, SRC, TGT, TranslationOptions(batch_size=3, num_beams=beams,
                                                                             max_new_tokens=10))
    assert in_pairs == mixed


def test_languages_are_read_back_from_the_tokens(nllb_dir):
    host, tokenizer = language_host(nllb_dir)
    tokenizer.src_lang = "deu_Latn"
    ids = tokenizer(["Guten Tag."], return_tensors="pt")["input_ids"]
    forced = tokenizer.convert_tokens_to_ids("swh_Latn")
    src, tgt = languages_from_tokens(tokenizer, ids, forced_bos_token_id=forced)
    assert (src, tgt) == (["deu_Latn"], ["swh_Latn"])
    with host.routed(src, tgt):  # what translate() does, spelled out with the model's own generate()
        out = host.model.generate(ids, forced_bos_token_id=forced, num_beams=2, max_new_tokens=6)
    assert out[0, 1].item() == forced
    assert torch.equal(out, generate_by_language_tokens(host, tokenizer, ids, forced_bos_token_id=forced, num_beams=2,
                                                        max_new_tokens=6))
    with pytest.raises(RoutingError, match="not a language token"):
        languages_from_tokens(tokenizer, ids, forced_bos_token_id=5)


def test_cli_trains_a_language_pair_then_translates_a_tsv(nllb_dir, tmp_path, capsys):
    (tmp_path / "train.de").write_text("Guten Tag.\nDanke sehr!\nGute Nacht.\n" * 4)
    (tmp_path / "train.en").write_text("Good day.\nThanks a lot!\nGood night.\n" * 4)
    argv = ["train-translation", "--model", str(nllb_dir), "--route-by", "lang", "--src-lang", "deu_Latn",
            "--tgt-lang", "eng_Latn", "--src-file", str(tmp_path / "train.de"), "--tgt-file",
            str(tmp_path / "train.en"), "--output-dir", str(tmp_path / "adapters"), "--adapter-dim", "8",
            "--max-steps", "3", "--batch-size", "4", "--cpu"]
    assert main(argv) == 0
    adapters = [str(tmp_path / "adapters" / lang) for lang in ("deu_Latn", "eng_Latn")]
    assert all((tmp_path / "adapters" / lang / "adapter_model.safetensors").is_file() for lang in ("deu_Latn", "eng_Latn"))
    rows = [("deu_Latn", "eng_Latn", "Guten Tag."), ("eng_Latn", "deu_Latn", "Good night."),
            ("deu_Latn", "eng_Latn", "Danke!")]
    (tmp_path / "in.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    assert main(["translate", "--model", str(nllb_dir), "--route-by", "lang", "--adapter-dir", *adapters,
                 "--input", str(tmp_path / "in.tsv"), "--output", str(tmp_path / "out.txt"), "--beam", "2",
                 "--max-new-tokens", "6", "--batch-size", "2", "--cpu"]) == 0
    written = (tmp_path / "out.txt").read_text().splitlines()
    host = Seq2SeqAdapterHost(AutoModelForSeq2SeqLM.from_pretrained(nllb_dir).eval(), route_by="lang")
    for directory in adapters:
        host.load_adapter(directory)
    expected = translate(host, AutoTokenizer.from_pretrained(nllb_dir), [r[2] for r in rows], [r[0] for r in rows],
                         [r[1] for r in rows], TranslationOptions(batch_size=2, num_beams=2, max_new_tokens=6))
    assert written == expected
    (tmp_path / "bad.tsv").write_text("deu_Latn\tGuten Tag.\n")
    capsys.readouterr()
    assert main(["translate", "--model", str(nllb_dir), "--input", str(tmp_path / "bad.tsv"),
                 "--output", str(tmp_path / "x.txt"), "--cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("xling: error: translate:") and "bad.tsv:1" in err and "\n" not in err
