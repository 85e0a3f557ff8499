"""Reliability round 3 (issue 26) for the fairseq plugin: lang+pair over missing language adapters, export over a
user's files, and one line instead of a traceback from fairseq-train/-generate (adapter folders, refused pickles)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt_helpers import LANG_FLAGS, USER_DIR, adapter_train_argv, run_train

ROOT = Path(__file__).resolve().parents[2]
LANGS = ["de", "en", "fr"]


@pytest.fixture(scope="module")
def language_adapters(nmt_run, tmp_path_factory) -> Path:
    """Language adapters of a short lang run, exported (langs/de, langs/en, langs/fr)."""
    from nmt.cli import export_adapters_main

    root = tmp_path_factory.mktemp("round3-langs")
    run_train(adapter_train_argv(nmt_run.data, nmt_run.base.parent, root / "lang", "--adapters-by", "lang",
                                 "--max-update", "2", "--disable-validation"))
    assert export_adapters_main([str(root / "lang" / "checkpoint_last.pt"), "--output-dir", str(root / "langs")]) == 0
    return root / "langs"


def _train_error(argv: list[str]) -> str:
    """fairseq-train (in-process) must fail; the one line our hook prints for its exception."""
    from nmt.one_line_errors import one_line

    with pytest.raises(Exception) as info:
        run_train(argv)
    line = one_line(info.value, argv)
    assert line is not None and "\n" not in line, info.value
    return line


# -- item 4: lang+pair refuses to train over a missing language adapter ------------------------------------


def test_lang_pair_training_refuses_missing_language_adapters(nmt_run, language_adapters, tmp_path):
    """--adapter-dirs without fr: fr's adapter stayed the identity, frozen, under training pair adapters, with
    only an INFO line; now refused naming fr, unless --adapter-lang-identity asks for it."""
    dirs = ",".join(str(language_adapters / lang) for lang in ("de", "en"))
    argv = adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "stack", "--adapters-by", "lang+pair",
                              "--adapter-dirs", dirs, "--max-update", "1", "--disable-validation")
    line = _train_error(argv)
    assert "no language adapter for fr" in line and "--adapter-lang-identity" in line
    assert not (tmp_path / "stack" / "checkpoint_last.pt").exists()
    run_train(argv + ["--adapter-lang-identity"])
    assert (tmp_path / "stack" / "checkpoint_last.pt").exists()


# -- item 10: --adapter-dirs errors are one line ---------------------------------------------------------


def test_a_folder_given_twice_is_named_not_an_architecture_mismatch(nmt_run, language_adapters, tmp_path):
    dirs = ",".join(str(language_adapters / lang) for lang in LANGS + ["de"])
    line = _train_error(adapter_train_argv(nmt_run.data, nmt_run.base.parent, tmp_path / "stack", "--adapters-by",
                                           "lang+pair", "--adapter-dirs", dirs, "--max-update", "1",
                                           "--disable-validation"))
    assert f"--adapter-dirs names {language_adapters / 'de'} twice" in line and "architectures" not in line


def _generate(nmt_run, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    """fairseq-generate as a user runs it (its own process, so the plugin's excepthook is what prints)."""
    command = [str(Path(sys.executable).parent / "fairseq-generate"), str(nmt_run.data), "--user-dir", USER_DIR,
               "--task", "adapter_translation", *LANG_FLAGS, "-s", "en", "-t", "de", "--gen-subset", "test",
               "--beam", "2", "--batch-size", "16", "--cpu", "--results-path", str(tmp_path / "results"), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("NMT_TRACEBACK", None)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert lines[-1].startswith("fairseq-generate: error: "), result.stderr[-3000:]
    assert not [line for line in lines[:-1] if "Error" in line or "error:" in line], result.stderr[-3000:]
    return lines[-1]


def test_fairseq_generate_prints_one_line_for_bad_adapter_dirs_and_refused_checkpoints(nmt_run, language_adapters,
                                                                                      tmp_path):
    missing = tmp_path / "nowhere"
    line = _one_error_line(_generate(nmt_run, tmp_path, "--path", str(nmt_run.base), "--adapter-dirs", str(missing)))
    assert f"adapter directory not found: {missing}" in line
    twice = f"{language_adapters / 'en'},{language_adapters / 'en'}"
    line = _one_error_line(_generate(nmt_run, tmp_path, "--path", str(nmt_run.base), "--adapter-dirs", twice))
    assert "twice" in line
    # item 11: a checkpoint that torch's weights-only loader refuses, in our words
    marker, evil = tmp_path / "payload-ran", tmp_path / "evil.pt"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').close()",)

    torch.save({"model": {}, "extra": Payload()}, evil)
    result = _generate(nmt_run, tmp_path, "--path", str(evil))
    line = _one_error_line(result)
    assert f"{evil}: refused" in line and "exec" in line and "fairseq-train" in line
    assert "weights_only" not in result.stderr and "safe_globals" not in result.stderr and not marker.exists()


# -- item 5: nmt-export-adapters keeps a user's files ----------------------------------------------------


def test_export_refuses_a_key_folder_holding_other_files(nmt_run, tmp_path, capsys):
    """DIR/<key>/ was replaced whole, deleting a user's own files in it: now refused, and the files kept; a
    rerun of the same export still replaces its own folder."""
    from nmt.cli import export_adapters_main

    out = tmp_path / "out"
    (out / "en-de").mkdir(parents=True)
    (out / "en-de" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de,de-en"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / "en-de") in err[0] and "notes.txt" in err[0], err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["en-de", "en-de/notes.txt"]
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(tmp_path / "fresh"), "--keys", "en-de"]) == 0
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(tmp_path / "fresh"), "--keys", "en-de"]) == 0
