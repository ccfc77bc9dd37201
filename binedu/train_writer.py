"""The checkpoint writer of :func:`binedu.fit` (the file format: :mod:`binedu.train_checkpoint`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .rng_state import rng_tensors
from .train_callbacks import Callback, Step
from .train_checkpoint import save_training_checkpoint

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = ["CheckpointWriter"]


class CheckpointWriter(Callback):
    """Saves the training checkpoint at ``path`` after every epoch and, with ``every``,
    every ``every`` steps within an epoch: the latent parameters, the optimizer, the
    progress counters, the history, every rank's random-number states and the tensors
    of the other parts (``tensors(run)``, e.g. the bit snapshots of
    :class:`~binedu.train_statistics.LayerStatistics`). Only rank 0 writes; every rank
    waits until the file is on disk."""

    def __init__(self, path: Path, every: int | None, tensors: Callable[[TrainRun], dict[str, torch.Tensor]]) -> None:
        self.path, self.every, self.tensors = path, every, tensors

    def save(self, run: TrainRun) -> None:
        extra = self.tensors(run) | run.procs.gather_rng(rng_tensors())  # a collective: every rank
        if run.procs.is_main:
            save_training_checkpoint(
                self.path, run.model, run.optimizer, state=run.progress, history=run.history, tensors=extra,
                meta=run.settings,
            )  # fmt: skip
        run.procs.barrier()  # no rank runs ahead of a checkpoint that is not on disk yet
        run.saved_step = run.progress["step"]

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        done = run.progress["step"]
        if self.every and done % self.every == 0 and run.progress["batch"] < run.steps_per_epoch:
            self.save(run)  # mid-epoch; the epoch's end saves in on_epoch_end

    def on_epoch_end(self, run: TrainRun, record: dict[str, Any]) -> None:
        self.save(run)
