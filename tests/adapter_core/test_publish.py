"""adapter_core.publish_directory(ies): the one atomic directory publish of both hosts."""

from __future__ import annotations

import os

import pytest

import adapter_core.io as io_module
from adapter_core import publish_directories, publish_directory


def files(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def hidden(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_a_failure_mid_build_leaves_the_previous_directory_intact(tmp_path):
    target = publish_directory(tmp_path / "adapter", lambda tmp: (tmp / "weights").write_text("old"))
    assert files(target) == {"weights": "old"}

    def half(tmp):
        (tmp / "weights").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        publish_directory(target, half)
    assert files(target) == {"weights": "old"} and hidden(tmp_path) == []
    publish_directory(target, lambda tmp: (tmp / "config").write_text("new"))
    assert files(target) == {"config": "new"} and hidden(tmp_path) == []  # replaced whole, old files gone


def test_several_directories_are_published_only_once_all_are_built(tmp_path):
    publish_directories({tmp_path / "a": lambda t: (t / "f").write_text("a0"),
                         tmp_path / "b": lambda t: (t / "f").write_text("b0")})

    def fail(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        publish_directories({tmp_path / "a": lambda t: (t / "f").write_text("a1"), tmp_path / "b": fail})
    assert files(tmp_path / "a") == {"f": "a0"} and files(tmp_path / "b") == {"f": "b0"}
    assert hidden(tmp_path) == []


def test_a_failed_swap_puts_the_old_directory_back(tmp_path, monkeypatch):
    target = publish_directory(tmp_path / "model", lambda tmp: (tmp / "f").write_text("old"))
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old one is moved aside; renaming the new one in fails
            raise OSError(13, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(io_module.os, "replace", replace)
    with pytest.raises(OSError):
        publish_directory(target, lambda tmp: (tmp / "f").write_text("new"))
    monkeypatch.undo()
    assert files(target) == {"f": "old"} and hidden(tmp_path) == []


def test_stale_temporary_folders_of_a_killed_publish_are_removed(tmp_path):
    stale = tmp_path / ".out.abc123.tmp"
    stale.mkdir()
    (stale / "half").write_text("x")
    publish_directory(tmp_path / "out", lambda tmp: (tmp / "f").write_text("1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
