"""Behaviour that making binedu type-check (``make typecheck``) made explicit: edge cases
where a function used to return ``None`` or fail obscurely."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import IterableDataset, TensorDataset

from binedu.metrics import dataset_len
from binedu.packed import dense_matmul, lut_matmul


@given(rows=st.integers(1, 4), units=st.integers(1, 5))
def test_lut_matmul_of_no_input_features_is_zeros_like_the_dense_product(rows, units):
    """It returned None (no group to sum) instead of the empty sum."""
    x, bits = torch.randn(rows, 0), torch.zeros(0, units, dtype=torch.uint8)
    out = lut_matmul(x, bits)
    assert isinstance(out, torch.Tensor) and out.shape == (rows, units) and out.dtype == x.dtype
    assert torch.equal(out, dense_matmul(x, bits)) and not out.any()


class _Stream(IterableDataset):
    def __iter__(self):
        yield from range(3)


def test_dataset_len_counts_map_style_sets_and_names_a_stream():
    assert dataset_len(TensorDataset(torch.zeros(7, 2))) == 7
    with pytest.raises(TypeError, match="a data set with a length.*_Stream"):
        dataset_len(_Stream())
