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

__all__ = ["BinaryModule"]


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
    ) -> None:
        super().__init__()
        self.binary = binary
        self.activation = activation or "linear"
        self._act = get_activation(activation)
        self.norm = make_norm(num_features, binary=binary, normalize=normalize, affine=affine, mode=norm_mode)

    def q(self, p: torch.Tensor) -> torch.Tensor:
        """The value the forward pass uses for latent ``p``: its bits (Eq. 1, with the
        straight-through gradient of Alg. 1) or, for a float layer, ``p`` itself."""
        return quantize_ste(p) if self.binary else p

    def finish(self, z: torch.Tensor) -> torch.Tensor:
        """``a = Activation(Normalize(z))``, the tail of Alg. 1, 2 and 3."""
        return self._act(self.norm(z))

    def binary_parameters(self) -> dict[str, torch.Tensor]:
        """The 0/1 tensors (Eq. 1) of this layer's own parameters, by name: what is stored
        after training."""
        if not self.binary:
            raise ValueError(f"{type(self).__name__} was built with binary=False and has no bits")
        return {name: quantize(p.detach()) for name, p in self.named_parameters(recurse=False)}
