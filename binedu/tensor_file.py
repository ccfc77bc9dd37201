"""Reading safetensors files that nobody vouches for, with work bounded by the file.

Both checkpoint formats (:mod:`binedu.checkpoint`, :mod:`binedu.train_checkpoint`) are
safetensors files: 8 bytes ``N``, an ``N``-byte JSON header (each tensor's dtype, shape
and byte range, plus a string table ``__metadata__``), then the tensors' bytes. This
module reads them without the safetensors library, so that every check happens before
anything is allocated and every failure is the caller's own error type (a
``ValueError``), never a library exception:

- only a regular file is opened (a FIFO or a device would block or never end), and it
  is opened non-blocking, so a file swapped for a FIFO after the check cannot hang;
- the header must fit in the file and in :data:`MAX_HEADER` bytes (or the caller's
  smaller limit: a packed checkpoint's header is at most 1 MiB), parse as a JSON object
  of at most :data:`MAX_DEPTH` levels and :data:`MAX_CONTAINERS` lists and objects
  (counted before parsing: an empty list costs about 60 bytes of Python objects for its
  2 bytes of JSON), and hold only string metadata;
- a file that is something else (a PNG or JPEG image, a zip archive such as a
  ``torch.save`` file, a pickle, a NumPy array, gzip or text) is named as what it is;
- every tensor entry needs a known dtype, non-negative integer dimensions, and a byte
  range of exactly ``numel * itemsize`` bytes; the ranges must tile the data area with
  no gap or overlap, and the data area must end where the file ends. A shape can
  therefore never claim more elements than the file holds bytes.

Reading a tensor then costs exactly its stored bytes, and parsing the header at most
about 12 bytes of Python objects per byte of JSON (a short string or number) plus the
bounded lists and objects. :func:`digest` is the checksum both
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

__all__ = [
    "TensorEntry", "TensorFile", "DTYPES", "MAX_HEADER", "MAX_DEPTH", "MAX_CONTAINERS", "digest", "json_depth",
    "parse_json", "file_kind",
]  # fmt: skip

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

MAX_CONTAINERS = 200_000
"""The most JSON lists and objects one text may hold, counted as its ``[`` and ``{``
characters before it is parsed (strings included: an upper bound). paper-large's packed
header holds about 1,300, a training checkpoint's document a few per layer and one per
epoch; 200,000 cost at most about 15 MB of Python objects."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (a torch.save file is one; binedu never unpickles those)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "a program (ELF)"),
)


def digest(data: torch.Tensor | bytes | bytearray | memoryview) -> str:
    """First 16 hex digits (64 bits) of the SHA-256 of a tensor's bytes (or of raw bytes):
    plenty to catch corruption, and small next to the tensors."""
    if isinstance(data, torch.Tensor):
        flat = data.detach().cpu().contiguous().reshape(-1)
        data = flat.view(torch.uint8).numpy().data if flat.numel() else b""  # .data: the array's memoryview
    return hashlib.sha256(data).hexdigest()[:16]


def json_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion;
    stops and returns ``limit + 1`` as soon as ``limit`` is exceeded. Only lists and
    objects are visited (a list of a million numbers costs no extra memory)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        depth += 1
        if depth > limit:
            return limit + 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def file_kind(start: bytes) -> str | None:
    """What a file that begins with ``start`` (its first bytes) is, when it is a common
    format that is not a safetensors file: ``"a PNG image"``, ...; ``None`` otherwise."""
    for magic, kind in _MAGIC:
        if start.startswith(magic):
            return kind
    if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (binedu never unpickles files)"
    if start and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in start):
        return "a text file"
    return None


def count_containers(text: str | bytes) -> int:
    """An upper bound of the JSON lists and objects in ``text``: its ``[`` and ``{``
    characters (C-speed, before anything is parsed)."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def parse_json(text: str | bytes, limit: int = MAX_DEPTH, containers: int = MAX_CONTAINERS) -> Any:
    """``json.loads(text)``, raising ``ValueError`` (never ``RecursionError``) for
    malformed text, nesting deeper than ``limit`` or more than ``containers`` lists and
    objects (:func:`count_containers`, checked before parsing)."""
    found = count_containers(text)
    if found > containers:
        raise ValueError(f"JSON with {found:,} lists and objects (at most {containers:,})")
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
    raised as ``error(f"{path} is not {what}: <reason>")``; a header longer than
    ``max_header`` bytes is refused before it is read. ``FileNotFoundError`` is left to
    the caller. Use as a context manager.
    """

    def __init__(self, path: str | Path, error: type[ValueError], what: str, max_header: int = MAX_HEADER) -> None:
        self.path, self.error, self.what = Path(path), error, what
        self.max_header = min(max_header, MAX_HEADER)
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

    def _foreign(self, reason: str) -> ValueError:
        """``_fail(reason)``, or ``_fail("it is a PNG image")`` when the file's first
        bytes say what else it is (checked only once the header is found invalid: a
        valid header length may begin with any byte)."""
        self._file.seek(0)
        kind = file_kind(self._file.read(16))
        return self._fail(f"it is {kind}" if kind is not None else reason)

    def _read_header(self) -> tuple[dict[str, str], dict[str, TensorEntry], int]:
        size = os.fstat(self._file.fileno()).st_size
        start = self._file.read(8)
        if len(start) < 8:
            raise self._fail(f"only {size} bytes long")
        (length,) = struct.unpack("<Q", start)
        if length > size - 8:
            raise self._foreign(f"truncated or corrupted: its header claims {length} bytes, the file has {size}")
        if length > self.max_header:
            raise self._foreign(
                f"its header claims {length:,} bytes, more than the {self.max_header:,} such a file needs"
            )
        raw = self._file.read(length)
        if len(raw) != length:
            raise self._fail("truncated while being read")
        try:
            header = parse_json(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise self._foreign(f"its header is not JSON ({err})") from None
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
