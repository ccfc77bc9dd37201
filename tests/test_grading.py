"""The teacher's autograder on a synthetic class: an honest student, an empty submission,
one with errors, and one student per cheat of issue 18 section 1. Every cheat scores 0 or is
flagged for review; the honest one scores everything, unflagged."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from teacher.answers import ANSWERS
from teacher.grade import grade_class

IMPORTS = """import math
import types
import torch
import torch.nn.functional as F
from torch import nn
from binedu import LanguageModel, quantize
from binedu.course.exercises import check
from binedu.course.exercises.bitpacking import packing_experiment"""

# (grade id, placeholder answer cell, points)
CELLS = {
    "02.quantize": 'def my_quantize(p):\n    ...  # your code here\n\ncheck("02.quantize", my_quantize);',
    "03.normalize": 'def my_normalize(z):\n    ...  # your code here\n\ncheck("03.normalize", my_normalize);',
    "01.training_gb": 'training_gb = ...  # your answer\n\ncheck("01.training_gb", training_gb);',
    "08.bnfcl_parameters": ('def bnfcl_parameters(n_x, n_units):\n    ...  # your code here\n\n'
                            'check("08.bnfcl_parameters", bnfcl_parameters);'),
    "06.predict_padding": ('prediction = ...\nresult = packing_experiment(in_features=64)\n'
                           'check("06.predict_padding", prediction, measured=result);'),
}
HONEST_PREDICTION = ('prediction = 1.31\nresult = packing_experiment(in_features=12)\n'
                     'check("06.predict_padding", prediction, measured=result);')


def _answer(ex_id: str) -> str:
    name, source = ANSWERS[ex_id]
    return f'{source.strip()}\n\ncheck("{ex_id}", {name});'


def _notebook(answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells.append(new_code_cell(IMPORTS))
    for grade_id, source in CELLS.items():
        cell = new_code_cell(answers.get(grade_id, source))
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": True, "grade": True, "points": 1,
                                     "schema_version": 3}
        nb.cells.append(cell)
    return nb


HONEST = {i: _answer(i) for i in ("02.quantize", "03.normalize", "01.training_gb", "08.bnfcl_parameters")}
HONEST["06.predict_padding"] = HONEST_PREDICTION

STUDENTS = {
    "honest": HONEST,
    "empty": {},
    "errors": {"02.quantize": "def my_quantize(p):\n    return p.nosuchmethod()\ncheck('02.quantize', my_quantize)",
               "03.normalize": "def my_normalize(z)\n    return z",  # a syntax error
               "01.training_gb": "training_gb = 1 / 0"},
    "registry": {  # the answer key that the package used to ship
        "02.quantize": 'my_quantize = solution("02.quantize")\ncheck("02.quantize", my_quantize);',
        "03.normalize": ('from binedu.course.exercises import get_exercise\n'
                         'my_normalize = get_exercise("03.normalize").model_answer()\ncheck("03.normalize", my_normalize);'),
        "01.training_gb": ('from binedu.course.exercises import get_exercise\n'
                           'training_gb = get_exercise("01.training_gb").expected()\ncheck("01.training_gb", training_gb);'),
        "08.bnfcl_parameters": ('from binedu.course.exercises import get_exercise\n'
                                'bnfcl_parameters = get_exercise("08.bnfcl_parameters").reference\n'
                                'check("08.bnfcl_parameters", bnfcl_parameters);'),
    },
    "smuggler": {  # binedu's function hidden in a list, unswitched builtins
        "02.quantize": '_fns = [quantize]\ndef my_quantize(p):\n    return _fns[0](p)\ncheck("02.quantize", my_quantize);',
        "03.normalize": ('def my_normalize(z):\n    return torch.native_layer_norm(z, z.shape[-1:], None, None, 1e-5)[0]\n'
                         'check("03.normalize", my_normalize);'),
        "08.bnfcl_parameters": ('def bnfcl_parameters(n_x, n_units):\n'
                                '    return sum(p.numel() for p in nn.Linear(n_x, n_units, device="meta").parameters())\n'
                                'check("08.bnfcl_parameters", bnfcl_parameters);'),
    },
    "copier": {  # a code object copy, F.group_norm, and the value 08 printed in the second edition
        "02.quantize": ('my_quantize = types.FunctionType(quantize.__code__, quantize.__globals__)\n'
                        'check("02.quantize", my_quantize);'),
        "03.normalize": ('def my_normalize(z):\n    return F.group_norm(z.reshape(-1, 1, z.shape[-1]), 1, eps=1e-5).reshape(z.shape)\n'
                         'check("03.normalize", my_normalize);'),
        "01.training_gb": 'training_gb = 5.33\ncheck("01.training_gb", training_gb);',
    },
    "fabricator": {  # a Measured made by hand
        "06.predict_padding": ('from binedu.course.exercises import Measured\nprediction = 1.5\n'
                               'result = Measured(settings={"in_features": 12}, values={"bits_per_parameter": 1.5, '
                               '"packed_bytes": 0, "parameters": 1})\ncheck("06.predict_padding", prediction, measured=result);'),
    },
    "patcher": {  # the checker's private comparison replaced, wrong answers everywhere
        "02.quantize": ('import binedu.course.exercises.core as core\ncore._mismatch = lambda *args: None\n'
                        'core._judge = lambda ex, answer: (True, "")\n'
                        'def my_quantize(p):\n    return p\ncheck("02.quantize", my_quantize);'),
        "03.normalize": 'def my_normalize(z):\n    return z\ncheck("03.normalize", my_normalize);',
        "01.training_gb": 'training_gb = 1.0\ncheck("01.training_gb", training_gb);',
    },
}

IDS = list(CELLS)
WANT_SCORES = {
    "honest": dict.fromkeys(IDS, 1.0),
    "empty": dict.fromkeys(IDS, 0.0),
    "errors": dict.fromkeys(IDS, 0.0),
    "registry": dict.fromkeys(IDS, 0.0),
    "smuggler": dict.fromkeys(IDS, 0.0),
    "copier": dict.fromkeys(IDS, 0.0),
    "fabricator": dict.fromkeys(IDS, 0.0),
    "patcher": dict.fromkeys(IDS, 0.0),
}
WANT_FLAGS = {  # the answers a teacher is asked to look at
    "honest": set(),
    "empty": set(),
    "errors": {"03.normalize"},  # does not parse
    "registry": {"02.quantize", "03.normalize", "01.training_gb", "08.bnfcl_parameters"},
    "smuggler": {"02.quantize", "03.normalize", "08.bnfcl_parameters"},
    "copier": {"02.quantize", "03.normalize"},
    "fabricator": {"06.predict_padding"},
    "patcher": {"02.quantize"},
}


@pytest.mark.slow
def test_the_autograder_grades_a_synthetic_class(tmp_path, monkeypatch):
    monkeypatch.setenv("BINEDU_GRADING_SEED", "8128")
    release = tmp_path / "release"
    release.mkdir()
    nbformat.write(_notebook({}), release / "99_test.ipynb")
    for student, answers in STUDENTS.items():
        (tmp_path / "class" / student).mkdir(parents=True)
        nb = _notebook(answers)
        if student == "honest":  # what check printed in the student's own session
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "06.predict_padding")
            cell.outputs = [new_output("stream", name="stdout", text="Your first prediction, recorded: 1.2.\n")]
        nbformat.write(nb, tmp_path / "class" / student / "99_test.ipynb")
    rows = grade_class(release, tmp_path / "class", tmp_path / "out", seed=8128)

    got = {(r.student, r.exercise): r for r in rows}
    assert {s for s, _ in got} == set(STUDENTS)
    for student in STUDENTS:
        scores = {e: got[student, e].score for e in IDS}
        assert scores == WANT_SCORES[student], (student, {e: got[student, e].why for e in IDS})
        flagged = {e for e in IDS if got[student, e].flags}
        assert flagged == WANT_FLAGS[student], (student, {e: got[student, e].flags for e in IDS})
    assert "first prediction in the student's session: 1.2" in got["honest", "06.predict_padding"].why
    assert "write it yourself" in got["smuggler", "02.quantize"].why

    csv_text = (tmp_path / "out" / "scores.csv").read_text()
    assert csv_text.splitlines()[0].startswith("student,notebook,exercise,score,points,flagged")
    assert len(csv_text.splitlines()) == 1 + len(STUDENTS) * len(IDS)
    md = (tmp_path / "out" / "scores.md").read_text()
    assert "| honest | " in md and "5/5 |" in md and "⚑ flagged for review" in md
    assert json.dumps(sorted(STUDENTS))  # every student named in the table
    assert all(f"| {s} |" in md for s in STUDENTS)


@pytest.mark.slow
def test_the_model_answers_score_full_marks_on_a_real_notebook(tmp_path, monkeypatch):
    """The release of notebook 06, solved with the answer key (and the prediction made on a
    changed run), graded end to end: every exercise gets its points, nothing is flagged."""
    from pathlib import Path

    from teacher.answers import solved
    from teacher.release import release

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    source.mkdir()
    (source / "06_bitpacking_32x.ipynb").write_text((root / "notebooks" / "06_bitpacking_32x.ipynb").read_text())
    release(source, tmp_path / "release")
    nb = solved(nbformat.read(tmp_path / "release" / "06_bitpacking_32x.ipynb", as_version=4))
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "06.predict_padding":
            cell.source = cell.source.replace("prediction = ...", "prediction = 1.3").replace(
                "in_features=64", "in_features=12")
    (tmp_path / "class" / "model").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "class" / "model" / "06_bitpacking_32x.ipynb")
    rows = grade_class(tmp_path / "release", tmp_path / "class", tmp_path / "out", seed=4242)
    assert {r.exercise for r in rows} == {"06.pack_byte", "06.unpack_byte", "06.packed_matrix_bytes",
                                          "06.predict_padding", "06.build_packed_inference"}
    assert all(r.score == r.points and not r.flags for r in rows), [(r.exercise, r.score, r.flags, r.why) for r in rows]
