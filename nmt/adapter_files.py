"""Adapter-only files: export a checkpoint's adapters, load adapter directories onto a base.

One ``adapter_core`` directory per adapter key (``adapter_config.json`` +
``adapter_model.safetensors``).  Tensor names are
``{side}.layers.{i}.{name}`` (e.g. ``encoder.layers.0.down.weight``), the
metadata records the sides, the layers and ``--adapters-by``, and the base
fingerprint (``adapter_core.fingerprint_model``) ties the adapter to the base
it was trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import torch

from adapter_core import (AdapterConfig, AdapterFormatError, check_shapes, fingerprint_model, load_adapter,
                          save_adapter)

logger = logging.getLogger(__name__)

SIDES = ("encoder", "decoder")


def adapter_tensors(model, key: str) -> dict[str, torch.Tensor]:
    """All tensors of adapter ``key``, over both sides and every layer that has it."""
    tensors: dict[str, torch.Tensor] = {}
    for side in SIDES:
        for index, bank in model.adapter_banks(side):
            if key in bank.adapters:
                for name, tensor in bank.adapters[key].state_dict().items():
                    tensors[f"{side}.layers.{index}.{name}"] = tensor
    return tensors


def export_adapters(model, out_dir: str | Path, keys: Iterable[str] | None = None) -> list[Path]:
    """Write one directory per adapter key under ``out_dir``; returns their paths."""
    available = sorted(set(model.adapter_keys("encoder")) | set(model.adapter_keys("decoder")))
    chosen = list(keys) if keys else available
    unknown = [k for k in chosen if k not in available]
    if unknown:
        raise KeyError(f"no adapter {', '.join(map(repr, unknown))} in the checkpoint; it has: {', '.join(available)}")
    fingerprint = fingerprint_model(model)
    written = []
    for key in chosen:
        tensors = adapter_tensors(model, key)
        sides = {side: sorted(int(name.split(".")[2]) for name in tensors
                              if name.startswith(side + ".") and name.endswith("down.weight")) for side in SIDES}
        config = next(bank.adapters[key].config for side in SIDES
                      for _, bank in model.adapter_banks(side) if key in bank.adapters)
        metadata = {"host": "nmt/fairseq", "adapters_by": model.args.adapters_by,
                    "sides": [s for s in SIDES if sides[s]], "encoder_layers": sides["encoder"],
                    "decoder_layers": sides["decoder"], "key": key}
        written.append(save_adapter(Path(out_dir) / key, tensors, config, fingerprint, name=key, metadata=metadata))
        logger.info("exported adapter %s (%d tensors) to %s", key, len(tensors), written[-1])
    return written


def load_adapter_dirs(model, directories: Iterable[str | Path], force: bool = False) -> list[str]:
    """Load adapter directories into ``model`` (after its checkpoint); returns the keys loaded.

    Refuses an adapter trained on another base unless ``force``; tensors that
    do not fit raise an error naming both shapes.  An adapter whose key the
    model lacks is added to every layer its metadata names.
    """
    fingerprint = fingerprint_model(model)
    loaded = []
    for directory in directories:
        saved = load_adapter(directory, expected_fingerprint=fingerprint, force=force)
        key = saved.name or Path(directory).name
        expected: dict[str, torch.Tensor] = {}
        targets = {}
        for side in SIDES:
            banks = dict(model.adapter_banks(side))
            for index in saved.metadata.get(f"{side}_layers", []):
                if index not in banks:
                    raise AdapterFormatError(f"{directory}: adapter {key!r} has {side} layer {index}, but the model "
                                             f"carries {side} adapters on layers {sorted(banks) or 'none'}")
                bank = banks[index]
                existing = bank.adapters[key] if key in bank.adapters else None
                if existing is not None and existing.config == saved.config:
                    module = existing
                else:  # a new key, or one whose saved config (e.g. --adapter-dim) differs: the directory wins
                    module = _new_module(bank, key, saved.config)
                targets[(side, index)] = module
                for name, tensor in module.state_dict().items():
                    expected[f"{side}.layers.{index}.{name}"] = tensor
        check_shapes(saved.tensors, expected, where=str(directory))
        for (side, index), module in targets.items():
            prefix = f"{side}.layers.{index}."
            state = {name[len(prefix):]: t for name, t in saved.tensors.items() if name.startswith(prefix)}
            module.load_state_dict(state, strict=True)
            module.to(next(model.parameters()).device)
        loaded.append(key)
        logger.info("loaded adapter %s from %s", key, directory)
    return loaded


def _new_module(bank, key: str, config: AdapterConfig):
    """Add adapter ``key`` to ``bank``; a hidden size that does not fit names both sizes."""
    if config.hidden_dim != bank.config.hidden_dim:
        raise AdapterFormatError(f"adapter {key!r} has hidden size {config.hidden_dim}, "
                                 f"the model's layers {bank.config.hidden_dim}")
    if key in bank.adapters:
        del bank.adapters[key]
    module = bank.add(key, config)
    module.requires_grad_(False)
    return module
