"""Eq. 1 and the straight-through estimator of Alg. 1."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from binedu import quantize, quantize_ste

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
float_arrays = arrays(np.float32, array_shapes(min_dims=1, max_dims=4, max_side=7), elements=finite)


@given(float_arrays)
def test_quantize_is_eq1_against_exact_mean(a):
    p = torch.from_numpy(a)
    expected = (a.astype(np.float64) > a.astype(np.float64).mean()).astype(np.float32)
    out = quantize(p)
    assert out.dtype == p.dtype and out.shape == p.shape
    np.testing.assert_array_equal(out.numpy(), expected)


def test_ties_give_zero():
    assert quantize(torch.tensor([1.0, 2.0, 3.0])).tolist() == [0.0, 0.0, 1.0]
    assert quantize(torch.full((5, 3), 0.7)).sum() == 0  # constant tensor: every entry ties
    assert quantize(torch.zeros(4)).sum() == 0  # zero-initialised biases start as 0 bits


def test_each_tensor_uses_its_own_mean():
    low, high = torch.tensor([0.0, 1.0]), torch.tensor([100.0, 101.0])
    assert quantize(low).tolist() == quantize(high).tolist() == [0.0, 1.0]


def test_quantize_rejects_integer_tensors():
    with pytest.raises(ValueError, match="floating-point"):
        quantize(torch.arange(4))


@given(float_arrays)
def test_ste_forward_is_exactly_the_bits(a):
    p = torch.from_numpy(a).requires_grad_()
    assert torch.equal(quantize_ste(p), quantize(p.detach()))


def test_ste_forward_exact_for_large_latents():
    # the paper's arithmetic form p + (q - p) would round the 1 away here
    p = torch.tensor([-3e8, 3e8])
    assert quantize_ste(p).tolist() == [0.0, 1.0]


@given(float_arrays, st.integers(0, 2**31 - 1))
def test_ste_gradient_is_gradient_wrt_binary_value(a, seed):
    gen = torch.Generator().manual_seed(seed)
    p = torch.from_numpy(a).requires_grad_()
    w = torch.randn(p.shape, generator=gen)

    def loss(t):
        return (torch.sin(t * w) + t * t).sum()

    loss(quantize_ste(p)).backward()
    q = quantize(p.detach()).requires_grad_()
    loss(q).backward()
    assert torch.equal(p.grad, q.grad)
