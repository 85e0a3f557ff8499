"""studies.nmt_report_spec: parameter counts of base and adapter checkpoints, and the spec file."""

import json

from studies.nmt_report_spec import build_spec, checkpoint_parameter_counts
from nmt_helpers import ADAPTER_DIM, TRAIN_PAIRS


def test_counts_of_base_and_adapter_checkpoints(nmt_run, tmp_path):
    base = checkpoint_parameter_counts(nmt_run.base)
    assert base["adapter_parameters"] == 0 and base["trainable_parameters"] == base["total_parameters"] > 0
    pair = checkpoint_parameter_counts(nmt_run.pair)
    d, m = 32, ADAPTER_DIM
    per_layer = 2 * m * d + d + m + 2 * d  # Bapna & Firat adapter with its input LayerNorm
    # 2 encoder + 2 decoder layers, one adapter per training pair in each
    assert pair["adapter_parameters"] == per_layer * 4 * len(TRAIN_PAIRS)
    assert pair["trainable_parameters"] == pair["adapter_parameters"]
    assert pair["total_parameters"] == base["total_parameters"] + pair["adapter_parameters"]


def test_spec_lists_systems_with_generate_outputs(nmt_run, tmp_path):
    generate = tmp_path / "generate"
    (generate / "pair").mkdir(parents=True)
    (generate / "pair" / "generate-en-de.txt").write_text("D-0\t-0.1\thallo\n")
    (generate / "empty").mkdir()
    checkpoints = tmp_path / "ckpt" / "pair"
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint_last.pt").symlink_to(nmt_run.pair)
    spec = build_spec(tmp_path / "ckpt", generate)
    assert list(spec["systems"]) == ["pair"]
    assert spec["meta"]["pair"]["trainable_parameters"] > 0
    json.dumps(spec)
