"""The cells every notebook shares, written once: the Colab install cell (the first code
cell) and the "Open in Colab" badge (in the title cell).

``python scripts/stamp_notebooks.py`` writes them into notebooks/*.ipynb;
tests/test_colab_cell.py checks that every notebook carries exactly these and that the
install cell does nothing outside Colab. This lives in scripts/ rather than in binedu,
because the cell runs before binedu is installed.
"""

from __future__ import annotations

import nbformat

REPOSITORY = "binedu/binedu"  # GitHub owner/name, as in the Binder badge
INSTALL_REQUIREMENT = f"binedu @ git+https://github.com/{REPOSITORY}"
COLAB_CELL_ID = "colab-setup"
BADGE_PREFIX = "[![Open In Colab]"

# On Colab, binedu is missing from a fresh runtime: install it once per session. Colab's
# own widget front end is ipywidgets 7; binedu's widgets are ipywidgets 8 widgets, which
# Colab displays through its custom widget manager (loaded from a CDN once turned on).
COLAB_CELL = f"""\
# Colab only: install binedu once per session and turn on ipywidgets 8 (see notebook 01).
# Anywhere else (JupyterLab, Binder, VS Code) this cell does nothing.
import importlib.util
import sys

if "google.colab" in sys.modules:
    if importlib.util.find_spec("binedu") is None:
        %pip install "{INSTALL_REQUIREMENT}"
        if "ipywidgets" in sys.modules:  # an older ipywidgets is already loaded
            print("ipywidgets was upgraded: use Runtime > Restart session, then run all cells again")
    from google.colab import output

    output.enable_custom_widget_manager()"""


def colab_url(notebook: str) -> str:
    """The Colab address of ``notebooks/<notebook>`` on the main branch."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{notebook}"


def colab_badge(notebook: str) -> str:
    """The Markdown "Open in Colab" badge of ``notebooks/<notebook>``."""
    return f"{BADGE_PREFIX}(https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"


def _with_badge(title: str, notebook: str) -> str:
    """The title cell's text with the badge as its second paragraph (replacing an old one)."""
    lines = [line for line in title.split("\n") if not line.startswith(BADGE_PREFIX)]
    heading, rest = lines[0], lines[1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    return "\n".join([heading, "", colab_badge(notebook), "", *rest])


def stamp(nb: nbformat.NotebookNode, notebook: str) -> bool:
    """Put the badge in the title cell (cell 0) and the install cell first among the code
    cells (right after the title); True if ``nb`` changed."""
    changed = False
    title = nb.cells[0]
    new_title = _with_badge(title.source, notebook)
    if new_title != title.source:
        title.source, changed = new_title, True
    existing = [i for i, cell in enumerate(nb.cells) if cell.get("id") == COLAB_CELL_ID]
    first_code = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), None)
    if existing and existing == [first_code]:
        cell = nb.cells[first_code]
        if cell.source != COLAB_CELL:
            cell.source, changed = COLAB_CELL, True
    else:
        for i in reversed(existing):
            del nb.cells[i]
        nb.cells.insert(1, nbformat.v4.new_code_cell(COLAB_CELL, id=COLAB_CELL_ID))
        changed = True
    return changed
