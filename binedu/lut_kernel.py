"""Packed dense layers through the compiled lookup-table kernel, when numba is there.

:mod:`binedu.lut_kernel_numba` holds the kernel as readable Python that numba compiles;
this module decides whether it can run and calls it. numba is optional (the ``fast``
extra: ``pip install 'binedu[fast]'``). Without it, or if it fails to compile, or when
``BINEDU_NUMBA=0`` is set, :func:`packed_linear` returns ``None`` and the packed layers
use the plain-PyTorch kernels of :mod:`binedu.packed` (the reference): the same
results, slower, with a one-time warning that says why.

Compiled once: numba's on-disk cache (``cache=True``) keeps the machine code between
processes. It is written to ``$NUMBA_CACHE_DIR`` when that is set, else to a user cache
directory (``$XDG_CACHE_HOME/binedu/numba``, by default ``~/.cache/binedu/numba``), so it
works when binedu is installed read-only. numba reads that setting when it is imported,
so it only takes effect if binedu imports numba first.

Threads: the kernel runs on ``torch.get_num_threads()`` threads (or the count given to
:func:`set_threads`), never more than numba's pool holds, so a process that set torch to
one thread runs the kernel on one thread too, and the two pools never run at once.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

__all__ = [
    "packed_linear",
    "Plan",
    "plan",
    "run",
    "available",
    "why_unavailable",
    "set_threads",
    "kernel_threads",
    "cache_dir",
    "compile_seconds",
    "MAX_ROWS",
    "UNIT_BLOCK",
    "unit_block",
    "unpack",
    "KERNEL_ACTIVATIONS",
]

MAX_ROWS = 8
"""``method="auto"`` uses the compiled kernel for up to this many input rows; more go to
the dense product (:func:`binedu.packed.dense_matmul`). The kernel reads every weight
byte once per row, while a float32 matrix product reuses each weight across the rows
with SIMD multiply-adds: measured with ``bench/bench_speed.py`` on a 2-core CPU, the
kernel wins clearly up to 8 rows of a 4096 x 4096 layer and loses from about 16."""

UNIT_BLOCK = 1024
"""Output units per block of the kernel's lookups, at most (see :func:`unit_block`):
the block's running sums (4 KiB per row) stay in the level-1 cache while the groups'
weight bytes stream past, and the block's weight bytes stay in the level-2 cache while
the rows of a small batch reuse them. Measured on a 2-core CPU: blocks of 256 units took
25 % longer on a 4096 x 4096 layer, blocks of 2048 no less."""

KERNEL_ACTIVATIONS = {"linear": 0, "relu": 1, "gelu": 2}
"""Activations fused into the kernel's epilogue, by name (codes of
:mod:`binedu.lut_kernel_numba`); any other runs after it, in PyTorch."""

@dataclass
class _KernelState:
    module: ModuleType | None = None  # binedu.lut_kernel_numba, once imported
    reason: str | None = None  # why the PyTorch kernel runs instead
    warned: bool = False
    threads: int | None = None  # set_threads' count (None: torch's)
    pool: int = 1  # numba's thread pool size, once imported
    kernel: Any = None  # the compiled packed_linear, once the first call has gone through _first_run


_state = _KernelState()
_compile_seconds: float | None = None
_EMPTY = torch.empty(0).numpy()


def cache_dir() -> Path:
    """Where numba caches the compiled kernel: ``$NUMBA_CACHE_DIR`` if set, else
    ``$XDG_CACHE_HOME/binedu/numba`` (``~/.cache/binedu/numba`` by default)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "binedu" / "numba"


def _load() -> ModuleType | None:
    """Import the numba kernel (once); on failure remember why."""
    if _state.module is not None or _state.reason is not None:
        return _state.module
    if os.environ.get("BINEDU_NUMBA", "1").strip() == "0":
        _state.reason = "is disabled (BINEDU_NUMBA=0)"
        return None
    if "numba" not in sys.modules and not os.environ.get("NUMBA_CACHE_DIR"):
        os.environ["NUMBA_CACHE_DIR"] = str(cache_dir())  # read once, when numba is imported
    try:
        from . import lut_kernel_numba
    except ImportError as err:
        _state.reason = f"is not installed ({err}; pip install 'binedu[fast]')"
        return None
    except Exception as err:  # a broken install: numba's own import errors are not ImportErrors
        _state.reason = f"failed to import ({type(err).__name__}: {err})"
        return None
    _state.pool = _start_threads()
    _state.module = lut_kernel_numba
    return lut_kernel_numba


