"""Bad-input errors and line reading shared by the data loaders.

- ``DataError``: a malformed input file; the message names the file, the line
  (or JSON key) and what is wrong; nothing is skipped silently.
- ``read_text``: monolingual text for MLM, one document or sentence per line.
- ``HubDatasetRef`` and the ``--dataset`` flags: a Hugging Face data set by
  name instead of a file (``xling.datasets_io.load_hub_dataset`` loads it).

The task data sets (WikiANN/PAN-X, SQuAD, XCOPA/SIQA, labelled texts) load as
``datasets.Dataset`` objects in ``xling.datasets_io``, with these checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

#: WikiANN's label order (the ClassLabel of the Hugging Face data set).
WIKIANN_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


class DataError(ValueError):
    """A malformed input file; the message names the file and line or key."""


class ModelDirError(DataError):
    """A model directory that is missing, or that transformers cannot load (truncated or corrupt files)."""


_TYPE_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a string", int: "an integer"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(value, where: str, kind):
    """``value`` if it has the JSON type ``kind``, else a DataError naming ``where``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (int in kinds and isinstance(value, bool)):
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise DataError(f"{where}: expected {wanted}, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _lines(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{number}: invalid UTF-8 ({err.reason} at byte {err.start})") from None
            if "\x00" in line:
                raise DataError(f"{path}:{number}: NUL byte")
            yield number, line.rstrip("\r\n")


def read_text(path: str | Path) -> list[str]:
    """Non-blank lines of a monolingual text file; an empty file is an error."""
    lines = [line.strip() for _, line in _lines(path) if line.strip()]
    if not lines:
        raise DataError(f"{path}: no text (the file is empty or blank)")
    return lines


# -- a named Hugging Face data set instead of a file ---------------------------------


@dataclass(frozen=True)
class HubDatasetRef:
    """A data set named on the Hugging Face hub, loaded with ``load_dataset(name, config, split=split)``."""

    # The hub name, e.g. "wikiann" or "unimelb-nlp/wikiann".
    name: str
    # The configuration, e.g. "de" (None: the data set's only one).
    config: str | None
    # The split to load, e.g. "train", "validation", "test".
    split: str

    def __str__(self) -> str:  # recorded in task.json and the results as the data's name
        return f"{self.name}/{self.config}:{self.split}" if self.config else f"{self.name}:{self.split}"


def add_dataset_flags(parser: argparse.ArgumentParser, split: str) -> None:
    """``--dataset``, ``--dataset-config`` and ``--dataset-split``: a named data set instead of a file."""
    parser.add_argument("--dataset", help="a Hugging Face data set by name (e.g. wikiann) instead of a file; with "
                        "HF_DATASETS_OFFLINE=1 it loads from the local cache (HF_DATASETS_CACHE)")
    parser.add_argument("--dataset-config", help="its configuration (e.g. the language: de)")
    parser.add_argument("--dataset-split", default=split, help=f"its split (default: {split})")


def data_source(args, file_flag: str) -> str | HubDatasetRef:
    """The data file named by ``--<file_flag>``, or the ``--dataset`` reference; exactly one of them."""
    path = getattr(args, file_flag.replace("-", "_"))
    if (path is None) == (args.dataset is None):
        raise ValueError(f"give either --{file_flag} FILE or --dataset NAME (with --dataset-config), not "
                         f"{'both' if path else 'neither'}")
    return path if path is not None else HubDatasetRef(args.dataset, args.dataset_config, args.dataset_split)
