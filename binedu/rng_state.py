"""The random-number states a training checkpoint keeps (dropout draws), by tensor name."""

from __future__ import annotations

import torch

__all__ = ["rng_tensors", "set_rng"]


def rng_tensors() -> dict[str, torch.Tensor]:
    """This process's generator states: ``rng/cpu`` and ``rng/cuda/<i>`` per GPU."""
    states = {"rng/cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return states


def set_rng(tensors: dict[str, torch.Tensor]) -> None:
    """Restore the states of :func:`rng_tensors` (those present)."""
    if "rng/cpu" in tensors:
        torch.set_rng_state(tensors["rng/cpu"])
    cuda = [tensors[f"rng/cuda/{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda/{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
