"""The files a well-kept package has, and the install paths: pyproject.toml's metadata and
dependency split, LICENSE, CITATION.cff, CHANGELOG, CONTRIBUTING, py.typed; the Makefile's
two installs and the Python version check of scripts/install.sh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import binedu

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before Python 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
LAB_ONLY = {"jupyterlab", "notebook", "jupyter-server"}
TEST_ONLY = {"pytest", "hypothesis", "playwright", "ruff", "nbclient", "pytest-timeout"}
HEAVY = {"scikit-learn", "scipy"}


def names(lines: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in lines}


def test_runtime_dependencies_leave_out_the_lab_the_test_tools_and_scikit_learn():
    runtime = names(PROJECT["dependencies"])
    assert {"torch", "numpy", "ipywidgets", "matplotlib", "safetensors"} <= runtime
    assert not runtime & (LAB_ONLY | TEST_ONLY | HEAVY), sorted(runtime & (LAB_ONLY | TEST_ONLY | HEAVY))
    torch = next(Requirement(line) for line in PROJECT["dependencies"] if line.startswith("torch"))
    assert torch.specifier.contains("2.2.0") and not torch.specifier.contains("2.1.0"), "a normal torch>=2.2"


def test_lab_extra_is_the_front_end_and_test_extra_adds_the_tools():
    extras = PROJECT["optional-dependencies"]
    lab, test = names(extras["lab"]), names(extras["test"])
    assert "jupyterlab" in lab and not lab & TEST_ONLY
    assert TEST_ONLY <= test
    assert "binedu[lab]" in extras["test"], "the test extra includes the lab (notebook and browser tests)"


def test_license_is_an_spdx_expression_with_its_text_shipped():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "binedu developers" in text and "2026" in text
    assert not any("License ::" in c for c in PROJECT.get("classifiers", [])), "no license classifier with SPDX"


def test_version_is_written_once():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "binedu.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", binedu.__version__)
    init = (REPO / "binedu" / "__init__.py").read_text(encoding="utf-8")
    assert init.count(binedu.__version__) == 1


def test_urls_and_typed_marker():
    urls = PROJECT["urls"]
    assert urls["Source"].startswith("https://github.com/") and "2509.07025" in urls["Paper"]
    assert (REPO / "binedu" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["binedu"]


def test_shipped_data_files_are_package_data():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["binedu.data"]
    folder = REPO / "binedu" / "data"
    for required in ("files/digits.csv.gz", "files/README"):
        assert any((folder / required) in folder.glob(pattern) for pattern in patterns), required


def test_citation_cites_the_paper_and_binedu():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and "binedu" in cff["title"]
    assert str(cff["version"]) == binedu.__version__
    paper = cff["preferred-citation"]
    assert paper["title"] == "1 bit is all we need: binary normalized neural networks"
    assert [a["family-names"] for a in paper["authors"]] == ["Cabral", "Pirozelli", "Driemeier"]
    assert paper["year"] == 2025 and "2509.07025" in paper["url"]
    assert any("2509.07025" in ref.get("url", "") for ref in cff["references"])


def test_changelog_has_this_version_and_contributing_the_essentials():
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{binedu.__version__}]" in changelog and "## [0.1.0]" in changelog
    contributing = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for needed in ("make test", "without outputs", "binedu/course/exercises/", "scripts/stamp_notebooks.py"):
        assert needed in contributing, needed


def test_constraints_pin_torch_for_the_makefile_only():
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins == ["torch==2.13.0"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("target", "extras"), [("lab", "lab"), ("install-lab", "lab"), ("install", "lab,test")])
def test_make_installs_the_right_extras(target, extras, tmp_path):
    """`make -n` prints the commands without running them."""
    out = subprocess.run(
        ["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert re.search(rf"bash scripts/install\.sh {re.escape(extras)}$", out, re.M), out


def test_install_script_refuses_an_old_python_before_creating_anything(tmp_path):
    fake = tmp_path / "python3.9"
    fake.write_text('#!/bin/sh\ncase "$2" in *version_info*) exit 1;; *) echo 3.9.6;; esac\n')
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    env = {**os.environ, "PYTHON": str(fake), "VENV": str(venv)}
    result = subprocess.run(
        ["bash", "scripts/install.sh", "lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Python 3.9.6" in result.stderr and "3.10 or newer" in result.stderr and "PYTHON=" in result.stderr
    assert not venv.exists()


def test_install_script_names_a_missing_python(tmp_path):
    env = {**os.environ, "PYTHON": "python-that-does-not-exist", "VENV": str(tmp_path / "venv")}
    result = subprocess.run(
        ["bash", "scripts/install.sh", "lab"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "python-that-does-not-exist was not found" in result.stderr
