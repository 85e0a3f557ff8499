"""Adapters on disk: ``adapter_config.json`` + ``adapter_model.safetensors``.

The JSON (indent 2, sorted keys) holds the adapter config (kind, sizes,
placement, paper preset), the adapter's name, free-form host metadata, and
a fingerprint of the base model it was trained on.  The safetensors file
holds the adapter tensors only.  Nothing is ever unpickled.  Writes are
atomic: a temporary file in the same directory, then ``os.replace``; whole
directories (an adapter, a model) are published the same way
(``publish_directory``), which both hosts use.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from .config import AdapterConfig
from .freeze import adapter_parameter_names

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT_VERSION = 1


class AdapterFormatError(ValueError):
    """An adapter directory that is missing a file, truncated or corrupt."""


class FingerprintMismatchError(ValueError):
    """An adapter trained on a different base model than the one it is loaded into."""


@dataclass
class SavedAdapter:
    """What one adapter directory holds."""

    # How to rebuild the module(s): an AdapterConfig, or the ``config_type`` given to ``load_adapter``.
    config: Any
    # Adapter tensors by name, relative to the host's insertion points.
    tensors: dict[str, torch.Tensor]
    # Fingerprint of the base model the adapter was trained on.
    base_fingerprint: str
    # The adapter's key (e.g. "en-de" or "de").
    name: str = ""
    # Host-specific data (layers that carry it, side, language pair, ...).
    metadata: dict[str, Any] = field(default_factory=dict)


# -- fingerprints ------------------------------------------------------------
def fingerprint_tensors(named_tensors: Iterable[tuple[str, torch.Tensor]], values_from: int = 3) -> str:
    """A hash of parameter names and shapes, plus a few weight values.

    The values come from the first, middle and last tensor in name order
    (first 8 numbers of each), so that two bases of the same architecture but
    different training still differ.
    """
    items = sorted((name, t) for name, t in named_tensors if torch.is_floating_point(t))
    digest = hashlib.sha256()
    for name, tensor in items:
        digest.update(f"{name}:{tuple(tensor.shape)}\n".encode())
    if items:
        picks = {0, len(items) // 2, len(items) - 1} if values_from else set()
        for i in sorted(picks):
            values = items[i][1].detach().reshape(-1)[:8].to(torch.float64).cpu().tolist()
            digest.update(("|".join(f"{v:.6e}" for v in values) + "\n").encode())
    return "sha256:" + digest.hexdigest()


def fingerprint_model(model: nn.Module) -> str:
    """The fingerprint of a host model's base: its state dict minus adapter tensors."""
    skip = adapter_parameter_names(model)
    return fingerprint_tensors((k, v) for k, v in model.state_dict().items() if k not in skip)


# -- atomic writes -----------------------------------------------------------
_UMASK = os.umask(0)
os.umask(_UMASK)
#: The mode a directory made by mkdir gets under the process umask (mkdtemp makes 0700 ones).
USUAL_DIRECTORY_MODE = 0o777 & ~_UMASK


