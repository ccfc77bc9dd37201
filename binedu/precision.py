"""Mixed precision for training: ``precision="bf16"`` runs the float activations in
bfloat16 under ``torch.autocast``; the latent weights stay float32.

The bits do not change: Eq. 1 quantizes the float32 latent parameters (autocast only
touches the inputs of matrix products and convolutions), and 0/1 are exact in bfloat16.
:func:`binedu.normalize.normalize` takes its mean and variance in float32 under
autocast, as ``torch.nn.LayerNorm`` does, so the normalization is not degraded either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

__all__ = ["PRECISIONS", "autocast"]

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of the context that forward passes run in: nothing for ``"fp32"``,
    ``torch.autocast(device, bfloat16)`` for ``"bf16"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"precision 'bf16' needs a GPU with bfloat16 support; {device} has none (use fp32)")
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
