"""The documentation site in headless Chromium: every page opens over HTTP on 127.0.0.1
with no console error, every image loads and is not blank, and every widget stand-in
works (moving its slider shows another frame).

Nothing leaves the machine: requests to other hosts are answered locally. The badges that
pages show on purpose (Colab, Binder) get a placeholder image; any other outside request
fails the test.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from docs_site import ensure_built, pages
from lab_page import CHROMIUM_ARGS, chromium_executable
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOST = "127.0.0.1"
BADGES = {  # outside images the pages show on purpose -> answered with a placeholder
    "colab.research.google.com/assets/colab-badge.svg",
    "mybinder.org/badge_logo.svg",
}
PLACEHOLDER = b'<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20"><rect width="117" height="20"/></svg>'
MIN_STD = 2.0  # grey-level standard deviation (0-255) below which an image counts as blank

# every loaded image that is not an SVG: its size and the standard deviation of its grey levels
IMAGE_STATS = """() => Array.from(document.images).map((img) => {
  const out = {src: img.currentSrc.slice(0, 120), complete: img.complete, width: img.naturalWidth,
               height: img.naturalHeight, std: null};
  if (!img.complete || img.naturalWidth === 0 || /\\.svg($|\\?)|^data:image\\/svg/.test(img.currentSrc)) return out;
  const canvas = document.createElement("canvas");
  const w = Math.min(img.naturalWidth, 400), h = Math.min(img.naturalHeight, 400);
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "white"; ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const g = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += g; sq += g * g; n += 1;
  }
  out.std = Math.sqrt(Math.max(sq / n - (sum / n) ** 2, 0));
  return out;
})"""

# the frame of a stand-in that is shown now: its label and a fingerprint of its content
SHOWN_FRAME = """(root) => {
  const frames = Array.from(root.querySelectorAll(".binedu-standin-frame"));
  const shown = frames.filter((frame) => !frame.hidden && frame.offsetHeight > 0);
  return {count: frames.length, shown: shown.length,
          label: root.querySelector(".binedu-standin-label").textContent,
          content: shown.map((frame) => frame.innerHTML.length + ":" + frame.innerHTML.slice(-200)).join("|")};
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Path]]:
    site = ensure_built()
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}", site
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_executable()), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser, url: str, outside: list[str], errors: list[str]):
    """A new page at ``url``; outside requests and console errors are collected."""

    def route(route) -> None:
        parts = urlsplit(route.request.url)
        if parts.hostname == HOST or parts.scheme == "data":
            route.continue_()
        elif f"{parts.hostname}{parts.path}" in BADGES:
            route.fulfill(status=200, content_type="image/svg+xml", body=PLACEHOLDER)
        else:
            outside.append(route.request.url)
            route.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", route)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.goto(url, wait_until="load", timeout=120_000)
    return page


def test_every_page_opens_without_error_and_its_images_are_not_blank(server, browser):
    base, site = server
    problems: list[str] = []
    images_checked = 0
    for path in pages(site):
        if "_modules" in path.parts:  # viewcode's source listings: plain highlighted code
            continue
        relative = path.relative_to(site).as_posix()
        outside: list[str] = []
        errors: list[str] = []
        page = open_page(browser, f"{base}/{relative}", outside, errors)
        try:
            page.wait_for_load_state("networkidle", timeout=60_000)
            for image in page.evaluate(IMAGE_STATS):
                if not image["complete"] or image["width"] == 0:
                    problems.append(f"{relative}: image did not load: {image['src']}")
                elif image["std"] is not None:
                    images_checked += 1
                    if image["std"] < MIN_STD:
                        problems.append(f"{relative}: blank image (grey-level std {image['std']:.2f}): {image['src']}")
        finally:
            page.close()
        problems += [f"{relative}: console error: {error}" for error in errors]
        problems += [f"{relative}: request outside the machine: {url}" for url in outside]
    assert images_checked >= 20, f"only {images_checked} images were checked: is the course executed?"
    assert not problems, "\n".join(problems[:40])


def test_the_blank_image_check_can_fail(server, browser, tmp_path):
    """A one-colour PNG counts as blank, a figure of the site does not."""
    base, site = server
    page = browser.new_page()
    try:
        page.goto(f"{base}/index.html")  # the site's origin: its images can be read back from a canvas
        blank = io.BytesIO()
        Image.new("RGB", (64, 48), (250, 250, 250)).save(blank, format="PNG")
        page.set_content(
            f'<img src="data:image/png;base64,{base64.b64encode(blank.getvalue()).decode()}">'
            f'<img src="{base}/_static/bits-flipping.png">'
        )
        page.wait_for_load_state("networkidle")
        stds = [image["std"] for image in page.evaluate(IMAGE_STATS)]
    finally:
        page.close()
    assert stds[0] is not None and stds[0] < MIN_STD
    assert stds[1] is not None and stds[1] > MIN_STD


def test_every_widget_stand_in_changes_frame_when_its_slider_moves(server, browser):
    base, site = server
    stand_ins = 0
    for path in sorted((site / "course").glob("*.html")):
        if "binedu-standin" not in path.read_text(encoding="utf-8"):
            continue
        errors: list[str] = []
        page = open_page(browser, f"{base}/course/{path.name}", [], errors)
        try:
            for root in page.locator(".binedu-standin").all():
                stand_ins += 1
                root.scroll_into_view_if_needed()
                before = root.evaluate(SHOWN_FRAME)
                assert before["count"] >= 2 and before["shown"] == 1, f"{path.name}: {before}"
                slider = root.locator(".binedu-standin-slider")
                slider.focus()
                key = "ArrowLeft" if int(slider.input_value()) == before["count"] - 1 else "ArrowRight"
                page.keyboard.press(key)  # what a user does with the keyboard; a drag fires the same event
                after = root.evaluate(SHOWN_FRAME)
                assert after["shown"] == 1, f"{path.name}: {after['shown']} frames shown at once"
                assert after["label"] != before["label"], f"{path.name}: the slider's label did not change"
                assert after["content"] != before["content"], f"{path.name}: the frame did not change"
                page.keyboard.press("End")
                last = root.evaluate(SHOWN_FRAME)
                assert last["shown"] == 1 and last["content"] not in (before["content"], "")
        finally:
            page.close()
        assert not errors, f"{path.name}: {errors}"
    assert stand_ins >= 4, f"only {stand_ins} stand-ins found (memory, Eq. 1, live training, packed bytes)"
