"""Language adapters that learn: the held-out MLM curve of train-lang, and lang-mlm-loss's three settings."""

from __future__ import annotations

import json

from conftest import WORDS_SW, sentences
from xling.cli import main
from xling.lang_mlm_eval import CURVE_FILE, parse_settings, passes


def _train(workspace, lang, out, heldout, *extra):
    return main(["train-lang", "--model", str(workspace["model"]), "--lang", lang, "--text",
                 str(workspace["data"] / f"{lang}.txt"), "--output-dir", str(out), "--batch-size", "8", "--cpu",
                 "--save-steps", "1000", "--learning-rate", "1e-2", "--max-length", "32", "--heldout-text",
                 str(heldout), *extra])


def test_curve_then_own_adapter_below_bare_and_english(workspace, tmp_path, capsys):
    heldout = tmp_path / "sw.heldout.txt"
    heldout.write_text("\n".join(sentences(WORDS_SW, 40, 9)) + "\n", encoding="utf-8")
    assert _train(workspace, "sw", tmp_path / "sw", heldout, "--max-steps", "30", "--eval-steps", "10") == 0
    curve = json.loads((tmp_path / "sw" / "adapter" / CURVE_FILE).read_text())
    assert [p["step"] for p in curve["curve"]] == [0, 10, 20, 30] and curve["plateau_step"] is None
    assert curve["curve"][-1]["loss"] < curve["curve"][0]["loss"] - 0.05
    assert _train(workspace, "en", tmp_path / "en", heldout, "--max-steps", "30", "--eval-steps", "10") == 0
    capsys.readouterr()
    settings = ["bare", f"en={tmp_path / 'en' / 'adapter'}", f"sw={tmp_path / 'sw' / 'adapter'}"]
    assert main(["lang-mlm-loss", "--model", str(workspace["model"]), "--text", str(heldout), "--adapters", *settings,
                 "--own", "sw", "--output", str(tmp_path / "sw.json")]) == 0
    assert "sw: PASS" in capsys.readouterr().out
    scores = json.loads((tmp_path / "sw.json").read_text())
    assert scores["passes"] and set(scores["settings"]) == {"bare", "en", "sw"}
    # The bare score is the curve's step 0 (same masks, same model); the English adapter does not pass on Swahili.
    assert abs(scores["settings"]["bare"]["loss"] - curve["curve"][0]["loss"]) < 1e-4
    assert not passes(scores, "en", 0.0) and not passes(scores, "sw", 100.0)
    assert main(["lang-mlm-loss", "--model", str(workspace["model"]), "--text", str(heldout), "--adapters", *settings,
                 "--own", "xx", "--output", str(tmp_path / "bad.json")]) == 1
    assert "xx" in capsys.readouterr().err and not (tmp_path / "bad.json").exists()


def test_stops_at_plateau(workspace, tmp_path):
    heldout = tmp_path / "sw.heldout.txt"
    heldout.write_text("\n".join(sentences(WORDS_SW, 20, 9)) + "\n", encoding="utf-8")
    # A fall of 100 nats is never reached: training ends at the first step a window back exists.
    assert _train(workspace, "sw", tmp_path / "sw", heldout, "--max-steps", "50", "--eval-steps", "5",
                  "--plateau-delta", "100", "--plateau-window", "10") == 0
    curve = json.loads((tmp_path / "sw" / "adapter" / CURVE_FILE).read_text())
    assert curve["plateau_step"] == 10 and [p["step"] for p in curve["curve"]] == [0, 5, 10]


def test_parse_settings():
    assert parse_settings(["bare", "en=a/b"]) == {"bare": None, "en": "a/b"}
    for bad in (["en"], ["=x"], ["en="]):
        try:
            parse_settings(bad)
        except ValueError as err:
            assert repr(bad[0]) in str(err)
        else:
            raise AssertionError(bad)