def _start_threads() -> int:
    """Start numba's thread pool now, and keep torch's thread count.

    numba's OpenMP threading layer shares the OpenMP runtime that torch's CPU kernels
    run on, and starting its pool sets that runtime's thread count to numba's pool size:
    a process that had set ``torch.set_num_threads(1)`` would silently run torch on every
    core. Both then use one set of OpenMP threads, one pool at a time, which is what keeps
    them from oversubscribing the cores; torch's count is restored here, once."""
    import numba

    previous = torch.get_num_threads()
    numba.get_num_threads()  # launches the pool
    if torch.get_num_threads() != previous:
        torch.set_num_threads(previous)
    pool: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # numba.config sets it at import
    return pool


def available() -> bool:
    """Whether the compiled kernel can run (numba imported; compilation is tried on the
    first call, see :func:`why_unavailable`)."""
    return _load() is not None


def why_unavailable() -> str | None:
    """Why the plain-PyTorch kernel runs instead (``None`` while numba is in use)."""
    _load()
    return _state.reason


def _fall_back(reason: str) -> None:
    _state.module, _state.kernel, _state.reason = None, None, reason
    if not _state.warned:
        _state.warned = True
        warnings.warn(
            f"binedu: numba {reason}; packed layers use the plain-PyTorch kernel (same results, slower)",
            RuntimeWarning,
            stacklevel=3,
        )


def set_threads(count: int | None) -> None:
    """Run the kernel on ``count`` threads (``None``: follow ``torch.get_num_threads()``)."""
    if count is not None and count < 1:
        raise ValueError(f"the kernel needs at least 1 thread, got {count}")
    _state.threads = count


def kernel_threads() -> int:
    """The threads the kernel will run on: the :func:`set_threads` count or torch's,
    at most numba's pool size (``NUMBA_NUM_THREADS``, the CPU count by default)."""
    wanted = _state.threads or torch.get_num_threads()
    return int(wanted) if _load() is None else min(int(wanted), _state.pool)


def _array(t: torch.Tensor) -> np.ndarray:
    if t.requires_grad:
        t = t.detach()
    return (t if t.is_contiguous() else t.contiguous()).numpy()


def compile_seconds() -> float | None:
    """Seconds the first kernel call of this process took (compiling, or loading the
    compiled code from numba's cache); ``None`` before it."""
    return _compile_seconds


