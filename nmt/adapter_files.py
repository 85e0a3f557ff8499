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

AdapterFusion layers (``--adapter-fusion-keys``) are exported as ``fusion-<name>``
directories in the same format (``adapter_core.save_fusion``: metadata
``fusion_of`` lists the fused adapters; tensors ``{side}.layers.{i}.{param}``).
Loading goes through ``adapter_core.load_adapter_into``, the routine the
transformers host uses too; ``FairseqAdapterSlots`` says where each tensor goes.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterable

import torch

from adapter_core import (SITE_PREFIX, AdapterConfig, AdapterFormatError, AdapterFusionLayer, CompacterAdapter,
                          LEGACY_NAMES, Site, build_adapter, check_export_target, fingerprint_model,
                          is_fusion_directory, load_adapter, load_fusion, publish_directories, read_adapter_config,
                          save_adapter, save_fusion, share_phm_rule)
from adapter_core.io import CONFIG_NAME, FUSION_OF, WEIGHTS_NAME
from adapter_core.loading import LoadPlan, check_adapter_name, load_adapter_into

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


def fusion_tensors(model, name: str) -> dict[str, torch.Tensor]:
    """All tensors of AdapterFusion ``name``, over both sides and every layer that has it."""
    return {f"{side}.layers.{index}.{SITE_PREFIX[Site.LAYER]}{param}": tensor
            for side in SIDES for index, bank in model.adapter_banks(side) if name in bank.fusions
            for param, tensor in bank.fusions[name].state_dict().items()}


def fusion_directory_name(name: str) -> str:
    """The folder ``export_adapters`` writes fusion ``name`` to (a fusion may share its name with an adapter)."""
    return f"fusion-{name}"


def export_adapters(model, out_dir: str | Path, keys: Iterable[str] | None = None) -> list[Path]:
    """Write one directory per adapter key under ``out_dir``, and one per AdapterFusion (``fusion-<name>``, in the
    same format, ``adapter_core.save_fusion``); returns their paths.

    ``keys`` chooses adapters and fusions by name (default: all); a chosen fusion brings the adapters it fuses,
    which it cannot run without.  A ``DIR/<key>/`` that holds anything but an earlier export of the same key (a
    user's own files, another adapter) is refused before anything is written.  Published together
    (``adapter_core.publish_directories``): every directory is first written into a temporary sibling and only then
    renamed into place, so a failure leaves no partial adapter behind (an existing ``out_dir/<key>`` is replaced
    only once every new one is complete).
    """
    if getattr(model.args, "train_layer_norms", False):
        raise ValueError("this checkpoint was trained with --train-layer-norms: its adapters need the base's "
                         "LayerNorms as trained with them, which adapter-only files do not hold; translate with "
                         "the checkpoint itself")
    fusions = {name: bank.fusion_sources[name] for side in SIDES for _, bank in model.adapter_banks(side)
               for name in bank.fusions}
    available = sorted({key for side in SIDES for _, _, bank in model.adapter_site_banks(side) for key in bank.adapters})
    chosen = list(dict.fromkeys(keys)) if keys else available + sorted(fusions)  # a key named twice is exported once
    unknown = [k for k in chosen if k not in available and k not in fusions]
    if unknown:
        raise KeyError(f"no adapter {', '.join(map(repr, unknown))} in the checkpoint; it has: "
                       f"{', '.join(available + [f'{f} (fusion)' for f in sorted(fusions)]) or '(none)'}")
    chosen_fusions = [k for k in chosen if k in fusions]
    adapters = list(dict.fromkeys([k for k in chosen if k in available] + [a for f in chosen_fusions for a in fusions[f]]))
    fingerprint = fingerprint_model(model)
    out_dir = Path(out_dir)
    builds = {}
    for key in adapters:  # DIR/<key>/ is replaced whole: only when it holds nothing but that adapter's own export
        check_export_target(out_dir / key, key, (CONFIG_NAME, WEIGHTS_NAME), lambda document: "format_version" in document)
        builds[out_dir / key] = functools.partial(_export_one, model, key, fingerprint=fingerprint)
    for name in chosen_fusions:
        folder = fusion_directory_name(name)
        check_export_target(out_dir / folder, name, (CONFIG_NAME, WEIGHTS_NAME),
                            lambda document: "format_version" in document)
        builds[out_dir / folder] = functools.partial(_export_fusion, model, name, fingerprint=fingerprint)
    written = publish_directories(builds)
    for path in written:
        logger.info("exported %s", path)
    return written


