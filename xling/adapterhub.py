"""AdapterHub both ways: export our MAD-X adapters to ``model.load_adapter`` directories, and AdapterHub heads.

AdapterHub ``adapters`` (1.x) reads a directory holding ``adapter_config.json``
and a pickled ``pytorch_adapter.bin``, plus, for a task adapter saved from a
``*AdapterModel``, ``head_config.json`` and ``pytorch_model_head.bin``.
``export_adapterhub`` writes exactly that from a live ``TransformersHost``;
``export_adapterhub_dir`` converts a directory written by ``xling train-lang`` /
``xling train-task`` (no model needed).  The mapping:

- bottleneck ``layers.{i}.down`` / ``layers.{i}.up`` ->
  ``encoder.layer.{i}.output.adapters.{name}.adapter_down.0`` / ``.adapter_up``
  (``seq_bn``: Pfeiffer placement after the FFN), layers without the adapter
  -> ``leave_out``;
- NICE ``invertible.{F,G}.{0,2}`` -> ``invertible_adapters.{name}.{F,G}.{0,2}``
  (``seq_bn_inv`` with ``inv_adapter: "nice"``);
- the role -> AdapterHub's own ``type`` field (``text_lang`` / ``text_task``);
- the head of a task adapter -> a flex head (``heads.{name}.{1,4}``): token
  classification (ner, pos) -> ``tagging``, sequence classification ->
  ``classification``, QA -> ``question_answering``, COPA/SIQA ->
  ``multiple_choice``.

Not exported (refused with one line): Compacter++ adapters, adapters with an
input LayerNorm, adapters placed elsewhere than the FFN output (Houlsby's),
task adapters trained with the encoder's LayerNorms, GLOW invertible
adapters, AdapterFusion layers, and an invertible adapter whose activation
differs from its bottleneck's.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from adapter_core import (AdapterConfig, AdapterFormatError, atomic_write_bytes, atomic_write_json, check_export_target,
                          load_adapter, publish_directory)

from .adapter_io import refused_pickle_line
from .attach import TransformersHost

ADAPTERHUB_WEIGHTS = "pytorch_adapter.bin"
ADAPTERHUB_CONFIG = "adapter_config.json"
ADAPTERHUB_HEAD_CONFIG = "head_config.json"
ADAPTERHUB_HEAD_WEIGHTS = "pytorch_model_head.bin"
#: The ``version`` our files claim: the AdapterHub release the export is tested against.
ADAPTERHUB_VERSION = "adapters.1.3.0"
#: AdapterHub's adapter ``type`` field for each of our roles.
ROLE_TYPES = {"language": "text_lang", "task": "text_task"}
#: Our activations under AdapterHub's names (transformers' ACT2FN; "linear" is the identity).
_ACTIVATION_NAMES = {"relu": "relu", "gelu": "gelu", "tanh": "tanh", "swish": "silu", "silu": "silu", "identity": "linear"}
#: The flex-head class each model type's heads load into.
_ADAPTER_MODELS = {"xlm-roberta": "XLMRobertaAdapterModel", "roberta": "RobertaAdapterModel", "bert": "BertAdapterModel"}
#: Our task -> AdapterHub head type; a tagging head is "ner" unless told "pos".
HEAD_TYPES = {"ner": "tagging", "pos": "tagging", "classification": "classification", "qa": "question_answering",
              "copa": "multiple_choice"}
TASK_OF_HEAD = {"tagging": "ner", "classification": "classification", "question_answering": "qa",
                "multiple_choice": "copa"}


class NotExportableError(AdapterFormatError):
    """An adapter (or head) that AdapterHub's ``seq_bn``/``seq_bn_inv`` and flex heads cannot express."""


# -- adapter config and tensors -----------------------------------------------------------------


