"""Eq. 1 of the paper: the 0/1 quantizer, and its straight-through gradient (Alg. 1).

Every parameter tensor of a binary layer (kernel and bias each on its own) is turned
into bits by comparing each entry with the tensor's own mean.
"""

from __future__ import annotations

import torch

__all__ = ["quantize", "quantize_ste"]


def quantize(p: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``p_b = 1 if p > mean(p) else 0`` (a value equal to the mean gives 0).

    Returns a tensor of the same shape and dtype as ``p`` holding only 0 and 1.
    The mean is accumulated in float64 and entries that tie with the float32-rounded
    mean are decided against the exact mean, so ties follow Eq. 1 exactly (a constant
    tensor quantizes to all zeros).
    """
    if not torch.is_floating_point(p):
        raise ValueError(f"quantize expects a floating-point tensor, got dtype {p.dtype}")
    if p.numel() == 0:
        return torch.zeros_like(p)
    mean64 = p.detach().sum(dtype=torch.float64) / p.numel()
    mean = mean64.to(p.dtype)
    bits = p > mean
    ties = p == mean
    if ties.any():  # decide the entries that tie with the rounded mean exactly
        bits[ties] = p[ties].double() > mean64
    return bits.to(p.dtype)


class _StraightThrough(torch.autograd.Function):
    """Forward: Eq. 1. Backward: the identity (Alg. 1, lines 2-3)."""

    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:  # noqa: D401
        return quantize(p)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def quantize_ste(p: torch.Tensor) -> torch.Tensor:
    """Alg. 1 lines 2-3: ``W_q = W + stop_gradient(Quant(W) - W)``.

    The forward value is exactly ``quantize(p)`` and ``dL/dp = dL/dW_q``. It is written
    as a custom autograd function rather than the paper's arithmetic form because
    ``p + (q - p)`` is not exactly ``q`` in floating point (for large ``|p|`` the 1 is
    rounded away); the gradients are the same.
    """
    return _StraightThrough.apply(p)
