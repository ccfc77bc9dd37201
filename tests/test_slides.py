"""scripts/build_slides.py: every lecture notebook becomes a reveal.js deck holding exactly
its slide-tagged cells (untagged cells, the exercises among them, stay out)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_slides import SlidesError, build_deck, lecture_notebook, slide_type, tagged_cells  # noqa: E402

LECTURES = ["01_why_one_bit", "02_binarization", "03_why_normalization", "04_image_model",
            "05_language_model", "06_bitpacking_32x", "08_paper_scale"]


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slides")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_slides.py"), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("stem", LECTURES)
def test_every_lecture_notebook_has_a_deck_with_its_tagged_cells(decks: Path, stem: str) -> None:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    html = (decks / f"{stem}.slides.html").read_text()
    shown = tagged_cells(nb)
    assert sum(slide_type(c) == "slide" for c in shown) >= 4, "a lecture has a title and sections"
    assert slide_type(nb.cells[0]) == "slide", "the deck opens with the notebook's title"
    for cell in nb.cells:
        present = f'id="cell-id={cell.id}"' in html
        assert present == (cell in shown), f"cell {cell.id} ({slide_type(cell)}) is {'in' if present else 'not in'} the deck"
    headings = [c.source.splitlines()[0].lstrip("# ").strip() for c in shown if c.source.startswith("## ")]
    assert any(h.startswith("Summary") for h in headings), "the summary is on the slides"
    exercises = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## Exercises"))
    assert not any(c in shown for c in nb.cells[exercises:]), "the exercises stay out of the lecture"


def test_untagged_cells_are_skipped_and_the_notebook_is_not_changed() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T", metadata={"slideshow": {"slide_type": "slide"}}),
                nbformat.v4.new_code_cell("x = 1")]
    deck = lecture_notebook(nb)
    assert slide_type(deck.cells[1]) == "skip" and slide_type(nb.cells[1]) is None


def test_a_notebook_without_tags_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")]), path)
    with pytest.raises(SlidesError, match="no cell tagged"):
        build_deck(path, tmp_path / "out")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_slides.py"), str(tmp_path / "o"), str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "plain.ipynb" in done.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.slow
def test_execute_puts_the_figures_on_the_slides(tmp_path: Path) -> None:
    """``--execute`` runs the notebook first (FAST), so its figures reach the deck."""
    deck = build_deck(ROOT / "notebooks" / "01_why_one_bit.ipynb", tmp_path, execute=True)
    html = deck.read_text()
    assert "data:image/png;base64," in html, "no figure on the executed slides"
    assert "Traceback" not in html
