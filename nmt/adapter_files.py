"""Adapter-only files: export a checkpoint's adapters, load adapter directories onto a base.

One ``adapter_core`` directory per adapter key (``adapter_config.json`` +
``adapter_model.safetensors``).  Tensor names are
``{side}.layers.{i}.{name}`` (e.g. ``encoder.layers.0.down.weight``), or with
two adapters per layer (Houlsby placement) ``{side}.layers.{i}.attention.{name}``
and ``{side}.layers.{i}.ffn.{name}`` (``adapter_core.SITE_PREFIX``); the
metadata records the sides, the layers and ``--adapters-by``, and the base
fingerprint (``adapter_core.fingerprint_model``) ties the adapter to the base
it was trained on.  Compacter adapters store their shared A_i once, in the
first layer that holds the key (encoder before decoder); loading shares them
again before copying the tensors in.  A checkpoint trained with
``--train-layer-norms`` is not exported: its adapters need the LayerNorms
trained with them, which are base tensors and not in these files.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable

import torch

from adapter_core import (SITE_PREFIX, AdapterConfig, AdapterFormatError, CompacterAdapter, build_adapter,
                          LEGACY_NAMES, check_shapes, fingerprint_model, load_adapter, publish_directories,
                          read_adapter_config, save_adapter, share_phm_rule)
from adapter_core import check_export_target
from adapter_core.io import CONFIG_NAME, WEIGHTS_NAME

from .config import ADAPTER_MODES, ADAPTER_PLACEMENTS

logger = logging.getLogger(__name__)

SIDES = ("encoder", "decoder")


def adapter_tensors(model, key: str) -> dict[str, torch.Tensor]:
    """All tensors of adapter ``key``, over both sides and every layer that has it."""
    tensors: dict[str, torch.Tensor] = {}
    for side in SIDES:
        for index, site, bank in model.adapter_site_banks(side):
            if key in bank.adapters:
                for name, tensor in bank.adapters[key].state_dict().items():
                    tensors[f"{side}.layers.{index}.{SITE_PREFIX[site]}{name}"] = tensor
    return tensors


def export_adapters(model, out_dir: str | Path, keys: Iterable[str] | None = None) -> list[Path]:
    """Write one directory per adapter key under ``out_dir``; returns their paths.

    A ``DIR/<key>/`` that holds anything but an earlier export of the same key (a user's own files, another
    adapter) is refused before anything is written.  Published together (``adapter_core.publish_directories``): every
    directory is first written into a temporary sibling and only then renamed
    into place, so a failure leaves no partial adapter behind (an existing
    ``out_dir/<key>`` is replaced only once every new one is complete).
    """
    if getattr(model.args, "train_layer_norms", False):
        raise ValueError("this checkpoint was trained with --train-layer-norms: its adapters need the base's "
                         "LayerNorms as trained with them, which adapter-only files do not hold; translate with "
                         "the checkpoint itself")
    available = sorted(set(model.adapter_keys("encoder")) | set(model.adapter_keys("decoder")))
    chosen = list(dict.fromkeys(keys)) if keys else available  # a key named twice is exported once
    unknown = [k for k in chosen if k not in available]
    if unknown:
        raise KeyError(f"no adapter {', '.join(map(repr, unknown))} in the checkpoint; it has: "
                       f"{', '.join(available) or '(none)'}")
    fingerprint = fingerprint_model(model)
    out_dir = Path(out_dir)
    for key in chosen:  # DIR/<key>/ is replaced whole: only when it holds nothing but that adapter's own export
        check_export_target(out_dir / key, key, (CONFIG_NAME, WEIGHTS_NAME), lambda document: "format_version" in document)
    written = publish_directories({out_dir / key: functools.partial(_export_one, model, key, fingerprint=fingerprint)
                                   for key in chosen})
    for key, path in zip(chosen, written):
        logger.info("exported adapter %s to %s", key, path)
    return written


def _export_one(model, key: str, directory: Path, fingerprint: str) -> Path:
    tensors = adapter_tensors(model, key)
    sides = {side: sorted({int(name.split(".")[2]) for name in tensors if name.startswith(side + ".")})
             for side in SIDES}
    config = next(bank.adapters[key].config for side in SIDES
                  for _, _, bank in model.adapter_site_banks(side) if key in bank.adapters)
    metadata = {"host": "nmt/fairseq", "adapters_by": model.args.adapters_by,
                "sides": [s for s in SIDES if sides[s]], "encoder_layers": sides["encoder"],
                "decoder_layers": sides["decoder"], "key": key}
    return save_adapter(directory, tensors, config, fingerprint, name=key, metadata=metadata)


def load_adapter_dirs(model, directories: Iterable[str | Path], force: bool = False,
                      only_existing: bool = False) -> list[str]:
    """Load adapter directories into ``model`` (after its checkpoint); returns the keys loaded.

    Refuses an adapter trained on another base unless ``force``; tensors that
    do not fit raise an error naming both shapes.  An adapter whose key the
    model lacks is added to every layer its metadata names; with
    ``only_existing`` (lang+pair training: the language adapters the run's
    pairs use) it goes only where the model has that key, and a key the model
    lacks everywhere is left out, so the run saves what its options rebuild.  Every check runs
    before the model is changed (new modules are first built on the ``meta``
    device), and every problem with the files is an ``AdapterFormatError`` or
    a ``FingerprintMismatchError`` naming the directory.
    """
    fingerprint = fingerprint_model(model)
    loaded = []
    sources: dict[str, str] = {}
    for directory in directories:
        saved = load_adapter(directory, expected_fingerprint=fingerprint, force=force)
        key = saved.name or Path(directory).name
        if not key or "." in key:
            raise AdapterFormatError(f"{directory}: adapter name {key!r} must be non-empty and contain no '.'")
        if key in sources:
            raise AdapterFormatError(f"{directory}: adapter {key!r} is also given by {sources[key]}; "
                                     "pass one directory per adapter key")
        sources[key] = str(directory)
        expected: dict[str, torch.Tensor] = {}
        plan = []  # (bank, layer prefix, existing module or None)
        references = []
        for side in SIDES:
            banks: dict[int, dict] = {}
            for index, site, bank in model.adapter_site_banks(side):
                banks.setdefault(index, {})[site] = bank
            for index in _layer_list(saved.metadata, side, directory):
                if index not in banks:
                    raise AdapterFormatError(f"{directory}: adapter {key!r} has {side} layer {index}, but the model "
                                             f"carries {side} adapters on layers {sorted(banks) or 'none'}")
                for site in saved.config.sites:  # in forward order, as the model shares Compacter's A
                    if site not in banks[index]:
                        raise AdapterFormatError(
                            f"{directory}: adapter {key!r} is placed {saved.config.placement!r} (sites "
                            f"{', '.join(s.value for s in saved.config.sites)}), but the model's {side} layers carry "
                            f"adapters at {', '.join(s.value for s in banks[index])} (--adapter-placement)")
                    bank = banks[index][site]
                    if only_existing and key not in bank.adapters:
                        continue
                    existing = bank.adapters[key] if key in bank.adapters else None
                    if existing is None or existing.config != saved.config:
                        existing = None  # a new key, or another config (e.g. --adapter-dim): the directory wins
                    reference = existing if existing is not None else _shape_only_module(bank, key, saved.config,
                                                                                          directory)
                    plan.append((bank, f"{side}.layers.{index}.{SITE_PREFIX[site]}", existing))
                    references.append(reference)
        if only_existing and not plan:
            logger.info("left out adapter %s from %s: this model has no %s adapters", key, directory, key)
            continue
        _share_compacter_rules(references)
        for (_, prefix, _), reference in zip(plan, references):
            for name, tensor in reference.state_dict().items():
                expected[prefix + name] = tensor
        tensors = saved.tensors
        if only_existing:  # the layers left out above keep their tensors out too
            tensors = {n: t for n, t in tensors.items() if any(n.startswith(prefix) for _, prefix, _ in plan)}
        check_shapes(tensors, expected, where=str(directory))
        for name, tensor in tensors.items():
            if not torch.is_floating_point(tensor):
                raise AdapterFormatError(f"{directory}: tensor {name} has dtype {tensor.dtype}; "
                                         "adapter tensors are floating point")
        device = next(model.parameters()).device
        modules = [module if module is not None else _new_module(bank, key, saved.config) for bank, _, module in plan]
        _share_compacter_rules(modules)
        for (_, prefix, _), module in zip(plan, modules):
            state = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
            module.load_state_dict(state, strict=True)
            module.to(device)
        loaded.append(key)
        logger.info("loaded adapter %s from %s", key, directory)
    return loaded


def read_adapters_by(directory: str | Path) -> str:
    """The ``--adapters-by`` mode an adapter directory's metadata records ("pair" when absent), type-checked."""
    metadata = read_adapter_config(directory).get("metadata") or {}
    where = Path(directory) / "adapter_config.json"
    if not isinstance(metadata, dict):
        raise AdapterFormatError(f"{where}: 'metadata' must be a JSON object, got {type(metadata).__name__}; "
                                 "re-export the adapter with nmt export")
    mode = metadata.get("adapters_by", "pair")
    if not isinstance(mode, str) or mode not in ADAPTER_MODES:
        raise AdapterFormatError(f"{where}: metadata 'adapters_by' must be one of {', '.join(ADAPTER_MODES)}, "
                                 f"got {mode!r:.80}; re-export the adapter with nmt export")
    return mode


