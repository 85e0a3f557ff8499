"""One command-line vocabulary across data-prep, nmt-* and xling (issue 15, item 5).

- every console script's parser names its outputs ``--output-dir`` (a directory) or ``--output`` (a file),
  has a one-line description and calls itself by its script name;
- the old spellings still work, store into the new flag and warn in one line;
- the adapter method names mean the same method in both hosts.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import tomllib
from argparse import Namespace
from pathlib import Path

import pytest

from adapter_core import COMPACTER_KINDS, canonical_placement

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
OUTPUT_FLAGS = {"--output", "--output-dir"}


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__(parser.prog)
        self.parser = parser


def script_parser(name: str) -> argparse.ArgumentParser | None:
    """The parser a console script builds (caught at parse_args), or None for a script without arguments."""
    module, _, function = SCRIPTS[name].partition(":")
    entry = getattr(importlib.import_module(module), function)
    if not inspect.signature(entry).parameters:
        return None

    def catch(self, args=None, namespace=None):
        raise _Parsed(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(_Parsed) as caught:
            entry(["--", "x"])  # nmt-ablate and nmt-generate-many split at "--" before parsing
    return caught.value.parser


def all_parsers(parser: argparse.ArgumentParser):
    """``parser`` and its subcommands' parsers, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from all_parsers(child)


def visible_actions(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_outputs_are_output_or_output_dir_and_help_is_one_line(name):
    parser = script_parser(name)
    if parser is None:
        return
    assert parser.prog == name
    assert parser.description and "\n" not in parser.description.strip(), parser.description
    for sub in all_parsers(parser):
        for action in visible_actions(sub):
            outputs = [s for s in action.option_strings if s.startswith("--out")]
            assert all(s in OUTPUT_FLAGS for s in outputs), (sub.prog, action.option_strings)
            if not action.option_strings:  # positionals are inputs
                assert "out" not in action.dest, (sub.prog, action.dest)
            if action.dest == "output_dir":
                assert action.option_strings == ["--output-dir"], (sub.prog, action.option_strings)
            if action.dest == "output":
                assert action.option_strings == ["--output"], (sub.prog, action.option_strings)


def _parsed_with_old_spelling(name: str, argv: list[str], capsys) -> tuple[Namespace, str]:
    args = script_parser(name).parse_args(argv)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is deprecated; use" in err, err
    return args, err


@pytest.mark.parametrize("name, argv, dest, new", [
    ("data-prep", ["pos", "--out", "d"], "output_dir", "--output-dir"),
    ("nmt-report", ["--system", "x=y", "--out", "d"], "output_dir", "--output-dir"),
    ("xling-tiny-model", ["--text", "t.txt", "--out", "d"], "output_dir", "--output-dir"),
    ("xling", ["train-lang", "--model", "m", "--lang", "sw", "--text", "t", "--output", "d"], "output_dir",
     "--output-dir"),
])
def test_old_output_spelling_still_works_and_warns(name, argv, dest, new, capsys):
    args, err = _parsed_with_old_spelling(name, argv, capsys)
    assert getattr(args, dest) in ("d", "s.json", Path("d"), Path("s.json")) and new in err


def test_export_adapters_positional_output_still_works(tmp_path, capsys):
    from nmt.cli import export_adapters_main

    with pytest.raises(SystemExit):  # the old positional is taken (then the checkpoint is missing)
        export_adapters_main([str(tmp_path / "missing.pt"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "the positional argument OUT_DIR is deprecated; use --output-dir" in err and "checkpoint not found" in err
    with pytest.raises(SystemExit):  # neither spelling: argparse's one-line error
        export_adapters_main([str(tmp_path / "missing.pt")])
    assert "required: --output-dir" in capsys.readouterr().err


def test_old_and_new_output_spelling_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        script_parser("data-prep").parse_args(["pos", "--out", "a", "--output-dir", "b"])
    assert "not allowed with argument" in capsys.readouterr().err


# -- method names ---------------------------------------------------------------------------------


def _nmt_args(**options) -> Namespace:
    args = dict(adapter_kind="bottleneck", adapter_placement="", adapter_phm_dim=4, adapter_dim=8,
                adapters_by="pair", adapter_init="preset", no_adapter_input_layer_norm=False)
    return Namespace(**{**args, **options})


def test_method_names_mean_the_same_method_in_both_hosts():
    from nmt.config import ADAPTER_KINDS as NMT_KINDS
    from nmt.config import adapter_module_config
    from xling.cli_methods import ADAPTER_KINDS as XLING_KINDS
    from xling.cli_methods import KIND_PLACEMENTS as XLING_PLACEMENTS

    assert NMT_KINDS == XLING_KINDS == ("bottleneck", "compacter", "compacter++")
    for kind, preset in COMPACTER_KINDS.items():
        config = adapter_module_config(_nmt_args(adapter_kind=kind), 16)
        assert config.preset == preset(16).preset
        two_sites = canonical_placement(config.placement) == "after_attention_and_ffn"
        assert two_sites == (canonical_placement(XLING_PLACEMENTS[kind]) == "after_attention_and_ffn")
        assert two_sites == (kind == "compacter")  # Compacter at Houlsby's sites, Compacter++ one per layer


def test_old_nmt_compacter_spelling_is_compacter_plus_plus_with_a_warning(capsys):
    from nmt.config import adapter_module_config

    args = _nmt_args(adapter_kind="compacter", adapter_placement="after_ffn")  # as old checkpoints saved it
    config = adapter_module_config(args, 16)
    err = capsys.readouterr().err.strip()
    assert config.preset == "compacter_plus_plus_2021" and config.placement == "after_ffn"
    assert args.adapter_kind == "compacter++" and "\n" not in err and "use --adapter-kind compacter++" in err
    with pytest.raises(ValueError, match="it is --adapter-kind compacter$"):
        adapter_module_config(_nmt_args(adapter_kind="compacter++", adapter_placement="houlsby"), 16)
