"""Loss, accuracy and perplexity, with padding excluded.

The paper's language-model numbers (Table 5) look far too good for models of that size;
counting padding tokens in the loss and accuracy is one likely cause (PAPER.md, Sec. 5).
Here a target equal to ``pad_id`` never counts: not in the loss, not in the accuracy and
not in the perplexity, and means are taken over real tokens of the whole data set (not
averaged per batch), so adding padding to examples leaves every metric unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "evaluate",
    "evaluation_tally",
    "task_of",
    "dataset_len",
    "split_batch",
    "token_loss",
    "Tally",
    "perplexity",
]


def task_of(model: nn.Module) -> str:
    """``"language"`` for next-token models (a :class:`~binedu.LanguageModel` or any model,
    packed ones included, whose ``config.kind`` is ``"language"``), else ``"image"``."""
    config = getattr(model, "config", None)
    return "language" if getattr(config, "kind", None) == "language" else "image"


def dataset_len(dataset: object) -> int:
    """The number of examples of a map-style data set (a ``Dataset`` with ``__len__``);
    a ``TypeError`` for one without a length, such as an ``IterableDataset``, which cannot
    be split into batches, shards or epochs by index."""
    if not isinstance(dataset, Sized):
        raise TypeError(f"a data set with a length (map-style) is needed, got {type(dataset).__name__}")
    return len(dataset)


def split_batch(batch: Any, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of a collated batch.

    Language: a ``(B, T + 1)`` tensor of token ids gives ``x = seq[:, :-1]`` and
    ``y = seq[:, 1:]``. Image (or a language batch already split): ``(inputs, targets)``.
    """
    if task == "language" and isinstance(batch, torch.Tensor):
        if batch.ndim != 2 or batch.shape[1] < 2:
            raise ValueError(f"language batches must have shape (batch, seq + 1) with seq >= 1, got {tuple(batch.shape)}")
        return batch[:, :-1], batch[:, 1:]
    if isinstance(batch, list | tuple) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        f"a {task} batch must be {'a (batch, seq + 1) tensor of ids or ' if task == 'language' else ''}"
        f"an (inputs, targets) pair, got {type(batch).__name__}"
    )


def token_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int | None = 0) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not ``pad_id`` (all of them when
    ``pad_id`` is None). Works for ``(B, C)`` class logits and ``(B, T, V)`` token logits."""
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1)
    ignore = -100 if pad_id is None else pad_id
    return F.cross_entropy(flat_logits, flat_targets, ignore_index=ignore)


def perplexity(loss: float) -> float:
    """``exp(mean token negative log-likelihood)``; ``inf`` when that overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


@dataclass
class Tally:
    """Running sums over real (non-padding) targets: summed NLL, correct predictions and
    the number of targets. Metrics come from the sums, so batches of any size and any
    amount of padding weigh each real target equally."""

    nll: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, logits: torch.Tensor, targets: torch.Tensor, pad_id: int | None = None) -> None:
        """Add one batch (``pad_id`` None: every target is real)."""
        flat_logits = logits.detach().reshape(-1, logits.shape[-1]).float()
        flat_targets = targets.reshape(-1)
        if pad_id is not None:
            keep = flat_targets != pad_id
            flat_logits, flat_targets = flat_logits[keep], flat_targets[keep]
        self.nll += float(F.cross_entropy(flat_logits, flat_targets, reduction="sum"))
        self.correct += int((flat_logits.argmax(-1) == flat_targets).sum())
        self.count += int(flat_targets.numel())

    def metrics(self, language: bool = False) -> dict[str, float]:
        """``loss`` (mean NLL), ``acc`` and, for language models, ``ppl``."""
        if self.count == 0:
            raise ValueError("no real targets to average over (empty data set, or only padding)")
        out = {"loss": self.nll / self.count, "acc": self.correct / self.count}
        if language:
            out["ppl"] = perplexity(out["loss"])
        return out

    def to_dict(self) -> dict[str, float]:
        return {"nll": self.nll, "correct": self.correct, "count": self.count}


def _batches(dataset: Dataset | DataLoader, batch_size: int) -> Iterable:
    if isinstance(dataset, DataLoader):
        return dataset
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset | DataLoader,
    batch_size: int = 256,
    pad_id: int | None = 0,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """``{"loss", "acc"}`` (and ``"ppl"`` for a language model) of ``model`` on ``dataset``.

    Classification: mean cross-entropy and accuracy over examples. Language: mean token
    cross-entropy, next-token accuracy and perplexity ``exp(loss)`` over real tokens;
    targets equal to ``pad_id`` are excluded (padding never counts). The model runs in
    eval mode on ``device`` (default: where its parameters or buffers are) and is left in
    the mode it was in.
    """
    return evaluation_tally(model, dataset, batch_size, pad_id, device).metrics(language=task_of(model) == "language")


@torch.no_grad()
def evaluation_tally(
    model: nn.Module,
    dataset: Dataset | DataLoader,
    batch_size: int = 256,
    pad_id: int | None = 0,
    device: str | torch.device | None = None,
) -> Tally:
    """The sums behind :func:`evaluate` (what processes of a distributed run add up)."""
    task = task_of(model)
    if device is None:
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
    was_training = model.training
    model.eval()
    tally = Tally()
    try:
        for batch in _batches(dataset, batch_size):
            x, y = split_batch(batch, task)
            logits = model(x.to(device))
            tally.add(logits, y.to(device), pad_id if task == "language" else None)
    finally:
        model.train(was_training)
    return tally
