"""pack_bits / unpack_bits against numpy.packbits (the law: bit-for-bit identical)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from binedu import pack_bits, unpack_bits
from binedu.bits import packed_length

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int64, torch.float32, torch.float64]


@st.composite
def bit_tensors(draw):
    """A random 0/1 tensor of 1-4 dimensions (lengths 0-21, so many are not multiples of
    8), a dtype and a valid dim (negative ones included)."""
    shape = draw(st.lists(st.integers(0, 21), min_size=1, max_size=4))
    seed = draw(st.integers(0, 2**31 - 1))
    dtype = draw(st.sampled_from(DTYPES))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, tuple(shape), generator=g)
    return bits.to(dtype), dim


@settings(max_examples=200, deadline=None)
@given(bit_tensors())
def test_pack_bits_matches_numpy_packbits(case):
    t, dim = case
    expected = np.packbits(t.to(torch.uint8).numpy(), axis=dim, bitorder="little")
    packed = pack_bits(t, dim)
    assert packed.dtype == torch.uint8
    assert tuple(packed.shape) == expected.shape
    np.testing.assert_array_equal(packed.numpy(), expected)


@settings(max_examples=200, deadline=None)
@given(bit_tensors())
def test_unpack_bits_inverts_pack_bits_and_matches_numpy(case):
    t, dim = case
    count = t.shape[dim]
    packed = pack_bits(t, dim)
    unpacked = unpack_bits(packed, count, dim)
    assert unpacked.dtype == torch.uint8
    assert torch.equal(unpacked, t.to(torch.uint8))
    expected = np.unpackbits(packed.numpy(), axis=dim, count=count, bitorder="little")
    np.testing.assert_array_equal(unpacked.numpy(), expected)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.integers(1, 8))
def test_bytes_are_little_endian_bits(byte, count):
    """Value j along the axis is bit j of the byte: unpack(byte)[j] == (byte >> j) & 1."""
    packed = torch.tensor([byte & ((1 << count) - 1)], dtype=torch.uint8)
    bits = unpack_bits(packed, count)
    assert bits.tolist() == [(int(packed) >> j) & 1 for j in range(count)]
    assert int(pack_bits(bits)) == int(packed)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17])
def test_packed_length(n):
    assert packed_length(n) == np.packbits(np.zeros(n, dtype=np.uint8)).size
    assert pack_bits(torch.ones(n)).shape == (packed_length(n),)


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5, float("nan"), float("inf")])
def test_non_binary_values_are_refused(bad):
    t = torch.tensor([0.0, 1.0, bad, 1.0])
    with pytest.raises(ValueError, match="only 0/1"):
        pack_bits(t)


def test_non_binary_integers_are_refused():
    with pytest.raises(ValueError, match="found 3"):
        pack_bits(torch.tensor([[0, 1], [3, 1]]))


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.tensor(1),), "at least one dimension"),
        ((torch.ones(3), 1), "out of range"),
        (([0, 1, 1],), "torch.Tensor"),
    ],
)
def test_pack_bits_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        pack_bits(*args)


@pytest.mark.parametrize(
    "packed, count, message",
    [
        (torch.zeros(2, dtype=torch.int64), 9, "uint8"),
        (torch.zeros(2, dtype=torch.uint8), 17, "need 3 bytes"),
        (torch.zeros(2, dtype=torch.uint8), 8, "need 1 bytes"),
        (torch.zeros(2, dtype=torch.uint8), -1, "non-negative"),
        (torch.zeros(2, dtype=torch.uint8), 9.0, "non-negative integer"),
    ],
)
def test_unpack_bits_bad_arguments(packed, count, message):
    with pytest.raises(ValueError, match=message):
        unpack_bits(packed, count)
