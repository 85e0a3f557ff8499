"""One command line per host (issue 25, item 2) with one vocabulary across them (issue 15, item 5).

- pyproject lists one console script per host plus data-prep: ``nmt``, ``xling``, ``data-prep``;
- ``--help`` exits 0 on every verb of each, and start-up prints no third-party INFO lines;
- every verb's parser names its outputs ``--output-dir`` (a directory) or ``--output`` (a file), has a one-line
  description and calls itself ``SCRIPT VERB``;
- the adapter method names mean the same method in both hosts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from argparse import Namespace
from pathlib import Path

import pytest

from adapter_core import COMPACTER_KINDS, canonical_placement, resolve_kind_placement

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
OUTPUT_FLAGS = {"--output", "--output-dir"}


def test_one_console_script_per_host_plus_data_prep():
    assert SCRIPTS == {"nmt": "nmt.cli:main", "xling": "xling.cli:main", "data-prep": "data_prep.cli:main"}


def _nmt_verbs() -> list[str]:
    from nmt.cli import VERBS

    return list(VERBS)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def verb_parsers() -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(script, verb, the verb's parser) for every verb of the three console scripts."""
    from data_prep.cli import build_parser as data_prep_parser
    from xling.cli import build_parser as xling_parser

    found = [(script, verb, parser) for script, build in (("xling", xling_parser), ("data-prep", data_prep_parser))
             for verb, parser in _subcommands(build()).items()]
    return found + [("nmt", verb, nmt_verb_parser(verb)) for verb in _nmt_verbs()]


class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__(parser.prog)
        self.parser = parser


def nmt_verb_parser(verb: str) -> argparse.ArgumentParser:
    """The parser ``nmt VERB`` builds (caught when it parses; nothing runs)."""
    from nmt.cli import main

    original = argparse.ArgumentParser.parse_args

    def catch(self, args=None, namespace=None):
        if self.prog == f"nmt {verb}":
            raise _Parsed(self)
        return original(self, args, namespace)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(_Parsed) as caught:
            main([verb, "--", "x"])  # ablate, fusion-weights and generate-many split at "--" before parsing
    return caught.value.parser


def _main(script: str):
    from data_prep.cli import main as data_prep_main
    from nmt.cli import main as nmt_main
    from xling.cli import main as xling_main

    return {"nmt": nmt_main, "xling": xling_main, "data-prep": data_prep_main}[script]


def test_help_exits_0_on_every_verb_and_on_each_script(capsys):
    verbs = verb_parsers()
    assert {script for script, _, _ in verbs} == set(SCRIPTS)
    assert len(verbs) > 25
    for script, verb, _ in verbs:
        with pytest.raises(SystemExit) as done:
            _main(script)([verb, "--help"])
        assert done.value.code == 0, (script, verb)
        assert "usage:" in capsys.readouterr().out, (script, verb)
    for script in SCRIPTS:
        with pytest.raises(SystemExit) as done:
            _main(script)(["--help"])
        assert done.value.code == 0
        listing = capsys.readouterr().out
        assert all(verb in listing for s, verb, _ in verbs if s == script), script


def test_every_verb_is_documented_in_its_hosts_guide():
    guides = {"nmt": "docs/nmt.md", "xling": "docs/xling.md", "data-prep": "docs/data.md"}
    for script, verb, _ in verb_parsers():
        assert f"| `{verb}` |" in (ROOT / guides[script]).read_text("utf-8"), (script, verb)


def test_an_unknown_verb_is_a_one_line_error(capsys):
    for script in SCRIPTS:
        with pytest.raises(SystemExit) as done:
            _main(script)(["no-such-verb"])
        assert done.value.code == 2
        assert "invalid choice: 'no-such-verb'" in capsys.readouterr().err


@pytest.mark.parametrize("script, module", [("nmt", "nmt.cli"), ("xling", "xling.cli"), ("data-prep", "data_prep.cli")])
def test_start_up_prints_no_third_party_info_lines(script, module):
    code = f"import sys; from {module} import main; sys.exit(main(['--help']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout
    assert done.stderr == "", done.stderr


