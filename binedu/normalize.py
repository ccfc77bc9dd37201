"""The parameter-free normalization of the paper (Section 3, ``Normalize``).

Each example is brought to zero mean and unit standard deviation over its features,
with no learnable scale or shift: this is what lets 0/1 weights train (Section 1).
The float32 "standard" models use the same normalization with a learnable scale and
shift (``affine=True``), as the paper's float baselines do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["normalize", "Normalize", "FixedScale", "make_norm", "NORMALIZE_CHOICES", "EPS"]

NORMALIZE_CHOICES = (True, False, "fixed")
"""``normalize=``: the paper's Normalize, none (the ablation), or a fixed ``1/sqrt(fan_in)``
scale (the control that keeps the scale but not the centring)."""

EPS = 1e-5


def normalize(z: torch.Tensor, dim: int | Sequence[int] = -1, eps: float = EPS) -> torch.Tensor:
    """``Normalize(z)``: subtract the mean and divide by the standard deviation over ``dim``.

    ``dim`` holds the feature axes of one example: the last axis for dense and sequence
    tensors (each token on its own, which keeps a causal model causal), the channel axis
    (or channels, height and width) for convolution outputs. The population variance is
    used and ``eps`` keeps the result finite (zero) for a constant input. A half-precision
    ``z`` (bf16 autocast) is normalized in float32, as ``torch.nn.LayerNorm`` is under
    autocast, so the mean and variance keep float32 accuracy (the result is float32).
    Without gradients (inference) over the last axis it runs as one fused
    ``torch.nn.functional.layer_norm`` without scale and shift: the same formula.
    """
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if z.dtype in (torch.bfloat16, torch.float16):
        z = z.float()
    if dims in ((-1,), (z.ndim - 1,)) and not torch.is_grad_enabled():
        # inference over the last axis: the same mean, population variance and eps, one fused op
        return F.layer_norm(z, z.shape[-1:], eps=eps)
    mean = z.mean(dim=dims, keepdim=True)
    var = (z - mean).pow(2).mean(dim=dims, keepdim=True)
    return (z - mean) * torch.rsqrt(var + eps)


class Normalize(nn.Module):
    """Module form of :func:`normalize`.

    ``mode`` chooses the feature axes: ``"last"`` (dense and sequence tensors),
    ``"channels"`` (a ``(N, C, H, W)`` tensor normalized over ``C`` at each position) or
    ``"chw"`` (over ``C, H, W`` together). With ``affine=True`` a learnable per-feature
    scale and shift follow (the float32 baselines); the binary models use ``affine=False``.
    """

    _DIMS = {"last": (-1,), "channels": (1,), "chw": (1, 2, 3)}

    def __init__(self, num_features: int, mode: str = "last", affine: bool = False) -> None:
        super().__init__()
        if mode not in self._DIMS:
            raise ValueError(f"unknown normalization mode {mode!r}; use one of {sorted(self._DIMS)}")
        self.num_features = num_features
        self.mode = mode
        self.affine = affine
        if affine:
            self.scale = nn.Parameter(torch.ones(num_features))
            self.shift = nn.Parameter(torch.zeros(num_features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = normalize(z, self._DIMS[self.mode])
        if self.affine:
            shape = (-1, 1, 1) if self.mode in ("channels", "chw") else (-1,)
            z = z * self.scale.view(shape) + self.shift.view(shape)
        return z

    def extra_repr(self) -> str:
        return f"{self.num_features}, mode={self.mode!r}, affine={self.affine}"


class FixedScale(nn.Module):
    """Ablation control, not in the paper: multiply by ``1/sqrt(fan_in)`` instead of
    normalizing. It keeps a sum of ``fan_in`` terms at the scale of one term (what
    Glorot-style scaling does) but, unlike Normalize, neither centres it nor adapts to
    the input: with 0/1 weights the mean of ``W_b x`` grows with ``fan_in``."""

    def __init__(self, fan_in: int) -> None:
        super().__init__()
        if fan_in <= 0:
            raise ValueError(f"FixedScale needs a positive fan_in, got {fan_in}")
        self.fan_in = fan_in
        self.factor = fan_in**-0.5

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.factor

    def extra_repr(self) -> str:
        return f"fan_in={self.fan_in}"


def make_norm(
    num_features: int,
    *,
    binary: bool,
    normalize: bool | str,
    affine: bool | None,
    mode: str = "last",
    fan_in: int | None = None,
) -> nn.Module:
    """The normalization a layer uses: parameter-free for binary layers, learnable
    (``affine``) for the float32 baselines by default, none at all when ``normalize`` is
    False (the ablation), a fixed ``1/sqrt(fan_in)`` scale when it is ``"fixed"`` (a
    control)."""
    if normalize not in NORMALIZE_CHOICES or isinstance(normalize, int) and not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True, False or 'fixed', got {normalize!r}")
    if normalize == "fixed":
        if fan_in is None:
            raise ValueError("normalize='fixed' needs the layer's fan_in")
        return FixedScale(fan_in)
    if not normalize:
        return nn.Identity()
    return Normalize(num_features, mode, (not binary) if affine is None else affine)
