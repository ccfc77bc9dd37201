"""Bit-packing from scratch: eight 0/1 values per byte, with torch bit operations only.

After training only Quant(W) is kept (Section 2, Eq. 1), and a 0/1 value needs one bit,
not the 32 of a float32. :func:`pack_bits` stores the bits of eight consecutive values
along an axis in one ``uint8`` byte, the first value in the least significant bit::

    values  1 0 1 1 0 0 0 1  |  1 1 0          (11 values)
    byte    0b10001101 = 141 |  0b00000011 = 3 (the last byte is padded with zeros)

This is ``numpy.packbits(t, axis=dim, bitorder="little")`` bit for bit (the tests check
it on random shapes), written with shifts and ors so that every step is visible.
:func:`unpack_bits` inverts it exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pack_bits", "unpack_bits", "packed_length"]

_BITS = 8


def packed_length(count: int) -> int:
    """Number of bytes that hold ``count`` bits: ``ceil(count / 8)``."""
    return -(-count // _BITS)


def _check_binary(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a ``uint8`` tensor of 0/1, or a ValueError naming the offending value."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"pack_bits expects a torch.Tensor, got {type(t).__name__}")
    if t.dtype == torch.bool:
        return t.to(torch.uint8)
    if t.is_complex():
        raise ValueError(f"pack_bits expects 0/1 or bool values, got a complex tensor ({t.dtype})")
    bad = (t != 0) & (t != 1)  # NaN compares unequal to both, so it is refused too
    if bad.any():
        value = t[bad].flatten()[0].item()
        raise ValueError(
            f"pack_bits expects only 0/1 (or bool) values, found {value!r} "
            f"({int(bad.sum())} of {t.numel()} entries are not 0 or 1)"
        )
    return t.to(torch.uint8)


def _axis(t: torch.Tensor, dim: int, what: str) -> int:
    if t.ndim == 0:
        raise ValueError(f"{what} needs a tensor with at least one dimension, got a scalar")
    if not -t.ndim <= dim < t.ndim:
        raise ValueError(f"{what}: dim={dim} is out of range for a tensor with {t.ndim} dimensions")
    return dim % t.ndim


def pack_bits(t: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Pack the 0/1 (or bool) values of ``t`` along ``dim`` into ``uint8`` bytes.

    The result has the shape of ``t`` with ``dim`` shortened to ``ceil(n / 8)``; value
    ``8 * i + j`` along ``dim`` is bit ``j`` (value ``2**j``) of byte ``i``, and the last
    byte is padded with zero bits when ``n`` is not a multiple of 8. Identical to
    ``numpy.packbits(t, axis=dim, bitorder="little")``. A value other than 0 or 1 raises
    a ``ValueError``.
    """
    bits = _check_binary(t)
    axis = _axis(t, dim, "pack_bits")
    bits = bits.movedim(axis, -1)
    n = bits.shape[-1]
    bits = F.pad(bits, (0, packed_length(n) * _BITS - n))  # zero bits fill the last byte
    groups = bits.unflatten(-1, (-1, _BITS))  # (..., bytes, 8)
    packed = torch.zeros(groups.shape[:-1], dtype=torch.uint8, device=t.device)
    for j in range(_BITS):
        packed |= groups[..., j] << j
    return packed.movedim(-1, axis)


def unpack_bits(packed: torch.Tensor, count: int, dim: int = -1) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``count`` bits along ``dim`` as a ``uint8``
    tensor of 0/1 (``numpy.unpackbits(packed, axis=dim, count=count, bitorder="little")``).

    ``count`` must fit the bytes exactly as :func:`pack_bits` wrote them:
    ``ceil(count / 8)`` bytes along ``dim``.
    """
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise ValueError(f"unpack_bits expects a uint8 tensor, got {getattr(packed, 'dtype', type(packed).__name__)}")
    axis = _axis(packed, dim, "unpack_bits")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"unpack_bits: count must be a non-negative integer, got {count!r}")
    if packed_length(count) != packed.shape[axis]:
        raise ValueError(
            f"unpack_bits: {count} bits need {packed_length(count)} bytes along dim {dim}, "
            f"but the tensor has {packed.shape[axis]}"
        )
    shifts = torch.arange(_BITS, dtype=torch.uint8, device=packed.device)
    bits = (packed.movedim(axis, -1).unsqueeze(-1) >> shifts) & 1  # (..., bytes, 8)
    return bits.flatten(-2)[..., :count].movedim(-1, axis)
