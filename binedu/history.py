"""The record of a training run: what the notebooks and plots read.

Plain lists and dicts of numbers, so a history saves to and loads from JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """Per-step and per-epoch metrics of one training run.

    - ``steps``/``loss``: the optimizer step index and its training loss.
    - ``epochs``: one dict per epoch with ``epoch``, ``train_loss``, ``val_loss``,
      ``train_acc``, ``val_acc`` and, for language models, ``train_ppl``, ``val_ppl``.
    - ``flip_steps``/``flip_ratio``: for binary models, the fraction of all bits that
      changed since the previous record (Eq. 1 applied to the latent weights).
    - ``layer_flips``: the same per binary layer (layer name -> values aligned with
      ``flip_steps``; kernel and bias bits together), so a plot can show which layers
      still learn.
    - ``changed_since_init``: aligned with ``flip_steps``, the fraction of all bits that
      differ from the bits at initialisation: a bit that flips and flips back counts
      twice in ``flip_ratio`` but not here.
    - ``grad_steps``/``grad_norms``: per-layer gradient norms (layer name -> values
      aligned with ``grad_steps``).
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    flip_steps: list[int] = field(default_factory=list)
    flip_ratio: list[float] = field(default_factory=list)
    layer_flips: dict[str, list[float]] = field(default_factory=dict)
    changed_since_init: list[float] = field(default_factory=list)
    grad_steps: list[int] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> list[float]:
        """One per-epoch metric as a list, e.g. ``history.metric("val_acc")``."""
        return [e[name] for e in self.epochs if name in e]

    def best(self, name: str) -> float:
        """Best value of a per-epoch metric (max for accuracies, min otherwise), as the
        paper's Tables 2 and 5 report."""
        values = self.metric(name)
        if not values:
            raise ValueError(f"history has no per-epoch metric {name!r}")
        return max(values) if name.endswith("acc") else min(values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)

    def save(self, path: str | Path) -> None:
        from .io import atomic_write_bytes

        atomic_write_bytes(path, json.dumps(self.to_dict()).encode())

    @classmethod
    def load(cls, path: str | Path) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))
