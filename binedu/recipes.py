"""Training recipes that might narrow the binary-float32 gap, each a switch for :func:`binedu.fit`.

The paper trains its binary models with the same recipe as float32 (Adam/AdamW, warmup
then decay, Table 1 and Table 4; binedu's reading in :mod:`binedu.schedule`). Two
changes from the binary-network literature, measured against it by
``bench/bench_scaling.py`` (results in ``docs/guides/scaling.md``):

- ``"low-rate-tail"``: a schedule with a **long low-rate phase**. The cosine decay ends
  halfway through the run at 10 % of the peak rate, and training continues at that rate
  for the second half. Binary latents only matter through their side of the threshold
  (Eq. 1), so a late phase of small steps lets them settle instead of flipping back and
  forth; Liu et al. (2021, "How Do Adam and Training Strategies Help BNNs
  Optimization?", ICML) find binary networks unusually sensitive to the learning-rate
  schedule, and the two-stage recipes of binary networks (Martinez et al. 2020,
  "Training binary neural networks with real-to-binary convolutions", ICLR) end with
  long low-rate phases. No change to ``fit``: it is ``decay_steps`` and ``min_lr_ratio``.
- ``"clip"``: **latent-weight clipping** as in BinaryConnect (Courbariaux et al. 2015,
  "BinaryConnect: training deep neural networks with binary weights during
  propagations", NeurIPS), which clips the real-valued weights to [-1, 1] after every
  update so that a latent cannot drift far from the threshold it is compared with and
  become unable to flip back. Here the threshold of Eq. 1 is each tensor's own mean, so
  every latent tensor of a binary layer is clipped to ``mean ± r`` where ``r`` is its
  largest distance from the mean at initialization (BinaryConnect's [-1, 1] is also its
  initialization range). Tensors that start constant (the zero biases) are left alone.
  The clip runs before every training forward pass, i.e. right after each optimizer
  step, through a forward pre-hook: again no change to ``fit``.

``"paper"`` is the unchanged recipe. :func:`apply_recipe` installs a recipe on a model and
returns the extra keyword arguments for ``fit``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .base import BinaryModule

__all__ = ["RECIPE_NAMES", "apply_recipe", "recipe_options", "clip_latents"]

RECIPE_NAMES = ("paper", "low-rate-tail", "clip")
"""The recipes :func:`apply_recipe` knows; ``"paper"`` changes nothing."""

TAIL_FRACTION = 0.5
"""``"low-rate-tail"``: the share of the run spent at the low rate."""
TAIL_RATIO = 0.1
"""``"low-rate-tail"``: the low rate as a fraction of the peak."""


def _check(name: str) -> None:
    if name not in RECIPE_NAMES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {list(RECIPE_NAMES)}")


def recipe_options(name: str, steps: int, warmup_steps: int = 20) -> dict[str, Any]:
    """The extra ``fit`` keyword arguments of recipe ``name`` for a run of ``steps``
    optimizer steps (``epochs * ceil(len(train) / batch_size)``) with ``warmup_steps``."""
    _check(name)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if name != "low-rate-tail":
        return {}
    decay = max(round(steps * (1.0 - TAIL_FRACTION)) - warmup_steps, 1)
    return {"decay_steps": decay, "min_lr_ratio": TAIL_RATIO}


def _binary_latents(model: nn.Module) -> Iterator[torch.Tensor]:
    for module in model.modules():
        if isinstance(module, BinaryModule) and module.binary:
            yield from module.parameters(recurse=False)


def clip_latents(model: nn.Module) -> RemovableHandle:
    """BinaryConnect's clipping (module docstring) on every latent tensor of ``model``'s
    binary layers, before each forward pass in training mode; returns the hook's handle
    (``handle.remove()`` switches it off)."""
    bounds: list[tuple[torch.Tensor, float]] = []
    with torch.no_grad():
        for p in _binary_latents(model):
            radius = float((p - p.mean()).abs().max()) if p.numel() else 0.0
            if radius > 0.0:
                bounds.append((p, radius))

    def clip(module: nn.Module, args: Any) -> None:
        if not module.training:
            return
        with torch.no_grad():
            for p, radius in bounds:
                centre = p.mean()
                p.clamp_(centre - radius, centre + radius)

    return model.register_forward_pre_hook(clip)


def apply_recipe(name: str, model: nn.Module, steps: int, warmup_steps: int = 20) -> dict[str, Any]:
    """Install recipe ``name`` on ``model`` (the ``"clip"`` hook) and return its extra
    ``fit`` keyword arguments (see :func:`recipe_options`)."""
    options = recipe_options(name, steps, warmup_steps)
    if name == "clip":
        clip_latents(model)
    return options
