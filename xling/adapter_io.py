"""Saving and loading MAD-X adapters: our safetensors format, and AdapterHub ``save_adapter`` directories.

Our format is adapter_core's (``adapter_config.json`` + ``adapter_model.safetensors``,
with the base fingerprint).  Tensors are keyed ``layers.{i}.down.weight`` ...
(Houlsby placement: ``layers.{i}.attention.down.weight``, ``layers.{i}.ffn.down.weight``)
and ``invertible.F.0.weight`` ...; the metadata records the role, the layers
that carry the adapter and the invertible adapter's config.  A task adapter
trained with the encoder's LayerNorms (Houlsby et al. 2019) keeps them beside
it in ``layer_norms.safetensors`` (``save_layer_norms``/``load_layer_norms``):
they are base tensors, so the adapter's fingerprint stays that of the base as
loaded.

AdapterHub (Pfeiffer et al. 2020, "AdapterHub: A Framework for Adapting
Transformers") writes ``adapter_config.json`` and a pickled
``pytorch_adapter.bin``; we read the latter with ``torch.load(weights_only=True)``,
which unpickles tensors only.  Supported: ``seq_bn``/``pfeiffer`` and
``seq_bn_inv``/``pfeiffer+inv`` (NICE).  An AdapterHub adapter's role comes
from its config: AdapterHub's ``type`` field (``text_lang``/``text_task``),
else a saved prediction head (task), else a NICE invertible adapter
(language), else the role the caller expects.  Writing AdapterHub's format
is ``xling.adapterhub``.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch

from adapter_core import (AdapterConfig, AdapterFormatError, Fuse, check_shapes, is_fusion_directory,
                          load_side_tensors, madx_invertible, madx_language, save_adapter, save_side_tensors)
from adapter_core.io import FUSION_OF, describe_torch_load_error
from adapter_core.loading import LoadPlan, copy_tensors, load_adapter_into

from .attach import TransformersHost

ADAPTERHUB_WEIGHTS = "pytorch_adapter.bin"
#: The encoder's LayerNorms, trained with a task adapter (``--train-layer-norms``), keyed relative to the encoder.
LAYER_NORMS = "layer_norms.safetensors"
ADAPTERHUB_HEAD_CONFIG = "head_config.json"
_ROLES_OF_TYPES = {"text_lang": "language", "text_task": "task"}


def refused_pickle_line(err: BaseException, path) -> str:
    """One line for an AdapterHub ``.bin`` that torch's weights-only loader refuses or cannot read."""
    return describe_torch_load_error(err, path, "AdapterHub's files hold (tensors keyed by name)",
                                     "an adapter saved by AdapterHub's save_adapter from a source you trust")


def save_madx_adapter(host: TransformersHost, name: str, directory: str | Path, metadata: dict | None = None) -> Path:
    """Write adapter ``name`` (and its invertible adapter) in adapter_core's safetensors format."""
    info = host.adapters[name]
    meta = {"role": info.role, "layers": info.layers, "num_layers": len(host.outputs),
            "invertible": info.invertible.to_dict() if info.invertible else None,
            "model_type": getattr(getattr(host.model, "config", None), "model_type", "")}
    meta.update(metadata or {})
    return save_adapter(directory, host.adapter_tensors(name), info.config, host.base_fingerprint(), name=name, metadata=meta)


def _layer_norm_params(host: TransformersHost) -> dict[str, torch.Tensor]:
    """The encoder's LayerNorm parameters keyed without the base model's prefix (``encoder.layer.0...``)."""
    params = dict(host.model.named_parameters())
    return {n[len(host.base_prefix):]: params[n] for n in host.layer_norm_parameter_names()}


def save_layer_norms(host: TransformersHost, directory: str | Path) -> Path:
    """Write the encoder's LayerNorms (trained beside a task adapter) as ``LAYER_NORMS`` in ``directory``."""
    return save_side_tensors(directory, LAYER_NORMS, _layer_norm_params(host))


