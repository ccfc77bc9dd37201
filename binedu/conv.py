"""BNCVL, the binary normalized 2-D convolution (Alg. 3, Eq. 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BinaryModule

__all__ = ["BinaryConv2d"]


class BinaryConv2d(BinaryModule):
    """BNCVL (Alg. 3, Eq. 2): ``a = Activation(Normalize(Conv(W_q, x) + b_q))``.

    Stride 1 and "same" padding, as in the paper's image model. ``weight`` is
    ``(out_channels, in_channels, k, k)`` like :class:`torch.nn.Conv2d`.

    Normalization axes (the paper only says "features of each example"): by default
    ``norm_mode="channels"`` normalizes the ``out_channels`` values at each pixel on
    their own, the convolutional analogue of the per-token normalization of the
    language model (and what ``LayerNormalization(axis=-1)`` does on NHWC tensors);
    ``norm_mode="chw"`` normalizes over channels, height and width together.

    Ablation controls (not the paper): ``weights="pm1"`` uses -1/+1 instead of 0/1 and
    ``normalize="fixed"`` a fixed ``1/sqrt(in_channels * k * k)`` scale instead of
    Normalize (see :class:`~binedu.normalize.FixedScale`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: str | None = None,
        *,
        binary: bool = True,
        normalize: bool | str = True,
        affine: bool | None = None,
        norm_mode: str = "channels",
        weights: str = "01",
    ) -> None:
        if norm_mode not in ("channels", "chw"):
            raise ValueError(f"BinaryConv2d norm_mode must be 'channels' or 'chw', got {norm_mode!r}")
        super().__init__(
            out_channels,
            activation,
            binary=binary,
            normalize=normalize,
            affine=affine,
            norm_mode=norm_mode,
            weights=weights,
            fan_in=in_channels * kernel_size * kernel_size,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.norm_mode = norm_mode
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"BinaryConv2d expects (batch, {self.in_channels}, height, width) inputs, "
                f"got shape {tuple(x.shape)}"
            )
        z = F.conv2d(x, self.q(self.weight), self.q(self.bias), padding="same")
        return self.finish(z)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"activation={self.activation!r}, binary={self.binary}"
        )
