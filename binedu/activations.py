"""Activation functions by name, as the paper's algorithms name them."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["get_activation", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda z: z,
    "relu": F.relu,
    "gelu": F.gelu,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


def get_activation(name: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the activation called ``name`` (``None`` means ``"linear"``)."""
    key = "linear" if name is None else name
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]
