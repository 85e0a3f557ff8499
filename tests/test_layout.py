"""The library/studies split (issue 25, item 1), checked on the source: the packages import no study code,
adapter_core imports torch and safetensors only, nmt never imports transformers and xling never fairseq."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adapter_core", "nmt", "xling", "data_prep")
#: What each package may import besides the standard library and the packages named here.
ALLOWED = {
    "adapter_core": {"adapter_core", "torch", "safetensors"},
    "nmt": {"adapter_core", "nmt", "torch", "safetensors", "fairseq", "fairseq_cli", "tqdm", "omegaconf", "sacrebleu", "matplotlib",
            "numpy", "sentencepiece"},
    "xling": {"adapter_core", "xling", "data_prep",  # data_prep: the registry cache of import-e5
              "torch", "safetensors", "transformers", "datasets", "seqeval", "matplotlib",
              "numpy", "sentencepiece", "tokenizers", "accelerate", "pyarrow", "sacrebleu", "tqdm"},
    "data_prep": {"adapter_core", "data_prep", "sentencepiece", "numpy", "fairseq", "fairseq_cli", "tqdm", "torch"},
}


def imported_modules(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports (absolute imports only; relative ones stay inside)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_scanner_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\ndef f():\n    from studies.x import y\n    from . import z\n")
    assert imported_modules(source) == {"os", "studies"}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_its_layer_allows(package):
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((ROOT / package).rglob("*.py")):
        foreign = imported_modules(path) - stdlib - ALLOWED[package]
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_studies_are_outside_the_packages_and_call_the_library():
    studies = sorted((ROOT / "studies").glob("*.py"))
    assert len(studies) > 5
    used = set().union(*(imported_modules(path) for path in studies))
    assert {"adapter_core", "nmt", "xling"} <= used
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert not {"studies", "recipes"} & imported_modules(path), path
