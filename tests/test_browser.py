"""End to end in a real browser: JupyterLab serves the notebooks, headless Chromium runs
them and moves the widgets, as a learner does after `make lab` or on Binder.

A widget that works in a kernel can still show "Error displaying widget" when the
front-end extension is missing or mismatched; these tests look at what the page shows.
Screenshots land in artifacts/screenshots/ (or $BINEDU_ARTIFACTS/screenshots/).
The notebooks are copied to a temporary directory first: JupyterLab autosaves outputs
into the .ipynb it serves, and the committed notebooks must stay output-free.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_page import CHROMIUM_ARGS, LabNotebookPage, LabPageError, chromium_executable, numbers_in, wait_until
from lab_server import LabServer, start_lab

from binedu.course.widgets import binarization_widget, memory_widget

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
HARNESS = "harness_widgets.ipynb"
MEMORY = "01_why_one_bit.ipynb"
BINARIZATION = "02_binarization.ipynb"

HARNESS_SETUP = """\
import sys

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

print(sys.prefix)"""

HARNESS_WIDGET = """\
bars = widgets.IntSlider(value=3, min=1, max=8, description="Bars:")
height = widgets.Dropdown(options=["1", "2", "4"], value="1", description="Height:")
total = widgets.HTML()
plot = widgets.Output()


def draw(change=None):
    n, h = bars.value, int(height.value)
    total.value = f"<b>total: {n * h} units</b>"
    with plot:
        plot.clear_output(wait=True)
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.bar(range(n), [h] * n)
        ax.set_xlim(-1, 8)
        ax.set_ylim(0, 5)
        plt.show()


bars.observe(draw, names="value")
height.observe(draw, names="value")
draw()
display(widgets.VBox([bars, height, total, plot]))"""


BROKEN = "harness_broken.ipynb"
BROKEN_WIDGETS = """\
import ipywidgets as widgets
from IPython.display import display

