"""Shared test settings: torch on one thread, hypothesis profiles, and the browser guard."""

import os

import pytest
import torch
from browser_guard import DEBIAN_CHROMIUM, find_chromium, in_ci, verdict
from hypothesis import settings

# One thread: the test models are tiny, and OpenMP threads spinning against the other
# processes of a 2-core machine (a notebook kernel, a browser) slow them down many times.
torch.set_num_threads(1)

settings.register_profile("default", deadline=None, max_examples=60)
settings.register_profile("ci", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("ci" if in_ci() else "default")


def pytest_configure(config: pytest.Config) -> None:
    """Point the browser tests (tests/lab_page.py reads $BINEDU_CHROMIUM, default Debian's
    chromium) at a Chromium or Chrome found elsewhere, e.g. on macOS."""
    if not os.environ.get("BINEDU_CHROMIUM"):
        found = find_chromium()
        if found is not None and found != DEBIAN_CHROMIUM:
            os.environ["BINEDU_CHROMIUM"] = str(found)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``browser`` skips with the reason where no browser can run, except in
    CI (CI=true), where it fails (tests/browser_guard.py)."""
    if item.get_closest_marker("browser") is None:
        return
    outcome = verdict()
    if outcome is not None:
        kind, reason = outcome
        (pytest.fail if kind == "fail" else pytest.skip)(reason)
