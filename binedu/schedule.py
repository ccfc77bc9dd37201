"""The learning-rate schedule of the paper's Table 1: warmup, then decay.

Table 1 says only "warmup to max 1e-4 over 20 steps, then decay over 1100 steps".
binedu's choice, documented here and drawn by :func:`schedule_values`:

- **warmup**, linear: step ``s < warmup_steps`` uses ``max_lr * (s + 1) / warmup_steps``
  (the first step already moves the weights; it reaches ``max_lr`` at the last warmup
  step);
- **decay**, cosine (Keras' ``CosineDecay`` with warmup, the likely tool of the paper):
  over the next ``decay_steps`` steps the rate falls from ``max_lr`` to
  ``min_ratio * max_lr`` along half a cosine;
- **after the decay** it stays at ``min_ratio * max_lr``.

``decay_steps=0`` means no decay (a constant rate after warmup, as for the language
model of Table 4, which gives only "learning rate 1e-5"). With the paper's 20 + 1100
steps and ``min_ratio=0`` the rate would reach zero inside the first Food-101 epoch
(75,750 images at batch 64 are 1,184 steps per epoch) and stay there for the other 999;
the paper presets therefore keep a floor (see ``binedu.train.RECIPES``).

Another reading of "decay steps" is Keras' ``ExponentialDecay(lr, decay_steps=1100,
decay_rate=r)``, where ``decay_steps`` is not an end but a period: the rate is
``lr * r ** (step / 1100)`` and keeps shrinking for the whole run. The paper gives no
``r``, so binedu keeps the cosine-with-floor reading and says so.
"""

from __future__ import annotations

import math

__all__ = ["learning_rate", "schedule_values"]


def learning_rate(
    step: int, max_lr: float, warmup_steps: int = 20, decay_steps: int = 1100, min_ratio: float = 0.0
) -> float:
    """The learning rate of optimizer step ``step`` (0-based) under the warmup-then-cosine
    schedule described in the module docstring."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if max_lr <= 0:
        raise ValueError(f"max_lr must be positive, got {max_lr}")
    if warmup_steps < 0 or decay_steps < 0:
        raise ValueError(f"warmup_steps and decay_steps must be >= 0, got {warmup_steps} and {decay_steps}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if decay_steps == 0:
        return max_lr
    done = min(step - warmup_steps, decay_steps) / decay_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * done))
    return max_lr * (min_ratio + (1.0 - min_ratio) * cosine)


def schedule_values(
    total_steps: int, max_lr: float, warmup_steps: int = 20, decay_steps: int = 1100, min_ratio: float = 0.0
) -> list[float]:
    """The rates of steps ``0 .. total_steps - 1``, e.g. to plot the schedule."""
    return [learning_rate(s, max_lr, warmup_steps, decay_steps, min_ratio) for s in range(total_steps)]
