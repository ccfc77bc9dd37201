"""A tokenized corpus on disk, built once and memory-mapped: WikiText-103 is tokenized
by the first run and read back in a moment by every later one (and by every process of a
``torchrun`` job), instead of spending minutes re-encoding 100 M words.

A cache entry is two ``.npy`` files, the flat ids and the example offsets of a
:class:`~binedu.data.token_dataset.TokenDataset`, named after a key that hashes everything the
examples depend on: the text that was read (the SHA-256 of the very bytes the
tokenizer was trained on and the examples made from, taken while reading them: a file
replaced after it was read cannot put the old text's examples under the new text's
key), the tokenizer (its JSON form), the ``max_len`` and ``limit``, and this format's
version. Changing any of them gives a new key, so a stale entry is never read. Each
file is written atomically (:func:`binedu.io.atomic_write`), the offsets last: an entry
whose offsets exist is complete. Entries are opened with ``numpy.load(mmap_mode="r")``:
the pages are read on demand and shared by every process and DataLoader worker.

An entry is checked before it is used (:class:`~binedu.data.token_dataset.TokenDataset`:
integer arrays, offsets from 0 to the end that never decrease, every id inside the
tokenizer's vocabulary); an invalid or unreadable one is rebuilt, with a warning. A
path of an entry that is not a regular file (a FIFO, a device, a folder, a symbolic
link) is refused with a :class:`~binedu.data.errors.DataError` and never opened: a FIFO
would block the reader forever.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .errors import DataError
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


def cache_key(sources: Sequence[str | Path | bytes], tokenizer: Tokenizer, max_len: int, limit: int | None) -> str:
    """Hex key of the examples that ``sources``, ``tokenizer``, ``max_len`` and ``limit``
    give (the text counts, not the files' names or dates). A source is the SHA-256
    digest (``bytes``) of the text that was read, or a file, whose bytes are hashed now."""
    h = hashlib.sha256(f"binedu-token-cache v{VERSION} max_len={max_len} limit={limit}\n".encode())
    h.update(json.dumps(tokenizer.to_dict(), sort_keys=True, ensure_ascii=False).encode())
    for source in sources:
        h.update(source if isinstance(source, bytes) else _file_digest(Path(source)))
    return h.hexdigest()[:40]


def _paths(folder: Path, key: str) -> tuple[Path, Path]:
    return folder / f"{key}.ids.npy", folder / f"{key}.offsets.npy"


def _check_paths(*paths: Path) -> None:
    """Refuse (never open) an entry path that exists but is not a regular file."""
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a symbolic link"
                if stat.S_ISLNK(mode)
                else "a folder"
                if stat.S_ISDIR(mode)
                else "not a regular file"
            )
            raise DataError(f"the token cache entry {path} is {kind}, not a cache file: remove it")


def _open(ids_path: Path, offsets_path: Path, length: int, pad_id: int, vocab_size: int) -> TokenDataset:
    """The memory-mapped, checked entry; ``ValueError`` or ``OSError`` when it is invalid."""
    ids = np.load(ids_path, mmap_mode="r", allow_pickle=False)
    offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
    return TokenDataset(ids, offsets, length, pad_id, vocab_size=vocab_size)


def _save(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write)


def cached_examples(
    cache_dir: str | Path,
    sources: Sequence[str | Path | bytes],
    tokenizer: Tokenizer,
    max_len: int,
    limit: int | None,
    build: Callable[[], TokenDataset],
) -> TokenDataset:
    """The examples ``build()`` makes from ``sources`` (the digests of the text read,
    see :func:`cache_key`), from the cache in ``cache_dir`` when a valid entry with their
    key exists, else built, written (atomically) and then read back memory-mapped. An
    invalid entry is rebuilt with a warning; an entry path that is not a regular file is
    a :class:`DataError` (module docstring)."""
    folder = Path(cache_dir).expanduser()
    ids_path, offsets_path = _paths(folder, cache_key(sources, tokenizer, max_len, limit))
    length, vocab = max_len + 1, tokenizer.vocab_size
    _check_paths(ids_path, offsets_path)
    if offsets_path.exists():
        try:
            return _open(ids_path, offsets_path, length, tokenizer.pad_id, vocab)
        except (OSError, ValueError) as err:
            warnings.warn(f"rebuilding the invalid token cache entry {offsets_path} ({err})", stacklevel=2)
    data = build()
    _save(ids_path, data.ids)
    _save(offsets_path, data.offsets)  # last: its presence marks a complete entry
    try:
        return _open(ids_path, offsets_path, length, tokenizer.pad_id, vocab)
    except (OSError, ValueError) as err:
        raise DataError(f"the token cache entry {ids_path} could not be read back after writing it ({err})") from None