def test_nmt_help_imports_no_verb_and_xling_help_no_transformers():
    code = ("import sys; from nmt.cli import build_parser; import xling.cli; "
            "print(sorted(m for m in sys.modules if m in ('nmt.report', 'nmt.ablation', 'nmt.generate_many', "
            "'transformers')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def visible_actions(parser: argparse.ArgumentParser):
    return [a for a in parser._actions if a.help is not argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_outputs_are_output_or_output_dir_and_progs_name_script_and_verb():
    for script, verb, parser in verb_parsers():
        assert parser.prog.endswith(f"{script} {verb}"), (parser.prog, script, verb)
        if script == "nmt":  # argparse's subparsers take their one-line help from the parent
            assert parser.description and "\n" not in parser.description.strip(), parser.description
        for action in visible_actions(parser):
            outputs = [s for s in action.option_strings if s.startswith("--out")]
            assert all(s in OUTPUT_FLAGS for s in outputs), (parser.prog, action.option_strings)
            if not action.option_strings:  # positionals are inputs
                assert "out" not in action.dest, (parser.prog, action.dest)
            if action.dest == "output_dir":
                assert action.option_strings == ["--output-dir"], (parser.prog, action.option_strings)
            if action.dest == "output":
                assert action.option_strings == ["--output"], (parser.prog, action.option_strings)


def test_the_old_positional_output_is_gone(capsys):
    from nmt.cli import export_adapters_main

    with pytest.raises(SystemExit):  # the old positional output directory is no longer taken
        export_adapters_main([str(ROOT / "missing.pt"), str(ROOT / "out")])
    assert "required: --output-dir" in capsys.readouterr().err


# -- method names ---------------------------------------------------------------------------------


def _nmt_args(**options) -> Namespace:
    args = dict(adapter_kind="bottleneck", adapter_placement="", adapter_phm_dim=4, adapter_dim=8,
                adapters_by="pair", adapter_init="preset", no_adapter_input_layer_norm=False)
    return Namespace(**{**args, **options})


def test_method_names_mean_the_same_method_in_both_hosts():
    from nmt.config import ADAPTER_KINDS as NMT_KINDS
    from nmt.config import adapter_module_config
    from xling.kinds import ADAPTER_KINDS as XLING_KINDS
    from xling.kinds import XLING_SITES

    assert NMT_KINDS is XLING_KINDS  # the one table, adapter_core.flags.KINDS
    assert NMT_KINDS == ("bottleneck", "compacter", "compacter++", "lora", "prefix_tuning")
    config = adapter_module_config(_nmt_args(adapter_kind="lora", adapter_lora_alpha=8.0), 16)
    assert config.placement == resolve_kind_placement("lora", None, XLING_SITES) == "query_value"  # LoRA: W_q, W_v
    with pytest.raises(ValueError, match="--adapter-kind prefix_tuning goes at placement prefix, which this host"):
        adapter_module_config(_nmt_args(adapter_kind="prefix_tuning"), 16)  # fairseq has no keys/values site
    for kind, preset in COMPACTER_KINDS.items():
        config = adapter_module_config(_nmt_args(adapter_kind=kind), 16)
        assert config.preset == preset(16).preset
        two_sites = canonical_placement(config.placement) == "houlsby"
        assert two_sites == (resolve_kind_placement(kind, None, XLING_SITES) == "houlsby")
        assert two_sites == (kind == "compacter")  # Compacter at Houlsby's sites, Compacter++ one per layer


def test_nmt_compacter_in_one_place_per_layer_is_refused_naming_compacter_plus_plus():
    from nmt.config import adapter_module_config

    with pytest.raises(ValueError, match="it is --adapter-kind compacter\\+\\+$"):
        adapter_module_config(_nmt_args(adapter_kind="compacter", adapter_placement="output"), 16)
    with pytest.raises(ValueError, match="it is --adapter-kind compacter$"):
        adapter_module_config(_nmt_args(adapter_kind="compacter++", adapter_placement="houlsby"), 16)
