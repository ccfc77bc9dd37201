"""environment.yml (conda and Binder) agrees with pyproject.toml, and README points to Binder.

The environment holds pyproject's runtime dependencies plus its ``lab`` extra (Binder runs
JupyterLab), never the ``test`` extra.

Nobody builds the conda environment in CI (no conda registry there), so this checks what
a build depends on: Binder (repo2docker) reads the root environment.yml unless a
binder/ or .binder/ folder exists, installs binedu only through the pip section's
``-e .``, and picks its base environment from the ``python=X.Y`` pin. PyTorch comes from
conda-forge's CPU build; mixing in the ``pytorch`` channel breaks the solve.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before Python 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYTHON = "3.11"  # the version CI runs; repo2docker has a base environment for it
# PyPI name -> conda-forge name, where they differ. matplotlib-base is matplotlib without
# the Qt stack that conda-forge's plain `matplotlib` pulls in.
CONDA_NAMES = {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base", "jupyterlab-widgets": "jupyterlab_widgets"}
CONDA_ONLY = {"python", "pip"}
FORBIDDEN = {"pytorch", "torch", "pytorch-gpu", "pytorch-cuda", "cudatoolkit", "cpuonly"}
CONDA_SPEC = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*)$")

FIRST_NOTEBOOK = "notebooks/01_why_one_bit.ipynb"
BINDER_BADGE = (
    "[![Binder](https://mybinder.org/badge_logo.svg)]"
    f"(https://mybinder.org/v2/gh/binedu/binedu/HEAD?urlpath=lab/tree/{FIRST_NOTEBOOK})"
)
# the install routes a newcomer is shown, in the README or in the site's guides (docs/)
INSTALL_COMMANDS = [
    "make lab",
    "make test",
    "pip install",
    "conda env create -f environment.yml",
    "conda activate binedu",
]


def load_environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text(encoding="utf-8"))


def conda_specs(environment: dict) -> dict[str, str]:
    """The conda dependencies as {name: version spec}; the pip section is left out."""
    specs: dict[str, str] = {}
    for dependency in environment["dependencies"]:
        if isinstance(dependency, str):
            match = CONDA_SPEC.match(dependency.strip())
            assert match, f"unreadable conda dependency {dependency!r}"
            name = match.group(1).lower()
            assert name not in specs, f"{name} is listed twice in environment.yml"
            specs[name] = match.group(2).replace(" ", "")
    return specs


def pip_section(environment: dict) -> list[str]:
    sections = [dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict) and "pip" in dep]
    assert len(sections) == 1, "environment.yml needs exactly one pip section"
    return [str(line).strip() for line in sections[0]]


def load_project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def runtime_requirements(extras: tuple[str, ...] = ("lab",)) -> dict[str, SpecifierSet]:
    """pyproject.toml's [project] dependencies plus those of ``extras``, as
    {conda name: specifier}."""
    project = load_project()
    lines = project["dependencies"] + [line for extra in extras for line in project["optional-dependencies"][extra]]
    requirements = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        requirements[CONDA_NAMES.get(name, name)] = requirement.specifier
    return requirements


def test_environment_uses_conda_forge_only() -> None:
    environment = load_environment()
    assert environment["name"] == "binedu"
    assert environment["channels"] == ["conda-forge"], "no `pytorch` or `defaults` channel: conda-forge only"
    assert "matplotlib" not in conda_specs(environment), "matplotlib-base: plain matplotlib pulls the Qt stack"
    for dependency in conda_specs(environment):
        assert "::" not in dependency, f"{dependency}: no per-package channel"


def test_environment_pins_the_ci_python() -> None:
    specs = conda_specs(load_environment())
    assert specs.get("python") == f"={PYTHON}", f"pin python={PYTHON} (Binder picks its base image from it)"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{PYTHON}.0"), f"pyproject's requires-python {requires} excludes {PYTHON}"


def test_environment_takes_pytorch_cpu_from_conda_forge() -> None:
    specs = conda_specs(load_environment())
    assert "pytorch-cpu" in specs
    assert not FORBIDDEN & set(specs), f"use pytorch-cpu only, not {sorted(FORBIDDEN & set(specs))}"
    pip_names = [
        canonicalize_name(Requirement(line).name) for line in pip_section(load_environment()) if line[0] != "-"
    ]
    assert "torch" not in pip_names, "torch from pip would replace conda-forge's CPU build"


def test_environment_lists_the_runtime_and_lab_dependencies_of_pyproject() -> None:
    specs = conda_specs(load_environment())
    requirements = runtime_requirements()
    missing = sorted(set(requirements) - set(specs))
    extra = sorted(set(specs) - set(requirements) - CONDA_ONLY)
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"
    assert not extra, f"in environment.yml but not in pyproject.toml: {extra}"
    for name, specifier in requirements.items():
        if name == "pytorch-cpu":  # pinned to the tested torch: test_environment_pins_the_torch_that_ci_tests
            continue
        assert SpecifierSet(specs[name]) == specifier, (
            f"{name}: environment.yml says {specs[name]!r}, pyproject.toml says {str(specifier)!r}"
        )


def constraints_pin(package: str) -> Requirement:
    """constraints.txt's pin of ``package`` (the torch that scripts/install.sh installs and CI tests)."""
    lines = [line.split("#")[0].strip() for line in (REPO / "constraints.txt").read_text().splitlines()]
    pins = [Requirement(line) for line in lines if line and canonicalize_name(Requirement(line).name) == package]
    assert len(pins) == 1, f"constraints.txt must pin {package} once, found {pins}"
    return pins[0]