def _export_metadata(model, key: str, tensors: dict[str, torch.Tensor]) -> dict:
    sides = {side: sorted({int(name.split(".")[2]) for name in tensors if name.startswith(side + ".")})
             for side in SIDES}
    return {"host": "nmt/fairseq", "adapters_by": model.args.adapters_by, "sides": [s for s in SIDES if sides[s]],
            "encoder_layers": sides["encoder"], "decoder_layers": sides["decoder"], "key": key}


def _export_fusion(model, name: str, directory: Path, fingerprint: str) -> Path:
    tensors = fusion_tensors(model, name)
    _, bank = next((i, bank) for side in SIDES for i, bank in model.adapter_banks(side) if name in bank.fusions)
    return save_fusion(directory, tensors, bank.fusions[name].config, bank.fusion_sources[name], fingerprint, name,
                       metadata=_export_metadata(model, name, tensors))


def _export_one(model, key: str, directory: Path, fingerprint: str) -> Path:
    tensors = adapter_tensors(model, key)
    config = next(bank.adapters[key].config for side in SIDES
                  for _, _, bank in model.adapter_site_banks(side) if key in bank.adapters)
    return save_adapter(directory, tensors, config, fingerprint, name=key, metadata=_export_metadata(model, key, tensors))


def load_adapter_dirs(model, directories: Iterable[str | Path], force: bool = False,
                      only_existing: bool = False) -> list[str]:
    """Load adapter directories, and AdapterFusion directories over them, into ``model`` (after its checkpoint);
    returns the keys loaded.

    Each goes through ``adapter_core.load_adapter_into`` (the routine xling uses too): refused when trained on
    another base unless ``force``; tensors that do not fit raise an error naming both shapes.  An adapter whose
    key the model lacks is added to every layer its metadata names; with ``only_existing`` (lang+pair training:
    the language adapters the run's pairs use) it goes only where the model has that key, and a key the model
    lacks everywhere is left out, so the run saves what its options rebuild.  Fusion directories
    (``export_adapters`` writes them as ``fusion-<name>``) load after every adapter, whatever their order.  Every
    check runs before the model is changed (new modules are first built on the ``meta`` device), and every problem
    with the files is an ``AdapterFormatError`` or a ``FingerprintMismatchError`` naming the directory.
    """
    slots = FairseqAdapterSlots(model, only_existing)
    directories = sorted(directories, key=is_fusion_directory)  # adapters first: fusions need what they fuse
    loaded, sources = [], {}
    for directory in directories:
        fusion = is_fusion_directory(directory)  # a fusion may share its key with an adapter
        saved = (load_fusion if fusion else load_adapter)(directory, expected_fingerprint=slots.base_fingerprint(),
                                                           force=force)
        key = check_adapter_name(saved.name or Path(directory).name, directory)
        what = "fusion" if fusion else "adapter"
        if (what, key) in sources:
            raise AdapterFormatError(f"{directory}: {what} {key!r} is also given by {sources[what, key]}; "
                                     f"pass one directory per {what} key")
        sources[what, key] = str(directory)
        if load_adapter_into(slots, directory, key, force=force, saved=saved) is None:
            logger.info("left out adapter %s from %s: this model has no %s adapters", key, directory, key)
            continue
        loaded.append(key)
        logger.info("loaded adapter %s from %s", key, directory)
    return loaded


