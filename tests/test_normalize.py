"""The parameter-free Normalize of Section 3."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from binedu import Normalize, normalize

rows = arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(2, 16)), elements=st.floats(-1e3, 1e3, width=32))


@given(rows)
def test_each_row_has_zero_mean_unit_std(a):
    x = torch.from_numpy(a).double()
    z = normalize(x)
    var = x.var(dim=-1, unbiased=False)
    spread = var > 1e-2  # rows that are not (nearly) constant
    assert torch.allclose(z.mean(-1), torch.zeros(len(a), dtype=torch.double), atol=1e-6)
    std = z.std(-1, unbiased=False)
    assert torch.allclose(std[spread], torch.ones_like(std[spread]), atol=1e-3)


def test_constant_input_is_finite_zero():
    z = normalize(torch.full((3, 8), 5.0))
    assert torch.isfinite(z).all() and torch.equal(z, torch.zeros(3, 8))


def test_rows_do_not_mix():
    x = torch.randn(4, 10)
    alone = normalize(x[2:3])
    assert torch.allclose(normalize(x)[2:3], alone)


def test_modes_pick_the_feature_axes():
    x = torch.randn(2, 3, 4, 5)
    per_pixel = Normalize(3, "channels")(x)
    assert torch.allclose(per_pixel.mean(1), torch.zeros(2, 4, 5), atol=1e-5)
    whole = Normalize(3, "chw")(x)
    assert torch.allclose(whole.mean((1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert not torch.allclose(whole.mean(1), torch.zeros(2, 4, 5), atol=1e-3)


def test_parameter_free_unless_affine():
    assert list(Normalize(8).parameters()) == []
    affine = Normalize(8, affine=True)
    assert [p.shape for p in affine.parameters()] == [torch.Size([8]), torch.Size([8])]


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown normalization mode"):
        Normalize(4, "batch")
