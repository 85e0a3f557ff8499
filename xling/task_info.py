"""Task adapter records (``task.json``) and result files; the scoring itself is ``xling.inference``."""

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
    length = info.get("max_length")
    if length is not None and (type(length) is not int or length < 1):
        raise AdapterFormatError(f"{path}: 'max_length' must be a positive integer, got {length!r}")
    return info


def write_results(results: dict, path: str | Path) -> None:
    atomic_write_json(path, results)
