"""The built package, as pip users get it: ``python -m build`` makes an sdist and a wheel
(built from the sdist, as PyPI users' pip would), ``twine check`` passes them, and the
wheel installed into a fresh venv runs the README's ten-line example, copies the course
with ``binedu course DIR`` and ``python -m binedu course DIR``, and one copied notebook
executes there.

The fresh venv gets no packages of its own but its pip (ensurepip, offline) and binedu
from the wheel (``--no-deps``):
its dependencies (torch, ipykernel, ...) are the project venv's, seen through one ``.pth``
path line, so the test downloads nothing. A path line in a ``.pth`` file does not run the
``.pth`` files of the folder it adds, so the project's own (editable) binedu stays
invisible; every check asserts that ``binedu.__file__`` lies in the fresh venv.

One copied notebook is executed, not all of them: the copies are checked byte for byte
against notebooks/, whose every notebook tests/test_notebooks.py executes already, so what
is left to prove is that a notebook runs against the installed wheel (its imports, the data
it reads from the package). 03 trains on the digits shipped as package data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXECUTED = "03_why_normalization.ipynb"
TIMEOUT_S = 600


def run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )  # fmt: skip
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def ten_line_example() -> str:
    """The README's ten-line example: its first python block that builds ``BinaryLinear``
    layers and trains them (the rule tests/test_readme.py uses to find it)."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    return next(b for b in blocks if "BinaryLinear" in b and "opt.step()" in b)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built without build isolation (the test extra has
    setuptools, build and twine) so that nothing is downloaded."""
    out = tmp_path_factory.mktemp("dist")
    egg_info = REPO / "binedu.egg-info"  # the sdist step writes it into the checkout
    existed = egg_info.exists()
    try:
        run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], cwd=REPO)
    finally:
        if not existed:
            shutil.rmtree(egg_info, ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> dict[str, Path]:
    """A fresh venv holding binedu from the wheel, and an environment without PYTHONPATH."""
    root = tmp_path_factory.mktemp("fresh") / "venv"
    run([sys.executable, "-m", "venv", root], cwd=root.parent)  # with its own pip (ensurepip, offline)
    python = root / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).stdout.strip())
    (wheel,) = dist.glob("binedu-*.whl")
    # before the .pth: pip would take the project's editable binedu for an installed one
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nor one found through PYTHONPATH
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", wheel], root, env)
    assert (purelib / "binedu" / "__init__.py").is_file()
    (purelib / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return {"root": root, "python": python, "purelib": purelib}


@pytest.fixture
def clean_env(monkeypatch) -> dict[str, str]:
    """This process's environment minus PYTHONPATH (which may point at the checkout)."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return dict(os.environ)


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(dist):
    (sdist,) = dist.glob("binedu-*.tar.gz")
    (wheel,) = dist.glob("binedu-*-py3-none-any.whl")
    result = run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel], cwd=dist)
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_ships_the_notebooks_and_the_data(dist):
    (wheel,) = dist.glob("binedu-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("binedu/course/notebooks/"))
    assert shipped == [p.name for p in NOTEBOOKS] and len(shipped) >= 8
    assert {"binedu/py.typed", "binedu/data/files/digits.csv.gz"} <= names
    assert not any(n.startswith(("tests/", "notebooks/", "bench/")) for n in names)


def test_binedu_comes_from_the_wheel(venv, clean_env):
    out = run([venv["python"], "-c", "import binedu, torch; print(binedu.__file__)"], cwd=venv["root"], env=clean_env)
    assert Path(out.stdout.strip()).is_relative_to(venv["purelib"]), out.stdout


def test_readme_ten_line_example_runs_against_the_wheel(venv, clean_env, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(ten_line_example() + "\nimport binedu\nprint('BINEDU_FILE', binedu.__file__)\n")
    out = run([venv["python"], script], cwd=tmp_path, env=clean_env).stdout
    assert Path(re.search(r"BINEDU_FILE (.+)", out).group(1)).is_relative_to(venv["purelib"])
    accuracy = float(re.search(r"tensor\(([0-9.]+)\)\s*\nBINEDU_FILE", out).group(1))  # the example's last print
    assert accuracy > 0.85, out  # chance is 0.25


@pytest.mark.parametrize("command", [["bin/binedu"], ["bin/python", "-m", "binedu"]], ids=["script", "module"])
def test_course_command_copies_the_notebooks(venv, clean_env, tmp_path, command):
    folder = tmp_path / "course"
    out = run([venv["root"] / command[0], *command[1:], "course", folder], cwd=tmp_path, env=clean_env).stdout
    assert [p.name for p in sorted(folder.iterdir())] == [p.name for p in NOTEBOOKS]
    for notebook in NOTEBOOKS:
        assert (folder / notebook.name).read_bytes() == notebook.read_bytes(), notebook.name
    assert f"jupyter lab {folder / NOTEBOOKS[0].name}" in out, out


def test_a_copied_notebook_executes_against_the_wheel(venv, clean_env, tmp_path, monkeypatch):
    folder = tmp_path / "course"
    run([venv["root"] / "bin" / "binedu", "course", folder], cwd=tmp_path, env=clean_env)
    kernels = tmp_path / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    spec = {"argv": [str(venv["python"]), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "binedu wheel", "language": "python"}  # fmt: skip
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(folder / EXECUTED, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import binedu; print('BINEDU_FILE', binedu.__file__)"))
    client = NotebookClient(nb, kernel_name="fresh", timeout=TIMEOUT_S, resources={"metadata": {"path": str(folder)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert Path(re.search(r"BINEDU_FILE (.+)", printed).group(1)).is_relative_to(venv["purelib"]), printed
