"""Can the browser tests (``@pytest.mark.browser``) run here, and what if they can't.

They need the ``playwright`` package and a Chromium or Chrome executable (never
playwright's own browser download). ``make test`` installs Debian's chromium where it can
(scripts/install-browser.sh); on macOS or without root there may be none. Outside CI a
missing browser skips the browser tests with the reason; in CI (``CI`` set to anything but
empty/0/false/no) it fails them, because there they must run. tests/conftest.py applies
this to every test marked ``browser``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")  # what scripts/install-browser.sh installs
COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MACOS_APPS = (
    Path("/Applications/Chromium.app/Contents/MacOS/Chromium"),
    Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"),
)
FALSE_WORDS = {"", "0", "false", "no", "off"}


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True where ``CI`` says so (GitHub Actions, GitLab and most CIs set ``CI=true``)."""
    return environ.get("CI", "").strip().lower() not in FALSE_WORDS


def find_chromium(
    environ: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
    candidates: tuple[Path, ...] = (DEBIAN_CHROMIUM, *MACOS_APPS),
) -> Path | None:
    """``$BINEDU_CHROMIUM`` if set (and None if it does not exist: an explicit choice is
    never replaced), else the first of Debian's chromium, a Chromium/Chrome command on the
    PATH, or the macOS applications."""
    explicit = environ.get("BINEDU_CHROMIUM")
    if explicit:
        return Path(explicit) if Path(explicit).exists() else None
    if candidates[0].exists():
        return candidates[0]
    for command in COMMANDS:
        found = which(command)
        if found:
            return Path(found)
    return next((path for path in candidates[1:] if path.exists()), None)


def missing_reason(
    environ: Mapping[str, str] = os.environ,
    has_playwright: bool | None = None,
    chromium: Path | None | bool = False,
) -> str | None:
    """Why the browser tests cannot run here, or None when they can. ``chromium=False``
    means "look for it" (tests pass a path or None)."""
    if has_playwright is None:
        has_playwright = importlib.util.find_spec("playwright") is not None
    if not has_playwright:
        return "the browser tests need the `playwright` package: run `make test` (or pip install -e '.[test]')"
    if chromium is False:
        chromium = find_chromium(environ)
    if chromium is None:
        explicit = environ.get("BINEDU_CHROMIUM")
        where = f"BINEDU_CHROMIUM={explicit} does not exist" if explicit else "no Chromium or Chrome was found"
        return (
            f"the browser tests need Chromium: {where}. Install it (Debian/Ubuntu: "
            "scripts/install-browser.sh, which `make test` runs; macOS: Google Chrome) "
            "or set BINEDU_CHROMIUM to a Chromium/Chrome executable"
        )
    return None


def verdict(environ: Mapping[str, str] = os.environ, **probe) -> tuple[str, str] | None:
    """``None`` (run), ``("skip", reason)`` outside CI or ``("fail", reason)`` in CI."""
    reason = missing_reason(environ, **probe)
    if reason is None:
        return None
    return ("fail", f"CI is set, so the browser tests must run, but {reason}") if in_ci(environ) else ("skip", reason)
