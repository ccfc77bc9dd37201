"""Measure the course notebooks for the syllabus: words, code, exercises, and the student
time estimated from them.

What is measured: the words of the lesson's markdown (before "## Exercises", quote
markers left out), its non-blank code lines, the self-checked exercises (``check(`` calls
after "## Exercises") and the predictions before them. What is estimated from those
(``--wpm``, ``--lines-per-min``, ``--min-per-exercise``): reading at 120 words a minute
(technical text with equations), reading and running code at 6 lines a minute, and 10
minutes per exercise. Measure your own class and pass its rates.

Usage::

    python scripts/course_time.py            # a Markdown table, one row per notebook
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXERCISES = re.compile(r"^##\s+Exercises", re.M)
MARKER = re.compile(r"<!--.*?-->", re.S)


def measure(path: Path) -> dict[str, int]:
    """Words and code lines of the lesson, predictions in it, exercises after it."""
    nb = nbformat.read(path, as_version=4)
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISES.search(c.source)),
                 len(nb.cells))
    lesson, exercises = nb.cells[:start], nb.cells[start:]
    return {
        "words": sum(len(MARKER.sub("", c.source).split()) for c in lesson if c.cell_type == "markdown"),
        "code_lines": sum(sum(1 for line in c.source.splitlines() if line.strip())
                          for c in lesson if c.cell_type == "code"),
        "predictions": sum(len(re.findall(r"\bcheck\(", c.source)) for c in lesson if c.cell_type == "code"),
        "exercises": sum(len(re.findall(r"\bcheck\(", c.source)) for c in exercises if c.cell_type == "code"),
    }


def minutes(m: dict[str, int], wpm: float, lines_per_min: float, min_per_exercise: float) -> dict[str, float]:
    """The estimated minutes of a notebook: lesson (reading and running) and exercises."""
    lesson = m["words"] / wpm + m["code_lines"] / lines_per_min
    return {"lesson": lesson, "exercises": (m["exercises"] + m["predictions"]) * min_per_exercise}


def table(paths: list[Path], wpm: float, lines_per_min: float, min_per_exercise: float) -> str:
    rows = ["| notebook | words | code lines | predictions | exercises | lesson (min) | exercises (min) | total (min) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for path in paths:
        m = measure(path)
        t = minutes(m, wpm, lines_per_min, min_per_exercise)
        rows.append(f"| {path.stem} | {m['words']:,} | {m['code_lines']} | {m['predictions']} | {m['exercises']} "
                    f"| {t['lesson']:.0f} | {t['exercises']:.0f} | {t['lesson'] + t['exercises']:.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", type=Path, nargs="*", help="default: every notebook in notebooks/")
    parser.add_argument("--wpm", type=float, default=120.0, help="reading speed, words per minute")
    parser.add_argument("--lines-per-min", type=float, default=6.0, help="code lines read and run per minute")
    parser.add_argument("--min-per-exercise", type=float, default=10.0, help="minutes per exercise or prediction")
    args = parser.parse_args(argv)
    if min(args.wpm, args.lines_per_min, args.min_per_exercise) <= 0:
        print("course_time: the rates must be positive", file=sys.stderr)
        return 1
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"course_time: no notebook at {missing[0]}", file=sys.stderr)
        return 1
    print(table(paths, args.wpm, args.lines_per_min, args.min_per_exercise))
    return 0


if __name__ == "__main__":
    sys.exit(main())
