"""Packaging (issue 25, item 7): one version, a LICENSE that matches pyproject, type hints shipped."""

import re
import tomllib
from pathlib import Path

import adapter_core
import data_prep
import nmt
import xling

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_version_is_written_once_and_every_package_reports_it():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "adapter_core._version.__version__"
    written = re.findall(r'__version__ = "([^"]+)"', (ROOT / "adapter_core" / "_version.py").read_text("utf-8"))
    assert len(written) == 1
    assert {adapter_core.__version__, nmt.__version__, xling.__version__, data_prep.__version__} == set(written)
    assert f"## {written[0]}" in (ROOT / "CHANGELOG.md").read_text("utf-8")


def test_license_file_is_the_license_pyproject_names_and_packages_are_typed():
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text("utf-8").startswith("MIT License")
    for package in ("adapter_core", "nmt", "xling", "data_prep"):
        assert (ROOT / package / "py.typed").is_file(), package
