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
from torch.utils.weak import WeakTensorKeyDictionary

from .activations import get_activation
from .normalize import make_norm
from .quantize import quantize, quantize_ste

__all__ = ["BinaryModule", "WEIGHTS"]

WEIGHTS = ("01", "pm1")
"""Binary weight values: the paper's 0/1, or -1/+1 (the control of the ablation)."""

_BIT_CACHE = WeakTensorKeyDictionary()
"""Eval-time bits by latent parameter (see :meth:`BinaryModule.q`)."""


class BinaryModule(nn.Module):
    """Base of the binedu layers: parameter binarization and the normalized output."""

    def __init__(
        self,
        num_features: int,
        activation: str | None = None,
        *,
        binary: bool = True,
        normalize: bool | str = True,
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
        straight-through gradient of Alg. 1) or, for a float layer, ``p`` itself. In eval
        mode under ``torch.no_grad`` the bits are cached until ``p`` changes.
        ``weights="pm1"`` (an ablation control, not the paper) maps the bits to -1/+1."""
        if not self.binary:
            return p
        if self.training or torch.is_grad_enabled() or p.is_inference():  # inference tensors have no version
            return self._binarize(quantize_ste(p))
        return self._cached_bits(p)

    def _binarize(self, bits: torch.Tensor) -> torch.Tensor:
        return 2.0 * bits - 1.0 if self.weights == "pm1" else bits

    def _cached_bits(self, p: torch.Tensor) -> torch.Tensor:
        """``q(p)`` in eval mode without gradients, computed once per weight version.

        Inference with the latent model (before packing) would otherwise redo Eq. 1 on
        every weight at every forward pass. The cached value of ``p`` is reused while ``p``
        keeps its storage and its in-place version counter: an optimizer step,
        ``load_state_dict`` or any in-place write to ``p`` bumps ``p._version`` and
        invalidates it. (Writes through ``p.data`` bypass the version counter: call
        :meth:`clear_bit_cache` after them.) Switching to train mode clears it. Parameters
        created under ``torch.inference_mode`` have no version counter and are not cached. The cache
        is keyed weakly by the parameter, so it never keeps a model alive, and it is not
        part of the module's state (copies and checkpoints do not carry it).
        """
        key = (p._version, p.data_ptr(), p.shape, p.dtype, p.device, self.weights)
        hit = _BIT_CACHE.get(p)
        if hit is not None and hit[0] == key:
            return hit[1]
        bits = self._binarize(quantize(p))
        _BIT_CACHE[p] = (key, bits)
        return bits

    def clear_bit_cache(self) -> None:
        """Forget the bits cached for eval (see :meth:`q`) of this layer's parameters."""
        for p in self.parameters(recurse=False):
            _BIT_CACHE.pop(p, None)

    def train(self, mode: bool = True) -> BinaryModule:
        if mode:
            self.clear_bit_cache()
        return super().train(mode)

    def finish(self, z: torch.Tensor) -> torch.Tensor:
        """``a = Activation(Normalize(z))``, the tail of Alg. 1, 2 and 3."""
        return self._act(self.norm(z))

    def binary_parameters(self) -> dict[str, torch.Tensor]:
        """The 0/1 tensors (Eq. 1) of this layer's own parameters, by name: what is stored
        after training."""
        if not self.binary:
            raise ValueError(f"{type(self).__name__} was built with binary=False and has no bits")
        return {name: quantize(p.detach()) for name, p in self.named_parameters(recurse=False)}
