"""Smoke tests of D1 (``bench.drop_bench``), P6's FLOP bound and ``bench.memory_profile``: toy shapes, no timing assertions."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.drop_bench import DropBenchConfig, build, inference_macs, linear_macs, main


def test_quick_drop_bench_writes_its_keys_and_plot(tmp_path):
    output, png = tmp_path / "results.json", tmp_path / "speedup.png"
    assert main(["--quick", "--device", "cpu", "--layers", "3", "--dropped", "0,1,2",
                 "--output", str(output), "--plot", str(png)]) == 0
    entry = json.loads(output.read_text())["D1"]
    assert set(entry) >= {"value", "target", "met", "device", "measure", "details"}
    details = entry["details"]
    assert details["dropped"] == [0, 1, 2] and details["layers"] == 3
    for key in ("train_speedup", "inference_speedup", "inference_flop_speedup"):
        assert set(details[key]) == {"0", "1", "2"} and details[key]["0"] == 1.0
    assert set(details["ms_per_step"]) == {f"{kind} n={n}" for kind in ("train", "infer") for n in (0, 1, 2)}
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_inference_macs_match_the_flop_counter():
    model, host, drop, _, inputs, _ = build(DropBenchConfig(layers=3, quick=True), torch.device("cpu"))
    drop.remove()
    model.eval()
    tokens, sequence = inputs["input_ids"].numel(), inputs["input_ids"].shape[1]
    for n in (0, 2):
        base, kept = inference_macs(host, ("lang", "ner"), sequence, n)
        attention = 2 * sequence * host.hidden_size * len(host.outputs)
        with torch.no_grad(), host.adapters_skipped(range(n)), FlopCounterMode(display=False) as counter:
            model(**inputs)
        matmuls = sum(v for k, v in counter.get_flop_counts()["Global"].items() if str(k) in ("aten.addmm", "aten.mm", "aten.bmm"))
        assert matmuls == 2 * tokens * (base - attention + kept)
    assert 0 < linear_macs(host.outputs[0].madx_adapters) < linear_macs(model)
