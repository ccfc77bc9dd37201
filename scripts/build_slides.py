"""Build the lecture slides from the course notebooks themselves (reveal.js via nbconvert).

Each notebook's lecture cells carry Jupyter's standard slideshow metadata
(``cell.metadata.slideshow.slide_type``: ``slide``, ``subslide``, ``fragment``, ``-`` or
``skip``), as JupyterLab's property inspector sets it. A cell *without* it is left out of
the deck (the exercises, predictions and setup cells stay in the notebook for the
students), so a deck holds exactly the tagged cells. ``--execute`` runs the notebook first
(``FAST = True``, in a fresh kernel) so that the slides show the figures; without it they
show the code and the text.

Usage::

    python scripts/build_slides.py OUT/                       # every notebook with tagged cells
    python scripts/build_slides.py OUT/ notebooks/04_image_model.ipynb --execute

Writes ``OUT/<notebook>.slides.html`` (atomically) for each notebook; open it in a
browser (reveal.js is loaded from a CDN). Errors are one line, exit status 1.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


class SlidesError(Exception):
    """A notebook that cannot become a deck; the message names it and why."""


def slide_type(cell: nbformat.NotebookNode) -> str | None:
    """The cell's slideshow type, or None when it is not tagged."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def tagged_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The cells a deck shows: tagged, and not ``skip``."""
    return [c for c in nb.cells if slide_type(c) not in (None, "skip")]


def lecture_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` in which every untagged cell is ``skip``."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if slide_type(cell) is None:
            cell.setdefault("metadata", {})["slideshow"] = {"slide_type": "skip"}
    return out


def build_deck(path: Path, out_dir: Path, execute: bool = False, timeout: int = 600) -> Path:
    """Write ``out_dir/<stem>.slides.html`` from the notebook at ``path``; return its path."""
    from nbconvert import SlidesExporter

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as err:
        raise SlidesError(f"cannot read {path}: {err}") from None
    if not tagged_cells(nb):
        raise SlidesError(f"{path.name} has no cell tagged for slides (cell metadata 'slideshow')")
    deck = lecture_notebook(nb)
    if execute:
        from nbclient import NotebookClient

        NotebookClient(deck, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    body, _ = SlidesExporter().from_notebook_node(deck)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.slides.html"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the decks")
    parser.add_argument("notebooks", type=Path, nargs="*", help="notebooks (default: every tagged one in notebooks/)")
    parser.add_argument("--execute", action="store_true", help="run each notebook first, so the slides show figures")
    args = parser.parse_args(argv)
    paths = args.notebooks or [p for p in sorted(NOTEBOOKS.glob("*.ipynb"))
                               if tagged_cells(nbformat.read(p, as_version=4))]
    try:
        for path in paths:
            print(build_deck(path, args.out, execute=args.execute))
    except SlidesError as err:
        print(f"build_slides: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
