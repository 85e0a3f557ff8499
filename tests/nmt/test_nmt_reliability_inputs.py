"""Bad input through the user-facing commands: fairseq-generate with --user-dir, and nmt export.

fairseq's command-line mains do not catch exceptions, so what the user sees
last is the exception's type and message; these tests check that message
(it names the file, key or language, and what exists) and, for the export
command, that nothing partial is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from adapter_core import AdapterFormatError, FingerprintMismatchError, UnknownAdapterError

from nmt_helpers import LANG_FLAGS, TRAIN_PAIRS, USER_DIR


def fairseq_generate(data: Path, checkpoint: Path, src: str, tgt: str, results: Path, *extra: str) -> list[str]:
    """fairseq-generate (its ``main``, in-process) on the test split; returns the hypothesis lines."""
    from fairseq import options
    from fairseq_cli import generate

    args = options.parse_args_and_arch(options.get_generation_parser(), [
        str(data), "--user-dir", USER_DIR, "--task", "adapter_translation", *LANG_FLAGS, "-s", src, "-t", tgt,
        "--path", str(checkpoint), "--gen-subset", "test", "--beam", "2", "--batch-size", "16", "--cpu",
        "--results-path", str(results), *extra])
    generate.main(args)
    lines = (results / "generate-test.txt").read_text(encoding="utf-8").splitlines()
    hypotheses = [line for line in lines if line.startswith("H-")]
    assert len(hypotheses) == sum(line.startswith("S-") for line in lines)
    return hypotheses


@pytest.fixture(scope="module")
def exported(nmt_run, tmp_path_factory) -> Path:
    """The en-de adapter of the session's pair checkpoint, through nmt export."""
    from nmt.cli import export_adapters_main

    out = tmp_path_factory.mktemp("exported")
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de"]) == 0
    return out / "en-de"


def _copy(adapter: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for file in adapter.iterdir():
        (to / file.name).write_bytes(file.read_bytes())
    return to


def test_generate_pair_without_adapter_lists_the_pairs_that_exist(nmt_run, tmp_path):
    with pytest.raises(UnknownAdapterError) as info:
        fairseq_generate(nmt_run.data, nmt_run.pair, "de", "fr", tmp_path)
    assert "'de-fr'" in str(info.value) and all(pair in str(info.value) for pair in TRAIN_PAIRS)


def test_generate_unknown_language_lists_the_languages(nmt_run, tmp_path):
    with pytest.raises(ValueError, match=r"xx.*'en', 'de', 'fr'"):
        fairseq_generate(nmt_run.data, nmt_run.pair, "xx", "de", tmp_path)


def test_generate_refuses_a_foreign_adapter_unless_forced(nmt_run, exported, tmp_path):
    foreign = _copy(exported, tmp_path / "foreign" / "en-de")
    document = json.loads((foreign / "adapter_config.json").read_text())
    document["base_fingerprint"] = "sha256:" + "0" * 64  # made for another base
    (foreign / "adapter_config.json").write_text(json.dumps(document))
    with pytest.raises(FingerprintMismatchError, match=f"adapter {foreign} was trained on base sha256:0000"):
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path / "refused", "--adapter-dirs", str(foreign))
    forced = fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path / "forced", "--adapter-dirs",
                              str(foreign), "--adapter-force")
    assert forced and all(line.split("\t")[2].strip() for line in forced)


def test_generate_names_both_shapes_of_an_adapter_that_does_not_fit(nmt_run, exported, tmp_path):
    narrow = _copy(exported, tmp_path / "narrow" / "en-de")
    tensors = load_file(narrow / "adapter_model.safetensors")
    tensors["encoder.layers.1.down.weight"] = tensors["encoder.layers.1.down.weight"][:4].contiguous()
    save_file(tensors, narrow / "adapter_model.safetensors")
    with pytest.raises(AdapterFormatError, match=rf"{narrow}: tensor encoder.layers.1.down.weight has shape \(4, 32\) "
                                                  r"in the adapter but \(8, 32\) in the host"):
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path, "--adapter-dirs", str(narrow))


