"""The compiled lookup-table kernel of a packed dense layer (Alg. 2 from its bits), in numba.

This module is the numba source that :mod:`binedu.lut_kernel` loads: importing it
imports numba (an optional dependency, the ``fast`` extra) and compiles nothing yet.
Each function is compiled by numba's LLVM JIT on its first call, for the argument
types it gets (float32 inputs, uint8 weight bytes), and the machine code is cached on
disk (``cache=True``), so a later process loads it instead of compiling again.

What one call of :func:`packed_linear` computes, for every input row ``x`` and every
output unit ``u`` of a layer whose 0/1 kernel ``W`` is stored 8 inputs per byte
(``weight[g, u]`` holds ``W[8g : 8g + 8, u]``, bit ``j`` for input ``8g + j``)::

    z[u] = sum_g T[g, weight[g, u]] + bias[u]      # W x + b, no multiplication
    a    = Activation(Normalize(z))                 # the tail of Alg. 2, fused

where ``T[g, v]`` is the sum of the inputs of group ``g`` whose bits are set in ``v``
(the subset-sum table, 256 entries per group, built with 255 additions). Reading one
byte of weights and one table entry replaces 8 multiply-adds, and the weights are
read as bytes: 32x less memory traffic than float32.

Plain Python loops, compiled: ``prange`` marks the loop that numba spreads over its
worker threads (one iteration per thread: each builds its tables and runs the lookups of
its share of the blocks of output units, writing only their outputs, so no two threads
ever write the same value).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

LINEAR, RELU, GELU = 0, 1, 2
"""The activations the kernel's epilogue applies (the others run after it, in PyTorch)."""

TABLE = 256
"""Entries of one group's table: one per value of a byte."""


@njit(cache=True)
def subset_tables(x: np.ndarray, table: np.ndarray) -> None:
    """``T[r, g, v]``, into ``table`` ``(rows, groups * 256)`` (group ``g``'s table at
    ``256 g .. 256 g + 255``): the sum of ``x[r, 8g + j]`` over the bits ``j`` set in byte ``v``.

    ``T[r, g, v + 2**j] = T[r, g, v] + x[r, 8g + j]`` for ``v < 2**j``: each of the 256
    subset sums of a group with one addition. Inputs past ``n_x`` count as 0 (the last
    group of a layer whose ``n_x`` is not a multiple of 8 is padded with zero bits)."""
    rows, n_x = x.shape
    groups = table.shape[1] // TABLE
    for r in range(rows):
        t = table[r]
        for g in range(groups):
            o = g * TABLE  # where group g's table starts
            t[o] = 0.0  # the empty subset
            for j in range(8):
                i = 8 * g + j
                xj = x[r, i] if i < n_x else np.float32(0.0)
                size = 1 << j
                for v in range(size):
                    t[o + size + v] = t[o + v] + xj


_T1, _T2, _T3 = np.uintp(TABLE), np.uintp(2 * TABLE), np.uintp(3 * TABLE)
"""Offsets of the next three groups' tables, unsigned like the indices they are added to
(a signed constant would make numba compute the sum in float64)."""