def _reduction_factor(hidden: int, bottleneck: int) -> float:
    """A factor rf with ``int(hidden // rf) == bottleneck``, as AdapterHub sizes its layers."""
    rf = hidden / bottleneck
    for candidate in (rf, math.nextafter(rf, 0.0), math.nextafter(math.nextafter(rf, 0.0), 0.0)):
        if int(hidden // candidate) == bottleneck:
            return int(candidate) if float(candidate).is_integer() else candidate
    raise NotExportableError(f"no AdapterHub reduction factor gives a bottleneck of {bottleneck} for hidden size {hidden}")


def adapterhub_config(config: AdapterConfig, invertible: AdapterConfig | None, layers: list[int], num_layers: int) -> dict:
    """AdapterHub's ``SeqBnConfig``/``SeqBnInvConfig`` fields for one of our MAD-X adapters."""
    if config.kind != "bottleneck":
        raise NotExportableError(f"a {config.kind!r} adapter has no AdapterHub seq_bn equivalent (only bottleneck adapters "
                                 "are exported)")
    if config.input_layer_norm:
        raise NotExportableError("an adapter with an input LayerNorm has no AdapterHub seq_bn equivalent")
    if config.placement != "pfeiffer":
        raise NotExportableError(f"an adapter placed {config.placement!r} is not exported (only seq_bn, the Pfeiffer "
                                 "placement at the FFN output)")
    activation = _ACTIVATION_NAMES[config.activation]
    out = {"adapter_residual_before_ln": False, "dropout": 0.0, "init_weights": "bert", "inv_adapter": None,
           "inv_adapter_reduction_factor": None, "is_parallel": False, "leave_out": [i for i in range(num_layers) if i not in layers],
           "ln_after": False, "ln_before": False, "mh_adapter": False, "non_linearity": activation,
           "original_ln_after": True, "original_ln_before": True, "output_adapter": True, "phm_layer": False,
           "reduction_factor": _reduction_factor(config.hidden_dim, config.resolved_bottleneck_dim),
           "residual_before_ln": True, "scaling": 1.0, "use_gating": False}
    if invertible is not None:
        if invertible.kind != "nice":
            raise NotExportableError(f"a {invertible.kind!r} invertible adapter is not exported (AdapterHub's GLOW block "
                                     "crashes); only NICE")
        if _ACTIVATION_NAMES[invertible.activation] != activation:
            raise NotExportableError(f"AdapterHub gives the invertible adapter the bottleneck's activation ({activation}), "
                                     f"this one uses {invertible.activation}")
        if config.hidden_dim % 2:
            raise NotExportableError(f"NICE on an odd hidden size ({config.hidden_dim}) splits differently in AdapterHub")
        out.update(inv_adapter="nice", inv_adapter_reduction_factor=_reduction_factor(config.hidden_dim // 2,
                                                                                      invertible.resolved_bottleneck_dim))
    return out


def adapterhub_state(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """Our ``layers.{i}.{down,up}.*`` and ``invertible.*`` keys under AdapterHub's names (of a bare encoder)."""
    out = {}
    for key, value in tensors.items():
        parts = key.split(".")
        if parts[0] == "layers" and parts[2] in ("down", "up") and len(parts) == 4:
            where = "adapter_down.0" if parts[2] == "down" else "adapter_up"
            out[f"encoder.layer.{parts[1]}.output.adapters.{name}.{where}.{parts[3]}"] = value
        elif parts[0] == "invertible":
            out[f"invertible_adapters.{name}.{'.'.join(parts[1:])}"] = value
        else:
            raise NotExportableError(f"tensor {key!r} has no AdapterHub seq_bn/NICE equivalent")
    return {k: out[k].detach().to("cpu", torch.float32).contiguous().clone() for k in sorted(out)}


# -- heads --------------------------------------------------------------------------------------


def _head_keys(task: str, head: dict[str, torch.Tensor]) -> dict[str, str]:
    """Our head tensor names -> the flex head's module index (``1`` or ``4``) plus ``.weight``/``.bias``."""
    names = {k.rsplit(".", 1)[0] for k in head}
    pooler = sorted(n for n in names if n.endswith("pooler.dense"))
    if task in ("ner", "pos") and names == {"classifier"}:
        layers = {"classifier": "1"}
    elif task == "qa" and names == {"qa_outputs"}:
        layers = {"qa_outputs": "1"}
    elif task == "classification" and names == {"classifier.dense", "classifier.out_proj"}:  # XLM-R, RoBERTa
        layers = {"classifier.dense": "1", "classifier.out_proj": "4"}
    elif task in ("classification", "copa") and len(pooler) == 1 and names == {pooler[0], "classifier"}:  # BERT, *ForMultipleChoice
        layers = {pooler[0]: "1", "classifier": "4"}
    else:
        raise NotExportableError(f"the {task!r} head ({', '.join(sorted(names))}) has no AdapterHub flex head equivalent")
    return {k: f"{layers[k.rsplit('.', 1)[0]]}.{k.rsplit('.', 1)[1]}" for k in head}


def adapterhub_head(task: str, head: dict[str, torch.Tensor], labels: list[str], name: str) -> tuple[dict, dict]:
    """(``head_config.json``'s ``config``, the head's tensors under AdapterHub's names) for our task head."""
    if task not in HEAD_TYPES:
        raise NotExportableError(f"task {task!r} has no AdapterHub head type")
    keys = _head_keys(task, head)
    head_type = HEAD_TYPES[task]
    config = {"activation_function": "tanh", "dropout_prob": None, "head_type": head_type,
              "layers": 1 if head_type in ("tagging", "question_answering") else 2}
    if head_type == "multiple_choice":
        config.update(num_choices=len(labels), use_pooler=False)
    elif head_type == "question_answering":
        config.update(num_labels=2, label2id=None)
    else:
        config.update(num_labels=len(labels), label2id={label: i for i, label in enumerate(labels)})
        if head_type == "classification":
            config.update(bias=True, use_pooler=False)
    state = {f"heads.{name}.{keys[k]}": head[k].detach().to("cpu", torch.float32).contiguous().clone() for k in sorted(head)}
    return config, state


def head_from_adapterhub(directory: str | Path, task: str | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """An AdapterHub head: (a ``task.json``-like info dict, tensors keyed by flex-head index ``1.weight`` ...)."""
    directory = Path(directory)
    path = directory / ADAPTERHUB_HEAD_CONFIG
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        config, name = document["config"], document["name"]
        head_type = config["head_type"]
    except FileNotFoundError:
        raise AdapterFormatError(f"{path}: missing; an AdapterHub task adapter needs its prediction head "
                                 f"({ADAPTERHUB_HEAD_CONFIG} and {ADAPTERHUB_HEAD_WEIGHTS}) to be evaluated") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise AdapterFormatError(f"{path}: not an AdapterHub head config ({type(err).__name__}: {err})") from None
    if head_type not in TASK_OF_HEAD:
        raise AdapterFormatError(f"{path}: head_type {head_type!r} is not supported; supported: {', '.join(TASK_OF_HEAD)}")
    task = task or TASK_OF_HEAD[head_type]
    if HEAD_TYPES.get(task) != head_type:
        raise AdapterFormatError(f"{path}: a {head_type!r} head cannot serve task {task!r}")
    if head_type == "multiple_choice":
        labels = [str(i) for i in range(int(config.get("num_choices", 2)))]
    elif head_type == "question_answering":
        labels = ["start", "end"]
    else:
        label2id = config.get("label2id") or {f"LABEL_{i}": i for i in range(int(config["num_labels"]))}
        labels = [label for label, _ in sorted(label2id.items(), key=lambda item: int(item[1]))]
    expected_layers = 1 if head_type in ("tagging", "question_answering") else 2
    if config.get("layers", expected_layers) != expected_layers or config.get("activation_function", "tanh") != "tanh" \
            or config.get("use_pooler", False):
        raise AdapterFormatError(f"{path}: only AdapterHub's default {head_type} head ({expected_layers} layers, tanh, "
                                 "no pooler) maps onto the transformers head")
    weights = directory / ADAPTERHUB_HEAD_WEIGHTS
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise AdapterFormatError(refused_pickle_line(err, weights)) from None
    prefix = f"heads.{name}."
    if not isinstance(state, dict) or not all(isinstance(k, str) and k.startswith(prefix) for k in state):
        raise AdapterFormatError(f"{weights}: expected tensors named {prefix}*")
    info = {"task": task, "labels": labels, "adapter_name": document.get("name", directory.name), "source": "adapterhub"}
    return info, {k[len(prefix):]: v for k, v in state.items()}


def head_into_model(host: TransformersHost, task: str, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Copy an AdapterHub head (``head_from_adapterhub``) into the transformers task model of ``host``."""
    state = host.model.state_dict()
    ours = {k: state[k] for k in host.head_parameter_names()}
    reverse = {index: key for key, index in _head_keys(task, ours).items()}
    if set(reverse) != set(tensors):
        raise AdapterFormatError(f"{where}: head tensors {sorted(tensors)}, the {task} model's head needs {sorted(reverse)}")
    renamed = {reverse[k]: v for k, v in tensors.items()}
    for key, value in renamed.items():
        if tuple(value.shape) != tuple(ours[key].shape):
            raise AdapterFormatError(f"{where}: head tensor {key} has shape {tuple(value.shape)}, "
                                     f"the model expects {tuple(ours[key].shape)}")
    host.model.load_state_dict(renamed, strict=False)


# -- writing ------------------------------------------------------------------------------------


#: The files an AdapterHub export writes (its folder may hold only these to be replaced by a rerun).
ADAPTERHUB_FILES = (ADAPTERHUB_CONFIG, ADAPTERHUB_WEIGHTS, ADAPTERHUB_HEAD_CONFIG, ADAPTERHUB_HEAD_WEIGHTS)


def is_adapterhub_config(document: dict) -> bool:
    """True for AdapterHub's ``adapter_config.json`` (ours has ``format_version``; both are named so)."""
    return "format_version" not in document and "config" in document


def _write(directory: Path, name: str, role: str, config: dict, state: dict, hidden: int, model_type: str,
           head: tuple[dict, dict] | None) -> Path:
    """Publish the AdapterHub folder atomically into a new or empty ``directory`` (or over the same export)."""
    check_export_target(directory, name, ADAPTERHUB_FILES, is_adapterhub_config)
    model_class = _ADAPTER_MODELS.get(model_type)
    if head is not None and model_class is None:
        raise NotExportableError(f"model type {model_type!r} has no AdapterHub flex-head model class; known: "
                                 f"{', '.join(_ADAPTER_MODELS)}")
    common = {"hidden_size": hidden, "model_name": "", "model_type": model_type, "name": name,
              "version": ADAPTERHUB_VERSION}

    def build(tmp: Path) -> None:
        atomic_write_json(tmp / ADAPTERHUB_CONFIG, {**common, "config": config, "type": ROLE_TYPES[role],
                                                    "model_class": model_class or ""})
        atomic_write_bytes(tmp / ADAPTERHUB_WEIGHTS, _torch_bytes(state))
        if head is not None:
            atomic_write_json(tmp / ADAPTERHUB_HEAD_CONFIG, {**common, "config": head[0], "model_class": model_class})
            atomic_write_bytes(tmp / ADAPTERHUB_HEAD_WEIGHTS, _torch_bytes(head[1]))

    return publish_directory(directory, build)


def _torch_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def export_adapterhub(host: TransformersHost, name: str, directory: str | Path, task: str | None = None,
                      labels: list[str] | None = None) -> Path:
    """Write adapter ``name`` of ``host`` as an AdapterHub ``load_adapter`` directory.

    A task adapter (role "task") with ``task`` and ``labels`` also gets the
    head of ``host.model`` as an AdapterHub flex head.
    """
    info = host.adapters[name]
    config = adapterhub_config(info.config, info.invertible, info.layers, len(host.outputs))
    state = adapterhub_state(host.adapter_tensors(name), name)
    model_type = getattr(getattr(host.model, "config", None), "model_type", "") or ""
    head = None
    if info.role == "task" and task is not None:
        names = set(host.head_parameter_names())
        tensors = {k: v for k, v in host.model.state_dict().items() if k in names}
        head = adapterhub_head(task, tensors, list(labels or []), name)
    return _write(Path(directory), name, info.role, config, state, host.hidden_size, model_type, head)


def export_adapterhub_dir(adapter_dir: str | Path, output_dir: str | Path, name: str | None = None) -> Path:
    """Convert a directory written by ``xling train-lang``/``train-task`` (ours) into an AdapterHub one; no model needed."""
    from .adapter_io import LAYER_NORMS
    from .task_info import read_task_info
    from .train import HEAD_WEIGHTS, TASK_INFO

    adapter_dir = Path(adapter_dir)
    if (adapter_dir / ADAPTERHUB_WEIGHTS).is_file():
        raise AdapterFormatError(f"{adapter_dir}: already an AdapterHub directory ({ADAPTERHUB_WEIGHTS}); export takes "
                                 "one written by xling train-lang or train-task")
    saved = load_adapter(adapter_dir)
    if (adapter_dir / LAYER_NORMS).is_file():
        raise NotExportableError(f"{adapter_dir}: trained with the encoder's LayerNorms ({LAYER_NORMS}), which "
                                 "AdapterHub's adapter files do not carry")
    meta = saved.metadata
    name = name or saved.name or adapter_dir.name
    role = meta.get("role", "language")
    if role not in ROLE_TYPES:
        raise AdapterFormatError(f"{adapter_dir / ADAPTERHUB_CONFIG}: metadata.role must be 'language' or 'task', got {role!r}")
    num_layers = meta.get("num_layers")
    if type(num_layers) is not int or num_layers <= 0:
        raise AdapterFormatError(f"{adapter_dir / ADAPTERHUB_CONFIG}: metadata.num_layers is needed to export, got {num_layers!r}")
    layers = meta.get("layers") or list(range(num_layers))
    invertible = AdapterConfig.from_dict(meta["invertible"]) if meta.get("invertible") else None
    config = adapterhub_config(saved.config, invertible, layers, num_layers)
    state = adapterhub_state(saved.tensors, name)
    head = None
    if role == "task" and (adapter_dir / TASK_INFO).is_file():
        info = read_task_info(adapter_dir)
        try:
            tensors = load_file(str(adapter_dir / HEAD_WEIGHTS))
        except (SafetensorError, OSError, ValueError) as err:
            raise AdapterFormatError(f"{adapter_dir / HEAD_WEIGHTS}: missing or corrupt prediction head ({err})") from None
        head = adapterhub_head(info["task"], tensors, info["labels"], name)
    return _write(Path(output_dir), name, role, config, state, saved.config.hidden_dim, meta.get("model_type", ""), head)
