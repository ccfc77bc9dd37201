"""Reading safetensors files that nobody vouches for, with work bounded by the file.

Both checkpoint formats (:mod:`binedu.checkpoint`, :mod:`binedu.train_checkpoint`) are
safetensors files: 8 bytes ``N``, an ``N``-byte JSON header (each tensor's dtype, shape
and byte range, plus a string table ``__metadata__``), then the tensors' bytes. This
module reads them without the safetensors library, so that every check happens before
anything is allocated and every failure is the caller's own error type (a
``ValueError``), never a library exception:

- only a regular file is opened (a FIFO or a device would block or never end), and it
  is opened non-blocking, so a file swapped for a FIFO after the check cannot hang;
- the header must fit in the file and in :data:`MAX_HEADER` bytes, parse as a JSON
  object of at most :data:`MAX_DEPTH` levels, and hold only string metadata;
- every tensor entry needs a known dtype, non-negative integer dimensions, and a byte
  range of exactly ``numel * itemsize`` bytes; the ranges must tile the data area with
  no gap or overlap, and the data area must end where the file ends. A shape can
  therefore never claim more elements than the file holds bytes.

Reading a tensor then costs exactly its stored bytes. :func:`digest` is the checksum both
formats store for every tensor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

import torch

__all__ = ["TensorEntry", "TensorFile", "DTYPES", "MAX_HEADER", "MAX_DEPTH", "digest", "json_depth", "parse_json"]

DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "I32": torch.int32,
    "I64": torch.int64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
}
"""The safetensors dtype names binedu reads, and their torch types."""

MAX_HEADER = 100 * 2**20
"""The longest JSON header read (100 MiB, the limit of the safetensors library)."""

MAX_DEPTH = 128
"""The deepest JSON nesting read: binedu's own documents need fewer than 40 levels."""


def digest(data: torch.Tensor | bytes | bytearray | memoryview) -> str:
    """First 16 hex digits (64 bits) of the SHA-256 of a tensor's bytes (or of raw bytes):
    plenty to catch corruption, and small next to the tensors."""
    if isinstance(data, torch.Tensor):
        flat = data.detach().cpu().contiguous().reshape(-1)
        data = flat.view(torch.uint8).numpy().data if flat.numel() else b""  # .data: the array's memoryview
    return hashlib.sha256(data).hexdigest()[:16]


def json_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion;
    stops and returns ``limit + 1`` as soon as ``limit`` is exceeded."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth += 1
            if depth > limit:
                return limit + 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in item)
    return deepest


def parse_json(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, raising ``ValueError`` (never ``RecursionError``) for
    malformed text or nesting deeper than ``limit``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON ({err})") from None
    if json_depth(value, limit) > limit:
        raise ValueError(f"JSON nested more than {limit} levels deep")
    return value


def _open_regular(path: Path) -> BufferedReader:
    """``path`` opened for reading if it is a regular file; ``FileNotFoundError`` if it
    does not exist, ``ValueError`` for a folder, FIFO, socket or device."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise ValueError("it is not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat and open
            raise ValueError("it is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the header: its dtype, shape and byte range in the data area."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _entry(name: str, raw: Any) -> TensorEntry:
    if not isinstance(raw, dict) or set(raw) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"tensor {name!r} has a malformed header entry")
    dtype, shape, offsets = raw["dtype"], raw["shape"], raw["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"tensor {name!r} has an unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"tensor {name!r} has a malformed shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets):
        raise ValueError(f"tensor {name!r} has malformed data offsets {offsets!r}")
    entry = TensorEntry(DTYPES[dtype], tuple(shape), offsets[0], offsets[1])
    if entry.end - entry.begin != entry.numel * entry.dtype.itemsize:
        raise ValueError(
            f"tensor {name!r} of shape {list(shape)} needs {entry.numel * entry.dtype.itemsize} bytes, "
            f"its byte range holds {entry.end - entry.begin}"
        )
    return entry


class TensorFile:
    """An open, checked safetensors file: ``metadata`` (str -> str), ``entries`` (the
    tensors' dtypes, shapes and ranges), and :meth:`read` for one tensor.

    Construction reads and checks the header only (module docstring); any problem is
    raised as ``error(f"{path} is not {what}: <reason>")``. ``FileNotFoundError`` is
    left to the caller. Use as a context manager.
    """

    def __init__(self, path: str | Path, error: type[ValueError], what: str) -> None:
        self.path, self.error, self.what = Path(path), error, what
        try:
            self._file = _open_regular(self.path)
        except ValueError as err:
            raise self._fail(str(err)) from None
        try:
            self.metadata, self.entries, self.data_start = self._read_header()
        except BaseException:
            self._file.close()
            raise

    def _fail(self, reason: str) -> ValueError:
        return self.error(f"{self.path} is not {self.what}: {reason}")

    def _read_header(self) -> tuple[dict[str, str], dict[str, TensorEntry], int]:
        size = os.fstat(self._file.fileno()).st_size
        start = self._file.read(8)
        if len(start) < 8:
            raise self._fail(f"only {size} bytes long")
        (length,) = struct.unpack("<Q", start)
        if length > size - 8 or length > MAX_HEADER:
            raise self._fail(f"truncated or corrupted: its header claims {length} bytes, the file has {size}")
        raw = self._file.read(length)
        if len(raw) != length:
            raise self._fail("truncated while being read")
        try:
            header = parse_json(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise self._fail(f"its header is not JSON ({err})") from None
        if not isinstance(header, dict):
            raise self._fail("its header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise self._fail("its metadata is not a table of strings")
        try:
            entries = {name: _entry(name, raw_entry) for name, raw_entry in header.items()}
        except ValueError as err:
            raise self._fail(f"corrupted: {err}") from None
        data = size - 8 - length
        position = 0
        for name, entry in sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end)):
            if entry.begin != position:
                raise self._fail(f"corrupted: tensor {name!r} starts at byte {entry.begin}, expected {position}")
            position = entry.end
        if position != data:
            raise self._fail(
                f"truncated or corrupted: its tensors need {position} bytes of data, the file holds {data}"
            )
        return metadata, entries, 8 + length

    def read_bytes(self, name: str) -> bytearray:
        """The stored bytes of tensor ``name``."""
        entry = self.entries[name]
        self._file.seek(self.data_start + entry.begin)
        data = bytearray(entry.end - entry.begin)
        if self._file.readinto(data) != len(data):
            raise self._fail(f"truncated while reading tensor {name!r}")
        return data

    def read(self, name: str, data: bytearray | None = None) -> torch.Tensor:
        """Tensor ``name`` (from ``data``, its bytes, if already read)."""
        entry = self.entries[name]
        data = self.read_bytes(name) if data is None else data
        if not data:
            return torch.empty(entry.shape, dtype=entry.dtype)
        return torch.frombuffer(data, dtype=entry.dtype).reshape(entry.shape)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