choice = widgets.Dropdown(options=["a", "b"], value="a", description="Fail:")
choice.observe(lambda change: 1 / 0, names="value")
display(choice)
# a view of a widget model that does not exist: the front end shows "Error displaying widget"
display({"application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}},
        raw=True)"""


def write_notebook(path: Path, *sources: str) -> None:
    """A notebook of code cells, with the kernelspec JupyterLab needs to start a kernel silently."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    base = Path(os.environ.get("BINEDU_ARTIFACTS", REPO / "artifacts"))
    path = base / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of notebooks/ (plus the harness notebook) for the server to serve."""
    root = tmp_path_factory.mktemp("lab-root") / "notebooks"
    if NOTEBOOKS.is_dir():
        shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    root.mkdir(exist_ok=True)
    write_notebook(root / HARNESS, HARNESS_SETUP, HARNESS_WIDGET)
    write_notebook(root / BROKEN, BROKEN_WIDGETS)
    return root


@pytest.fixture(scope="module")
def lab(lab_root: Path, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path) -> Iterator[LabServer]:
    server = start_lab(lab_root, tmp_path_factory.mktemp("lab-work"))
    try:
        yield server
    finally:
        server.stop()
        shutil.copyfile(server.log_path, artifacts_dir / "jupyter-lab.log")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright (installed by `make test`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need the `playwright` package: run `make test` (or pip install playwright)")
    executable = chromium_executable()
    if not executable.exists():
        pytest.fail(f"the browser tests need Chromium at {executable}: run scripts/install-browser.sh (make test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def open_notebook(browser: Any, lab: LabServer, artifacts_dir: Path) -> Iterator[Callable[[str], LabNotebookPage]]:
    """Open a notebook of lab_root in a fresh browser context; logs are saved afterwards."""
    opened: list[tuple[Any, LabNotebookPage]] = []

    def open_(relative_path: str) -> LabNotebookPage:
        notebook = nbformat.read(lab.root_dir / relative_path, as_version=4)
        kernel = notebook.metadata.get("kernelspec", {}).get("name")
        assert kernel == "python3", (
            f"{relative_path}: kernelspec {kernel!r}; without one JupyterLab asks 'Select Kernel'"
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(60_000)
        page = LabNotebookPage(context.new_page(), artifacts_dir, relative_path)
        opened.append((context, page))
        page.open(lab.notebook_url(relative_path, workspace=f"test-{page.name}"))
        return page

    yield open_
    for context, page in opened:
        try:  # what the page showed last, passed or failed: the first thing to look at in CI
            page.screenshot("last")
        finally:
            page.save_logs()
            context.close()


def test_harness_widgets_work_in_jupyterlab(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """The harness itself: server, kernel and widgets front end from one environment."""
    page = open_notebook(HARNESS)
    page.run_all()
    first_output = page.page.locator(".jp-CodeCell").first.locator(".jp-Cell-outputArea").inner_text()
    assert sys.prefix in first_output, f"the kernel runs in another environment: {first_output!r}"

    cell = page.widget_cell("Bars:")
    assert page.assert_widgets_rendered() == 1
    before = page.snapshot(cell)
    assert before.images, "the plot is not displayed"
    page.screenshot("before", cell)

    readout = page.slide(cell, "Bars:", "ArrowRight", presses=2)
    assert readout.strip() == "5"
    after_slide = page.wait_output_change(cell, before)
    assert 5.0 in after_slide.numbers

    page.select(cell, "Height:", "4")
    after_select = page.wait_output_change(cell, after_slide)
    assert 20.0 in after_select.numbers

    page.assert_widgets_rendered()
    page.assert_no_kernel_errors()
    page.screenshot("after", cell)


def test_harness_sees_widget_and_callback_errors(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """The checks above can fail: a broken widget view and a raising callback are caught."""
    page = open_notebook(BROKEN)
    page.run_all()
    with pytest.raises(LabPageError, match="Error displaying widget"):
        page.assert_widgets_rendered()
    cell = page.widget_cell("Fail:")
    page.select(cell, "Fail:", "b")
    page.wait_kernel_idle(60.0)
    errors = wait_until(page.kernel_errors, 60.0, "the callback's traceback")
    assert "ZeroDivisionError" in errors[0]
    with pytest.raises(LabPageError, match="ZeroDivisionError"):
        page.assert_no_kernel_errors()
    page.screenshot("errors", cell)


def kernel_numbers(*html_values: str) -> list[list[float]]:
    """The numbers HTML widget values show once rendered (tags dropped, entities decoded)."""
    return [numbers_in(html.unescape(re.sub(r"<[^>]+>", " ", value))) for value in html_values]


def test_memory_widget_in_jupyterlab(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """Notebook 01: pick a precision and a model; the byte count and the bar chart follow."""
    page = open_notebook(MEMORY)
    page.run_all()
    cell = page.widget_cell("Model:")
    assert page.assert_widgets_rendered() >= 1
    # the cell is `memory_widget()`: before anyone touches it, the page must show that widget
    fresh = memory_widget()
    model, precision = page.selected(cell, "Model:"), page.selected(cell, "Precision:")
    assert (model, precision) == (fresh.model.value, fresh.precision.value), (
        f"right after running, the page shows Model {model!r}, Precision {precision!r}; the kernel built "
        f"{fresh.model.value!r}, {fresh.precision.value!r}: the front end changed a control by itself"
    )
    assert page.html_numbers(cell) == kernel_numbers(fresh.summary.value)
    before = page.snapshot(cell)
    assert before.images, "the memory bar chart is not displayed"
    page.screenshot("before", cell)

    precision = page.select(cell, "Precision:")
    after_precision = page.wait_output_change(cell, before)
    expected = memory_widget(model, precision)
    assert page.html_numbers(cell) == kernel_numbers(expected.summary.value)
    assert f"{expected.num_bytes:,} bytes" in after_precision.text

    model = page.select(cell, "Model:")
    page.wait_output_change(cell, after_precision)
    expected = memory_widget(model, precision)
    assert page.html_numbers(cell) == kernel_numbers(expected.summary.value)

    page.assert_widgets_rendered()
    page.assert_no_kernel_errors()
    page.screenshot("after", cell)


def test_binarization_widget_in_jupyterlab(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """Notebook 02: move the Shift and Scale sliders and switch the threshold rule; the
    bits, thresholds, layer output and plot shown match what binedu computes."""
    page = open_notebook(BINARIZATION)
    page.run_all()
    cell = page.widget_cell("Threshold:")
    assert page.assert_widgets_rendered() >= 1
    before = page.snapshot(cell)
    assert before.images, "the binarization plot is not displayed"
    page.screenshot("before", cell)

    shift = page.slide(cell, "Shift:", "ArrowRight", presses=5)
    after_shift = page.wait_output_change(cell, before)
    scale = page.slide(cell, "Scale:", "ArrowLeft", presses=3)
    after_scale = page.wait_output_change(cell, after_shift)
    rule = page.select(cell, "Threshold:", "zero")
    page.wait_output_change(cell, after_scale)

    expected = binarization_widget()
    expected.distribution.label = page.selected(cell, "Distribution:")
    expected.seed.value = int(page.readout(cell, "Seed:"))
    expected.shift.value = float(shift)
    expected.scale.value = float(scale)
    expected.threshold.label = rule
    assert expected.shift.value != 0.0 and expected.scale.value != 1.0, "the sliders did not move"
    assert page.html_numbers(cell) == kernel_numbers(expected.bits_html.value, expected.output_html.value)

    page.assert_widgets_rendered()
    page.assert_no_kernel_errors()
    page.screenshot("after", cell)
