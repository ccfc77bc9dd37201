"""The divergence guard of :func:`binedu.fit`: stop at the first non-finite step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .train_callbacks import Callback, Step

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = ["TrainingDiverged", "DivergenceGuard", "check_finite"]


class TrainingDiverged(ValueError):
    """The loss or a latent parameter stopped being a finite number (too high a learning
    rate, or a model without normalization); the checkpoint written before it is kept."""


def check_finite(model: nn.Module, loss: float, step: int, saved_step: int | None) -> None:
    """Raise :class:`TrainingDiverged` naming ``step`` if the loss or a latent parameter is
    not finite (a NaN latent would turn its layer's bits to 0, Eq. 1)."""
    problem = None
    if not math.isfinite(loss):
        problem = f"the loss is {loss}"
    elif not bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()):
        bad = [n for n, p in model.named_parameters() if not bool(p.detach().isfinite().all())]
        problem = f"latent parameters are NaN or infinite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})"
    if problem is not None:
        kept = "no checkpoint was written yet" if saved_step is None else f"the checkpoint of step {saved_step} is kept"
        raise TrainingDiverged(f"training diverged at step {step}: {problem}; {kept}. Try a lower learning rate")


class DivergenceGuard(Callback):
    """After every optimizer step: the loss and every latent parameter must be finite,
    else :class:`TrainingDiverged` stops the run before anything is recorded or saved
    (the last checkpoint stays the good one)."""

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        check_finite(run.model, step.loss_value, step.number + 1, run.saved_step)