def atomic_write_files(contents: Mapping[str | os.PathLike, bytes]) -> None:
    """Write several files, each atomically and together: every one goes to a temporary file next to it
    first, and only once all are written are they renamed into place, so a failed write (a full disk, a
    refused one) leaves all the old files as they were, never some sides new and some old or missing."""
    temps: list[tuple[str, Path]] = []
    try:
        for target, data in contents.items():
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual mode
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as err:
                if err.filename is None:
                    err.filename = str(path)  # a failed write or fsync (a full disk) names no file: name this one
                raise
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    atomic_write_files({path: data})


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` to disk, so that a crash after the rename finds whole files."""
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):  # a file some writer left read-only or special: best effort
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_folder(Path(folder))


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_into_place(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``; an old ``target`` stays until the new one is in, then is deleted."""
    if not target.exists():
        os.replace(staged, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(aside / target.name, target)  # put the old one back
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def publish_directories(builds: Mapping[str | os.PathLike, Callable[[Path], Any]]) -> list[Path]:
    """Publish several directories at once: ``{target: build}``; returns the targets.

    Each ``build(tmp)`` fills a fresh temporary sibling of its target
    (``.NAME.XXXX.tmp``, with the mode mkdir would give); only once every
    build has succeeded are the files flushed to disk and each directory
    renamed into place, an existing one moved aside first and deleted once
    the new one is in.  Readers see the old directory or the complete new
    one, never half; a failed build leaves every old directory as it was and
    no temporary folder behind.  Temporary folders that a run killed while
    publishing left next to a target are removed first.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, build in builds.items():
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
            staged.append((tmp, target))
            tmp.chmod(USUAL_DIRECTORY_MODE)  # mkdtemp makes 0700 folders; the published one gets the usual mode
            build(tmp)
        for tmp, _ in staged:
            _fsync_tree(tmp)
        for tmp, target in staged:
            _swap_into_place(tmp, target)
            _fsync_folder(target.parent)
    except BaseException:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target for _, target in staged]


def publish_directory(directory: str | os.PathLike, build: Callable[[Path], Any]) -> Path:
    """Build a directory with ``build(tmp)`` in a temporary sibling and rename it into place (see
    ``publish_directories``): readers see the old directory or the whole new one."""
    return publish_directories({directory: build})[0]


class ExportTargetError(ValueError):
    """An export's output folder that holds something the export would destroy (another adapter, a user's files)."""


def check_export_target(directory: str | os.PathLike, name: str, files: Iterable[str],
                        same_format: Callable[[dict], bool]) -> None:
    """Refuse to publish adapter ``name`` into ``directory`` when that would destroy something.

    A missing or empty folder is fine; so is a rerun of the same export: a folder holding only ``files`` (what
    this format writes) whose ``adapter_config.json`` is this format's (``same_format(document)``) and names
    the same adapter; it is replaced whole.  Anything else (another adapter, another format's files, a
    user's own files, a file in the folder's place) raises ``ExportTargetError`` and nothing is written.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ExportTargetError(f"{directory}: is a file, not a folder; export into a new or empty folder")
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    if not present:
        return
    try:
        document = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = None
    held = document.get("name") if isinstance(document, dict) else None
    if isinstance(document, dict) and set(present) <= set(files) and same_format(document) and held == name:
        return
    what = (f"another adapter ({held!r}, files {', '.join(present[:4])})" if isinstance(document, dict)
            else f"other files ({', '.join(present[:4])}{', ...' if len(present) > 4 else ''})")
    raise ExportTargetError(f"{directory}: holds {what}; nothing was written: export into a new or empty folder")


#: How torch's weights-only loader names an object outside its allow-list (its advice is never passed on).
_DISALLOWED_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module)"
                                r"|allowlisted via `add_safe_globals`,? but got <class '([^']+)'>"
                                r"|reduce for unrecognized function (<[^>]+>|\S+)")


def describe_torch_load_error(err: BaseException, path: str | os.PathLike, holds: str, source: str) -> str:
    """One line for a failed ``torch.load(path, weights_only=True)``: a refused object named, with our advice
    (``holds``: what such files hold; ``source``: where a good one comes from), never torch's advice to load
    with ``weights_only=False``; else the file as truncated or corrupt, with the first line of the reason."""
    text = str(err).strip()
    disallowed = _DISALLOWED_GLOBAL.search(text)
    if disallowed:
        name = next(group for group in disallowed.groups() if group)
        return (f"{path}: refused: the file holds {name}, an object outside the allow-list of what {holds}, and "
                f"loading it could run code; use {source}")
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    if "weights_only" in reason:
        reason = "the weights-only loader refused it"
    return f"{path}: not readable (truncated or corrupt?): {type(err).__name__}: {reason}"


#: What a user can do about the OS errors that bad paths, permissions and full disks give, by errno.
OS_ERROR_ADVICE = {
    errno.ENOENT: "no such file or folder; check the path",
    errno.EISDIR: "is a folder; pass a file",
    errno.ENOTDIR: "is not a folder (or a file stands where a folder of the path should be); pass a folder",
    errno.EEXIST: "already exists and is not a folder; pass a folder, or move the file away",
    errno.EACCES: "permission denied; fix its permissions, or write to a folder you may write to",
    errno.EPERM: "operation not permitted; fix its permissions, or write to a folder you may write to",
    errno.EROFS: "on a read-only file system; write to a folder on a writable disk",
    errno.ENOSPC: "no space left on the device; free some space or write to another disk, then run again",
    errno.EDQUOT: "disk quota exceeded; free some space or write to another disk, then run again",
}


def describe_os_error(err: OSError, where: str | os.PathLike | None = None) -> str:
    """One line for an OS error: the file it names (``where`` when it names none), and what to do.

    The hidden temporary file or folder of an atomic write (``.name.XXXX.tmp``) means nothing to a user, so
    its folder is named instead."""
    name = err.filename if err.filename is not None else where
    if name is not None:
        path = Path(os.fsdecode(name))
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            name = path.parent
    advice = OS_ERROR_ADVICE.get(err.errno) or err.strerror or str(err)
    return f"{name}: {advice}" if name is not None else advice


# -- save / load -------------------------------------------------------------
def save_adapter(
    directory: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    config: Any,
    base_fingerprint: str,
    name: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write one adapter directory; returns its path.  ``config`` is an AdapterConfig, or any config with
    ``to_dict()`` and a ``from_dict`` classmethod (e.g. ``xling.k_adapter.KAdapterConfig``)."""
    if not tensors:
        raise ValueError("refusing to save an adapter with no tensors")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(directory / WEIGHTS_NAME, save_safetensors_bytes(contiguous, metadata={"format": "pt"}))
    document = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "config": config.to_dict(),
        "base_fingerprint": base_fingerprint,
        "metadata": dict(metadata or {}),
        "num_parameters": int(sum(v.numel() for v in contiguous.values())),
    }
    atomic_write_json(directory / CONFIG_NAME, document)
    return directory


def read_json(path: str | os.PathLike, error: type[Exception] = AdapterFormatError) -> Any:
    """Parse a JSON file; bad bytes or syntax raise ``error`` naming the file, line and column."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise error(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None


def read_adapter_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_config.json``, with a clear error when it is missing or broken."""
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"adapter directory not found: {directory}")
    if not path.is_file():
        raise AdapterFormatError(f"{path}: missing; an adapter directory holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    document = read_json(path)
    required = ("config", "base_fingerprint")
    if not isinstance(document, dict) or any(k not in document for k in required):
        raise AdapterFormatError(f"{path}: not an adapter config; expected the keys {', '.join(required)}")
    return document


def load_adapter(
    directory: str | os.PathLike,
    expected_fingerprint: str | None = None,
    force: bool = False,
    config_type: type = AdapterConfig,
) -> SavedAdapter:
    """Read one adapter directory; refuse one made for another base unless ``force``.

    ``config_type`` parses the ``config`` entry (its ``from_dict``): AdapterConfig, or the config class of an
    adapter that is not built from one (``xling.k_adapter.KAdapterConfig``)."""
    document = read_adapter_config(directory)
    config_path = Path(directory) / CONFIG_NAME
    version = document.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise AdapterFormatError(f"{config_path}: format_version {version!r} is not one this version reads "
                                 f"({FORMAT_VERSION!r}); upgrade adapter-mt or re-export the adapter")
    try:
        config = config_type.from_dict(document["config"])
    except (TypeError, ValueError) as err:
        raise AdapterFormatError(f"{config_path}: bad 'config' entry: {err}") from None
    fingerprint = str(document["base_fingerprint"])
    if expected_fingerprint is not None and fingerprint != expected_fingerprint and not force:
        raise FingerprintMismatchError(
            f"adapter {directory} was trained on base {fingerprint}, but the model it is loaded into is "
            f"{expected_fingerprint}; pass force=True (or --force) to load it anyway")
    weights_path = Path(directory) / WEIGHTS_NAME
    if not weights_path.is_file():
        raise AdapterFormatError(f"{weights_path}: missing")
    try:
        tensors = load_safetensors_bytes(weights_path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError, OSError) as err:
        raise AdapterFormatError(f"{weights_path}: truncated or corrupt safetensors file ({err})") from None
    if not tensors:
        raise AdapterFormatError(f"{weights_path}: holds no tensors")
    for name, tensor in tensors.items():
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
            raise AdapterFormatError(f"{weights_path}: tensor {name} holds NaN or infinite values; "
                                     "the adapter diverged in training or the file is damaged")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise AdapterFormatError(f"{config_path}: 'metadata' must be a JSON object, got {type(metadata).__name__}")
    return SavedAdapter(config=config, tensors=dict(tensors), base_fingerprint=fingerprint,
                        name=str(document.get("name", "")), metadata=dict(metadata))


def check_shapes(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise naming both shapes when loaded tensors do not fit the host's, or keys differ."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise AdapterFormatError(
            f"{where}: adapter tensors do not match the host; missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise AdapterFormatError(
                f"{where}: tensor {key} has shape {tuple(tensor.shape)} in the adapter but "
                f"{tuple(expected[key].shape)} in the host model")


# -- fusion layers and side files ----------------------------------------------
#: The metadata key that makes an adapter directory a fusion: the names of the adapters it fuses, in order.
FUSION_OF = "fusion_of"


def save_fusion(directory: str | os.PathLike, tensors: Mapping[str, torch.Tensor], config: Any, adapters: Iterable[str],
                base_fingerprint: str, name: str, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write AdapterFusion layers (Pfeiffer et al. 2021) in the adapter format: ``adapter_config.json`` (config: a
    ``FusionConfig``; metadata ``fusion_of``: the fused adapters' names) + ``adapter_model.safetensors``."""
    return save_adapter(directory, tensors, config, base_fingerprint, name=name,
                        metadata={**dict(metadata or {}), FUSION_OF: list(adapters)})


def is_fusion_directory(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds fusion layers (``save_fusion``) rather than an adapter."""
    try:
        document = read_adapter_config(directory)
    except (OSError, AdapterFormatError):
        return False
    return isinstance(document.get("metadata"), dict) and FUSION_OF in document["metadata"]


def load_fusion(directory: str | os.PathLike, expected_fingerprint: str | None = None, force: bool = False) -> SavedAdapter:
    """Read fusion layers written by ``save_fusion`` (checks as ``load_adapter``); ``metadata["fusion_of"]`` names
    the adapters a host must hold before it adds them."""
    from .fusion import FusionConfig

    if not is_fusion_directory(directory):
        read_adapter_config(directory)  # a missing or broken file says so first
        raise AdapterFormatError(f"{Path(directory) / CONFIG_NAME}: not AdapterFusion layers (no metadata.{FUSION_OF})")
    saved = load_adapter(directory, expected_fingerprint, force, config_type=FusionConfig)
    fused = saved.metadata[FUSION_OF]
    if not isinstance(fused, list) or len(fused) < 2 or not all(isinstance(n, str) and n for n in fused):
        raise AdapterFormatError(f"{Path(directory) / CONFIG_NAME}: metadata.{FUSION_OF} must list two or more "
                                 f"adapter names, got {fused!r:.80}")
    return saved


def save_side_tensors(directory: str | os.PathLike, filename: str, tensors: Mapping[str, torch.Tensor]) -> Path:
    """Tensors that travel beside an adapter (a prediction head, LayerNorms trained with it) as one safetensors
    file in its directory, atomically."""
    path = Path(directory) / filename
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, save_safetensors_bytes(contiguous, metadata={"format": "pt"}))
    return path


def load_side_tensors(directory: str | os.PathLike, filename: str, expected: Mapping[str, torch.Tensor],
                      what: str) -> dict[str, torch.Tensor]:
    """Read a ``save_side_tensors`` file and check its keys and shapes against ``expected``; ``what`` names it in
    the one-line error of a missing or corrupt file."""
    path = Path(directory) / filename
    try:
        tensors = load_safetensors_bytes(path.read_bytes())
    except (OSError, SafetensorError, ValueError) as err:
        raise AdapterFormatError(f"{path}: missing or corrupt {what} ({err})") from None
    check_shapes(tensors, expected, str(path))
    return dict(tensors)
