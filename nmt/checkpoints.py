"""Loading fairseq checkpoints as ``AdapterTransformerModel``s: what ``nmt export`` and the Python API share.

``read_checkpoint`` is fairseq's ``load_checkpoint_to_cpu`` (weights-only
unpickling, see ``nmt.safe_loading``) with one clear error for a broken or
unsafe file.  ``load_model`` builds the model the checkpoint describes, the way
``fairseq-generate --adapter-dirs`` does: a plain ``transformer`` base given
adapter directories becomes an ``adapter_transformer`` that carries exactly
those adapters.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Iterable

from fairseq import checkpoint_utils
from omegaconf import DictConfig, open_dict

from adapter_core.io import describe_torch_load_error

from .adapter_files import build_base_with_adapter_layers, load_adapter_dirs
from .models import AdapterTransformerModel
from .tasks import is_plain_transformer, unwrap_model


class DataDirectoryError(ValueError):
    """The dictionaries of a checkpoint are not where its training data directory was (pass ``data``)."""


def load_model(checkpoint: str | Path, data: str | Path | None = None, adapter_dirs: Iterable[str | Path] = (),
               force: bool = False) -> AdapterTransformerModel:
    """The ``adapter_transformer`` model of a fairseq checkpoint, on CPU in eval mode, with ``adapter_dirs`` loaded.

    ``checkpoint``: ``checkpoint_*.pt`` of ``fairseq-train --arch adapter_transformer*`` (its adapters come
    with it), or of a plain ``transformer`` when ``adapter_dirs`` are given (the base that exported adapters
    go onto, as ``fairseq-generate --path base.pt --adapter-dirs ...``).  ``data``: the binarised data
    directory (its ``dict.<lang>.txt``) when it has moved since training (``nmt export --data``).
    ``adapter_dirs``: directories written by ``export_adapters``, loaded with ``load_adapter_dirs``
    (``force``: even when made for another base, ``--adapter-force``).

    Only load checkpoints from a source you trust: they are pickles (read with ``weights_only=True``).
    """
    overrides = {"data": str(data)} if data else None
    directories = [str(d) for d in adapter_dirs]
    state = read_checkpoint(str(checkpoint), overrides)
    model_args = (state.get("cfg") or {}).get("model")
    if directories and is_plain_transformer(getattr(model_args, "arch", None)):
        editable = open_dict(model_args) if isinstance(model_args, DictConfig) else contextlib.nullcontext()
        with editable:
            build_base_with_adapter_layers(model_args, directories)
    try:
        models, _ = checkpoint_utils.load_model_ensemble([str(checkpoint)], arg_overrides=overrides, state=state)
    except FileNotFoundError as err:
        message = _missing_data_message(err, overrides and overrides["data"], state)
        if message:
            raise DataDirectoryError(message) from None
        raise
    try:
        model = unwrap_model(models[0])
    except TypeError:
        raise TypeError(f"{checkpoint}: needs an adapter_transformer model (fairseq-train --arch "
                        f"adapter_transformer*), got {type(models[0]).__name__}; a plain transformer base loads "
                        "with its adapter directories (adapter_dirs=...)") from None
    if directories:
        load_adapter_dirs(model, directories, force=force)
    return model.eval()


def _missing_data_message(err: OSError, data_flag: str | None, state: dict | None) -> str:
    """For a dictionary missing from the checkpoint's data directory: where it was looked for, and ``--data``."""
    if not isinstance(err, FileNotFoundError) or err.filename is None or state is None:
        return ""
    if not re.fullmatch(r"dict\..+\.txt", Path(str(err.filename)).name):
        return ""
    if data_flag:
        return (f"{err.filename}: not found; --data (data=) {data_flag} must be the binarised data directory "
                "(the folder holding dict.<lang>.txt)")
    cfg = state.get("cfg")
    task = (cfg.get("task") if cfg is not None else None) or state.get("args")  # a legacy checkpoint: its args
    data = (task.get("data") if hasattr(task, "get") else getattr(task, "data", None)) or "?"
    where = "" if Path(str(data)).is_absolute() else f" (relative: looked up from the current folder {Path.cwd()})"
    return (f"{err.filename}: not found: the checkpoint reads its dictionaries from its training data directory "
            f"{data!r}{where}; pass --data (data= in Python) with the binarised data directory (the folder holding "
            "dict.<lang>.txt)")


class CheckpointReadError(ValueError):
    """A checkpoint file that torch cannot read (truncated, not a checkpoint, or with disallowed globals)."""


def refused_checkpoint_line(err: BaseException, path) -> str:
    """One line for a fairseq checkpoint torch cannot load: refused (an object outside the allow-list: our
    advice, never torch's ``weights_only=False``), or truncated or corrupt."""
    line = describe_torch_load_error(err, path, "fairseq checkpoints hold (tensors, containers, argparse.Namespace, "
                                     "omegaconf configs)", "a checkpoint written by fairseq-train (--user-dir nmt) "
                                     "from a source you trust")
    return line.replace("not readable (truncated or corrupt?)", "not a readable fairseq checkpoint (truncated or "
                        "corrupt?)")


def read_checkpoint(path: str, overrides: dict | None = None) -> dict:
    """fairseq's ``load_checkpoint_to_cpu`` (``weights_only`` loading), with one clear error for a broken file."""
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path, overrides)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, zipfile.BadZipFile) as err:
        raise CheckpointReadError(refused_checkpoint_line(err, path)) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointReadError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state