def read_placement(directories: Iterable[str | Path]) -> str:
    """The --adapter-placement that hosts the adapters of ``directories`` ("output" when they say none);
    directories placed differently are refused."""
    found = set()
    for directory in directories:
        config = read_adapter_config(directory).get("config")
        placement = config.get("placement", "output") if isinstance(config, dict) else "output"
        placement = LEGACY_NAMES.get(placement, placement)
        found.add(placement if placement in ADAPTER_PLACEMENTS else "output")  # others are refused on loading
    if len(found) > 1:
        raise ValueError(f"--adapter-dirs mixes adapters placed {' and '.join(sorted(found))}")
    return found.pop() if found else "output"


def build_base_with_adapter_layers(model_args, directories: Iterable[str | Path]) -> None:
    """Make the model options of a plain ``transformer`` checkpoint build ``adapter_transformer``.

    The result has the base's keys plus empty adapter banks in every layer, and
    routes by the ``--adapters-by`` mode and places them by the placement of ``directories`` (the adapters
    that ``load_adapter_dirs`` will add); directories made with different modes or placements are refused.
    """
    directories = list(directories)
    modes = {read_adapters_by(d) for d in directories}
    if len(modes) > 1:
        raise ValueError(f"--adapter-dirs mixes adapters made --adapters-by {' and '.join(sorted(modes))}")
    model_args.arch = model_args._name = "adapter_transformer"
    model_args.adapters_by = modes.pop() if modes else "pair"
    model_args.adapter_placement = read_placement(directories)
    model_args.adapter_encoder_keys = model_args.adapter_decoder_keys = "none"  # only what the directories bring


