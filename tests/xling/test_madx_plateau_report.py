"""recipes/xling/madx_plateau_report.py: the head curve and the language adapter table, from the files the recipe writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("madx_plateau_report", ROOT / "recipes" / "xling" / "madx_plateau_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def test_report_tables_and_verdicts(tmp_path):
    base = tmp_path / "base"
    curve = [{"step": s, "accuracy": a, "loss": 9.0 - a / 10, "masked_tokens": 100} for s, a in [(0, 0.1), (50, 5.0), (100, 6.0)]]
    _write(base / "head" / "mlm_head.json", {
        "curve": curve, "steps": 100, "train_lines": 90, "heldout_lines": 10, "after": curve[-1], "seconds": 12.0,
        "cache_seconds": 3.0, "threads": 1, "device": "cpu", "plateau_step": None,
        "config": {"tokens_per_step": 512, "mask_passes": 1, "plateau_gain": 0.2, "plateau_window": 100}})
    for lang, own in (("en", 5.0), ("tr", 6.5)):
        folder = base / "lang-lr1e-3" / f"lang-{lang}"
        _write(folder / "adapter" / "mlm_curve.json", {"plateau_step": 50, "curve": [
            {"step": 0, "loss": 7.0}, {"step": 50, "loss": own}]})
        settings = {"bare": {"loss": 7.0}, lang: {"loss": own}}
        if lang == "tr":
            settings["en"] = {"loss": 6.9}
        _write(folder / "mlm_loss.json", {"settings": settings, "passes": lang == "en", "margin": 0.05})
    out = tmp_path / "report"
    assert _module().main(["--base", str(base), "--head-dir", "head", "--langs", "en", "tr", "pl", "--lrs", "1e-3", "1e-4",
                           "--output-dir", str(out)]) == 0
    text = (out / "plateau.md").read_text()
    assert "| 100 | 51,200 | 6.00 |" in text
    assert "| en | 1e-3 | 50 | 50 | 7.000 | – | 5.000 | PASS |" in text
    assert "| tr | 1e-3 | 50 | 50 | 7.000 | 6.900 | 6.500 | FAIL |" in text
    assert "| pl |" not in text and (out / "head_curve.png").is_file() and (out / "lang_curves.png").is_file()
    assert [r["lang"] for r in json.loads((out / "plateau.json").read_text())["adapters"]] == ["en", "tr"]
