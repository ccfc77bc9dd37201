"""The learning rate of every step of one :func:`binedu.fit` run: :class:`Schedule`,
and what happens to it when a run is resumed with more epochs.

The rate is :func:`binedu.schedule.learning_rate`: linear warmup over ``warmup_steps``,
then half a cosine from ``lr`` to ``min_lr_ratio * lr`` over ``decay_steps`` (Table 1's
"warmup, then decay"). ``decay_steps=None`` (the tiny recipes) makes the decay span the
planned epochs, so the rate reaches the floor, 0 by default, at the end of the plan.

**Training longer** (``fit(..., resume=True)`` or ``binedu train --resume`` with more
``epochs`` than the checkpoint planned, while the decay follows the epochs): the steps
of the earlier plan keep their rates, and the extra steps get a *warm restart* (SGDR,
Loshchilov & Hutter 2017): the rate jumps back to ``lr`` and decays along a new half
cosine over the extra steps, to ``min_lr_ratio * lr``, without a second warmup (Adam's
moment estimates are warm). Each extension adds one such segment; the checkpoint records
them (``restarts``: ``[first step, decay steps]`` pairs, and ``schedule_end``, the step
where the last plan ends), so an extended run stopped and resumed again gives the same
rates. Without the restart the extra epochs would train at a rate of about 0 and change
nothing. Fewer epochs than planned stop earlier on the same schedule. An explicit
``decay_steps`` does not depend on the epochs: more epochs continue at the rate after the
decay (the floor, or ``lr`` for ``decay_steps=0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .schedule import learning_rate

__all__ = ["Schedule", "follows_epochs", "extend"]


@dataclass(frozen=True)
class Schedule:
    """Warmup then cosine decay from peak ``lr``, and the warm restarts of an extended
    run (``(first step, decay steps)`` pairs, in order)."""

    lr: float
    warmup_steps: int
    decay_steps: int
    min_lr_ratio: float = 0.0
    restarts: tuple[tuple[int, int], ...] = ()

    def rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        for start, decay in reversed(self.restarts):
            if step >= start:
                return learning_rate(step - start, self.lr, 0, decay, self.min_lr_ratio)
        return learning_rate(step, self.lr, self.warmup_steps, self.decay_steps, self.min_lr_ratio)


def follows_epochs(meta: dict[str, Any]) -> bool:
    """Whether a checkpoint's decay spans its planned epochs (``decay_steps=None``);
    inferred from the numbers for a checkpoint that does not say."""
    if "decay_follows_epochs" in meta:
        return meta["decay_follows_epochs"] is True
    try:
        per_epoch = math.ceil(meta["train_size"] / (meta["batch_size"] * meta.get("world_size", 1)))
        return bool(meta["decay_steps"] == max(meta["epochs"] * per_epoch - meta["warmup_steps"], 0))
    except (KeyError, TypeError, ZeroDivisionError):
        return False


def extend(meta: dict[str, Any], settings: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """The schedule settings of a run that resumes a checkpoint (``meta``) whose decay
    follows the epochs, as this run plans ``settings["epochs"]``: the checkpoint's decay
    and restarts, plus a restart over the extra steps if this plan ends later."""
    end = meta.get("schedule_end", meta["epochs"] * steps_per_epoch)
    restarts = [list(r) for r in meta.get("restarts", [])]
    planned = settings["epochs"] * steps_per_epoch
    if planned > end:
        restarts.append([end, planned - end])
        end = planned
    return {"decay_steps": meta["decay_steps"], "schedule_end": end, "restarts": restarts}
