"""Smoke test of the benchmark harness: toy shapes, one round, results.json's schema (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main
from bench.harness import Result, check_target, write_results


def test_quick_run_writes_the_results_schema(tmp_path):
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "P1,P4", "--device", "cpu", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert {"P1", "P4"} <= set(results)
    for key in ("P1", "P4"):
        entry = results[key]
        assert set(entry) >= {"value", "target", "met", "device", "measure", "details"}
        assert isinstance(entry["value"], float) and entry["value"] > 0
        assert isinstance(entry["met"], bool) and entry["met"] == check_target(entry["value"], entry["target"])
        assert "1 torch thread" in entry["device"]
    assert results["_run"]["quick"] is True and results["_run"]["threads"] == 1


def test_results_merge_keeps_other_figures_and_skips_are_not_met(tmp_path):
    path = tmp_path / "results.json"
    write_results({"P1": Result(value=1.5, target=">= 1.4", met=True, device="cpu")}, path)
    write_results({"P5": Result(value=None, target=">= 1.5", met=False, device="cpu", skipped="no venv")}, path)
    results = json.loads(path.read_text())
    assert results["P1"]["value"] == 1.5 and results["P5"]["value"] is None and results["P5"]["met"] is False


def test_cuda_figures_go_under_their_own_key(tmp_path, monkeypatch):
    from bench.harness import RunSettings

    monkeypatch.setattr("torch.cuda.get_device_name", lambda device=None: "Test GPU")
    path = tmp_path / "results.json"
    write_results({"P1": Result(value=1.5, target=">= 1.45", met=True, device="cpu")}, path, RunSettings(device="cpu"))
    write_results({"P1": Result(value=1.2, target=">= 1.45", met=False, device="cuda:Test GPU")}, path,
                  RunSettings(device="cuda"))
    write_results({"P4": Result(value=0.99, target=">= 0.97", met=True, device="cpu")}, path, RunSettings(device="cpu"))
    results = json.loads(path.read_text())
    assert results["P1"]["value"] == 1.5 and results["P4"]["value"] == 0.99  # the CPU table is untouched by CUDA
    assert results["cuda"]["P1"]["value"] == 1.2 and "P4" not in results["cuda"]
    assert results["cuda"]["_run"]["card"] == "Test GPU" and results["_run"]["device"] == "cpu"
    assert results["_run"]["cpu"]  # the CPU model is recorded


@pytest.mark.parametrize("value,target,met", [(1.4, ">= 1.4", True), (1.39, ">= 1.4", False),
                                              (0.6, "<= 0.6", True), (0.61, "<= 0.6", False)])
def test_targets(value, target, met):
    assert check_target(value, target) is met


def test_unknown_benchmark_is_refused(capsys):
    assert main(["--only", "P9"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_quick_generation_soak_reports_memory_growth(tmp_path):
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "L1", "--device", "cpu", "--output", str(output)]) == 0
    entry = json.loads(output.read_text())["L1"]
    assert entry["details"]["sentences"] == 32 and entry["details"]["rss_end"] > 0
    assert entry["target"] == "<= 0.05" and entry["value"] >= 0


def test_quick_nmt_adapterdrop_reports_speedups_per_n(tmp_path):
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "D2", "--device", "cpu", "--output", str(output)]) == 0
    entry = json.loads(output.read_text())["D2"]
    assert entry["details"]["dropped"] == [0, 1]
    assert entry["details"]["train_speedup"]["0"] == 1.0 and entry["details"]["generation_speedup"]["1"] > 0
    assert "plot" not in entry["details"]  # --quick never overwrites the real figure


def test_quick_real_encoder_benchmarks_write_their_figures(tmp_path):
    """P7 (task adapter vs full fine-tuning) and P8 (trimmed vs untrimmed memory, fresh processes) at toy shapes."""
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "P7,P8", "--device", "cpu", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["P7"]["value"] > 0 and results["P7"]["details"]["trainable"]["adapter"] < \
        results["P7"]["details"]["trainable"]["full"]
    reports = results["P8"]["details"]["reports"]
    assert reports["trimmed"]["vocab_size"] < reports["untrimmed"]["vocab_size"]
    assert results["P8"]["target"] == "<= 0.6" and "toy XLM-R" in results["P8"]["measure"]
