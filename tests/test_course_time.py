"""scripts/course_time.py measures the notebooks for the syllabus, and the syllabus's table
still matches what it measures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from course_time import measure, minutes  # noqa: E402

SYLLABUS = ROOT / "docs" / "teaching" / "syllabus.md"


def test_measure_counts_the_lesson_and_the_exercises_apart(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\nfour words here <!-- quote: x > 1 -->"),
        nbformat.v4.new_code_cell("a = 1\n\nb = 2\ncheck('p', a, measured=b)"),
        nbformat.v4.new_markdown_cell("## Exercises\nnot counted as lesson"),
        nbformat.v4.new_code_cell("check('e1', f)\ncheck('e2', g)"),
    ])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    m = measure(path)
    assert m == {"words": 5, "code_lines": 3, "predictions": 1, "exercises": 2}
    assert minutes(m, wpm=5, lines_per_min=3, min_per_exercise=10) == {"lesson": 2.0, "exercises": 30.0}


def test_the_syllabus_table_is_what_the_script_measures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "course_time.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    measured = {r.split("|")[1].strip(): r for r in done.stdout.splitlines()[2:]}
    written = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\d\d_\w+) \|.*$", SYLLABUS.read_text(), re.M)}
    assert set(written) == set(measured), "the syllabus lists other notebooks than notebooks/ holds"
    for name, row in measured.items():
        words = [int(re.sub(r"\D", "", r.split("|")[2])) for r in (row, written[name])]
        assert abs(words[0] - words[1]) <= 0.2 * words[0], (
            f"{name}: the syllabus says {words[1]} words, the notebook has {words[0]}: "
            "rerun python scripts/course_time.py and update docs/teaching/syllabus.md"
        )


def test_bad_rates_and_paths_get_one_line() -> None:
    for args in (["--wpm", "0"], ["missing.ipynb"]):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "course_time.py"), *args],
                              capture_output=True, text=True)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
