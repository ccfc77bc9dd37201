"""The hooks of the training loop: :class:`Callback`, what :func:`binedu.fit` calls and when.

:func:`~binedu.fit` is a short loop; everything else it does is a named part with the
same hooks, in the manner of Keras callbacks or PyTorch Lightning's hooks:

- :class:`~binedu.train_guard.DivergenceGuard` stops a run whose loss or latents stop
  being finite;
- :class:`~binedu.train_statistics.LayerStatistics` records bit flips and gradient norms;
- :class:`~binedu.train_progress.ProgressBar` shows the bar and the throughput;
- :class:`~binedu.train_writer.CheckpointWriter` saves the training checkpoint;
- :class:`~binedu.train_record.EpochRecorder` keeps the per-epoch record.

A recipe adds its own part by passing ``fit(..., callbacks=[MyPart()])``: user callbacks
run first at every hook, so the guard, the statistics and the checkpoint see what they
did. The hooks of one optimizer step, in order::

    on_epoch_start (once an epoch) ... forward -> extra_loss -> backward -> on_after_backward -> optimizer step -> on_step_end

``extra_loss`` adds a term to the loss that is back-propagated (a distillation or a
regularisation term; the recorded loss stays the task's cross-entropy);
``on_after_backward`` sees the gradients and may change ``step.rate`` (the learning rate
this step uses) or the gradients; ``on_step_end`` sees the updated latent weights (and
may change them, e.g. clip them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = ["Callback", "Callbacks", "Step"]


@dataclass
class Step:
    """One optimizer step as the hooks see it.

    ``index`` counts this run's optimizer steps from 0 (what the schedule reads);
    ``number`` is the step's number in the history (after an earlier run's steps when
    ``fit(history=...)`` appends); ``record`` says whether per-layer statistics are
    gathered at this step.
    """

    index: int
    number: int
    x: torch.Tensor
    y: torch.Tensor
    rate: float
    record: bool
    logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    loss_value: float = float("nan")


class Callback:
    """A part of the training loop; every hook does nothing unless overridden."""

    def on_train_start(self, run: TrainRun) -> None:
        """Once, after every check has passed, before the first step."""

    def on_epoch_start(self, run: TrainRun, epoch: int) -> None:
        """Before the first (or, resumed, the next) batch of epoch ``epoch`` (0-based)."""

    def extra_loss(self, run: TrainRun, step: Step) -> torch.Tensor | None:
        """A term added to the loss before the backward pass (``None``: nothing)."""
        return None

    def on_after_backward(self, run: TrainRun, step: Step) -> None:
        """After the backward pass, before the optimizer step."""

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        """After the optimizer step; ``run.progress["step"]`` already counts it."""

    def on_epoch_end(self, run: TrainRun, record: dict[str, Any]) -> None:
        """After an epoch (or the part of it this run trained), with its record."""

    def on_train_end(self, run: TrainRun) -> None:
        """Once, when the loop ends, also when it ends with an exception."""

    def checkpoint_tensors(self, run: TrainRun) -> dict[str, torch.Tensor]:
        """Tensors this part keeps in the training checkpoint (resumed by its own code)."""
        return {}


class Callbacks(Callback):
    """Several callbacks called in order at every hook."""

    def __init__(self, parts: Sequence[Callback]) -> None:
        self.parts = list(parts)

    def on_train_start(self, run: TrainRun) -> None:
        for part in self.parts:
            part.on_train_start(run)

    def on_epoch_start(self, run: TrainRun, epoch: int) -> None:
        for part in self.parts:
            part.on_epoch_start(run, epoch)

    def extra_loss(self, run: TrainRun, step: Step) -> torch.Tensor | None:
        terms = [t for t in (part.extra_loss(run, step) for part in self.parts) if t is not None]
        return torch.stack(terms).sum() if terms else None

    def on_after_backward(self, run: TrainRun, step: Step) -> None:
        for part in self.parts:
            part.on_after_backward(run, step)

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        for part in self.parts:
            part.on_step_end(run, step)

    def on_epoch_end(self, run: TrainRun, record: dict[str, Any]) -> None:
        for part in self.parts:
            part.on_epoch_end(run, record)

    def on_train_end(self, run: TrainRun) -> None:
        for part in self.parts:
            part.on_train_end(run)

    def checkpoint_tensors(self, run: TrainRun) -> dict[str, torch.Tensor]:
        tensors: dict[str, torch.Tensor] = {}
        for part in self.parts:
            tensors |= part.checkpoint_tensors(run)
        return tensors
