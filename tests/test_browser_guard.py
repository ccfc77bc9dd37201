"""The browser guard (tests/browser_guard.py and its hook in tests/conftest.py): without a
browser, the browser tests skip with the reason outside CI and fail in CI."""

from __future__ import annotations

from pathlib import Path

import conftest
import pytest
from browser_guard import find_chromium, in_ci, missing_reason, verdict


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("", False), ("0", False), ("false", False), ("No", False), ("true", True), ("1", True)],
)
def test_in_ci_reads_the_ci_variable(value, expected):
    assert in_ci({} if value is None else {"CI": value}) is expected


def test_find_chromium_prefers_an_explicit_path_and_never_replaces_it(tmp_path):
    browser = tmp_path / "chrome"
    browser.touch()
    everywhere = lambda command: "/usr/bin/" + command  # noqa: E731
    assert find_chromium({"BINEDU_CHROMIUM": str(browser)}, which=everywhere) == browser
    assert find_chromium({"BINEDU_CHROMIUM": str(tmp_path / "missing")}, which=everywhere) is None


def test_find_chromium_looks_on_the_path_then_in_the_applications(tmp_path):
    missing = tmp_path / "no-debian-chromium"
    app = tmp_path / "Google Chrome"
    assert find_chromium({}, which=lambda c: None, candidates=(missing, app)) is None
    assert find_chromium({}, which=lambda c: "/opt/x/" + c if c == "google-chrome" else None, candidates=(missing, app)) == (
        Path("/opt/x/google-chrome")
    )
    app.touch()
    assert find_chromium({}, which=lambda c: None, candidates=(missing, app)) == app


def test_without_a_browser_the_tests_skip_outside_ci_and_fail_in_ci():
    assert verdict({}, has_playwright=True, chromium=Path("/usr/bin/chromium")) is None
    kind, reason = verdict({}, has_playwright=True, chromium=None)
    assert kind == "skip" and "no Chromium or Chrome was found" in reason and "BINEDU_CHROMIUM" in reason
    kind, reason = verdict({"CI": "true"}, has_playwright=True, chromium=None)
    assert kind == "fail" and "CI is set" in reason
    kind, reason = verdict({"CI": "true"}, has_playwright=False, chromium=Path("/usr/bin/chromium"))
    assert kind == "fail" and "playwright" in reason
    assert "BINEDU_CHROMIUM=/nope does not exist" in missing_reason({"BINEDU_CHROMIUM": "/nope"}, True, None)


class _Item:
    """The one thing the hook asks of a test item."""

    def __init__(self, browser: bool) -> None:
        self.browser = browser

    def get_closest_marker(self, name: str):
        return object() if self.browser and name == "browser" else None


@pytest.mark.parametrize(("ci", "exception"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_the_hook_skips_or_fails_browser_tests_only(monkeypatch, ci, exception):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("BINEDU_CHROMIUM", "/definitely/not/a/browser")
    with pytest.raises(exception, match="BINEDU_CHROMIUM=/definitely/not/a/browser does not exist"):
        conftest.pytest_runtest_setup(_Item(browser=True))
    assert conftest.pytest_runtest_setup(_Item(browser=False)) is None
