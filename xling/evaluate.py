"""Zero-shot evaluation: the target language's adapter swapped in under the source-trained task adapter."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoTokenizer

from adapter_core import AdapterFormatError, Stack, atomic_write_json, check_shapes
from adapter_core.io import read_json

from .adapter_io import load_madx_adapter
from .attach import MadxHost
from .tasks import TASKS
from .train import HEAD_WEIGHTS, TASK_INFO, build_task_model, from_model_dir


def read_task_info(task_adapter: str | Path) -> dict:
    path = Path(task_adapter) / TASK_INFO
    if not path.is_file():
        raise AdapterFormatError(f"{path}: missing; is {task_adapter} a task adapter written by 'xling train-task'?")
    info = read_json(path)
    if not isinstance(info, dict):
        raise AdapterFormatError(f"{path}: expected a JSON object")
    for key in ("task", "labels", "adapter_name"):
        if key not in info:
            raise AdapterFormatError(f"{path}: missing key {key!r}")
    if not isinstance(info["task"], str) or info["task"] not in TASKS:
        raise AdapterFormatError(f"{path}: unknown task {info['task']!r}; known: {', '.join(TASKS)}")
    if not isinstance(info["labels"], list) or not info["labels"] or not all(isinstance(l, str) for l in info["labels"]):
        raise AdapterFormatError(f"{path}: 'labels' must be a non-empty list of strings")
    return info


def evaluate_zero_shot(model_dir: str, task_adapter: str, language_adapter: str, data_file: str, language: str,
                       labels_file: str | None = None, mlqa_normalisation: bool = False, batch_size: int = 32,
                       force: bool = False) -> dict:
    """Scores of Stack(target language adapter, task adapter) on ``data_file``."""
    info = read_task_info(task_adapter)
    module = TASKS[info["task"]]
    examples = module.read(data_file, labels_file)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = build_task_model(model_dir, info["task"], info["labels"])
    host = MadxHost(model)
    lang = load_madx_adapter(host, language_adapter, force=force)
    task = load_madx_adapter(host, task_adapter, force=force)
    head_path = Path(task_adapter) / HEAD_WEIGHTS
    try:
        head = load_file(str(head_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise AdapterFormatError(f"{head_path}: missing or corrupt prediction head ({err})") from None
    state = model.state_dict()
    check_shapes(head, {k: state[k] for k in host.head_parameter_names()}, str(head_path))
    model.load_state_dict(head, strict=False)
    host.set_active(Stack(lang, task))
    scores = module.evaluate(model, tokenizer, examples, info["labels"], lang=language if mlqa_normalisation else None,
                             batch_size=batch_size)
    return {"task": info["task"], "language": language, "seed": info.get("seed"),
            "source_language": info.get("source_language"), "language_adapter": str(language_adapter),
            "task_adapter": str(task_adapter), "data": str(data_file), **scores}


def write_results(results: dict, path: str | Path) -> None:
    atomic_write_json(path, results)
