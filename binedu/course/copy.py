"""``binedu course DIR``: copy the course's notebooks into a folder and say how to open them.

The notebooks ship in the wheel as package data (``binedu/course/notebooks/``, copied there
from the repository's ``notebooks/`` when the wheel is built: setup.py). In a source
checkout (an editable install, ``make lab``) there is no such folder and the notebooks
are read from ``notebooks/`` next to the package. The data the notebooks use ships with
:mod:`binedu.data` already, so the notebooks are all there is to copy.

A notebook already in DIR is left alone when it is the shipped one, byte for byte. When it
differs (a student's work, or a notebook of another binedu version) nothing at all is
copied, unless ``--force`` is given: then each such notebook is first kept as
``NAME.ipynb.bak`` (an older ``.bak`` is replaced) and the shipped one takes its place.
Files are written atomically.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..io import atomic_write_bytes

__all__ = ["CourseCopy", "CourseCopyError", "add_arguments", "copy_course", "course_notebooks", "run"]

SHIPPED = Path(__file__).resolve().parent / "notebooks"  # in an installed wheel (setup.py puts them there)
CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"  # in a source checkout


class CourseCopyError(ValueError):
    """The course cannot be copied as asked (a student's edits in the way, a file where
    the folder should be); the message says what to do."""


@dataclass
class CourseCopy:
    """What :func:`copy_course` did, notebook file names by outcome."""

    folder: Path
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # with --force; the old one is NAME.bak

    @property
    def first(self) -> Path:
        """The notebook to open first."""
        return self.folder / sorted([*self.copied, *self.unchanged, *self.replaced])[0]


def course_notebooks(source: Path | None = None) -> list[Path]:
    """The course's notebooks, in order: from ``source``, else the installed package
    data, else the source checkout's ``notebooks/``."""
    folders = [source] if source is not None else [SHIPPED, CHECKOUT]
    for folder in folders:
        notebooks = sorted(folder.glob("*.ipynb"))
        if notebooks:
            return notebooks
    where = " or ".join(str(folder) for folder in folders)
    raise CourseCopyError(f"no notebooks found in {where}: reinstall binedu (pip install --force-reinstall binedu)")


def copy_course(folder: str | Path, *, force: bool = False, source: Path | None = None) -> CourseCopy:
    """Copy the course's notebooks into ``folder`` (created if needed). Refuses, before
    writing anything, when a notebook there differs from the shipped one, unless ``force``
    (then the old one is kept as ``NAME.ipynb.bak``)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CourseCopyError(f"{folder} is a file, not a folder: choose another place for the course")
    result = CourseCopy(folder)
    plan = []
    for notebook in course_notebooks(source):
        data, target = notebook.read_bytes(), folder / notebook.name
        if not target.exists():
            result.copied.append(notebook.name)
        elif target.is_file() and target.read_bytes() == data:
            result.unchanged.append(notebook.name)
            continue
        elif target.is_file():
            result.replaced.append(notebook.name)
        else:
            raise CourseCopyError(f"{target} is a folder, not a notebook: move it away first")
        plan.append((target, data))
    if result.replaced and not force:
        names = ", ".join(result.replaced)
        raise CourseCopyError(
            f"{folder} already holds notebooks that differ from this course ({names}): they may be your work, so "
            "nothing was copied; copy the course into another folder, or pass --force to replace them "
            "(each old notebook is kept as NAME.ipynb.bak)"
        )
    for target, data in plan:
        if target.exists():
            atomic_write_bytes(target.with_name(target.name + ".bak"), target.read_bytes())
        atomic_write_bytes(target, data)
    return result


def describe(result: CourseCopy) -> str:
    """What was copied and how to open it, for the terminal."""
    counts = [f"{len(names)} {what}" for names, what in (
        (result.copied, "copied"), (result.replaced, "replaced (old ones kept as .bak)"),
        (result.unchanged, "already there, unchanged"),
    ) if names]  # fmt: skip
    total = len(result.copied) + len(result.unchanged) + len(result.replaced)
    lines = [f"course: {total} notebooks in {result.folder} ({', '.join(counts)})"]
    lab = importlib.util.find_spec("jupyterlab") is not None
    if not lab:
        lines.append('JupyterLab is not installed here: pip install "binedu[lab]"')
    lines.append(f"open it: jupyter lab {shlex.quote(str(result.first))}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``binedu course``."""
    parser.add_argument("folder", help="where to put the notebooks (created if missing)")
    parser.add_argument(
        "--force", action="store_true",
        help="replace notebooks there that differ from the course (each old one is kept as NAME.ipynb.bak)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``binedu course``: copy, then say how to open the course."""
    print(describe(copy_course(args.folder, force=args.force)), flush=True)
    return 0