@dataclass(frozen=True)
class Plan:
    """What the kernel needs of one packed layer, prepared once (:func:`plan`) and reused
    at every call (:func:`run`): NumPy views of the weight bytes and the 0/1 bias (the
    same memory, no copy) and the epilogue's settings. A language model runs 75 small
    layers per generated token, so the microseconds of checks and conversions a call
    would otherwise redo add up to a tenth of the decoding time."""

    weight: np.ndarray  # (ceil(n_x / 8), units) uint8
    bias: np.ndarray  # (units,) float32, or empty: no bias
    normalize: bool
    activation: int  # a code of KERNEL_ACTIVATIONS
    eps: float
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict, compare=False)
    """Per thread count asked for: (threads the call uses, units per block), worked out once."""

    def split(self, threads: int) -> tuple[int, int]:
        """``(threads used, units per block)`` of a call on ``threads`` threads: blocks of
        :func:`unit_block` units, and no more threads than blocks (a thread without a
        block would build its tables for nothing)."""
        kept = self.blocks.get(threads)
        if kept is None:
            block = unit_block(self.units, threads)
            kept = self.blocks[threads] = (min(threads, -(-self.units // block)), block)
        return kept

    @property
    def groups(self) -> int:
        return int(self.weight.shape[0])

    @property
    def units(self) -> int:
        return int(self.weight.shape[1])


def plan(
    weight_bits: torch.Tensor, bias: torch.Tensor | None, normalize: bool, activation: str, eps: float
) -> Plan | None:
    """The :class:`Plan` of a layer with packed ``(ceil(n_x / 8), units)`` ``weight_bits``
    and a 0/1 float32 ``bias`` (or ``None``); ``None`` when the kernel cannot run it
    (tensors not on the CPU, a bias not float32, or an activation not in
    :data:`KERNEL_ACTIVATIONS`). Keep the tensors unchanged while the plan is in use: it
    views their memory."""
    if activation not in KERNEL_ACTIVATIONS or weight_bits.device.type != "cpu" or weight_bits.dtype != torch.uint8:
        return None
    if bias is not None and (bias.device.type != "cpu" or bias.dtype != torch.float32):
        return None
    return Plan(
        _array(weight_bits),
        _EMPTY if bias is None else _array(bias),
        bool(normalize),
        KERNEL_ACTIVATIONS[activation],
        float(eps),
    )


def run(layer: Plan, x: torch.Tensor) -> torch.Tensor | None:
    """``Activation(Normalize(x W + b))`` (Alg. 2) of a planned layer for ``(rows, n_x)``
    ``x``, by the compiled kernel; ``None`` when it cannot run here (numba missing,
    disabled or failed to compile; ``x`` not a float32 CPU tensor, or autograd
    recording): the caller then uses the plain-PyTorch path. Any number of rows works;
    the callers send at most :data:`MAX_ROWS` with ``method="auto"``.

    Short on purpose: a language model makes 75 of these calls per generated token, and
    every Python step here costs more than the lookups of a small layer when the caches
    are cold (measured with ``bench/bench_speed.py``)."""
    if x.dtype != torch.float32 or not x.is_cpu or (x.requires_grad and torch.is_grad_enabled()):
        return None
    kernel = _state.kernel
    if kernel is None:  # the first call: load numba, compile (or load the cache), time it
        return _first_run(layer, x)
    threads, block = layer.split(_use_threads())
    rows = x.shape[0]
    size = layer.groups * 256  # table entries per row: 256 per group, one per byte value
    out = np.empty((rows, layer.units), dtype=np.float32)
    kernel(
        _array(x),
        layer.weight,
        layer.bias,
        layer.normalize,
        layer.activation,
        layer.eps,
        _scratch(threads * rows * size).reshape(threads, rows, size),
        block,
        out,
    )
    return torch.from_numpy(out)


def _first_run(layer: Plan, x: torch.Tensor) -> torch.Tensor | None:
    """The first kernel call of the process: import numba (or say why not), compile the
    kernel or load it from the cache, and time that (:func:`compile_seconds`); on a
    failure fall back to PyTorch with a one-time warning."""
    global _compile_seconds
    module = _state.module or _load()
    if module is None:
        if not _state.warned:
            _fall_back(str(_state.reason))
        return None
    _state.kernel = module.packed_linear
    start = time.perf_counter()
    try:
        out = run(layer, x)
    except Exception as err:  # numba's typing/lowering errors on an unusual platform
        _compile_failed(err)
        return None
    _compile_seconds = time.perf_counter() - start
    return out


def packed_linear(
    x: torch.Tensor,
    weight_bits: torch.Tensor,
    bias: torch.Tensor | None,
    normalize: bool,
    activation: str,
    eps: float,
) -> torch.Tensor | None:
    """``Activation(Normalize(x W + b))`` (Alg. 2) for ``(rows, n_x)`` ``x`` and packed
    ``(ceil(n_x / 8), units)`` ``weight_bits``, by the compiled kernel: :func:`plan` then
    :func:`run` in one call (a layer called again and again keeps its plan instead).
    ``None`` when the kernel cannot run it (see both). ``bias`` is the 0/1 float32 bias,
    or ``None``."""
    layer = plan(weight_bits, bias, normalize, activation, eps)
    return None if layer is None else run(layer, x)


def unpack(weight_bits: torch.Tensor, start: int, stop: int, out: torch.Tensor) -> bool:
    """Write the 0/1 float32 matrix of units ``start .. stop - 1`` of the packed
    ``weight_bits`` into ``out`` ``(n_x, stop - start)`` with the compiled kernel; ``False``
    (nothing written) when it cannot run here, and the caller unpacks with PyTorch."""
    if out.dtype != torch.float32 or not out.is_cpu or not out.is_contiguous() or not weight_bits.is_cpu:
        return False
    module = _state.module or _load()
    if module is None:
        return False
    _use_threads()
    try:
        module.unpack(_array(weight_bits), start, stop, out.numpy())
    except Exception as err:  # numba's typing/lowering errors on an unusual platform
        _compile_failed(err)
        return False
    return True


def unit_block(units: int, threads: int) -> int:
    """Units per block of the kernel's lookups for a layer with ``units`` outputs: at most
    :data:`UNIT_BLOCK`, and small enough that each of ``threads`` threads gets a block
    (a multiple of 64 units, whole cache lines of weight bytes)."""
    return max(64, min(UNIT_BLOCK, units // threads // 64 * 64))


def _use_threads() -> int:
    """Set numba's thread count for the calling thread to :func:`kernel_threads` (numba
    loaded) and return it. numba keeps the count per calling thread; it is remembered in
    ``_local`` and set again only when the count wanted changes."""
    threads = kernel_threads()
    if _local.__dict__.get("threads") != threads:
        import numba

        numba.set_num_threads(threads)
        _local.threads = threads
    return threads


def _compile_failed(err: Exception) -> None:
    """Fall back to PyTorch after numba failed to type or compile a kernel here."""
    _fall_back(f"failed to compile the kernel ({type(err).__name__}: {str(err).splitlines()[0]})")


_local = threading.local()


def _scratch(size: int) -> np.ndarray:
    """``size`` float32 of memory for the lookup tables, kept from call to call (one
    buffer per calling thread, grown when a layer needs more): a fresh table of a wide
    layer (512 KiB for 4096 inputs) would otherwise be new memory, page faults included,
    in every call."""
    buffer = getattr(_local, "tables", None)
    if buffer is None or buffer.shape[0] < size:
        buffer = np.empty(max(size, 1), dtype=np.float32)
        _local.tables = buffer
    return buffer[:size]