def load_layer_norms(host: TransformersHost, directory: str | Path) -> None:
    """Copy ``directory``'s ``LAYER_NORMS`` into the encoder, after pinning the base fingerprint it replaces."""
    expected = _layer_norm_params(host)
    tensors = load_side_tensors(directory, LAYER_NORMS, expected, "LayerNorms of a task adapter trained with them")
    host.pin_base_fingerprint()
    with torch.no_grad():
        for key, param in expected.items():
            param.copy_(tensors[key].to(param.dtype))


def _check_role(role: str, expected: str | None, where: Path | str) -> None:
    if expected is not None and role != expected:
        raise AdapterFormatError(f"{where}: this is a {role} adapter, given where a {expected} adapter is expected")


class TransformersAdapterSlots:
    """``adapter_core.loading.AdapterSlots`` for a ``TransformersHost``: an adapter goes to the layers its metadata
    names (all by default), with its role and invertible adapter; a fusion to every layer."""

    def __init__(self, host: TransformersHost, role: str | None = None):
        self.host = host
        self.role = role  # the role the caller expects ("language"/"task"), or None for either

    def base_fingerprint(self) -> str:
        return self.host.base_fingerprint()

    def plan_adapter(self, name: str, saved, directory: Path) -> LoadPlan:
        host, where, meta = self.host, directory / "adapter_config.json", saved.metadata
        num_layers = meta.get("num_layers", len(host.outputs))
        if num_layers != len(host.outputs):
            raise AdapterFormatError(f"{where}: the adapter was made for {num_layers!r} layers, the model has "
                                     f"{len(host.outputs)}")
        if saved.config.hidden_dim != host.hidden_size:
            raise AdapterFormatError(f"{where}: adapter hidden size {saved.config.hidden_dim!r}, model hidden size "
                                     f"{host.hidden_size}")
        role = meta.get("role", "language")
        if role not in ("language", "task"):
            raise AdapterFormatError(f"{where}: metadata.role must be 'language' or 'task', got {role!r}")
        _check_role(role, self.role, where)
        layers = meta.get("layers")
        if layers is not None and (not isinstance(layers, list) or len(set(map(repr, layers))) != len(layers)
                                   or not all(type(i) is int and 0 <= i < len(host.outputs) for i in layers)):
            raise AdapterFormatError(f"{where}: metadata.layers must list distinct layer indices "
                                     f"0..{len(host.outputs) - 1}, got {layers!r}")
        try:  # built now, to learn the tensors it holds; removed again if a later check fails
            invertible = AdapterConfig.from_dict(meta["invertible"]) if meta.get("invertible") else None
            host.add_adapter(name, role=role, config=saved.config, invertible=invertible or False, layers=layers)
        except (TypeError, ValueError, AttributeError) as err:
            raise AdapterFormatError(f"{where}: cannot build adapter {name!r}: {err}") from None
        expected = host.adapter_tensors(name)
        return LoadPlan(expected, lambda tensors: copy_tensors(expected, tensors),
                        rollback=lambda: host.delete_adapter(name))

    def plan_fusion(self, name: str, saved, directory: Path) -> LoadPlan:
        host = self.host
        missing = [n for n in saved.metadata[FUSION_OF] if n not in host.adapters]
        if missing:
            raise AdapterFormatError(f"{directory}: fuses {', '.join(missing)}, which the model does not hold; load "
                                     "those adapters first")
        try:
            host.add_fusion(Fuse(*saved.metadata[FUSION_OF], name=name), saved.config)
        except ValueError as err:
            raise AdapterFormatError(f"{directory}: cannot add fusion {name!r}: {err}") from None
        expected = host.fusion_tensors(name)
        return LoadPlan(expected, lambda tensors: copy_tensors(expected, tensors),
                        rollback=lambda: host.delete_fusion(name))


