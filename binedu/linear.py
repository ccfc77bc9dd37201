"""BNFCL, the binary normalized fully connected layer (Alg. 1 training, Alg. 2 inference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BinaryModule

__all__ = ["BinaryLinear"]


class BinaryLinear(BinaryModule):
    """BNFCL (Alg. 1/2): ``a = Activation(Normalize(W_q x + b_q))``.

    ``weight`` is ``(out_features, in_features)`` like :class:`torch.nn.Linear` (the
    paper writes its transpose, ``(n_x, n_units)``); ``bias`` has ``out_features``
    entries. Kernel and bias are quantized separately (Eq. 1), each against its own
    mean. Glorot-uniform kernel and zero bias, as in the paper.

    Ablation controls (not the paper): ``weights="pm1"`` uses -1/+1 instead of 0/1 and
    ``normalize="fixed"`` a fixed ``1/sqrt(in_features)`` scale instead of Normalize.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | None = None,
        *,
        binary: bool = True,
        normalize: bool | str = True,
        affine: bool | None = None,
        weights: str = "01",
    ) -> None:
        super().__init__(
            out_features, activation, binary=binary, normalize=normalize, affine=affine, weights=weights, fan_in=in_features
        )
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"BinaryLinear expects inputs with {self.in_features} features in the last "
                f"axis, got shape {tuple(x.shape)}"
            )
        return self.finish(F.linear(x, self.q(self.weight), self.q(self.bias)))

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, activation={self.activation!r}, "
            f"binary={self.binary}"
        )