def test_environment_pins_the_torch_that_ci_tests() -> None:
    """One torch across routes: Binder and conda get the version that `make test` (so CI)
    installs and tests, not whatever pytorch-cpu>=2.2 resolves to on the day."""
    pin = constraints_pin("torch")
    (exact,) = [spec for spec in pin.specifier if spec.operator == "=="]
    conda = SpecifierSet(conda_specs(load_environment())["pytorch-cpu"])
    assert [(s.operator, s.version) for s in conda] == [("==", exact.version)], (
        f"environment.yml must pin pytorch-cpu=={exact.version} (constraints.txt), not {conda}"
    )
    assert runtime_requirements()["pytorch-cpu"].contains(exact.version), "the pin must satisfy pyproject's torch"


def test_environment_keeps_lab_kernel_and_widgets_together() -> None:
    specs = conda_specs(load_environment())
    assert {"jupyterlab", "ipywidgets", "pip"} <= set(specs)
    assert SpecifierSet(specs["ipywidgets"]).contains("8.1.0"), "ipywidgets 8 ships the JupyterLab 4 front end"
    assert not SpecifierSet(specs["jupyterlab"]).contains("3.6.0"), "JupyterLab 4 or later"


def test_environment_installs_binedu_itself() -> None:
    assert "-e ." in pip_section(load_environment()), "Binder installs binedu only through `-e .`"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "binedu"


def test_binder_reads_the_root_environment_file() -> None:
    for folder in ("binder", ".binder"):
        assert not (REPO / folder).exists(), f"{folder}/ would replace the root environment.yml on Binder"
    post_build = REPO / "postBuild"
    if post_build.exists():
        commands = [
            line.strip() for line in post_build.read_text().splitlines() if line.strip() and not line.startswith("#")
        ]
        assert commands[0] == "set -e", "postBuild must start with `set -e` so a failed step fails the build"


def test_readme_has_the_binder_badge_and_the_install_routes_are_shown() -> None:
    readme_path = REPO / "README.md"
    assert readme_path.exists(), "README.md is missing"
    readme = readme_path.read_text(encoding="utf-8")
    assert BINDER_BADGE in readme, f"README needs the Binder badge: {BINDER_BADGE}"
    shown = "\n".join([readme, *(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").rglob("*.md")))])
    for command in INSTALL_COMMANDS:
        assert command in shown, f"the README or the guides in docs/ should show `{command}`"


def test_binder_badge_opens_an_existing_notebook() -> None:
    assert (REPO / FIRST_NOTEBOOK).is_file(), f"the Binder badge opens {FIRST_NOTEBOOK}, which does not exist"


def test_environment_leaves_out_the_test_tools() -> None:
    specs = conda_specs(load_environment())
    tools = {canonicalize_name(Requirement(line).name) for line in load_project()["optional-dependencies"]["test"]}
    extra_tools = (tools - set(runtime_requirements())) & set(specs)
    assert not extra_tools, f"Binder needs no test tools: {sorted(extra_tools)}"
