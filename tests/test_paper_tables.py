"""binedu.course.paper_tables: the paper's Tables 2 and 5, typed in once for the course."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from binedu.course.paper_tables import TABLE2, TABLE5, paper_rows, paper_table_markdown

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_tables_hold_the_papers_numbers() -> None:
    assert TABLE2["binary, 5x5"] == {"train_loss": 0.836, "val_loss": 1.35, "train_acc": 0.834, "val_acc": 0.686}
    assert TABLE5["binary, small"]["val_ppl"] == 7.92 and TABLE5["float32, small"]["val_ppl"] == 7.47
    assert list(TABLE2) == ["float32, 3x3", "binary, 3x3", "float32, 5x5", "binary, 5x5"]
    assert list(TABLE5) == ["float32, small", "binary, small", "binary, large"]


def test_rows_keep_the_printed_digits_and_markdown_has_every_row() -> None:
    assert paper_rows(2, ("binary, 3x3",), suffix=" (paper)") == ["| binary, 3x3 (paper) | 1.46 | 1.55 | 0.670 | 0.637 |"]
    for number, table in ((2, TABLE2), (5, TABLE5)):
        lines = paper_table_markdown(number).splitlines()
        assert len(lines) == 2 + len(table) and lines[0].startswith("| model | train loss")
    with pytest.raises(ValueError, match="Table 3"):
        paper_rows(3)
    with pytest.raises(ValueError, match="no row 'binary, 7x7'"):
        paper_rows(2, ("binary, 7x7",))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_notebook_retypes_the_tables(path: Path) -> None:
    """Tables 2 and 5 are taught once (notebook 01) and read from paper_tables elsewhere."""
    distinctive = ["0.0369", "0.0495", "| 8.08 ", "| 6.95 "]  # numbers only these tables have
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        retyped = [n for n in distinctive if n in cell.source]
        assert not retyped, f"cell {i} retypes the paper's table ({retyped}): use binedu.course.paper_tables"
