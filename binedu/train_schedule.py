"""The learning rate of every step of one :func:`binedu.fit` run: :class:`Schedule`.

The rate of one segment is :func:`binedu.schedule.learning_rate` (linear warmup, then
half a cosine to ``min_lr_ratio * lr``). A run has one segment unless it was extended,
see :meth:`Schedule.extended`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schedule import learning_rate

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """Warmup then cosine decay (Table 1, :mod:`binedu.schedule`) from peak ``lr``."""

    lr: float
    warmup_steps: int
    decay_steps: int
    min_lr_ratio: float = 0.0

    def rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return learning_rate(step, self.lr, self.warmup_steps, self.decay_steps, self.min_lr_ratio)