class FairseqAdapterSlots:
    """``adapter_core.loading.AdapterSlots`` for ``adapter_transformer``: an adapter goes to the (side, layer,
    site) banks its metadata names; a fusion to the banks of the layers it was exported from."""

    def __init__(self, model, only_existing: bool = False):
        self.model = model
        self.only_existing = only_existing
        self._fingerprint = fingerprint_model(model)

    def base_fingerprint(self) -> str:
        return self._fingerprint

    def _banks(self, side: str) -> dict[int, dict]:
        banks: dict[int, dict] = {}
        for index, site, bank in self.model.adapter_site_banks(side):
            banks.setdefault(index, {})[site] = bank
        return banks

    def plan_adapter(self, key: str, saved, directory) -> LoadPlan | None:
        plan = []  # (bank, tensor-name prefix, existing module or None)
        references = []
        for side in SIDES:
            banks = self._banks(side)
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
                    if self.only_existing and key not in bank.adapters:
                        continue
                    existing = bank.adapters[key] if key in bank.adapters else None
                    if existing is None or existing.config != saved.config:
                        existing = None  # a new key, or another config (e.g. --adapter-dim): the directory wins
                    reference = existing if existing is not None else _shape_only_module(bank, key, saved.config,
                                                                                          directory)
                    plan.append((bank, f"{side}.layers.{index}.{SITE_PREFIX[site]}", existing))
                    references.append(reference)
        if self.only_existing and not plan:
            return None
        _share_compacter_rules(references)
        prefixes = [prefix for _, prefix, _ in plan]
        expected = {prefix + name: tensor for prefix, reference in zip(prefixes, references)
                    for name, tensor in reference.state_dict().items()}

        def install(tensors) -> None:
            device = next(self.model.parameters()).device
            modules = [module if module is not None else _new_module(bank, key, saved.config)
                       for bank, _, module in plan]
            _share_compacter_rules(modules)
            for prefix, module in zip(prefixes, modules):
                module.load_state_dict({n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)},
                                       strict=True)
                module.to(device)

        def select(tensors):  # with only_existing, the layers left out above keep their tensors out too
            return {n: t for n, t in tensors.items() if any(n.startswith(p) for p in prefixes)}
        return LoadPlan(expected, install, select if self.only_existing else None)

    def plan_fusion(self, name: str, saved, directory) -> LoadPlan:
        over = tuple(saved.metadata[FUSION_OF])
        plan = []  # (bank, tensor-name prefix)
        for side in SIDES:
            banks = self._banks(side)
            for index in _layer_list(saved.metadata, side, directory):
                bank = banks.get(index, {}).get(Site.LAYER)
                if bank is None:
                    raise AdapterFormatError(f"{directory}: fusion {name!r} has {side} layer {index}, but the model "
                                             f"carries no adapters at the output of that layer")
                missing = [key for key in over if key not in bank.adapters]
                if missing:
                    raise AdapterFormatError(f"{directory}: fuses {', '.join(missing)}, which the model's {side} "
                                             f"layer {index} does not hold; load those adapters too")
                if saved.config.hidden_dim != bank.config.hidden_dim:
                    raise AdapterFormatError(f"{directory}: fusion {name!r} has hidden size {saved.config.hidden_dim}, "
                                             f"the model's layers {bank.config.hidden_dim}")
                plan.append((bank, f"{side}.layers.{index}.{SITE_PREFIX[Site.LAYER]}"))
        with torch.device("meta"):
            reference = AdapterFusionLayer(saved.config)
        expected = {prefix + n: t for _, prefix in plan for n, t in reference.state_dict().items()}

        def install(tensors) -> None:
            device = next(self.model.parameters()).device
            for bank, prefix in plan:
                if name in bank.fusions:  # the checkpoint's own fusion of that name: the directory wins
                    del bank.fusions[name]
                    bank.fusion_sources.pop(name, None)
                layer = bank.add_fusion(name, over, saved.config)
                layer.load_state_dict({n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)},
                                      strict=True)
                layer.requires_grad_(False)
                layer.to(device)
        return LoadPlan(expected, install)


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
