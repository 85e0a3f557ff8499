"""A trained task adapter, ready for inference: the scoring behind ``xling eval``, ``xling ablate`` and ``xling drift``.

``load_task_model`` builds the task model of ``task.json`` (or of an
AdapterHub task adapter's ``head_config.json``), loads the
target language adapter and the task adapter (Compacter++ and Houlsby-placed
ones included: their config is on disk), the prediction head, the encoder's
LayerNorms when the task adapter was trained with them, and activates
``Stack(lang, task)``; a K-adapter (``task.json``'s ``adapter_kind``) loads
beside the encoder instead (``xling.k_adapter_train``).  ``evaluate_loaded`` scores it with the adapters of
the lowest n layers removed (AdapterDrop at inference): by default the n the
task adapter was trained with in specialised mode, 0 otherwise.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer

from adapter_core import AdapterFormatError, Stack, load_side_tensors

from .adapter_io import ADAPTERHUB_WEIGHTS, load_layer_norms, load_madx_adapter
from .adapterhub import ADAPTERHUB_HEAD_WEIGHTS, head_from_adapterhub, head_into_model
from .attach import TransformersHost
from .kinds import K_ADAPTER_KIND
from .drop import AdapterDropConfig
from .task_info import read_task_info
from .tasks import TASKS
from .train import HEAD_WEIGHTS, TASK_INFO, build_task_model, check_tokenizer_fits, from_model_dir, position_limit

logger = logging.getLogger(__name__)


@dataclass
class LoadedTaskModel:
    """A task model with its language and task adapters loaded and active."""

    # task.json of the task adapter (task, labels, adapter_name, seed, adapter_drop ...).
    info: dict
    # The task module (xling.tasks.ner / qa / commonsense).
    module: object
    # The base model's tokenizer.
    tokenizer: object
    # The task model (base + head), in eval mode.
    model: torch.nn.Module
    # The TransformersHost that holds the adapters.
    host: TransformersHost
    # The active setup, Stack(language adapter, task adapter).
    setup: Stack


def is_adapterhub_task_adapter(task_adapter: str | Path) -> bool:
    """True for an AdapterHub directory (``pytorch_adapter.bin``), False for ours (``task.json``)."""
    return (Path(task_adapter) / ADAPTERHUB_WEIGHTS).is_file() and not (Path(task_adapter) / TASK_INFO).is_file()


def task_adapter_info(task_adapter: str | Path, task: str | None = None) -> dict:
    """What a task adapter's head serves: ``task.json`` (ours), or read from AdapterHub's ``head_config.json``.

    ``task`` picks the task of an AdapterHub tagging head ("ner" or "pos"); given for one of ours, it must agree.
    """
    if is_adapterhub_task_adapter(task_adapter):
        return head_from_adapterhub(task_adapter, task)[0]
    info = read_task_info(task_adapter)
    if task is not None and task != info["task"]:
        raise AdapterFormatError(f"{Path(task_adapter) / TASK_INFO}: a {info['task']!r} adapter, --task {task!r} given")
    return info


def load_head(host: TransformersHost, task_adapter: str | Path, task: str | None = None) -> dict:
    """Copy the prediction head saved with a task adapter (ours or AdapterHub's) into ``host.model``; its info.

    ``host.model`` must be the task's transformers model with as many labels as the head
    (``task_adapter_info`` tells which).
    """
    if is_adapterhub_task_adapter(task_adapter):
        info, ah_head = head_from_adapterhub(task_adapter, task)
        head_into_model(host, info["task"], ah_head, str(Path(task_adapter) / ADAPTERHUB_HEAD_WEIGHTS))
        return info
    info = task_adapter_info(task_adapter, task)
    state = host.model.state_dict()
    head = load_side_tensors(task_adapter, HEAD_WEIGHTS, {k: state[k] for k in host.head_parameter_names()},
                             "prediction head")
    host.model.load_state_dict(head, strict=False)
    return info


def load_task_model(model_dir: str, task_adapter: str, language_adapter: str | None, force: bool = False,
                    task: str | None = None) -> LoadedTaskModel:
    """The task model of ``task_adapter`` with ``Stack(language adapter, task adapter)`` active and its head loaded
    (``language_adapter`` None: the task adapter alone, on the bare encoder).

    ``task_adapter`` is ours (``task.json``, ``head.safetensors``) or AdapterHub's (``head_config.json``,
    ``pytorch_model_head.bin``); ``task`` picks the task of an AdapterHub tagging head ("ner" or "pos").
    """
    info = task_adapter_info(task_adapter, task)
    if info.get("adapter_kind") == K_ADAPTER_KIND:  # Wang et al. (2021): beside the encoder, not in it
        from .k_adapter_train import load_k_adapter_task_model

        return load_k_adapter_task_model(model_dir, task_adapter, language_adapter, info, force=force)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = build_task_model(model_dir, info["task"], info["labels"])
    check_tokenizer_fits(tokenizer, model, model_dir)
    host = TransformersHost(model)
    lang = None if language_adapter is None else load_madx_adapter(host, language_adapter, force=force, role="language")
    if info.get("fusion"):  # xling train-fusion's OUT/fusion: the fused task adapters, then the fusion layers
        return _load_fusion_model(info, tokenizer, model, host, lang, task_adapter, force)
    task_name = load_madx_adapter(host, task_adapter, force=force, role="task")
    load_head(host, task_adapter, info["task"])
    if info.get("train_layer_norms"):  # Houlsby et al. (2019): the LayerNorms trained with the adapter
        load_layer_norms(host, task_adapter)
    return _activate(info, tokenizer, model, host, Stack(task_name) if lang is None else Stack(lang, task_name))


def _load_fusion_model(info: dict, tokenizer, model: torch.nn.Module, host: TransformersHost, lang: str, fusion_dir: str,
                       force: bool) -> LoadedTaskModel:
    """Stack(language adapter, Fuse(task adapters)) from a train-fusion directory; ``task.json`` lists the task
    adapters' directories as given to train-fusion (relative ones are taken from the current folder)."""
    from .fusion import load_fusion

    adapters = info.get("adapters")
    if not isinstance(adapters, list) or len(adapters) < 2:
        raise AdapterFormatError(f"{Path(fusion_dir) / TASK_INFO}: 'adapters' must list the fused task adapters' "
                                 f"directories, got {adapters!r:.80}")
    for path in adapters:
        load_madx_adapter(host, path, force=force, role="task")
    fuse = load_fusion(host, fusion_dir, force=force)
    load_head(host, fusion_dir, info["task"])
    return _activate(info, tokenizer, model, host, Stack(lang, fuse))


