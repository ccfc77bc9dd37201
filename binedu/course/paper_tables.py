"""The paper's result tables, typed in once: Table 2 (image models) and Table 5 (language
models) of Cabral et al. (2025), "1 bit is all we need", arXiv:2509.07025.

Notebook 01 teaches both tables in full; notebooks 04, 05 and 08 put single rows next to
their own runs. They all read the rows from here, so a number of the paper is written in
exactly one place of the course.
"""

from __future__ import annotations

__all__ = ["TABLE2", "TABLE5", "paper_rows", "paper_table_markdown"]

TABLE2_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc")
TABLE5_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc", "train_ppl", "val_ppl")

# Table 2: BCVNN (Alg. 7) on Food-101, best value of each metric during training
# (as printed: the strings keep the paper's digits, e.g. 0.670)
_PRINTED2: dict[str, tuple[str, ...]] = {
    "float32, 3x3": ("0.0369", "1.37", "0.989", "0.703"),
    "binary, 3x3": ("1.46", "1.55", "0.670", "0.637"),
    "float32, 5x5": ("0.0495", "1.48", "0.986", "0.679"),
    "binary, 5x5": ("0.836", "1.35", "0.834", "0.686"),
}

# Table 5: BLM (Alg. 8) on WikiText-103, best value of each metric during training
_PRINTED5: dict[str, tuple[str, ...]] = {
    "float32, small": ("1.35", "1.94", "0.726", "0.664", "3.98", "7.47"),
    "binary, small": ("2.03", "1.99", "0.653", "0.659", "8.08", "7.92"),
    "binary, large": ("1.87", "1.91", "0.666", "0.666", "6.95", "7.47"),
}

TABLE2: dict[str, dict[str, float]] = {m: dict(zip(TABLE2_METRICS, map(float, v), strict=True)) for m, v in _PRINTED2.items()}
TABLE5: dict[str, dict[str, float]] = {m: dict(zip(TABLE5_METRICS, map(float, v), strict=True)) for m, v in _PRINTED5.items()}

_TABLES = {2: TABLE2, 5: TABLE5}
_PRINTED: dict[int, dict[str, tuple[str, ...]]] = {2: _PRINTED2, 5: _PRINTED5}


def _table(number: int) -> dict[str, dict[str, float]]:
    if number not in _TABLES:
        raise ValueError(f"binedu has the paper's Tables 2 and 5, not Table {number}")
    return _TABLES[number]


def paper_rows(number: int, models: tuple[str, ...] | None = None, suffix: str = "") -> list[str]:
    """Markdown rows ``| model | value | ... |`` of Table ``number`` (2 or 5), for the named
    ``models`` (default: all, in the paper's order), each label followed by ``suffix``."""
    table = _table(number)
    names = tuple(table) if models is None else models
    unknown = [m for m in names if m not in table]
    if unknown:
        raise ValueError(f"Table {number} has no row {unknown[0]!r}; its rows are {list(table)}")
    return [f"| {m}{suffix} | " + " | ".join(_PRINTED[number][m]) + " |" for m in names]


def paper_table_markdown(number: int) -> str:
    """The whole of Table ``number`` (2 or 5) as a Markdown table, in the paper's order."""
    metrics = next(iter(_table(number).values()))
    header = "| model | " + " | ".join(m.replace("_", " ") for m in metrics) + " |"
    return "\n".join([header, "|---|" + "---:|" * len(metrics), *paper_rows(number)])
