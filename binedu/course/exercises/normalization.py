"""Self-check exercises of notebook 03: why normalization.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import math

import torch

from ...normalize import EPS, normalize
from .core import Exercise, register


def _normalize_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(5)
    return [
        (torch.randn(3, 6, generator=g) * 40 + 100,),  # a 0/1 layer's large, shifted outputs
        (torch.randn(2, 4, 5, generator=g),),  # (batch, seq, features): each token on its own
        (torch.ones(2, 3),),  # constant: eps keeps it finite (zeros)
    ]


def _my_normalize(z: torch.Tensor) -> torch.Tensor:
    """Normalize from scratch (the model answer)."""
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + EPS)


register(
    Exercise(
        id="03.normalize",
        title="Normalize(z): zero mean, unit standard deviation over the last axis, no parameters",
        reference=lambda z: normalize(z, -1),
        cases=_normalize_cases,
        forbidden=("binedu.normalize.normalize", "torch.nn.functional.layer_norm"),
        solution=_my_normalize,
        hint=f"(z - mean) / sqrt(var + eps) over dim=-1 with keepdim=True; var is the population variance "
        f"(unbiased=False) and eps = {EPS}.",
        atol=1e-4,
        rtol=1e-4,
    )
)

register(
    Exercise(
        id="03.sum_std",
        title="Std of a 0/1 weighted sum of n standard-normal inputs (each weight a fair coin)",
        reference=lambda n: math.sqrt(n / 2),
        cases=lambda: [(1,), (2,), (64,), (1024,)],
        hint="each term w_i x_i has mean 0 and variance E[w_i^2] E[x_i^2]: what is E[w^2] for a fair 0/1 coin? "
        "Variances of independent terms add up, and the std is the square root of the variance.",
        rtol=1e-6,
    )
)

register(
    Exercise(
        id="03.which_trains",
        title="Which binary model learned the digits: 'with' or 'without' Normalize?",
        reference=lambda: "with",
        hint="look at the validation accuracy of the two runs and compare it with chance (1 in 10 for digits).",
    )
)