def _activate(info: dict, tokenizer, model: torch.nn.Module, host: TransformersHost, setup: Stack) -> LoadedTaskModel:
    host.set_active(setup)
    model.eval()
    return LoadedTaskModel(info=info, module=TASKS[info["task"]], tokenizer=tokenizer, model=model, host=host,
                           setup=setup)


def inference_dropped_layers(loaded: LoadedTaskModel, requested: int | None = None) -> int:
    """Layers whose adapters are removed at inference: ``requested``, else the trained AdapterDrop's default."""
    layers = len(loaded.host.layers)
    if requested is None:
        saved = loaded.info.get("adapter_drop")
        if not saved:
            return 0
        try:
            config = AdapterDropConfig(**saved)
        except (TypeError, ValueError) as err:
            raise AdapterFormatError(f"task.json: invalid adapter_drop {saved!r} ({err})") from None
        requested = config.dropped_at_inference()
    if not 0 <= requested <= layers:
        raise ValueError(f"--adapter-drop-inference must be between 0 and {layers} (the model's layers), got {requested}")
    return requested


def evaluate_loaded(loaded: LoadedTaskModel, data_file: str, language: str, labels_file: str | None = None,
                    mlqa_normalisation: bool = False, batch_size: int = 32, dropped_layers: int = 0,
                    examples: list | None = None) -> dict:
    """Scores on ``data_file`` (or on ``examples`` already read from it) with the lowest ``dropped_layers`` adapters removed."""
    if examples is None:
        examples = loaded.module.read(data_file, labels_file)
    with loaded.host.adapters_skipped(range(dropped_layers)):
        scores = loaded.module.evaluate(loaded.model, loaded.tokenizer, examples, loaded.info["labels"],
                                        lang=language if mlqa_normalisation else None, batch_size=batch_size,
                                        **evaluation_length(loaded))
    return scores


def evaluation_length(loaded: LoadedTaskModel) -> dict:
    """``{"max_length": N}`` for the task's ``evaluate``: the training's --max-length (task.json), else the task's
    default, cut to the model's position limit with a warning ({} when neither applies)."""
    parameter = inspect.signature(loaded.module.evaluate).parameters.get("max_length")
    wanted = loaded.info.get("max_length") or (parameter.default if parameter is not None else None)
    if not isinstance(wanted, int):
        return {}
    limit = position_limit(loaded.model)
    if limit is not None and wanted > limit:
        logger.warning("evaluating with max_length %d, the model's position limit, instead of %d", limit, wanted)
        wanted = limit
    return {"max_length": wanted}


def evaluate_task_adapter(model_dir: str, task_adapter: str, language_adapter: str, data_file: str, language: str,
                          labels_file: str | None = None, mlqa_normalisation: bool = False, batch_size: int = 32,
                          force: bool = False, drop_layers: int | None = None, task: str | None = None) -> dict:
    """Zero-shot scores of Stack(target language adapter, task adapter) on ``data_file``, as a record for ``xling report``.

    ``drop_layers``: AdapterDrop at inference (None: what the task adapter was trained with); in the record
    as ``dropped_layers``.
    """
    loaded = load_task_model(model_dir, task_adapter, language_adapter, force=force, task=task)
    examples = loaded.module.read(data_file, labels_file)
    dropped = inference_dropped_layers(loaded, drop_layers)
    scores = evaluate_loaded(loaded, data_file, language, mlqa_normalisation=mlqa_normalisation,
                             batch_size=batch_size, dropped_layers=dropped, examples=examples)
    info = loaded.info
    return {"task": info["task"], "language": language, "seed": info.get("seed"),
            "source_language": info.get("source_language"), "language_adapter": str(language_adapter),
            "task_adapter": str(task_adapter), "data": str(data_file), "dropped_layers": dropped, **scores}
