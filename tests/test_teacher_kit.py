"""The teacher's kit: the answer key works when pasted, the package and the student release
hold no answers, hidden cases come from the teacher's secret seed, and the scan flags what a
teacher must look at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from binedu.course.exercises import check, exercises, get_exercise
from teacher.answers import ANSWERS, model_answer, notebook_imports
from teacher.hidden import hidden_cases, secret_seed
from teacher.release import release, student_version
from teacher.scan import scan

ROOT = Path(__file__).resolve().parents[1]
GRADED = [e for e in exercises() if e.kind != "prediction"]


def test_every_graded_exercise_has_a_model_answer_and_nothing_else():
    assert set(ANSWERS) == {e.id for e in GRADED}


@pytest.mark.parametrize("ex", GRADED, ids=lambda e: e.id)
def test_each_model_answer_passes_when_pasted_into_its_notebook(ex):
    """Only what the notebook imported is in the namespace (no private names of binedu)."""
    assert "binedu.course.exercises." not in ANSWERS[ex.id][1]
    assert check(ex.id, model_answer(ex.id), verbose=False) is True


def test_notebook_imports_are_the_notebooks_own():
    text = notebook_imports("02")
    assert "from binedu.course.exercises import check" in text and "google.colab" not in text
    compile(text, "02", "exec")


def test_the_package_tree_holds_no_answers():
    """What the wheel ships (``include = ["binedu*"]``) has no model answers, no solution()
    and no expected(); the kit's answer sources appear nowhere in it."""
    from setuptools import find_packages

    packages = find_packages(ROOT, include=["binedu*"])
    assert "teacher" not in packages and all(p.startswith("binedu") for p in packages)
    sources = [p.read_text() for pkg in packages for p in (ROOT / pkg.replace(".", "/")).glob("*.py")]
    text = "\n".join(sources)
    for marker in ("def solution(", "def expected(", "def model_answer(", "solution=", "_my_"):
        assert marker not in text, marker
    for ex_id, (_, source) in ANSWERS.items():
        assert source.strip() not in text, ex_id


def test_the_student_release_has_no_answers(tmp_path):
    written = release(ROOT / "notebooks", tmp_path)
    assert {p.name for p in written} == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    for path in written:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert "BEGIN SOLUTION" not in path.read_text() and "solution(" not in path.read_text()


def test_release_blanks_solutions_and_drops_hidden_tests():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"),
                nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS")]
    out = student_version(nb)
    assert len(out.cells) == 1 and out.cells[0].source == "def f(x):\n    ...  # your code here\n"


def test_release_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "teacher", "release", str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("*.ipynb"))) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    bad = subprocess.run([sys.executable, "-m", "teacher", "grade", str(tmp_path / "nope"), str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, check=False, env={"PATH": "", "PYTHONPATH": str(ROOT)})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("ex_id", ["02.quantize", "05.perplexity", "06.pack_byte", "04.build_bncvl",
                                   "06.build_packed_inference"])
def test_hidden_cases_depend_on_the_secret_seed_only(ex_id):
    ex = get_exercise(ex_id)

    def same(a, b):
        return all(repr(x) == repr(y) if not isinstance(x, torch.Tensor) else torch.equal(x, y)
                   for ca, cb in zip(a, b, strict=True) for x, y in zip(ca, cb, strict=True)) if len(a) == len(b) else False

    one, again, other = hidden_cases(ex, 11), hidden_cases(ex, 11), hidden_cases(ex, 12)
    assert same(one, again) and not same(one, other)
    assert not same(one, list(ex.cases()) * 2)
    answer = model_answer(ex_id)
    from binedu.course.exercises import core

    core._EXPECTED.pop(ex_id, None)
    assert core._judge(__import__("dataclasses").replace(ex, cases=lambda: one), answer) == (True, "")
    core._EXPECTED.pop(ex_id, None)


def test_the_seed_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("BINEDU_GRADING_SEED", raising=False)
    with pytest.raises(SystemExit, match="secret seed"):
        secret_seed(None)
    (tmp_path / "seed").write_text("42\n")
    assert secret_seed(tmp_path / "seed") == 42
    monkeypatch.setenv("BINEDU_GRADING_SEED", "7")
    assert secret_seed(tmp_path / "seed") == 7


@pytest.mark.parametrize(("source", "flag"), [
    ('my = solution("02.quantize")', "model answer"),
    ('my = get_exercise("02.quantize").reference', "registry"),
    ("from binedu.course.exercises import Measured\nr = Measured({}, {})", "by hand"),
    ("import binedu.course.exercises.core as core\ncore._mismatch = print", "patches"),
    ("f = types.FunctionType(quantize.__code__, {})", "code object"),
    ("def my(p):\n    return quantize(p)", "binedu.quantize.quantize"),
    ("def my(p):\n    return x._private(p)", "private"),
    ("def my(p)\n    return p", "does not parse"),
])
def test_scan_flags_what_a_teacher_must_look_at(source, flag):
    flags = scan(source, ("binedu.quantize.quantize",))
    assert any(flag in f for f in flags), flags


def test_scan_leaves_an_honest_answer_alone():
    source = ANSWERS["02.build_flip_log"][1] + '\ncheck("02.build_flip_log", train_with_flip_log);'
    assert scan(source, get_exercise("02.build_flip_log").switched_off) == []
    assert scan("def quantize(p):\n    return (p > p.mean()).float()\ncheck('02.quantize', quantize)",
                ("binedu.quantize.quantize",)) == []


def test_every_check_in_the_graded_notebooks_is_an_nbgrader_answer_cell():
    """Each exercise cell of every notebook carries nbgrader's metadata with its exercise id,
    so the release and the autograder find it."""
    import re

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            m = re.search(r'check\("(\d\d\.\w+)"', cell.source) if cell.cell_type == "code" else None
            if m:
                meta = cell.metadata.get("nbgrader", {})
                assert meta.get("grade_id") == m.group(1) and meta.get("solution") and meta.get("points"), (path.name, m.group(1))


@pytest.mark.parametrize("ex", GRADED, ids=lambda e: e.id)
def test_scan_flags_no_model_answer(ex):
    name, source = ANSWERS[ex.id]
    assert scan(f'{source}\ncheck("{ex.id}", {name});', getattr(ex, "switched_off", ())) == []
