"""Self-check exercises of notebooks 06 (bit-packing), 07 (deployment) and 08 (paper scale).

Imported at the bottom of :mod:`binedu.exercises`, which registers them; each reference
is the arithmetic the notebook teaches, written in plain integer or tensor code so that a
student's answer is checked against the definition, not against the library under study.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .exercises import Exercise, register
from .units import bytes_at_bits

__all__ = [
    "pack_byte",
    "unpack_byte",
    "packed_matrix_bytes",
    "lut_entry",
    "lut_dot",
    "lut_tables",
    "lut_table_bytes",
    "bnfcl_parameters",
    "bncvl_parameters",
    "paper_packed_megabytes",
]

_BITS = 8  # bits per byte, and inputs per lookup table (one table per byte of a packed row)


# ---------------------------------------------------------------- notebook 06: bit-packing


def pack_byte(bits: Sequence[int]) -> int:
    """The byte that holds eight 0/1 values, the first in the least significant bit (the
    "little" bit order of ``binedu.pack_bits`` and ``numpy.packbits(bitorder="little")``)."""
    if len(bits) != _BITS or any(b not in (0, 1) for b in bits):
        raise ValueError(f"pack_byte needs exactly 8 values of 0 or 1, got {list(bits)}")
    return sum(int(b) << j for j, b in enumerate(bits))


def unpack_byte(byte: int) -> tuple[int, ...]:
    """The eight bits of ``byte`` (0..255), least significant first: inverse of :func:`pack_byte`."""
    if not 0 <= byte <= 255:
        raise ValueError(f"a byte is a number from 0 to 255, got {byte}")
    return tuple((byte >> j) & 1 for j in range(_BITS))


def _as_bit_tuple(fn: Callable[..., Any], args: tuple) -> Any:
    """Observe an unpacking answer as a tuple of ints, so a list or a tensor of bits counts too."""
    out = fn(*args)
    if out is None or out is Ellipsis:
        return out
    return tuple(int(b) for b in (out.tolist() if isinstance(out, torch.Tensor) else out))


def packed_matrix_bytes(rows: int, cols: int) -> int:
    """Bytes of a ``(rows, cols)`` 0/1 matrix packed row by row: each row is padded to whole
    bytes, ``rows * ceil(cols / 8)`` (so a row of 10 bits takes 2 bytes, not 1.25)."""
    if rows < 0 or cols < 0:
        raise ValueError(f"rows and cols must be >= 0, got {rows} and {cols}")
    return rows * bytes_at_bits(cols, 1)


def _bytes_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(6)
    random = [tuple(torch.randint(0, 2, (_BITS,), generator=g).tolist()) for _ in range(4)]
    return [
        ((1, 0, 0, 0, 0, 0, 0, 0),),
        ((0, 0, 0, 0, 0, 0, 0, 1),),
        ((1, 0, 1, 1, 0, 0, 0, 1),),
        *((r,) for r in random),
    ]


register(
    Exercise(
        id="06.pack_byte",
        title="Pack eight bits into one byte (little bit order: the first bit is worth 1)",
        reference=pack_byte,
        cases=_bytes_cases,
        hint="bit j (counting from 0) is worth 2**j: add bits[j] << j (or bits[j] * 2**j) over j = 0..7. "
        "The first value is the *least* significant bit, unlike how we write binary numbers.",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="06.unpack_byte",
        title="Unpack one byte into its eight bits, least significant first (a tuple of 0/1)",
        reference=unpack_byte,
        cases=lambda: [(0,), (1,), (128,), (141,), (255,), (0b01010101,)],
        observe=_as_bit_tuple,
        hint="bit j of the byte is (byte >> j) & 1, for j = 0..7; return them as a tuple.",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="06.packed_matrix_bytes",
        title="Bytes of a (rows, cols) 0/1 matrix packed row by row",
        reference=packed_matrix_bytes,
        cases=lambda: [(1, 8), (1, 10), (3, 8), (10, 100), (2048, 2048), (256, 1), (5, 0)],
        hint="each row starts a fresh byte, so one row takes ceil(cols / 8) bytes (10 bits need 2 bytes), "
        "and there are `rows` of them.",
        rtol=0,
        atol=0,
    )
)


# ---------------------------------------------------------------- notebook 07: lookup tables


def lut_entry(x: torch.Tensor, k: int) -> torch.Tensor:
    """Entry ``k`` of the lookup table of 8 inputs ``x``: the sum of the ``x[j]`` whose bit
    ``j`` is set in byte ``k``, i.e. the dot product of ``x`` with the 0/1 weights that
    byte ``k`` packs. Only additions, no multiplication."""
    if x.shape != (_BITS,) or not 0 <= k <= 255:
        raise ValueError(f"lut_entry needs 8 inputs and a byte 0..255, got shape {tuple(x.shape)} and {k}")
    return sum((x[j] for j in range(_BITS) if (k >> j) & 1), torch.zeros((), dtype=x.dtype))


def lut_dot(x: torch.Tensor, packed_row: torch.Tensor) -> torch.Tensor:
    """``W_b x`` for ONE output unit, from its packed 0/1 weights: one 256-entry table per
    group of 8 inputs, then a gather (table ``g`` at byte ``packed_row[g]``) and a sum."""
    groups = x.reshape(-1, _BITS)  # (G, 8)
    if groups.shape[0] != packed_row.numel():
        raise ValueError(f"{x.numel()} inputs need {groups.shape[0]} bytes, got {packed_row.numel()}")
    return lut_tables(groups).gather(1, packed_row.long().reshape(-1, 1)).sum()


def lut_tables(groups: torch.Tensor) -> torch.Tensor:
    """The 256-entry table of every group of 8 inputs, ``(G, 8) -> (G, 256)``, built with
    255 additions per group: entry ``k`` is entry ``k`` without its lowest set bit, plus the
    input of that bit (``T[k] = T[k & (k - 1)] + x[j]``)."""
    tables = groups.new_zeros(groups.shape[0], 256)
    for k in range(1, 256):
        low = (k & -k).bit_length() - 1  # index of the lowest set bit of k
        tables[:, k] = tables[:, k & (k - 1)] + groups[:, low]
    return tables


def lut_table_bytes(in_features: int) -> int:
    """float32 bytes of the lookup tables for one input vector of ``in_features``
    (``in_features / 8`` tables of 256 entries of 4 bytes): the price of the trick."""
    return bytes_at_bits(in_features, 1) * 256 * 4


def _lut_entry_cases() -> list[tuple]:
    x = torch.tensor([0.5, -1.0, 2.0, 0.25, 3.0, -0.5, 1.5, 4.0])
    return [(x, 0), (x, 1), (x, 0b00000110), (x, 141), (x, 255), (torch.arange(8.0), 170)]


def _lut_dot_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(7)
    return [
        (torch.randn(8, generator=g), torch.tensor([141], dtype=torch.uint8)),
        (torch.randn(16, generator=g), torch.tensor([0, 255], dtype=torch.uint8)),
        (torch.randn(32, generator=g), torch.randint(0, 256, (4,), generator=g, dtype=torch.uint8)),
    ]


register(
    Exercise(
        id="07.lut_entry",
        title="One lookup-table entry: the partial sum of the 8 inputs selected by byte k",
        reference=lut_entry,
        cases=_lut_entry_cases,
        hint="bit j of k is (k >> j) & 1; add x[j] for every j whose bit is 1 (entry 0 is 0.0, entry 255 is "
        "x.sum()). Return a tensor or a float.",
        atol=1e-5,
    )
)

register(
    Exercise(
        id="07.lut_dot",
        title="A binary dot product from packed bytes with lookup tables (gather + add)",
        reference=lut_dot,
        cases=_lut_dot_cases,
        hint="split x into groups of 8 (x.reshape(-1, 8)); for group g look up entry packed_row[g] of its table "
        "(use your lut_entry) and add the results. Check: it equals unpack_bits(packed_row, x.numel()) @ x.",
        atol=1e-4,
    )
)

register(
    Exercise(
        id="07.lut_table_bytes",
        title="float32 bytes of the lookup tables for one input of 2048 features",
        reference=lambda: lut_table_bytes(2048),
        hint="one table per group of 8 inputs, 256 entries per table, 4 bytes per float32 entry.",
        rtol=0,
        atol=0,
    )
)


# ---------------------------------------------------------------- notebook 08: paper scale


def bnfcl_parameters(n_x: int, n_units: int) -> int:
    """Parameters of a BNFCL (Alg. 1): an ``(n_x, n_units)`` kernel and ``n_units`` biases."""
    return n_x * n_units + n_units


def bncvl_parameters(filter_size: int, in_channels: int, out_channels: int) -> int:
    """Parameters of a BNCVL (Alg. 3): ``f x f x in x out`` kernel and ``out`` biases."""
    return filter_size * filter_size * in_channels * out_channels + out_channels


def paper_packed_megabytes(name: str) -> float:
    """Megabytes (10**6 bytes) of a paper model stored at 1 bit per parameter, counted on
    the meta device (nothing allocated)."""
    from .widgets import paper_model_parameters  # imported late: widgets imports this package

    return bytes_at_bits(paper_model_parameters(name), 1) / 1e6


register(
    Exercise(
        id="08.bnfcl_parameters",
        title="Parameters of a BNFCL with n_x inputs and n_units units (kernel and bias)",
        reference=bnfcl_parameters,
        cases=lambda: [(768, 4096), (4096, 2048), (2048, 30522), (256, 101), (1, 1)],
        hint="the kernel has one parameter per (input, unit) pair and the bias one per unit; both are "
        "binarized, so both count.",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="08.bncvl_parameters",
        title="Parameters of a BNCVL with an f x f filter, in_channels inputs and out_channels filters",
        reference=bncvl_parameters,
        cases=lambda: [(3, 3, 32), (3, 32, 32), (5, 128, 256), (1, 1, 1)],
        hint="each of the out_channels filters has f * f * in_channels weights, plus one bias per filter.",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="08.paper_large_mb",
        title="Size of the paper's large language model stored at 1 bit, in MB (10**6 bytes)",
        reference=lambda: paper_packed_megabytes("paper-large"),
        hint="count its parameters with binedu (on the meta device, or binedu.widgets.paper_model_parameters), "
        "then 8 parameters per byte.",
        rtol=1e-3,
        atol=0,
    )
)
