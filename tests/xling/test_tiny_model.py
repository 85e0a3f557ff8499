"""xling.tiny_model: a small XLM-R-shaped model pretrained on local text, loadable by the xling commands."""

import random

from transformers import AutoModelForMaskedLM, AutoTokenizer

from xling.cli import main as xling_main
from xling.tiny_model import TinyModelConfig, build_tiny_xlmr


def main(argv):
    return xling_main(["tiny-model", *argv])

WORDS_EN = "the cat sat on a mat john lives in london and works for acme corp".split()
WORDS_SW = "paka ameketi juu ya mkeka juma anaishi nairobi na anafanya kazi kwa kampuni".split()


def sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(n)]


def test_builds_a_loadable_model_and_tokenizer(tmp_path):
    (tmp_path / "en.txt").write_text("\n".join(sentences(WORDS_EN, 80, 1)) + "\n")
    (tmp_path / "sw.txt").write_text("\n".join(sentences(WORDS_SW, 80, 2)) + "\n")
    config = TinyModelConfig(vocab_size=80, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                             max_length=24, max_steps=3, batch_size=8, max_minutes=0)
    out = build_tiny_xlmr([str(tmp_path / "en.txt"), str(tmp_path / "sw.txt")], tmp_path / "model", config)
    model = AutoModelForMaskedLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.layer_norm_eps == 1e-5 and model.config.hidden_size == 16
    assert len(tokenizer) == model.config.vocab_size > 20  # a real vocabulary, not the 5-token fallback
    ids = tokenizer("paka ameketi juu", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == model.config.vocab_size
    assert not list(tmp_path.glob("tmp*")), "the staging directory is removed"


def test_missing_or_empty_text_is_a_clear_error(tmp_path, capsys):
    assert main(["--text", str(tmp_path / "nope.txt"), "--output-dir", str(tmp_path / "m")]) == 1
    assert "text file not found" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n\n")
    assert main(["--text", str(tmp_path / "empty.txt"), "--output-dir", str(tmp_path / "m")]) == 1
    assert "no text" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
