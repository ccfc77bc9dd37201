"""A tokenized corpus on disk, built once and memory-mapped: WikiText-103 is tokenized
by the first run and read back in a moment by every later one (and by every process of a
``torchrun`` job), instead of spending minutes re-encoding 100 M words.

A cache entry is two ``.npy`` files, the flat ids and the example offsets of a
:class:`~binedu.data.token_dataset.TokenDataset`, named after a key that hashes everything the
examples depend on: the bytes of the source files, the tokenizer (its JSON form), the
``max_len`` and ``limit``, and this format's version. Changing any of them gives a new
key, so a stale entry is never read. Each file is written atomically
(:func:`binedu.io.atomic_write`), the offsets last: an entry whose offsets exist is
complete. Entries are opened with ``numpy.load(mmap_mode="r")``: the pages are read on
demand and shared by every process and DataLoader worker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .token_dataset import TokenDataset
from .tokenizers import Tokenizer

__all__ = ["cache_key", "cached_examples", "VERSION"]

VERSION = 1  # bump when build_examples changes what it makes of the same text
_CHUNK = 1 << 22


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def cache_key(sources: Sequence[str | Path], tokenizer: Tokenizer, max_len: int, limit: int | None) -> str:
    """Hex key of the examples that ``sources``, ``tokenizer``, ``max_len`` and ``limit``
    give (the file contents count, not their names or dates)."""
    h = hashlib.sha256(f"binedu-token-cache v{VERSION} max_len={max_len} limit={limit}\n".encode())
    h.update(json.dumps(tokenizer.to_dict(), sort_keys=True, ensure_ascii=False).encode())
    for source in sources:
        h.update(_file_digest(Path(source)))
    return h.hexdigest()[:40]


def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    return folder / f"{key}.ids.npy", folder / f"{key}.offsets.npy"


def _open(ids_path: Path, offsets_path: Path, length: int, pad_id: int) -> TokenDataset | None:
    """The memory-mapped entry, or None when it is missing or unreadable."""
    try:
        ids = np.load(ids_path, mmap_mode="r", allow_pickle=False)
        offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
        return TokenDataset(ids, offsets, length, pad_id)
    except (OSError, ValueError):
        return None


def _save(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


def cached_examples(
    cache_dir: str | Path,
    sources: Sequence[str | Path],
    tokenizer: Tokenizer,
    max_len: int,
    limit: int | None,
    build: Callable[[], TokenDataset],
) -> TokenDataset:
    """The examples ``build()`` makes from ``sources``, from the cache in ``cache_dir``
    when an entry with their key exists, else built, written (atomically) and then read
    back memory-mapped."""
    folder = Path(cache_dir).expanduser()
    ids_path, offsets_path = _paths(folder, cache_key(sources, tokenizer, max_len, limit))
    length = max_len + 1
    if offsets_path.is_file():
        cached = _open(ids_path, offsets_path, length, tokenizer.pad_id)
        if cached is not None:
            return cached
    data = build()
    _save(ids_path, data.ids)
    _save(offsets_path, data.offsets)  # last: its presence marks a complete entry
    cached = _open(ids_path, offsets_path, length, tokenizer.pad_id)
    if cached is None:
        raise OSError(f"the token cache {ids_path} could not be read back after writing it")
    return cached
