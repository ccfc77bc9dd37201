"""Drive a JupyterLab notebook in headless Chromium the way a user does.

Used by tests/test_browser.py. Playwright drives Debian's chromium through
``executable_path`` (Playwright's own browser download is never used). Screenshots go
through the Chrome DevTools ``Page.captureScreenshot`` call: Playwright's
``page.screenshot`` was seen to hang on JupyterLab pages.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binedu.io import atomic_write_bytes

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
WIDGET_ERROR_TEXT = "Error displaying widget"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _notebook_js(body: str) -> str:
    """A JavaScript function of the notebook's path, for ``page.evaluate``, where ``panel``
    is that notebook's panel in JupyterLab's main area (or undefined)."""
    return (
        "(path) => {\n    const app = window.jupyterapp;"
        " const panel = app && app.shell ? Array.from(app.shell.widgets('main'))"
        ".find(w => w.context && w.context.path === path) : undefined;" + body + "}"
    )


_KERNEL_STATE = _notebook_js(
    """
    if (!panel || !panel.sessionContext || !panel.content) return 'not open';
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!panel.context.isReady || !kernel) return 'loading';
    return kernel.status;
"""
)

_RECORD_KERNEL_MESSAGES = _notebook_js(
    """
    window.__binedu = {errors: [], stderr: []};
    panel.sessionContext.iopubMessage.connect((_, msg) => {
        const type = msg.header.msg_type;
        if (type === 'error') {
            window.__binedu.errors.push(
                msg.content.ename + ': ' + msg.content.evalue + '\\n' + msg.content.traceback.join('\\n'));
        } else if (type === 'stream' && msg.content.name === 'stderr') {
            window.__binedu.stderr.push(msg.content.text);
        }
    });
"""
)

_EXECUTION_STATE = _notebook_js(
    """
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const code = panel.content.widgets.filter(c => c.model.type === 'code');
    const pending = code.filter(c => c.model.sharedModel.getSource().trim() !== ''
        && (c.model.executionCount === null
            || (c.node.querySelector('.jp-InputPrompt') || {textContent: ''}).textContent.includes('*')));
    return {status: kernel ? kernel.status : 'none', pending: pending.length,
            errors: window.__binedu ? window.__binedu.errors.length : 0};
"""
)

_OUTPUT_ERRORS = _notebook_js(
    """
    const found = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== 'code') return;
        for (const out of cell.model.outputs.toJSON()) {
            if (out.output_type === 'error') {
                found.push('cell ' + index + ': ' + out.ename + ': ' + out.evalue);
            }
        }
    });
    return found;
"""
)

_WIDGET_OUTPUTS_RENDERED = _notebook_js(
    """
    // One entry per widget view output: '' when drawn by the widgets front end, else what shows.
    const views = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== 'code') return;
        const area = cell.node.querySelector('.jp-OutputArea');
        const children = area ? Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child')) : [];
        cell.model.outputs.toJSON().forEach((out, i) => {
            if (!out.data || !out.data['application/vnd.jupyter.widget-view+json']) return;
            const child = children[i];
            const text = child ? child.innerText.trim() : 'no output node';
            const drawn = child && child.querySelector('.jupyter-widgets')
                && !text.includes('Error displaying widget') && !text.includes('Loading widget...');
            views.push(drawn ? '' : 'cell ' + index + ': ' + (text.slice(0, 300) || 'empty widget output'));
        });
    });
    return views;
"""
)


# SHA-256 of the bytes each <img> shows (data: or blob: URL): the pixels, not the URL,
# must change when a plot is redrawn.
_IMAGE_DIGESTS = """async (images) => Promise.all(images.map(async (img) => {
    try {
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('');
    } catch (error) {
        return 'unreadable ' + img.src;
    }
}))"""


class LabPageError(AssertionError):
    """The notebook did not reach the state the test waited for; the message says why."""


def chromium_executable() -> Path:
    """Debian's chromium (or ``$BINEDU_CHROMIUM``); scripts/install-browser.sh installs it."""
    return Path(os.environ.get("BINEDU_CHROMIUM", "/usr/bin/chromium"))


def _plain(text: str) -> str:
    """``text`` with no-break spaces made plain and the ends trimmed."""
    return text.replace("\xa0", " ").strip()


def numbers_in(text: str) -> list[float]:
    """The numbers shown in ``text`` ("1,024 bytes" -> 1024.0), in order."""
    return [float(match.replace(",", "")) for match in NUMBER.findall(text)]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy; LabPageError names ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabPageError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class OutputSnapshot:
    """What a cell's output area shows: its text, the numbers in it and its images."""

    text: str
    images: list[str]

    @property
    def numbers(self) -> list[float]:
        return numbers_in(self.text)


