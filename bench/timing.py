"""What the benchmark scripts share: interleaved best-of-N timing and a plain table."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["best_times", "cache_flusher", "format_table", "verdict", "int8_linear", "load_line", "spread", "kernel_name"]


def int8_linear(linear: nn.Linear) -> nn.Module:
    """``linear`` through PyTorch's dynamic int8 quantization (``torch.ao``: int8 weights,
    inputs quantized on the fly), the usual "make it smaller and faster" baseline."""
    with warnings.catch_warnings():  # torch.ao.quantization announces its deprecation
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)[0]


def load_line() -> str:
    """The machine's load, as ``uptime`` prints it (other processes compete for the cores)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average {os.getloadavg()[0]:.2f}"


def spread(values: Sequence[float], worst: Callable[[Sequence[float]], float] = max) -> str:
    """``"median M, worst W"`` of per-process figures (``worst`` is ``max`` for times and
    ratios, ``min`` for speeds)."""
    return f"median {statistics.median(values):.2f}, worst {worst(values):.2f}"


def kernel_name() -> str:
    """Which packed kernel runs in this process: numba, or the PyTorch fallback and why."""
    from binedu import lut_kernel

    why = lut_kernel.why_unavailable()
    return "numba" if why is None else f"PyTorch (numba {why})"


def cache_flusher(nbytes: int = 64 * 2**20) -> Callable[[], None]:
    """A function that writes ``nbytes`` (more than the CPU caches hold), so that the
    next call reads its weights from memory, as a model too large for the cache does."""
    buffer = torch.zeros(nbytes // 4)

    def flush() -> None:
        buffer.add_(1)

    return flush


def best_times(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    before_each: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Seconds per call of each function: the best of ``repeats`` calls, the contenders
    interleaved so that a busy machine slows them alike (the minimum is what ``timeit``
    recommends: the other numbers measure the noise, not the code). ``before_each`` runs
    untimed before every call (e.g. a :func:`cache_flusher`).

    The order rotates from round to round, so every contender also runs after every
    other: a call can leave the CPU slower for the next one even across a cache flush
    (measured: the same packed kernel was 20 to 40 % slower right after the int8 layer
    than after itself), and a fixed order would charge that to whoever comes next."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            if before_each is not None:
                before_each()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}


def verdict(value: float, goal: float, *, at_least: bool) -> str:
    """``"yes"`` when ``value`` meets the goal (``>= goal`` or ``<= goal``), else ``"NO"``."""
    return "yes" if (value >= goal if at_least else value <= goal) else "NO"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned first column, right-aligned numbers, a rule under the header."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), "-" * len(line(cells[0])), *map(line, cells[1:])])
