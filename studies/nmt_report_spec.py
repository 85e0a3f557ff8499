"""Build ``nmt report --spec`` files: which generate outputs belong to which system, plus its sizes.

    python -m studies.nmt_report_spec --checkpoints work/demo/checkpoints --generate work/demo/generate \\
        --output work/demo/nmt_spec.json

Every folder under ``--generate`` is a system (``generate-<src>-<tgt>.txt``
files); ``--checkpoints/<system>/checkpoint_last.pt`` gives its parameter
counts: all parameters, and those that trained (adapter parameters for an
adapter checkpoint, ``--adapter-train-base`` aside, plus the base's LayerNorms
with ``--train-layer-norms``; the fusion layers of an AdapterFusion
checkpoint; every parameter otherwise).
Shared tensors (tied embeddings) are counted once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

from adapter_core import atomic_write_json

from nmt import safe_loading  # noqa: F401  (allows the non-tensor types fairseq checkpoints hold)

#: Adapter tensors: ``layers.N.adapter_bank.*`` (the layer output), ``.attention_adapter_bank.*`` and
#: ``.ffn_adapter_bank.*`` (Houlsby placement).
ADAPTER_MARK = re.compile(r"\.(?:attention_|ffn_)?adapter_bank\.")
FUSION_MARK = ".adapter_bank.fusions."  # AdapterFusion trains only these
#: The base's LayerNorms (fairseq's names), which train with --train-layer-norms.
LAYER_NORM_MARK = re.compile(r"(?:^|\.)(?:self_attn_layer_norm|encoder_attn_layer_norm|final_layer_norm|layer_norm|"
                             r"layernorm_embedding)\.(?:weight|bias)$")


def checkpoint_parameter_counts(path: str | Path) -> dict:
    """``{"total_parameters", "trainable_parameters", "adapter_parameters"}`` of a fairseq checkpoint."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model, cfg = state["model"], state.get("cfg") or {}
    seen, total, adapter, fusion, layer_norms = set(), 0, 0, 0, 0
    for name, tensor in model.items():
        # fairseq's ``version`` / ``_float_tensor`` buffers are bookkeeping, not parameters
        if name.endswith(("version", "_float_tensor")) or not torch.is_floating_point(tensor) \
                or tensor.untyped_storage().data_ptr() in seen:
            continue
        seen.add(tensor.untyped_storage().data_ptr())
        total += tensor.numel()
        is_adapter = bool(ADAPTER_MARK.search(name))
        adapter += tensor.numel() if is_adapter else 0
        fusion += tensor.numel() if FUSION_MARK in name else 0
        layer_norms += tensor.numel() if not is_adapter and LAYER_NORM_MARK.search(name) else 0
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else getattr(cfg, "model", None)
    train_base = bool(getattr(model_cfg, "adapter_train_base", False) if model_cfg is not None else False)
    fused = bool(getattr(model_cfg, "adapter_fusion_keys", "") if model_cfg is not None else "")
    trained_norms = bool(getattr(model_cfg, "train_layer_norms", False) if model_cfg is not None else False)
    if fused:
        trainable = fusion
    elif adapter and not train_base:
        trainable = adapter + (layer_norms if trained_norms else 0)
    else:
        trainable = total
    return {"total_parameters": total, "trainable_parameters": trainable, "adapter_parameters": adapter}


def build_spec(checkpoints: Path, generate: Path, checkpoint_of=None, folders=None) -> dict:
    """``{systems, meta}`` for the ``<generate>/<system>/`` folders (or the ``folders`` given); each system's
    counts come from ``<checkpoints>/<checkpoint_of(system)>/checkpoint_last.pt`` (default: the system's name)."""
    systems, meta, counts = {}, {}, {}
    for folder in folders if folders is not None else sorted(p for p in generate.iterdir() if p.is_dir()):
        if not list(folder.glob("generate-*.txt")):
            continue
        checkpoint = checkpoints / (checkpoint_of(folder.name) if checkpoint_of else folder.name) / "checkpoint_last.pt"
        if str(checkpoint) not in counts:
            counts[str(checkpoint)] = checkpoint_parameter_counts(checkpoint) if checkpoint.is_file() else {}
        systems[folder.name] = str(folder)
        meta[folder.name] = {"checkpoint": str(checkpoint), **counts[str(checkpoint)]}
    if not systems:
        raise FileNotFoundError(f"no generate-<src>-<tgt>.txt files under {generate}/<system>/")
    return {"systems": systems, "meta": meta}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="studies.nmt_report_spec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=Path, required=True, help="folder of <system>/checkpoint_last.pt")
    parser.add_argument("--generate", type=Path, required=True, help="folder of <system>/generate-<src>-<tgt>.txt")
    parser.add_argument("--output", required=True, type=Path, help="the spec JSON to write")
    args = parser.parse_args(argv)
    try:
        atomic_write_json(args.output, build_spec(args.checkpoints, args.generate))
    except (FileNotFoundError, KeyError) as err:
        print(f"studies.nmt_report_spec: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