class LabNotebookPage:
    """One notebook opened in JupyterLab in a Playwright ``Page``."""

    def __init__(self, page: Any, artifacts_dir: Path, path: str) -> None:
        self.page = page
        self.artifacts_dir = artifacts_dir
        self.path = path  # relative to the server's root_dir, as JupyterLab names it
        self.name = Path(path).stem
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))

    # -- opening and running -------------------------------------------------------
    def open(self, url: str, timeout: float = 120.0) -> None:
        """Load the notebook URL, then wait for the widgets plugin and an idle kernel."""
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        self.page.wait_for_function(
            _notebook_js("return Boolean(panel && panel.sessionContext);"), arg=self.path, timeout=timeout * 1000
        )
        if not self.page.evaluate(f"() => window.jupyterapp.hasPlugin('{WIDGETS_PLUGIN}')"):
            raise LabPageError(f"the ipywidgets front end ({WIDGETS_PLUGIN}) is not installed in this JupyterLab")
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # more notebook in screenshots
        self.wait_kernel_idle(timeout)
        self.page.evaluate(_RECORD_KERNEL_MESSAGES, self.path)

    def kernel_state(self) -> str:
        return str(self.page.evaluate(_KERNEL_STATE, self.path))

    def wait_kernel_idle(self, timeout: float) -> None:
        wait_until(lambda: self.kernel_state() == "idle", timeout, f"an idle kernel in {self.name}")

    def run_all(self, timeout: float = 180.0) -> None:
        """Run every cell (``notebook:run-all-cells``) and wait until execution ends."""
        self.page.evaluate(
            _notebook_js(
                "window.jupyterapp.shell.activateById(panel.id);"
                "window.jupyterapp.commands.execute('notebook:run-all-cells');"
            ),
            self.path,
        )

        def finished() -> bool:
            state = self.page.evaluate(_EXECUTION_STATE, self.path)
            if state["status"] == "dead":
                raise LabPageError(f"the kernel of {self.name} died while running (out of memory?)")
            return state["status"] == "idle" and (state["pending"] == 0 or state["errors"] > 0)

        wait_until(finished, timeout, f"all cells of {self.name} to run")
        self.assert_no_kernel_errors()

    # -- checks ----------------------------------------------------------------------
    def kernel_errors(self) -> list[str]:
        """Tracebacks the kernel sent (cells and widget callbacks), ANSI colours removed."""
        errors = self.page.evaluate("() => window.__binedu ? window.__binedu.errors : []")
        return [ANSI_ESCAPE.sub("", error) for error in errors]

    def kernel_stderr(self) -> str:
        return "".join(self.page.evaluate("() => window.__binedu ? window.__binedu.stderr : []"))

    def assert_no_kernel_errors(self) -> None:
        errors = self.kernel_errors() + self.page.evaluate(_OUTPUT_ERRORS, self.path)
        if errors:
            raise LabPageError(f"{self.name}: the kernel reported errors:\n" + "\n\n".join(errors))

    def assert_widgets_rendered(self, timeout: float = 30.0) -> int:
        """Every widget output is drawn by the widgets front end; returns how many there are.

        A missing or mismatched front-end extension leaves "Loading widget..." or the
        widget's text repr; a view of an unknown model shows "Error displaying widget".
        """

        def settled() -> tuple[list[str]] | None:
            views = self.page.evaluate(_WIDGET_OUTPUTS_RENDERED, self.path)
            return None if any("Loading widget..." in view for view in views) else (views,)

        try:
            (views,) = wait_until(settled, timeout, "widget views to load")
        except LabPageError:
            views = self.page.evaluate(_WIDGET_OUTPUTS_RENDERED, self.path)
        problems = [view for view in views if view]
        if self.page.get_by_text(WIDGET_ERROR_TEXT).count() and not problems:
            problems = [self.page.get_by_text(WIDGET_ERROR_TEXT).first.inner_text()]
        if problems:
            raise LabPageError(f"{self.name}: widgets not displayed:\n" + "\n".join(problems))
        return len(views)

    # -- widgets -----------------------------------------------------------------------
    def widget_cell(self, description: str, timeout: float = 60.0) -> Any:
        """The code cell whose output shows a control labelled ``description`` (e.g. "Model:")."""
        cells = self.page.locator(".jp-CodeCell").filter(has=self.control(self.page, description))
        wait_until(lambda: cells.count() > 0, timeout, f"a widget labelled {description!r} in {self.name}")
        if cells.count() != 1:
            raise LabPageError(f"{self.name}: {cells.count()} cells show a widget labelled {description!r}")
        return cells.first

    def control(self, scope: Any, description: str) -> Any:
        """The ipywidgets control (``.widget-inline-hbox``) in ``scope`` labelled ``description``."""
        label = self.page.locator("label.widget-label").filter(
            has_text=re.compile(rf"^\s*{re.escape(description)}\s*$")
        )
        return scope.locator(".jupyter-widgets.widget-inline-hbox").filter(has=label)

    def button_cell(self, text: str, timeout: float = 60.0) -> Any:
        """The code cell whose output shows a widget button labelled ``text`` (e.g. "Train")."""
        cells = self.page.locator(".jp-CodeCell").filter(has=self.button(self.page, text))
        wait_until(lambda: cells.count() > 0, timeout, f"a button labelled {text!r} in {self.name}")
        if cells.count() != 1:
            raise LabPageError(f"{self.name}: {cells.count()} cells show a button labelled {text!r}")
        return cells.first

    def button(self, scope: Any, text: str) -> Any:
        """The ipywidgets button in ``scope`` whose label is ``text``."""
        return scope.locator("button.jupyter-button").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))

    def click(self, cell: Any, text: str) -> None:
        """Click the widget button ``text`` in ``cell``, as a user does."""
        self.button(cell, text).click()

    def select(self, cell: Any, description: str, option: str | None = None) -> str:
        """Choose ``option`` (default: the next one) in the dropdown ``description``; returns it.

        Labels are compared with plain spaces: ipywidgets draws them with no-break spaces."""
        select = self.control(cell, description).locator("select")
        options = [_plain(text) for text in select.locator("option").all_inner_texts()]
        current = self.selected(cell, description)
        if option is None:
            others = [text for text in options if text != current]
            if not others:
                raise LabPageError(f"dropdown {description!r} has no other option than {current!r}")
            option = others[0]
        if option not in options:
            raise LabPageError(f"dropdown {description!r} has no option {option!r}; it has {options}")
        select.select_option(index=options.index(option))
        return option

    def slide(self, cell: Any, description: str, key: str = "ArrowRight", presses: int = 1) -> str:
        """Move the slider ``description`` with the keyboard, as a user does; returns its readout."""
        control = self.control(cell, description)
        handle = control.locator(".noUi-handle").first
        handle.focus()
        for _ in range(presses):
            handle.press(key)
        return control.locator(".widget-readout").inner_text()

    def snapshot(self, cell: Any) -> OutputSnapshot:
        """The cell's output as shown: text, and the plots (``img`` sources and ``svg`` markup)."""
        area = cell.locator(".jp-Cell-outputArea")
        images = area.locator("img").evaluate_all(_IMAGE_DIGESTS)
        images += area.locator(".jp-RenderedSVG svg").evaluate_all("els => els.map(e => e.outerHTML)")
        return OutputSnapshot(text=area.inner_text(), images=images)

    def selected(self, cell: Any, description: str) -> str:
        """The option the dropdown ``description`` shows."""
        select = self.control(cell, description).locator("select")
        return _plain(select.evaluate("el => el.options[el.selectedIndex].text"))

    def readout(self, cell: Any, description: str) -> str:
        """The value a slider ``description`` shows next to it."""
        return _plain(self.control(cell, description).locator(".widget-readout").inner_text())

    def html_numbers(self, cell: Any) -> list[list[float]]:
        """The numbers each HTML widget of the cell shows, widget by widget."""
        texts = cell.locator(".widget-html-content").all_inner_texts()
        return [numbers_in(text) for text in texts]

    def wait_output_change(self, cell: Any, before: OutputSnapshot, timeout: float = 60.0) -> OutputSnapshot:
        """Wait until the kernel is idle and the cell's numbers and plot differ from ``before``."""

        def changed() -> OutputSnapshot | None:
            if self.kernel_state() != "idle":
                return None
            after = self.snapshot(cell)
            readable = after.images and not any(image.startswith("unreadable") for image in after.images)
            if after.numbers != before.numbers and readable and after.images != before.images:
                return after
            return None

        try:
            return wait_until(changed, timeout, f"{self.name} to redraw its numbers and plot")
        except LabPageError:
            self.assert_no_kernel_errors()
            raise

    def wait_text_change(self, cell: Any, before: OutputSnapshot, timeout: float = 60.0) -> OutputSnapshot:
        """Wait until the kernel is idle and the numbers the cell shows differ from ``before``
        (for widgets that draw no plot)."""

        def changed() -> OutputSnapshot | None:
            if self.kernel_state() != "idle":
                return None
            after = self.snapshot(cell)
            return after if after.numbers != before.numbers else None

        try:
            return wait_until(changed, timeout, f"{self.name} to redraw its numbers")
        except LabPageError:
            self.assert_no_kernel_errors()
            raise

    # -- artifacts ---------------------------------------------------------------------
    def screenshot(self, label: str, target: Any | None = None) -> Path:
        """Save a PNG of the page (scrolled to ``target``) through Chrome DevTools."""
        if target is not None:
            target.scroll_into_view_if_needed(timeout=10_000)
        cdp = self.page.context.new_cdp_session(self.page)
        try:
            data = cdp.send("Page.captureScreenshot", {"format": "png"})["data"]
        finally:
            cdp.detach()
        path = self.artifacts_dir / f"{self.name}-{label}.png"
        atomic_write_bytes(path, base64.b64decode(data))
        return path

    def save_logs(self) -> Path:
        """Save the browser console and the kernel's stderr next to the screenshots."""
        text = "\n".join(self.console)
        try:
            text += "\n\n--- kernel stderr ---\n" + self.kernel_stderr()
            text += "\n\n--- kernel errors ---\n" + "\n\n".join(self.kernel_errors())
        except Exception as error:  # the page may be gone; keep what we have
            text += f"\n\n(kernel messages unavailable: {error})"
        return atomic_write_bytes(self.artifacts_dir / f"{self.name}-console.log", text.encode("utf-8"))
