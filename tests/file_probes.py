"""Tools for the checkpoint tests: write any safetensors header, count what loading
allocates, and fail (instead of hanging) when a read blocks."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


def write_raw(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    """A safetensors-shaped file with any header at all (the library refuses to write
    non-string metadata or lying shapes; an attacker does not use the library)."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def read_raw(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and data of a safetensors file."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


class TensorAllocations(TorchFunctionMode):
    """Counts the bytes of every real (not ``meta``) tensor created by a torch function
    while active: what loading asks of the allocator, which ``tracemalloc`` cannot see."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor) and not result.is_meta:
            name = getattr(func, "__name__", "")
            if not name.endswith("_") and name not in ("__get__", "view", "reshape", "detach", "__getitem__"):
                self.bytes += math.prod(result.shape) * result.element_size()
        return result


@contextlib.contextmanager
def measure() -> Iterator[dict[str, int]]:
    """``with measure() as m:`` -> ``m["python"]`` (peak Python heap, tracemalloc) and
    ``m["tensors"]`` (bytes of real tensors created) of the block."""
    result = {"python": 0, "tensors": 0}
    tracemalloc.start()
    counter = TensorAllocations()
    try:
        with counter:
            yield result
    finally:
        result["python"] = tracemalloc.get_traced_memory()[1]
        result["tensors"] = counter.bytes
        tracemalloc.stop()


@contextlib.contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Raise ``TimeoutError`` instead of blocking forever (a FIFO opened for reading)."""

    def expire(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