@njit(cache=True)
def lookup(table: np.ndarray, weight: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``out[r, u] = sum_g T[r, g, weight[g, u]]`` for the block of units ``start .. stop - 1``.

    The block walks the groups four at a time. For each unit it reads one byte from each
    of the four rows ``g .. g + 3`` of ``weight`` (contiguous along the units) and one
    entry of each group's table (1 KiB each, in the level-1 cache), adds the four entries
    and then the unit's running sum. Why four, and why this spelling: the loop then needs
    only the four weight rows and one table pointer in registers (the four tables sit at
    fixed distances, 256 entries apart, which the compiler folds into the load
    instructions), and the indices are unsigned (``np.uintp``), so numba emits no check
    for negative indices. Eight groups at a time ran out of registers and read their
    pointers from memory at every lookup: 1.8x slower, measured."""
    rows = table.shape[0]
    groups = weight.shape[0]
    n = stop - start
    fours = groups - groups % 4
    for r in range(rows):
        t = table[r]
        acc = np.zeros(n, dtype=np.float32)  # the block's running sums
        for g in range(0, fours, 4):
            w0, w1 = weight[g, start:stop], weight[g + 1, start:stop]
            w2, w3 = weight[g + 2, start:stop], weight[g + 3, start:stop]
            o = np.uintp(g * TABLE)  # group g's table; groups g + 1 .. g + 3 follow it
            for i in range(n):
                u = np.uintp(i)
                acc[u] += (t[o + w0[u]] + t[o + _T1 + w1[u]]) + (t[o + _T2 + w2[u]] + t[o + _T3 + w3[u]])
        for g in range(fours, groups):  # the last groups_count % 4 groups
            w0 = weight[g, start:stop]
            o = np.uintp(g * TABLE)
            for i in range(n):
                u = np.uintp(i)
                acc[u] += t[o + w0[u]]
        out[r, start:stop] = acc


@njit(parallel=True, cache=True)
def unpack(weight: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """The 0/1 float32 matrix of units ``start .. stop - 1``, into ``out``
    ``(n_x, stop - start)``: bit ``j`` of ``weight[g, u]`` is ``out[8g + j, u - start]``
    (the dense path of many input rows: a matrix product then reuses each unpacked
    weight for every row). In parallel over the groups; each writes its own 8 rows."""
    n_x = out.shape[0]
    n = stop - start
    one, zero = np.float32(1.0), np.float32(0.0)
    for g in prange(weight.shape[0]):
        w = weight[g, start:stop]
        for j in range(min(8, n_x - 8 * g)):
            row = out[8 * g + j]
            bit = np.uint8(1 << j)  # a uint8 mask keeps the test in bytes: 20 % faster than a shift, measured
            for u in range(n):
                row[u] = one if w[u] & bit else zero


@njit(cache=True)
def gelu(z: float) -> float:
    """GELU with the exact error function, as ``torch.nn.functional.gelu``."""
    return 0.5 * z * (1.0 + math.erf(z * 0.7071067811865476))


@njit(cache=True)
def epilogue(z: np.ndarray, bias: np.ndarray, normalize: bool, activation: int, eps: float) -> None:
    """In place, each row of ``z``: ``+ bias``, then ``Normalize`` (zero mean, unit
    population variance, ``eps`` added to it, Section 3), then the activation."""
    rows, units = z.shape
    for r in range(rows):  # serial: a few thousand operations per row, and one less parallel loop to compile
        row = z[r]
        if bias.shape[0]:
            for u in range(units):
                row[u] += bias[u]
        if normalize:
            mean = 0.0
            for u in range(units):
                mean += row[u]
            mean /= units
            var = 0.0
            for u in range(units):
                d = row[u] - mean
                var += d * d
            scale = 1.0 / math.sqrt(var / units + eps)
            for u in range(units):
                row[u] = (row[u] - mean) * scale
        if activation == RELU:
            for u in range(units):
                row[u] = max(row[u], 0.0)
        elif activation == GELU:
            for u in range(units):
                row[u] = gelu(row[u])


@njit(parallel=True, cache=True)
def packed_linear(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    normalize: bool,
    activation: int,
    eps: float,
    table: np.ndarray,
    block: int,
    out: np.ndarray,
) -> None:
    """``out = Activation(Normalize(x W + b))`` (Alg. 2) for ``x`` of shape ``(rows, n_x)``
    and the packed ``(ceil(n_x / 8), units)`` weight bytes, on ``table.shape[0]`` threads.

    One parallel loop over the threads: each builds its own copy of the tables (into
    ``table[t]``, ``(threads, rows, groups * 256)``, scratch memory the caller reuses from
    call to call) and then runs the lookups of every ``threads``-th block of ``block``
    units. Building the tables twice costs a few microseconds; waiting for one thread to
    build them for all (a second parallel loop, and a wait between the two) cost more on
    the small layers of a language model, measured. Then the :func:`epilogue`, on the
    calling thread. An empty ``bias`` adds nothing."""
    threads = table.shape[0]
    units = weight.shape[1]
    blocks = (units + block - 1) // block
    for t in prange(threads):
        subset_tables(x, table[t])
        for b in range(t, blocks, threads):
            lookup(table[t], weight, b * block, min(b * block + block, units), out)
    epilogue(out, bias, normalize, activation, eps)