@pytest.mark.parametrize("damage, message", [
    ("truncate_weights", r"adapter_model.safetensors: truncated or corrupt safetensors file"),
    ("break_json", r"adapter_config.json: invalid JSON at line \d+, column \d+"),
    ("drop_weights", r"adapter_model.safetensors: missing"),
    ("bad_config_field", r"adapter_config.json: bad 'config' entry: unknown adapter config fields: colour"),
])
def test_generate_reports_a_broken_adapter_directory_by_file(nmt_run, exported, tmp_path, damage, message):
    broken = _copy(exported, tmp_path / "broken" / "en-de")
    weights, config = broken / "adapter_model.safetensors", broken / "adapter_config.json"
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "break_json":
        config.write_text(config.read_text()[:40])
    elif damage == "drop_weights":
        weights.unlink()
    else:
        document = json.loads(config.read_text())
        document["config"]["colour"] = "blue"
        config.write_text(json.dumps(document))
    with pytest.raises(AdapterFormatError, match=message) as info:
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path / "out", "--adapter-dirs", str(broken))
    assert str(broken) in str(info.value)


def test_generate_names_a_missing_adapter_directory(nmt_run, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"adapter directory not found: {tmp_path / 'nowhere'}"):
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path, "--adapter-dirs", str(tmp_path / "nowhere"))


# -- nmt export --------------------------------------------------------
def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.rglob("*") if p.name.endswith((".tmp", ".old")))


def test_export_of_a_broken_checkpoint_is_a_clear_error_with_no_output(nmt_run, tmp_path, capsys):
    from nmt.cli import export_adapters_main

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(nmt_run.pair.read_bytes()[:20000])
    assert export_adapters_main([str(truncated), "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"nmt export: error: {truncated}: not a readable fairseq checkpoint")
    assert export_adapters_main([str(nmt_run.base), "--output-dir", str(tmp_path / "out")]) == 1  # a base without adapters
    assert "needs an adapter_transformer model" in capsys.readouterr().err
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(tmp_path / "out"), "--keys", "en-de,xx-yy"]) == 1
    assert "no adapter 'xx-yy' in the checkpoint; it has: de-en, en-de, en-fr, fr-en" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_export_failing_midway_leaves_no_partial_adapter(nmt_run, tmp_path, monkeypatch, capsys):
    import nmt.adapter_files as adapter_files
    from nmt.cli import export_adapters_main

    out = tmp_path / "out"
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_save, calls = adapter_files.save_adapter, []

    def save_then_fail(directory, *args, **kwargs):
        calls.append(directory)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")  # the disk fills up while writing the second adapter
        return real_save(directory, *args, **kwargs)

    monkeypatch.setattr(adapter_files, "save_adapter", save_then_fail)
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de,de-en"]) == 1  # not a traceback
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"nmt export: error: {out}: no space left") and "free some space" in line
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the old en-de is intact, no half-written de-en
    assert _leftovers(tmp_path) == []


def test_generate_refuses_two_directories_for_one_adapter_key(nmt_run, exported, tmp_path):
    """The last of two same-key --adapter-dirs used to win without a word: now both are named."""
    second = _copy(exported, tmp_path / "elsewhere" / "en-de")
    with pytest.raises(AdapterFormatError, match=f"{second}: adapter 'en-de' is also given by {exported}"):
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path / "r", "--adapter-dirs",
                         f"{exported},{second}")


