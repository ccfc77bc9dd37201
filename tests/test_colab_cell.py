"""Every notebook opens on Colab: an "Open in Colab" badge in its title cell (and in the
README), and a first code cell that installs binedu there, only there and only when it is
missing. The cell's text lives once in scripts/notebook_cells.py; this runs it with a fake
IPython that records what it is asked to do."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from notebook_cells import COLAB_CELL, INSTALL_REQUIREMENT, colab_badge, colab_url, stamp  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_the_badge_and_the_install_cell_first(path):
    nb = nbformat.read(path, as_version=4)
    assert colab_badge(path.name) in nb.cells[0].source, "run scripts/stamp_notebooks.py"
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first_code.source == COLAB_CELL, "the first code cell is the Colab cell: run scripts/stamp_notebooks.py"
    assert not stamp(nb, path.name), "scripts/stamp_notebooks.py would still change this notebook"


def test_readme_has_a_colab_badge_for_every_notebook():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert colab_badge(path.name) in readme, f"README lacks the Colab badge of {path.name}"


def test_colab_urls_point_at_the_notebooks_of_the_repository():
    assert colab_url("01_why_one_bit.ipynb") == (
        "https://colab.research.google.com/github/binedu/binedu/blob/main/notebooks/01_why_one_bit.ipynb"
    )
    assert INSTALL_REQUIREMENT == "binedu @ git+https://github.com/binedu/binedu"


class FakeIPython:
    """Records the magics the cell runs instead of running them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str) -> None:
        self.calls.append((name, line))


def run_cell(monkeypatch, *, colab: bool, binedu_installed: bool) -> tuple[FakeIPython, list[str], dict]:
    """Run the Colab cell as IPython would (magics transformed) and return the fake shell,
    the widget-manager calls and the names the cell left behind."""
    enabled: list[str] = []
    if colab:
        output = types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: enabled.append("enable_custom_widget_manager")
        colab_module = types.ModuleType("google.colab")
        colab_module.output = output
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", colab_module)
        monkeypatch.setitem(sys.modules, "google.colab.output", output)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name == "binedu" and not binedu_installed:
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    shell = FakeIPython()
    namespace = {"get_ipython": lambda: shell}
    code = TransformerManager().transform_cell(COLAB_CELL)
    exec(compile(code, "colab cell", "exec"), namespace)
    return shell, enabled, sorted(set(namespace) - {"get_ipython", "__builtins__"})


@pytest.mark.parametrize("binedu_installed", [True, False])
def test_off_colab_the_cell_does_nothing(monkeypatch, binedu_installed):
    shell, enabled, names = run_cell(monkeypatch, colab=False, binedu_installed=binedu_installed)
    assert shell.calls == [] and enabled == []
    assert names == ["importlib", "sys"], "only its two imports"


def test_on_colab_without_binedu_the_cell_installs_it_and_enables_the_widgets(monkeypatch):
    shell, enabled, _ = run_cell(monkeypatch, colab=True, binedu_installed=False)
    assert shell.calls == [("pip", f'install "{INSTALL_REQUIREMENT}"')]
    assert enabled == ["enable_custom_widget_manager"]


def test_on_colab_with_binedu_the_cell_only_enables_the_widgets(monkeypatch):
    shell, enabled, _ = run_cell(monkeypatch, colab=True, binedu_installed=True)
    assert shell.calls == []
    assert enabled == ["enable_custom_widget_manager"]
