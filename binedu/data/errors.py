"""The one error type of the data package: a ValueError that says what is wrong and where."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DataError", "require_dir", "require_file"]


class DataError(ValueError):
    """A data set or tokenizer file is missing, malformed or asked for by an unknown name.

    A subclass of ``ValueError`` so callers that catch bad input in general still catch it.
    """


def require_dir(path: str | Path | None, what: str, hint: str = "") -> Path:
    """``path`` as a ``Path`` if it is an existing folder, else a ``DataError`` naming
    ``what`` was looked for, the path, and ``hint`` (how to get the data)."""
    if path is None:
        raise DataError(f"{what} needs root=<folder>. {hint}".strip())
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{what}: folder not found: {path}. {hint}".strip())
    if not path.is_dir():
        raise DataError(f"{what}: {path} is a file, expected a folder. {hint}".strip())
    return path


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """``path`` if it is an existing file, else a ``DataError`` naming the missing file."""
    if not path.is_file():
        raise DataError(f"{what}: missing file {path}. {hint}".strip())
    return path
