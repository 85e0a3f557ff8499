"""xling trim-vocab on the tiny XLM-R of conftest: ids map back, adapters move to the untrimmed model unchanged."""

from __future__ import annotations

import json

import pytest
import torch

from xling.vocab_trim import TRIM_INFO, load_adapter_from_trimmed, trim_vocabulary


@pytest.fixture(scope="module")
def trimmed(workspace, tmp_path_factory):
    """The workspace model trimmed to the English text's pieces."""
    out = tmp_path_factory.mktemp("trim") / "model-en"
    report = trim_vocabulary(workspace["model"], [str(workspace["data"] / "en.txt")], out)
    return out, report


def test_trimmed_tokenizer_and_rows_map_to_the_original(workspace, trimmed):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out, report = trimmed
    full_tok, full = workspace["tokenizer"], AutoModelForMaskedLM.from_pretrained(workspace["model"]).eval()
    tok, model = AutoTokenizer.from_pretrained(out), AutoModelForMaskedLM.from_pretrained(out).eval()
    kept = json.loads((out / TRIM_INFO).read_text())["trimmed_to_original"]
    assert report["rows_after"] == len(kept) == len(tok) == model.config.vocab_size < report["rows_before"]
    assert report["mismatched_lines"] == 0
    assert [kept[i] for i in tok.all_special_ids] == full_tok.all_special_ids
    assert tok.mask_token_id is not None and kept[tok.mask_token_id] == full_tok.mask_token_id
    lines = (workspace["data"] / "en.txt").read_text().splitlines()[:20]
    for line in lines:
        assert [kept[i] for i in tok(line)["input_ids"]] == full_tok(line)["input_ids"]
    index = torch.tensor(kept)
    torch.testing.assert_close(model.get_input_embeddings().weight, full.get_input_embeddings().weight[index])
    torch.testing.assert_close(model.lm_head.bias, full.lm_head.bias[index])
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    # Swahili pieces are gone: the same line needs other (shorter or unknown) pieces.
    sw_line = (workspace["data"] / "sw.txt").read_text().splitlines()[0]
    assert [kept[i] for i in tok(sw_line)["input_ids"]] != full_tok(sw_line)["input_ids"]


def test_adapter_trained_on_trimmed_model_loads_into_the_full_one(workspace, trimmed, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from adapter_core import AdapterFormatError
    from xling.adapter_io import load_madx_adapter
    from xling.attach import TransformersHost
    from xling.train import TrainOptions, train_language_adapter

    out, _ = trimmed
    options = TrainOptions(output_dir=str(tmp_path / "lang"), max_steps=3, batch_size=8, learning_rate=1e-2,
                           use_cpu=True, save_steps=100)
    adapter = train_language_adapter(str(out), "en", [str(workspace["data"] / "en.txt")], options)
    small = TransformersHost(AutoModelForMaskedLM.from_pretrained(out).eval())
    load_madx_adapter(small, adapter)
    full = TransformersHost(AutoModelForMaskedLM.from_pretrained(workspace["model"]).eval())
    assert load_adapter_from_trimmed(full, adapter, out) == "en"
    small.set_active("en")
    full.set_active("en")
    kept = json.loads((out / TRIM_INFO).read_text())["trimmed_to_original"]
    tok, full_tok = AutoTokenizer.from_pretrained(out), workspace["tokenizer"]
    lines = (workspace["data"] / "en.txt").read_text().splitlines()[:8]
    small_batch, full_batch = tok(lines, return_tensors="pt", padding=True), full_tok(lines, return_tensors="pt", padding=True)
    assert torch.equal(torch.tensor(kept)[small_batch["input_ids"]], full_batch["input_ids"])
    with torch.no_grad():
        a = small.model(**small_batch, output_hidden_states=True)
        b = full.model(**full_batch, output_hidden_states=True)
    torch.testing.assert_close(a.hidden_states[-1], b.hidden_states[-1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.logits, b.logits[..., kept], rtol=1e-5, atol=1e-5)
    # The adapter did change the outputs, so the comparison above is not trivially true.
    full.set_active(None)
    with torch.no_grad():
        plain = full.model(**full_batch, output_hidden_states=True).hidden_states[-1]
    assert not torch.allclose(plain, b.hidden_states[-1], atol=1e-4)
    # An adapter of the full model is not one of the trimmed model.
    other = TransformersHost(AutoModelForMaskedLM.from_pretrained(workspace["model"]))
    with pytest.raises(AdapterFormatError, match="not on the trimmed model"):
        load_adapter_from_trimmed(other, _full_adapter(full, tmp_path), out)


def _full_adapter(host, tmp_path):
    from xling.adapter_io import save_madx_adapter

    host.add_adapter("de")
    return save_madx_adapter(host, "de", tmp_path / "full-adapter")


def test_cli_trim_vocab_errors_name_the_file(workspace, tmp_path, capsys):
    from xling.cli import main

    missing = tmp_path / "absent.txt"
    assert main(["trim-vocab", "--model", str(workspace["model"]), "--text", str(missing),
                 "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(missing) in error[0] and not (tmp_path / "out").exists()
