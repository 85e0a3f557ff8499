"""data-prep through its command line: a folder given as a file, a read-only output folder and a full disk
are one line naming the file and what to do, not a traceback, and leave no partial output."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from data_prep import cli


def parallel_corpus(tmp_path: Path, n: int = 200) -> tuple[Path, Path]:
    src, tgt = tmp_path / "corpus.en", tmp_path / "corpus.de"
    src.write_text("".join(f"sentence {i}\n" for i in range(n)), encoding="utf-8")
    tgt.write_text("".join(f"Satz {i}\n" for i in range(n)), encoding="utf-8")
    return src, tgt


def error_line(capsys, command: str) -> str:
    """The command's error: the last line on stderr, with no traceback before it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"data-prep {command}: error: "), line
    return line


def parallel_argv(src: Path, tgt: Path, out: Path, *extra: str) -> list[str]:
    return ["parallel", "--src", str(src), "--tgt", str(tgt), "--src-lang", "en", "--tgt-lang", "de",
            "--output-dir", str(out), *extra]


def test_a_folder_given_as_an_input_file(tmp_path, capsys):
    _, tgt = parallel_corpus(tmp_path)
    folder = tmp_path / "corpus-folder"
    folder.mkdir()
    out = tmp_path / "out"
    assert cli.main(parallel_argv(folder, tgt, out)) == 2
    line = error_line(capsys, "parallel")
    assert f"{folder}: is a folder" in line and "pass a file" in line
    assert not out.exists()


def test_a_file_given_as_the_raw_folder(tmp_path, capsys):
    src, _ = parallel_corpus(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["spm-bin", "--raw-dir", str(src), "--output-dir", str(out)]) == 2
    line = error_line(capsys, "spm-bin")
    assert f"{src}: is not a folder" in line and "pass a folder" in line
    assert not out.exists()  # the output folder used to be made before the input was looked at


def test_a_read_only_output_folder(tmp_path, capsys, monkeypatch):
    src, tgt = parallel_corpus(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: answer as the OS answers anyone else
        real_mkstemp = tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == out:
                raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, ".train.en-de.en.x.tmp"))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        assert cli.main(parallel_argv(src, tgt, out)) == 2
        line = error_line(capsys, "parallel")
        assert f"error: {out}: permission denied" in line and "write to" in line  # the folder, not a temp name
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_a_full_disk_leaves_no_partial_split(tmp_path, capsys, monkeypatch):
    """The disk fills up while the third of six files is written: no side of any split may stay behind
    (a train.en-de.en without its .de would be read by spm-bin as a broken pair)."""
    src, tgt = parallel_corpus(tmp_path)
    out = tmp_path / "out"
    argv = parallel_argv(src, tgt, out, "--valid-fraction", "0.1", "--test-fraction", "0.1")
    real_fsync, calls = os.fsync, []

    def fsync_fails_on_the_third_file(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_on_the_third_file)
    assert cli.main(argv) == 2
    line = error_line(capsys, "parallel")
    assert f"error: {out}{os.sep}" in line and "no space left" in line and "free some space" in line
    assert not out.exists()
    monkeypatch.undo()  # space freed: the same command now completes
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.glob("*.en-de.*")) == sorted(
        f"{split}.en-de.{lang}" for split in ("train", "valid", "test") for lang in ("en", "de"))
