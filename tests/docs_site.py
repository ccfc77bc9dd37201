"""The built documentation site, for tests/test_docs*.py: build it when needed, read its pages.

``make test`` builds the site (``make docs``) before pytest; run alone, the tests build it
themselves when it is missing or older than its sources (Sphinx rebuilds only what
changed, and the notebooks' execution is cached).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SOURCES = ("docs/**/*.md", "docs/conf.py", "docs/_static/*", "notebooks/*.ipynb", "binedu/**/*.py")


def _build_module():
    spec = importlib.util.spec_from_file_location("docs_build", DOCS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _build_module()
HTML: Path = BUILD.HTML
WARNINGS: Path = BUILD.WARNINGS


def stale() -> bool:
    """True when the site is missing or a source changed after it was built."""
    index = HTML / "index.html"
    if not index.exists() or not WARNINGS.exists():
        return True
    built = index.stat().st_mtime
    return any(path.stat().st_mtime > built for pattern in SOURCES for path in REPO.glob(pattern) if path.is_file())


def ensure_built() -> Path:
    """The site's HTML folder, built first if needed; a failed build fails with its warnings."""
    if stale():
        # in a process of its own: the build sets environment variables (static widgets) for its kernels
        status = subprocess.run([sys.executable, str(DOCS / "build.py"), "-q"], cwd=REPO, check=False).returncode
        warnings = WARNINGS.read_text() if WARNINGS.exists() else ""
        assert status == 0, f"the documentation build failed (status {status}):\n{warnings}"
    return HTML


def pages(html: Path = HTML) -> list[Path]:
    """Every HTML page of the site (viewcode's module pages included)."""
    return sorted(html.rglob("*.html"))


@dataclass
class Page:
    """What a page links to and which anchors it defines."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)  # href and src values, as written
    images: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in ("id", "name") if tag == "a" else ("id",):
            if name in values:
                self.page.ids.add(values[name])
        if tag in ("a", "link") and "href" in values:
            self.page.links.append(values["href"])
        if tag in ("img", "script", "iframe") and "src" in values:
            self.page.links.append(values["src"])
            if tag == "img":
                self.page.images.append(values["src"])


@cache
def parse(path: Path) -> Page:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.page
