"""Zero-shot evaluation: the target language's adapter swapped in under the source-trained task adapter."""

from __future__ import annotations

from pathlib import Path

from adapter_core import AdapterFormatError, atomic_write_json
from adapter_core.io import read_json

from .tasks import TASKS
from .train import TASK_INFO


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
    """Scores of Stack(target language adapter, task adapter) on ``data_file``, every layer's adapters on."""
    from .inference import evaluate_task_adapter

    return evaluate_task_adapter(model_dir, task_adapter, language_adapter, data_file, language, labels_file,
                                 mlqa_normalisation, batch_size, force, drop_layers=0)


def write_results(results: dict, path: str | Path) -> None:
    atomic_write_json(path, results)
