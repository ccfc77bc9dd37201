"""Sphinx configuration of binedu's documentation site (``make docs``).

Sphinx + MyST-NB (the Jupyter Book 1 stack): Markdown pages, the API reference from the
docstrings (autodoc), and the course's notebooks executed at build time. Execution is
cached by jupyter-cache under ``docs/_build/.jupyter_cache`` (gitignored), keyed by each
notebook's code, so a rebuild re-runs only the notebooks that changed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))  # the checkout's binedu, also without an installed copy

import binedu  # noqa: E402

# The course's pages are the notebooks of notebooks/, copied into docs/course/ (gitignored)
# on every build: every *.ipynb there, so a new notebook joins the site by itself. A copy
# is rewritten only when its notebook changed, so an unchanged page is not read again.
COURSE = DOCS / "course"
COURSE.mkdir(exist_ok=True)
_notebooks = {path.name: path.read_bytes() for path in sorted((REPO / "notebooks").glob("*.ipynb"))}
for _stale in set(path.name for path in COURSE.glob("*.ipynb")) - set(_notebooks):
    (COURSE / _stale).unlink()
for _name, _content in _notebooks.items():
    if not (COURSE / _name).exists() or (COURSE / _name).read_bytes() != _content:
        (COURSE / _name).write_bytes(_content)

# The notebooks' kernels inherit this environment: the widget builders of binedu.course
# return static stand-ins (pre-rendered frames and a slider) instead of live ipywidgets,
# which a static page cannot run; progress bars are left out of the rendered pages.
os.environ["BINEDU_STATIC_WIDGETS"] = "1"
os.environ["TQDM_DISABLE"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

project = "binedu"
author = "the binedu authors"
copyright = "2025-2026, the binedu authors"  # noqa: A001
release = version = binedu.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: no CDN, works offline
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# MyST: $...$ math as in the notebooks, heading anchors for links into notebook sections
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# MyST-NB: run every notebook (cached), fail the build on any cell error
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget reaches a page (stand-ins are plain HTML): load no widget JS from a CDN

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"binedu {release}"
html_static_path = ["_static"]
html_css_files = ["standins.css"]
html_show_sourcelink = False

# Optional sections written elsewhere in the project: included in a table of contents
# when their files exist, so the build neither warns about an empty glob nor about an
# orphan page, whether or not they are there yet.
OPTIONAL_TOCTREES = {
    "guides/index": ("More guides", ["guides/speed", "guides/scaling"]),
    "index": ("Teaching", ["teaching/index"] if (DOCS / "teaching" / "index.md").exists() else ["teaching/*"]),
}


def _existing(entry: str) -> bool:
    folder, _, name = entry.rpartition("/")
    if name == "*":
        return any((DOCS / folder).glob("*.md"))
    return (DOCS / f"{entry}.md").exists() or (DOCS / f"{entry}.ipynb").exists()


def add_optional_toctrees(app, docname: str, source: list[str]) -> None:
    """Append a toctree of the optional pages of ``docname`` that exist."""
    if docname not in OPTIONAL_TOCTREES:
        return
    caption, entries = OPTIONAL_TOCTREES[docname]
    base = docname.rpartition("/")[0]
    present = [entry.removeprefix(f"{base}/") if base else entry for entry in entries if _existing(entry)]
    if present:
        source[0] += "\n\n```{toctree}\n:caption: " + caption + "\n:glob:\n:maxdepth: 1\n\n"
        source[0] += "\n".join(present) + "\n```\n"


def reread_optional_toctrees(app, env, added, changed, removed) -> list[str]:
    """Read the pages with optional toctrees at every build: an optional page may have come
    or gone while those pages themselves did not change."""
    return list(OPTIONAL_TOCTREES)


def setup(app) -> None:
    app.connect("source-read", add_optional_toctrees)
    app.connect("env-get-outdated", reread_optional_toctrees)
