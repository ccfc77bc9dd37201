"""Build the documentation site: ``python docs/build.py`` (what ``make docs`` runs).

Sphinx with every warning an error (``-W``), all of them reported (``--keep-going``) and
written to ``docs/_build/warnings.txt``; the site lands in ``docs/_build/html``. The
notebooks' execution is cached under ``docs/_build/.jupyter_cache``, so a rebuild runs
only the notebooks whose code changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BUILD = DOCS / "_build"
HTML = BUILD / "html"
WARNINGS = BUILD / "warnings.txt"


def build(extra: list[str] | None = None) -> int:
    """Run the HTML build; return Sphinx's exit status (0: built with no warning)."""
    from sphinx.cmd.build import build_main

    BUILD.mkdir(parents=True, exist_ok=True)
    return build_main(["-W", "--keep-going", "-w", str(WARNINGS), "-b", "html", *(extra or []), str(DOCS), str(HTML)])


if __name__ == "__main__":
    sys.exit(build(sys.argv[1:]))