def test_export_with_a_key_named_twice_keeps_the_export(nmt_run, tmp_path):
    """`--keys en-de,en-de` used to move the good export aside and fail with ENOENT."""
    from nmt.cli import export_adapters_main

    out = tmp_path / "out"
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de"]) == 0
    before = (out / "en-de" / "adapter_model.safetensors").read_bytes()
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(out), "--keys", "en-de,en-de"]) == 0
    assert (out / "en-de" / "adapter_model.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["en-de"]  # nothing hidden left behind


@pytest.mark.parametrize("metadata", [[1], {"adapters_by": ["pair"]}, {"adapters_by": "sentence"}])
def test_generate_names_the_folder_whose_metadata_is_malformed(nmt_run, exported, tmp_path, metadata):
    """`"metadata": [1]` or a list-valued adapters_by was read before any type check: AttributeError or
    "unhashable type: 'list'", naming nothing."""
    broken = _copy(exported, tmp_path / "broken" / "en-de")
    config = broken / "adapter_config.json"
    document = json.loads(config.read_text())
    document["metadata"] = {**document["metadata"], **metadata} if isinstance(metadata, dict) else metadata
    config.write_text(json.dumps(document))
    with pytest.raises(AdapterFormatError, match=r"metadata") as info:
        fairseq_generate(nmt_run.data, nmt_run.base, "en", "de", tmp_path / "out", "--adapter-dirs", str(broken))
    assert str(config) in str(info.value) and "\n" not in str(info.value)


def test_export_into_a_file_is_one_line_and_leaves_the_file(nmt_run, tmp_path, capsys):
    from nmt.cli import export_adapters_main

    target = tmp_path / "out"
    target.write_text("not a folder\n")
    assert export_adapters_main([str(nmt_run.pair), "--output-dir", str(target), "--keys", "en-de"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"nmt export: error: {target}: already exists and is not a folder")
    assert target.read_text() == "not a folder\n" and _leftovers(tmp_path) == []


def test_export_from_another_folder_suggests_data(nmt_run, tmp_path, monkeypatch, capsys):
    """A checkpoint trained as `fairseq-train bin ...` records the relative path `bin`: exported from another
    folder it failed on bin/dict.de.txt without a word about --data."""
    import torch

    import nmt  # noqa: F401  (allows the checkpoint's globals)
    from nmt.cli import export_adapters_main

    state = torch.load(nmt_run.pair, weights_only=True)
    for part in state["cfg"].values():  # the task (and model) config: an argparse.Namespace for this task
        if isinstance(part, dict) and "data" in part:
            part["data"] = "bin"
        elif hasattr(part, "data"):
            part.data = "bin"
    relative = tmp_path / "relative.pt"
    torch.save(state, relative)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert export_adapters_main([str(relative), "--output-dir", str(tmp_path / "out"), "--keys", "en-de"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("nmt export: error: bin/dict.") and f"current folder {elsewhere}" in line
    assert "pass --data" in line and not (tmp_path / "out").exists()
    assert export_adapters_main([str(relative), "--output-dir", str(tmp_path / "out"), "--keys", "en-de", "--data",
                                 str(nmt_run.data)]) == 0
    monkeypatch.chdir(nmt_run.root)  # where `bin` is
    assert export_adapters_main([str(relative), "--output-dir", str(tmp_path / "out2"), "--keys", "en-de"]) == 0


class _Payload:
    """Pickles as a call of ``function(argument)``: what a malicious checkpoint runs under plain pickle."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("blocked", [True, False])
def test_export_refuses_disallowed_globals_without_torchs_advice(tmp_path, capsys, blocked):
    """torch's refusal came with its advice to retry with weights_only=False (or to allow-list the global):
    now our own advice, and no payload runs."""
    import os

    import torch

    from nmt.cli import export_adapters_main

    marker = tmp_path / "payload-ran"
    payload = (_Payload(os.system, f"touch {marker}") if blocked  # a module torch blocks outright
               else _Payload(exec, f"open({str(marker)!r}, 'w').close()"))  # one it does not allow by default
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "extra": payload}, evil)
    assert export_adapters_main([str(evil), "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"nmt export: error: {evil}: ") and ("system" if blocked else "exec") in line
    assert "allow-list" in line and "fairseq-train" in line and "truncated" not in line
    assert "weights_only" not in err and "add_safe_globals" not in err and "safe_globals" not in err
    assert not marker.exists() and not (tmp_path / "out").exists()
