"""The student release: the course notebooks without outputs, answers or hidden tests.

Cells follow nbgrader's conventions: an answer cell carries
``metadata.nbgrader = {grade_id, solution: true, grade: true, points}``; code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` is replaced by ``...  # your code here``, and
a cell holding ``### BEGIN HIDDEN TESTS`` is dropped (with everything in it)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nbformat

SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.S | re.M)
HIDDEN = "### BEGIN HIDDEN TESTS"


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook a student gets: solutions blanked, hidden tests dropped, outputs cleared."""
    cells = []
    for cell in nb.cells:
        if HIDDEN in cell.source:
            continue
        cell.source = SOLUTION.sub(lambda m: f"{m.group(1)}...  # your code here", cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    nb.cells = cells
    return nb


def release(source_dir: Path, out_dir: Path) -> list[Path]:
    """Write the student version of every notebook of ``source_dir`` into ``out_dir``
    (atomically, one file at a time) and return the paths written."""
    from .answers import ANSWERS

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source_dir.glob("*.ipynb")):
        nb = student_version(nbformat.read(path, as_version=4))
        text = nbformat.writes(nb)
        leaked = [i for i, (_, src) in ANSWERS.items() if len(src.strip()) > 40 and src.strip() in text]
        if "BEGIN SOLUTION" in text or leaked:
            raise SystemExit(f"{path.name}: the release would hold answers ({leaked or 'BEGIN SOLUTION'})")
        target = out_dir / path.name
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
        written.append(target)
    return written
