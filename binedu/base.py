"""What every binary normalized layer shares: the Eq. 1 parameters and the
``Normalize -> Activation`` tail of Alg. 1/3.

A layer keeps float32 latent parameters (``.weight``, ``.bias``) that the optimizer
updates; every forward pass, in training and in eval, uses their bits instead
(``binary=True``). The same class with ``binary=False`` is the float32 "standard"
counterpart with a learnable normalization, and ``normalize=False`` removes the
normalization (the ablation that shows why the paper needs it).
"""

from __future__ import annotations

import torch
from torch import nn

from .activations import get_activation
from .normalize import make_norm
from .quantize import quantize, quantize_ste

__all__ = ["BinaryModule", "WEIGHTS"]

WEIGHTS = ("01", "pm1")
"""Binary weight values: the paper's 0/1, or -1/+1 (the control of the ablation)."""


class BinaryModule(nn.Module):
    """Base of the binedu layers: parameter binarization and the normalized output."""

    def __init__(
        self,
        num_features: int,
        activation: str | None = None,
        *,
        binary: bool = True,
        normalize: bool = True,
        affine: bool | None = None,
        norm_mode: str = "last",
        weights: str = "01",
        fan_in: int | None = None,
    ) -> None:
        super().__init__()
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.binary = binary
        self.weights = weights
        self.activation = activation or "linear"
        self._act = get_activation(activation)
        self.norm = make_norm(
            num_features, binary=binary, normalize=normalize, affine=affine, mode=norm_mode, fan_in=fan_in
        )

    def q(self, p: torch.Tensor) -> torch.Tensor:
        """The value the forward pass uses for latent ``p``: its bits (Eq. 1, with the
        straight-through gradient of Alg. 1) or, for a float layer, ``p`` itself.
        ``weights="pm1"`` (an ablation control, not the paper) maps the bits to -1/+1."""
        if not self.binary:
            return p
        bits = quantize_ste(p)
        return 2.0 * bits - 1.0 if self.weights == "pm1" else bits

    def finish(self, z: torch.Tensor) -> torch.Tensor:
        """``a = Activation(Normalize(z))``, the tail of Alg. 1, 2 and 3."""
        return self._act(self.norm(z))

    def binary_parameters(self) -> dict[str, torch.Tensor]:
        """The 0/1 tensors (Eq. 1) of this layer's own parameters, by name: what is stored
        after training."""
        if not self.binary:
            raise ValueError(f"{type(self).__name__} was built with binary=False and has no bits")
        return {name: quantize(p.detach()) for name, p in self.named_parameters(recurse=False)}
