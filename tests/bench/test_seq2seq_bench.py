"""S1-S2 (bench/seq2seq_bench.py): a quick run writes both figures (no timing assertions)."""

from __future__ import annotations

import json

from bench.__main__ import main
from bench.harness import check_target


def test_quick_run_writes_s1_and_s2(tmp_path):
    output = tmp_path / "results.json"
    assert main(["--quick", "--only", "S1,S2", "--device", "cpu", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    for key in ("S1", "S2"):
        entry = results[key]
        assert isinstance(entry["value"], float) and entry["value"] > 0
        assert entry["met"] == check_target(entry["value"], entry["target"])
        assert entry["details"]["mixed_s"] > 0 and entry["details"]["bare_s"] > 0
