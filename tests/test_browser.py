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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from lab_page import (
    CHROMIUM_ARGS,
    LabNotebookPage,
    LabPageError,
    OutputSnapshot,
    chromium_executable,
    numbers_in,
    wait_until,
)
from lab_server import LabServer, start_lab

from binedu.course.widgets import binarization_widget, memory_widget

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
HARNESS = "harness_widgets.ipynb"
MEMORY = "01_why_one_bit.ipynb"
BINARIZATION = "02_binarization.ipynb"
PACKED_BYTES = "06_bitpacking_32x.ipynb"
# every notebook that shows a widget, and the test below that runs it and moves its widgets
WIDGET_NOTEBOOKS = {
    MEMORY: "test_memory_widget_in_jupyterlab",
    BINARIZATION: "test_binarization_and_live_training_widgets_in_jupyterlab",
    PACKED_BYTES: "test_packed_bytes_widget_in_jupyterlab",
}
WIDGET_CALL = re.compile(r"\b\w+_widget\(")
STEP = re.compile(r"step (\d+) of (\d+)")

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


def test_every_notebook_with_a_widget_is_driven_here() -> None:
    """A notebook that gains a widget must get a browser test that runs it and moves it."""
    with_widgets = set()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        if any(c.cell_type == "code" and WIDGET_CALL.search(c.source) for c in cells):
            with_widgets.add(path.name)
    assert with_widgets == set(WIDGET_NOTEBOOKS), "update WIDGET_NOTEBOOKS and add a test for the new widget"
    assert all(name in globals() for name in WIDGET_NOTEBOOKS.values())


def test_binarization_and_live_training_widgets_in_jupyterlab(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """Notebook 02: move the Shift and Scale sliders and switch the threshold rule; the
    bits, thresholds, layer output and plot shown match what binedu computes. Then press
    Train on the live-training widget: the loss curve and the kernel bitmap change while
    it trains; Pause stops it, Reset brings back the first picture."""
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

    check_live_training(page)


def _step(snapshot: OutputSnapshot) -> int:
    match = STEP.search(snapshot.text)
    assert match, f"the live-training status shows no step: {snapshot.text[:300]!r}"
    return int(match.group(1))


def check_live_training(page: LabNotebookPage) -> None:
    """Train, watch both pictures change while it trains, Pause, Reset (notebook 02)."""
    cell = page.button_cell("Train")
    fresh = page.snapshot(cell)
    assert len(fresh.images) == 2, f"expected the curves and the bitmap, the cell shows {len(fresh.images)} images"
    assert _step(fresh) == 0 and "paused" in fresh.text
    page.screenshot("live-before", cell)

    page.click(cell, "Train")

    def moved_from(before: OutputSnapshot, min_step: int) -> Callable[[], OutputSnapshot | None]:
        def check() -> OutputSnapshot | None:
            now = page.snapshot(cell)
            readable = len(now.images) == 2 and not any(i.startswith("unreadable") for i in now.images)
            curves_changed = readable and now.images[0] != before.images[0]
            bitmap_changed = readable and now.images[1] != before.images[1]
            return now if curves_changed and bitmap_changed and _step(now) >= min_step else None

        return check

    # while it trains (no Pause yet): the loss curve and the bitmap change, twice over
    first = wait_until(moved_from(fresh, 10), 120.0, "the live-training pictures to change after Train")
    assert "training" in first.text
    second = wait_until(moved_from(first, _step(first) + 10), 120.0, "the pictures to keep changing while training")
    page.screenshot("live-training", cell)

    page.click(cell, "Pause")
    paused = wait_until(lambda: (s := page.snapshot(cell)) and "paused" in s.text and s, 60.0, "Pause to stop training")
    time.sleep(2.0)
    assert _step(page.snapshot(cell)) == _step(paused) >= _step(second), "training went on after Pause"

    page.click(cell, "Reset")
    reset = wait_until(lambda: (s := page.snapshot(cell)) and _step(s) == 0 and s, 60.0, "Reset to start again")
    wait_until(lambda: page.snapshot(cell).images == fresh.images, 30.0, "Reset to redraw the first pictures")
    assert "paused" in reset.text
    page.assert_widgets_rendered()
    page.assert_no_kernel_errors()
    page.screenshot("live-after", cell)


def test_packed_bytes_widget_in_jupyterlab(open_notebook: Callable[[str], LabNotebookPage]) -> None:
    """Notebook 06: pick another parameter tensor, then another row: the bits and bytes shown change."""
    page = open_notebook(PACKED_BYTES)
    page.run_all()
    cell = page.widget_cell("Layer:")
    assert page.assert_widgets_rendered() >= 1
    before = page.snapshot(cell)
    assert "bits in value order" in before.text
    page.screenshot("before", cell)

    layer = page.select(cell, "Layer:", "layers.1.weight")  # 16 rows: the Row slider can move
    after_layer = page.wait_text_change(cell, before)
    assert layer in after_layer.text
    row = page.slide(cell, "Row:", "ArrowRight", presses=1)
    assert row == "1"
    page.wait_text_change(cell, after_layer)

    page.assert_widgets_rendered()
    page.assert_no_kernel_errors()
    page.screenshot("after", cell)
