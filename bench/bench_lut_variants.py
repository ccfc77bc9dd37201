"""Batch-1 lookup kernels: which plain-PyTorch formulation of ``y = x @ W`` (0/1 ``W``,
8 bits a byte) could beat float32? The evidence behind issue 11's verdict, and the
reason issue 20 compiled the kernel with numba (``bench/bench_speed.py`` times that one).

Every contender computes the same product for one input row from the same bytes
(``weight_bits``, the ``(n_x / 8, n_units)`` layout of :class:`binedu.packed.PackedLinear`)
and is checked against :func:`binedu.packed.dense_matmul` before it is timed:

- ``float32``: ``x @ W`` with a float32 ``W``: it streams 4 bytes per weight from memory;
- ``lut (binedu)``: :func:`binedu.packed.lut_matmul`, the plain-PyTorch reference that packed
  models fall back to where numba is missing: the 256
  subset sums of each group of 8 inputs, then per byte an ``int64`` index, a ``gather`` and
  a sum;
- ``lut, index_select int32``: the same tables, but each byte plus its group's offset is
  one ``int32`` index into the flattened tables (one fused add), then ``index_select`` and
  a sum: 4-byte instead of 8-byte indices; at once, and in blocks of groups as
  ``lut_matmul`` works (its indices then stay in the cache);
- with ``--compile``: ``torch.compile`` (Inductor's C++ backend, needs a C++ compiler) of
  that lookup, and of a fused unpack-and-sum (``sum_i x_i * ((byte >> j) & 1)``), which
  never materializes an index or an unpacked weight. Compilation time is reported, not
  timed.

Times are the best of ``--repeats`` interleaved calls with the CPU caches flushed before
each, so every contender reads its weights from memory; ratio = contender / float32.
Run it on a quiet machine: another process on the other core changes the ratios.

Usage::

    python bench/bench_lut_variants.py                # eager variants, seconds
    python bench/bench_lut_variants.py --compile      # plus torch.compile (about 2 minutes)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_times, cache_flusher, format_table  # noqa: E402

from binedu.packed import LUT_CHUNK_ELEMENTS, dense_matmul, lut_matmul, subset_sums, unpack_kernel  # noqa: E402

SHAPES = [(4096, 4096), (2048, 30522), (768, 768)]  # a big square layer, the LM head, an attention projection
QUICK_SHAPES = [(256, 256)]


def lookup_int32(table: torch.Tensor, weight_bits: torch.Tensor) -> torch.Tensor:
    """``y[u] = sum_g table[g, byte[g, u]]`` with one ``int32`` index per byte."""
    offsets = torch.arange(0, table.numel(), 256, dtype=torch.int32).unsqueeze(1)  # (groups, 1)
    index = offsets + weight_bits  # uint8 + int32 -> int32, one pass
    return table.reshape(-1).index_select(0, index.reshape(-1)).view_as(index).sum(0)


def lookup_int32_chunked(table: torch.Tensor, weight_bits: torch.Tensor) -> torch.Tensor:
    """:func:`lookup_int32` over blocks of groups of at most ``LUT_CHUNK_ELEMENTS`` bytes,
    as :func:`~binedu.packed.lut_matmul` does, so that the indices stay in the cache."""
    step = max(1, LUT_CHUNK_ELEMENTS // weight_bits.shape[1])
    out = lookup_int32(table[:step], weight_bits[:step])
    for g in range(step, weight_bits.shape[0], step):
        out += lookup_int32(table[g : g + step], weight_bits[g : g + step])
    return out


def unpack_sum(x: torch.Tensor, weight_bits: torch.Tensor) -> torch.Tensor:
    """``y = sum_i x_i W[i]`` written as unpack-then-reduce, for the compiler to fuse."""
    return (x.unsqueeze(1) * unpack_kernel(weight_bits, x.shape[0], x.dtype)).sum(0)


def one_table(x: torch.Tensor, groups_count: int) -> torch.Tensor:
    """:func:`~binedu.packed.subset_sums` of one input row: ``(groups_count, 256)``."""
    return subset_sums(x[None], groups_count)[0]


def contenders(n_x: int, n_units: int, compile_: bool) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, float]]:
    """The functions to time for one shape, each checked against the unpacked product,
    and the compilation seconds of the compiled ones."""
    torch.manual_seed(0)
    weight_bits = torch.randint(0, 256, (n_x // 8, n_units), dtype=torch.uint8)
    x = torch.randn(1, n_x)
    w = dense_matmul(torch.eye(n_x), weight_bits)  # the 0/1 matrix as float32, (n_x, n_units)
    fns: dict[str, Callable[[], torch.Tensor]] = {
        "float32": lambda: x @ w,
        "lut (binedu)": lambda: lut_matmul(x, weight_bits),
        "lut, index_select int32": lambda: lookup_int32(one_table(x[0], n_x // 8), weight_bits)[None],
        "lut, index_select int32, in blocks": lambda: lookup_int32_chunked(one_table(x[0], n_x // 8), weight_bits)[None],
    }
    compile_seconds: dict[str, float] = {}
    if compile_:
        lookup_c = torch.compile(lookup_int32, dynamic=False)
        unpack_c = torch.compile(unpack_sum, dynamic=False)
        fns["compiled lut, index_select"] = lambda: lookup_c(one_table(x[0], n_x // 8), weight_bits)[None]
        fns["compiled unpack-and-sum"] = lambda: unpack_c(x[0], weight_bits)[None]
    expected = x @ w
    for name, fn in fns.items():
        start = time.perf_counter()
        got = fn()  # the first call of a compiled function compiles it
        if name.startswith("compiled"):
            compile_seconds[name] = time.perf_counter() - start
        if not torch.allclose(got, expected, rtol=1e-4, atol=1e-3):
            raise AssertionError(f"{name} computes a different product for {n_x}x{n_units}")
    return fns, compile_seconds


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants (needs a C++ compiler)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per contender (best is kept)")
    parser.add_argument("--quick", action="store_true", help="one small shape, few calls: a smoke run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    flush = cache_flusher()
    repeats = 3 if args.quick else args.repeats
    rows = []
    with torch.inference_mode():
        for n_x, n_units in QUICK_SHAPES if args.quick else SHAPES:
            fns, compiled = contenders(n_x, n_units, args.compile)
            times = best_times(fns, repeats, before_each=flush)
            for name, seconds in times.items():
                note = f"compiled in {compiled[name]:.0f} s" if name in compiled else ""
                rows.append([f"{n_x}x{n_units}, {name}", f"{seconds * 1e3:.3f}", f"{seconds / times['float32']:.2f}", note])
    header = (
        f"bench_lut_variants: batch 1, best of {repeats} interleaved calls, caches flushed, "
        f"{args.threads} thread(s), {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the end"
    )
    text = "\n".join([header, format_table(["case", "ms", "vs float32", ""], rows)])
    print(text)
    return text


if __name__ == "__main__":
    main()
