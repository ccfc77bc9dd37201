"""``binedu course DIR`` (binedu/course/copy.py): the course's notebooks copied into a
folder, never over a student's edits without ``--force``. The installed-wheel route (the
notebooks as package data) is tests/test_wheel.py's."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binedu.__main__ import main
from binedu.course.copy import CHECKOUT, CourseCopyError, copy_course, course_notebooks

REPO = Path(__file__).resolve().parents[1]
NAMES = ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]


def make_source(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NAMES):
        (folder / name).write_bytes(f'{{"cells": [{i}]}}'.encode())
    return folder


def test_in_a_checkout_the_notebooks_are_the_repositorys():
    assert CHECKOUT == REPO / "notebooks"
    found = course_notebooks()
    assert [p.name for p in found] == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert len(found) >= 8 and found[0].name.startswith("01_")


def test_cli_copies_the_course_and_says_how_to_open_it(tmp_path, capsys):
    target = tmp_path / "my course"
    assert main(["course", str(target)]) == 0
    out = capsys.readouterr().out
    notebooks = course_notebooks()
    for source in notebooks:
        assert (target / source.name).read_bytes() == source.read_bytes()
    assert f"{len(notebooks)} notebooks in {target}" in out and f"{len(notebooks)} copied" in out
    assert f"jupyter lab '{target / notebooks[0].name}'" in out, out  # quoted: the path has a space
    assert main(["course", str(target)]) == 0
    assert f"{len(notebooks)} already there, unchanged" in capsys.readouterr().out


def test_cli_refuses_edited_notebooks_with_one_line_and_copies_nothing(tmp_path, capsys):
    target = tmp_path / "course"
    assert main(["course", str(target)]) == 0
    first, second = sorted(target.glob("*.ipynb"))[:2]
    first.write_text("my answers")
    second.unlink()
    capsys.readouterr()
    assert main(["course", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err and first.name in err and "Traceback" not in err
    assert first.read_text() == "my answers" and not second.exists(), "refused means nothing written"
    assert main(["course", str(target), "--force"]) == 0
    assert first.with_name(first.name + ".bak").read_text() == "my answers"
    assert first.read_bytes() == (CHECKOUT / first.name).read_bytes() and second.is_file()


def test_cli_refuses_a_file_as_the_folder(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert main(["course", str(file)]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err and file.read_text() == "x"


def test_an_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(CourseCopyError, match="no notebooks found"):
        copy_course(tmp_path / "out", source=tmp_path)


@given(
    states=st.lists(st.sampled_from(["absent", "same", "edited", "folder"]), min_size=len(NAMES), max_size=len(NAMES)),
    force=st.booleans(),
)
def test_copy_either_refuses_untouched_or_leaves_the_course_with_backups(states, force):
    """The law: a copy that raises changes nothing in DIR; one that succeeds leaves every
    notebook equal to the course's, and every edited one saved as ``.bak``."""
    with tempfile.TemporaryDirectory() as tmp:
        source, target = make_source(Path(tmp) / "source"), Path(tmp) / "target"
        target.mkdir()
        for name, state in zip(NAMES, states, strict=True):
            if state == "same":
                shutil.copyfile(source / name, target / name)
            elif state == "edited":
                (target / name).write_text(f"edits of {name}")
            elif state == "folder":
                (target / name).mkdir()
        before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
        try:
            result = copy_course(target, force=force, source=source)
        except CourseCopyError:
            assert "folder" in states or ("edited" in states and not force)
            assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
            return
        assert "folder" not in states and (force or "edited" not in states)
        for name, state in zip(NAMES, states, strict=True):
            assert (target / name).read_bytes() == (source / name).read_bytes()
            backup = target / (name + ".bak")
            assert backup.exists() == (state == "edited")
            if state == "edited":
                assert backup.read_text() == f"edits of {name}"
        assert sorted(result.copied) == [n for n, s in zip(NAMES, states, strict=True) if s == "absent"]
        assert result.first == target / NAMES[0]


def test_binedu_course_runs_as_a_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "binedu", "course", str(tmp_path / "c")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "open it: jupyter lab" in result.stdout and (tmp_path / "c" / "01_why_one_bit.ipynb").is_file()