def _share_compacter_rules(modules) -> None:
    """Compacter: the layers of one key share the first one's A_i, as in the model they were exported from."""
    share_phm_rule([m for m in modules if isinstance(m, CompacterAdapter)])


def _layer_list(metadata: dict, side: str, directory) -> list[int]:
    """The ``{side}_layers`` metadata entry: a JSON list of layer indices."""
    layers = metadata.get(f"{side}_layers", [])
    if not isinstance(layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in layers):
        raise AdapterFormatError(f"{directory}: metadata '{side}_layers' must be a list of layer indices, "
                                 f"got {layers!r:.80}")
    return layers


def _shape_only_module(bank, key: str, config: AdapterConfig, directory):
    """The module ``config`` describes, on the meta device (shapes only, no memory), or a clear error."""
    if config.hidden_dim != bank.config.hidden_dim:
        raise AdapterFormatError(f"{directory}: adapter {key!r} has hidden size {config.hidden_dim}, "
                                 f"the model's layers {bank.config.hidden_dim}")
    try:
        with torch.device("meta"):
            return build_adapter(config)
    except (ValueError, TypeError, KeyError, OverflowError, RuntimeError) as err:
        raise AdapterFormatError(f"{directory}: its adapter config cannot be built: {err}") from None


def _new_module(bank, key: str, config: AdapterConfig):
    """Add adapter ``key`` to ``bank`` (replacing one of the same name), frozen until training asks otherwise."""
    if key in bank.adapters:
        del bank.adapters[key]
    module = bank.add(key, config)
    module.requires_grad_(False)
    return module
