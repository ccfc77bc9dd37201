"""The one build step pyproject.toml cannot declare: the course ships in the wheel.

The notebooks live at the repository root (notebooks/, where JupyterLab, Binder and the
tests open them). Building the wheel copies every ``notebooks/*.ipynb`` (a notebook added
later included) into ``binedu/course/notebooks/`` inside the build folder, never into the
source tree, so ``pip install binedu`` brings the course and ``binedu course DIR`` copies
it out (binedu/course/copy.py). An editable install (``make lab``, ``make test``) copies
nothing: binedu.course.copy reads notebooks/ of the checkout directly. MANIFEST.in puts
notebooks/ into the sdist, from which ``python -m build`` builds the wheel.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
PACKAGE_FOLDER = ("binedu", "course", "notebooks")  # binedu.course.copy.SHIPPED reads it


class BuildPyWithCourse(build_py):
    """``build_py`` that also copies the notebooks into the built package."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            for source, target in self._course_files():
                self.mkpath(str(Path(target).parent))
                self.copy_file(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        course = [] if self.editable_mode else [target for _, target in self._course_files()]
        return [*super().get_outputs(include_bytecode), *course]

    def _course_files(self) -> list[tuple[str, str]]:
        notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
        if not notebooks:
            raise SystemExit(f"setup.py: no notebooks in {NOTEBOOKS}: the wheel would ship no course")
        folder = Path(self.build_lib, *PACKAGE_FOLDER)
        return [(str(path), str(folder / path.name)) for path in notebooks]


setup(cmdclass={"build_py": BuildPyWithCourse})