def load_madx_adapter(host: TransformersHost, directory: str | Path, name: str | None = None, force: bool = False,
                      role: str | None = None) -> str:
    """Load one of our adapter directories (or an AdapterHub one) into ``host``; returns the adapter's name.

    Ours go through ``adapter_core.load_adapter_into`` (the routine nmt uses too).  ``role`` ("language" or
    "task"), if given, is the role the caller expects: an adapter whose config says otherwise is refused; an
    AdapterHub adapter whose config says nothing takes it.
    """
    directory = Path(directory)
    if (directory / ADAPTERHUB_WEIGHTS).is_file():
        return load_adapterhub_adapter(host, directory, name, role=role)
    if directory.is_dir() and not (directory / "adapter_config.json").is_file():
        raise AdapterFormatError(f"{directory}: holds no adapter: expected adapter_config.json with "
                                 f"adapter_model.safetensors (ours) or with {ADAPTERHUB_WEIGHTS} (AdapterHub)")
    if is_fusion_directory(directory):
        raise AdapterFormatError(f"{directory}: holds AdapterFusion layers, not an adapter; load the adapters it "
                                 "fuses, then the fusion (xling.fusion.load_fusion, AdapterModel.load_adapter)")
    return load_adapter_into(TransformersAdapterSlots(host, role), directory, name, force=force)


# -- AdapterHub ---------------------------------------------------------------------------

_PRESETS = {"pfeiffer": False, "seq_bn": False, "pfeiffer+inv": True, "seq_bn_inv": True}
# The options our hooks reproduce; AdapterHub configs that differ are refused.
_REQUIRED = {"original_ln_before": True, "original_ln_after": True, "residual_before_ln": True,
             "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False, "mh_adapter": False,
             "output_adapter": True, "is_parallel": False, "use_gating": False, "phm_layer": False, "scaling": 1.0}
_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu", "swish": "swish", "silu": "silu", "tanh": "tanh"}
_LAYER_KEY = re.compile(r"(?:^|\.)layer\.(\d+)\.output\.adapters\.([^.]+)\.adapter_(down\.0|up)\.(weight|bias)$")
_INV_KEY = re.compile(r"(?:^|\.)invertible_adapters\.([^.]+)\.([FG])\.(0|2)\.(weight|bias)$")


