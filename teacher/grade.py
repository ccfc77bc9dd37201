"""The autograder: run each submitted notebook in a fresh kernel with the hidden tests and
write a per-student, per-exercise score table (scores.csv and scores.md).

Layout: ``SUBMISSIONS/<student>/<notebook>.ipynb``. The answer cells of a submission (by
``nbgrader.grade_id``) are put into the released notebook of the same name (so edits
elsewhere do not count), a hidden-test cell is appended (cases from the teacher's seed),
and the notebook runs with nbclient. Each answer cell is also scanned (:mod:`.scan`): a
flag asks the teacher to look, whatever the score."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .scan import scan

KIT_PARENT = Path(__file__).resolve().parent.parent
MARK = "BINEDU_GRADES "
CHECK = re.compile(r'check\(\s*"(\d\d\.\w+)"\s*,\s*(\w+)')


@dataclass
class Row:
    student: str
    notebook: str
    exercise: str
    points: float
    score: float = 0.0
    flags: list[str] = field(default_factory=list)
    why: str = ""


def _answer_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def _kernel_env(tmp: Path) -> dict[str, str]:
    """A ``python3`` kernelspec that runs this interpreter (a fresh kernel, same packages)."""
    spec = tmp / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grading)", "language": "python"}))
    return {"JUPYTER_PATH": str(tmp), "MPLBACKEND": "Agg"}


def grade_notebook(student: str, submitted: nbformat.NotebookNode, released: nbformat.NotebookNode,
                   name: str, seed: int, timeout: int = 600) -> list[Row]:
    """Score one submitted notebook against its released version."""
    from binedu.course.exercises import get_exercise

    given = _answer_cells(submitted)
    run = nbformat.from_dict(json.loads(json.dumps(released)))
    rows, tests = [], {}
    for grade_id, cell in _answer_cells(run).items():
        ex = get_exercise(grade_id)
        row = Row(student, name, grade_id, float(cell.metadata["nbgrader"].get("points", 1)))
        if grade_id in given:
            cell.source = given[grade_id].source
        row.flags = scan(cell.source, getattr(ex, "switched_off", ()))
        m = CHECK.search(cell.source)
        if m:
            tests[grade_id] = m.group(2)
        else:
            row.why = "the check call was removed"
        rows.append(row)
    run.cells.append(nbformat.v4.new_code_cell(
        "### BEGIN HIDDEN TESTS\n"
        f"import sys\nsys.path.insert(0, {str(KIT_PARENT)!r})\nfrom teacher.hidden import run_in_kernel\n"
        f"print({MARK!r} + run_in_kernel(globals(), {tests!r}, {seed}))\n### END HIDDEN TESTS"))
    with tempfile.TemporaryDirectory() as tmp:
        old = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "MPLBACKEND")}
        os.environ.update(_kernel_env(Path(tmp)))
        try:
            NotebookClient(run, kernel_name="python3", timeout=timeout, allow_errors=True,
                           resources={"metadata": {"path": tmp}}).execute()
        except Exception as err:  # noqa: BLE001 - a dead kernel or a timeout: every test of the notebook fails
            for row in rows:
                row.why = row.why or f"the notebook did not run: {type(err).__name__}"
            return rows
        finally:
            for k, v in old.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    text = "".join(o.get("text", "") for o in run.cells[-1].get("outputs", []) if o.output_type == "stream")
    found = re.search(re.escape(MARK) + r"(\{.*\})", text)
    results = json.loads(found.group(1)) if found else {}
    for row in rows:
        if row.exercise in results:
            row.score = row.points if results[row.exercise]["ok"] else 0.0
            row.why = results[row.exercise]["why"]
            first = _first_prediction(given.get(row.exercise))
            if first:
                row.why = f"{row.why} (first prediction in the student's session: {first})".strip()
        elif row.exercise in tests:
            row.why = "the hidden tests did not run (the notebook stopped before them)"
    return rows


def _first_prediction(cell: nbformat.NotebookNode | None) -> str | None:
    """The first prediction the student committed, as check() recorded it in the cell's output."""
    if cell is None:
        return None
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    m = re.search(r"Your first prediction, recorded: (.+?)\.\n", text)
    return m.group(1) if m else None


def grade_class(release_dir: Path, submissions: Path, out_dir: Path, seed: int) -> list[Row]:
    """Grade every ``SUBMISSIONS/<student>/<notebook>.ipynb`` and write scores.csv and scores.md."""
    rows: list[Row] = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for path in sorted(student_dir.glob("*.ipynb")):
            released = release_dir / path.name
            if not released.is_file():
                raise SystemExit(f"{path}: no released notebook named {path.name} in {release_dir}")
            try:
                submitted = nbformat.read(path, as_version=4)
            except Exception as err:  # noqa: BLE001 - an unreadable submission scores 0, it does not stop the class
                submitted = nbformat.v4.new_notebook()
                print(f"{path}: unreadable ({type(err).__name__}), graded as empty", file=sys.stderr)
            rows += grade_notebook(student_dir.name, submitted, nbformat.read(released, as_version=4),
                                   path.stem, seed)
    write_tables(rows, out_dir)
    return rows


def write_tables(rows: list[Row], out_dir: Path) -> None:
    """scores.csv (one line per student and exercise) and scores.md (one row per student)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "notebook", "exercise", "score", "points", "flagged", "flags", "why"])
        for r in rows:
            w.writerow([r.student, r.notebook, r.exercise, r.score, r.points, int(bool(r.flags)), "; ".join(r.flags), r.why])
    os.replace(tmp, out_dir / "scores.csv")
    exercises = sorted({r.exercise for r in rows})
    students = sorted({r.student for r in rows})
    by = {(r.student, r.exercise): r for r in rows}
    lines = ["| student | " + " | ".join(exercises) + " | total |", "|---|" + "---:|" * (len(exercises) + 1)]
    for s in students:
        cells = []
        for e in exercises:
            cell = by.get((s, e))
            cells.append("" if cell is None else f"{cell.score:g}/{cell.points:g}" + (" ⚑" if cell.flags else ""))
        total = sum(r.score for r in rows if r.student == s)
        possible = sum(r.points for r in rows if r.student == s)
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {total:g}/{possible:g} |")
    flagged = [r for r in rows if r.flags]
    if flagged:
        lines += ["", "⚑ flagged for review:", ""]
        lines += [f"- {r.student}, {r.exercise}: {'; '.join(r.flags)}" for r in flagged]
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out_dir / "scores.md")
