"""Bytes at a given precision, and how to print them: the arithmetic of the 32x (Section 6)."""

from __future__ import annotations

__all__ = ["PRECISION_BITS", "bytes_at_bits", "format_bytes"]

PRECISION_BITS: dict[str, int] = {"float32": 32, "float16": 16, "int8": 8, "1 bit": 1}
"""Bits per parameter of the precisions the course compares."""


def bytes_at_bits(num_params: int, bits: int) -> int:
    """Bytes needed to store ``num_params`` numbers of ``bits`` bits each, in whole bytes
    (rounded up): the arithmetic behind the paper's 32x (Section 6)."""
    if num_params < 0 or bits <= 0:
        raise ValueError(f"need num_params >= 0 and bits > 0, got {num_params} and {bits}")
    return -(-num_params * bits // 8)


def format_bytes(n: float, binary: bool = False) -> str:
    """``n`` bytes in human units.

    Decimal units by default (``175_457 -> "175 kB"``, as disk and GPU makers count);
    ``binary=True`` gives the units of memory (``1536 -> "1.5 KiB"``), one decimal.
    """
    if n < 0:
        raise ValueError(f"a byte count cannot be negative, got {n}")
    if binary:
        for unit in ("B", "KiB", "MiB", "GiB"):
            if n < 1024 or unit == "GiB":
                return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
