"""What one :func:`binedu.fit` run holds while it trains: :class:`TrainRun`.

The callbacks (:mod:`binedu.train_callbacks`) receive it at every hook: the model and
its optimizer, the process group, the schedule, the history being written and the
progress counters that a training checkpoint stores (``step``, ``epoch``, ``batch``,
``tally`` and, for a run that appends to an earlier history, ``step_offset`` and
``epoch_offset``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .distributed import Group
from .history import History
from .metrics import Tally
from .train_schedule import Schedule

__all__ = ["TrainRun", "fresh_progress", "model_config"]


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's binedu configuration as a dict (``None``: not a binedu model)."""
    to_dict = getattr(getattr(model, "config", None), "to_dict", None)
    return None if to_dict is None else to_dict()


def fresh_progress() -> dict[str, Any]:
    """The progress counters of a run that has not trained yet."""
    return {"step": 0, "epoch": 0, "batch": 0, "tally": Tally().to_dict()}


@dataclass
class TrainRun:
    """The state of one training run, shared by the loop and its callbacks.

    ``epochs`` is the plan (the loop ends after that epoch), ``total`` the optimizer
    step it stops at (``max_steps`` or the plan's end), ``steps_per_epoch`` the global
    batches of one epoch. ``settings`` is what the checkpoint's ``meta`` and the
    history's ``meta`` record; ``saved_step`` the step of the checkpoint on disk
    (``None``: none was written by this run or resumed from).
    """

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    procs: Group
    device: torch.device
    amp: Callable[[], AbstractContextManager[Any]]
    task: str
    pad_id: int | None
    settings: dict[str, Any]
    schedule: Schedule
    epochs: int
    total: int
    steps_per_epoch: int
    history: History = field(default_factory=History)
    progress: dict[str, Any] = field(default_factory=fresh_progress)
    tally: Tally = field(default_factory=Tally)
    checkpoint: Path | None = None
    saved_step: int | None = None

    @property
    def language(self) -> bool:
        """Next-token prediction (else image classification)."""
        return self.task == "language"

    @property
    def step_offset(self) -> int:
        """Steps of the earlier run this one appends to (``fit(history=...)``)."""
        return int(self.progress.get("step_offset", 0))

    @property
    def epoch_offset(self) -> int:
        return int(self.progress.get("epoch_offset", 0))

    def unfinished(self) -> bool:
        """Whether the loop has steps left to train."""
        return self.progress["epoch"] < self.epochs and self.progress["step"] < self.total