def _adapterhub_config(directory: Path) -> tuple[dict, str, int, str | None]:
    path = directory / "adapter_config.json"
    if not path.is_file():
        raise AdapterFormatError(f"{path}: missing; an AdapterHub adapter directory holds adapter_config.json and {ADAPTERHUB_WEIGHTS}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AdapterFormatError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise AdapterFormatError(f"{path}: expected a JSON object")
    for key in ("config", "hidden_size"):
        if key not in document:
            raise AdapterFormatError(f"{path}: missing key {key!r}")
    config, hidden = document["config"], document["hidden_size"]
    if isinstance(config, str):  # a preset name, as old AdapterHub versions wrote
        if config not in _PRESETS:
            raise AdapterFormatError(f"{path}: unsupported AdapterHub config {config!r}; supported: {', '.join(_PRESETS)}")
        config = {"reduction_factor": 16, "non_linearity": "relu",
                  "inv_adapter": "nice" if _PRESETS[config] else None, "inv_adapter_reduction_factor": 2}
    if not isinstance(config, dict):
        raise AdapterFormatError(f"{path}: 'config' must be a preset name or a JSON object, got {type(config).__name__}")
    if type(hidden) is not int or hidden <= 0:
        raise AdapterFormatError(f"{path}: 'hidden_size' must be a positive integer, got {hidden!r}")
    name = document.get("name", directory.name)
    if not isinstance(name, str):
        raise AdapterFormatError(f"{path}: 'name' must be a string, got {name!r}")
    kind = document.get("type")
    if kind is not None and kind not in _ROLES_OF_TYPES:
        raise AdapterFormatError(f"{path}: 'type' must be one of {', '.join(_ROLES_OF_TYPES)}, got {kind!r}")
    return config, name, hidden, _ROLES_OF_TYPES.get(kind)


def _factor(config: dict, key: str, default: float, hidden: int, path: Path) -> float:
    """A reduction factor that leaves a bottleneck of at least one unit."""
    value = config.get(key, default)
    if type(value) not in (int, float) or not 0 < value <= hidden:
        raise AdapterFormatError(f"{path}: {key} must be a number in (0, {hidden}], got {value!r}")
    return float(value)


def _check_supported(config: dict, path: Path) -> None:
    for key, value in _REQUIRED.items():
        if key in config and config[key] != value:
            raise AdapterFormatError(f"{path}: config key {key!r} is {config[key]!r}; only the MAD-X "
                                     f"seq_bn/seq_bn_inv placement ({key}={value!r}) is supported")
    if not isinstance(config.get("inv_adapter"), (str, type(None))) or config.get("inv_adapter") not in (None, "nice"):
        raise AdapterFormatError(f"{path}: inv_adapter {config['inv_adapter']!r} is not supported (only 'nice')")
    if isinstance(config.get("reduction_factor"), dict):
        raise AdapterFormatError(f"{path}: per-layer reduction factors are not supported")
    if not isinstance(config.get("non_linearity", "relu"), str) or config.get("non_linearity", "relu") not in _ACTIVATIONS:
        raise AdapterFormatError(f"{path}: non_linearity {config.get('non_linearity')!r} is not supported")


def load_adapterhub_adapter(host: TransformersHost, directory: str | Path, name: str | None = None,
                            role: str | None = None) -> str:
    """Load an AdapterHub ``save_adapter`` directory into ``host`` (weights read with ``weights_only=True``).

    The role: AdapterHub's ``type``, else task with a saved head, else language with NICE, else ``role``
    (default language); a ``role`` that contradicts the config is refused.
    """
    directory = Path(directory)
    config, saved_name, hidden, typed_role = _adapterhub_config(directory)
    _check_supported(config, directory / "adapter_config.json")
    if hidden != host.hidden_size:
        raise AdapterFormatError(f"{directory}: AdapterHub adapter for hidden size {hidden}, model hidden size {host.hidden_size}")
    weights = directory / ADAPTERHUB_WEIGHTS
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise AdapterFormatError(refused_pickle_line(err, weights)) from None
    if not isinstance(state, dict):
        raise AdapterFormatError(f"{weights}: expected a dict of tensors")
    tensors: dict[str, torch.Tensor] = {}
    layers: set[int] = set()
    has_inverse = False
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise AdapterFormatError(f"{weights}: expected tensors keyed by name, got {type(value).__name__} at {key!r}")
        if match := _LAYER_KEY.search(key):
            index, _, part, kind = match.groups()
            layers.add(int(index))
            tensors[f"layers.{index}.{'down' if part == 'down.0' else 'up'}.{kind}"] = value
        elif match := _INV_KEY.search(key):
            _, net, part, kind = match.groups()
            has_inverse = True
            tensors[f"invertible.{net}.{part}.{kind}"] = value
        else:
            raise AdapterFormatError(f"{weights}: unexpected tensor {key!r} (only seq_bn output adapters and NICE are supported)")
    if not layers:
        raise AdapterFormatError(f"{weights}: holds no adapter layers")
    if max(layers) >= len(host.outputs):
        raise AdapterFormatError(f"{weights}: adapter for layer {max(layers)}, the model has {len(host.outputs)} layers")
    activation = _ACTIVATIONS[config.get("non_linearity", "relu")]
    config_path = directory / "adapter_config.json"
    rf = _factor(config, "reduction_factor", 16, hidden, config_path)
    ours = madx_language(hidden, reduction_factor=rf).replace(activation=activation, preset="adapterhub_seq_bn")
    invertible = None
    if has_inverse:
        invertible = madx_invertible(hidden, reduction_factor=_factor(config, "inv_adapter_reduction_factor", 2, hidden // 2, config_path))
        invertible = invertible.replace(activation=activation, preset="adapterhub_nice")
    if typed_role is None and (directory / ADAPTERHUB_HEAD_CONFIG).is_file():
        typed_role = "task"
    elif typed_role is None and has_inverse:
        typed_role = "language"
    _check_role(typed_role or role or "language", role, config_path)
    name = name or saved_name
    try:
        host.add_adapter(name, role=typed_role or role or "language", config=ours, invertible=invertible or False, layers=sorted(layers))
    except ValueError as err:
        raise AdapterFormatError(f"{directory}: cannot add adapter {name!r}: {err}") from None
    expected = host.adapter_tensors(name)
    try:
        check_shapes(tensors, expected, str(weights))
    except AdapterFormatError:
        host.delete_adapter(name)  # the model as it was
        raise
    copy_tensors(expected, tensors)
    return name

