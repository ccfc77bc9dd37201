"""Seeded, reproducible train/validation splits and per-class-balanced subsets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .errors import DataError

__all__ = ["check_fraction", "check_limit", "check_splits", "random_split", "stratified_split", "balanced_subset"]


def check_fraction(val_fraction: float) -> float:
    """``val_fraction`` if it lies in [0, 1), else a ValueError."""
    if not isinstance(val_fraction, int | float) or not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction!r}")
    return float(val_fraction)


def check_limit(limit: int | None) -> int | None:
    """``limit`` if it is None or a positive int, else a ValueError."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    return limit


def check_splits(name: str, train_size: int, val_size: int, num_classes: int | None = None, hint: str = "") -> None:
    """Refuse a data set whose training or validation split is empty, when the data is
    built: otherwise training runs a whole epoch and only then fails to validate, and
    the epoch is lost. Warn about one class, which makes accuracy trivially 1."""
    for split, size in (("training", train_size), ("validation", val_size)):
        if size == 0:
            raise DataError(f"{name}: the {split} split is empty. {hint}".strip())
    if num_classes == 1:
        warnings.warn(
            f"{name} has a single class: every prediction is right, so accuracy says nothing", stacklevel=3
        )


def _num_val(n: int, val_fraction: float) -> int:
    """Round ``n * val_fraction``, keeping at least one item on each side when n >= 2."""
    k = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        k = min(max(k, 1), n - 1)
    return k


def random_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of a seeded random split of ``range(n)``, each sorted."""
    order = np.random.default_rng(seed).permutation(n)
    k = _num_val(n, check_fraction(val_fraction))
    return np.sort(order[k:]), np.sort(order[:k])


def stratified_split(labels: Sequence[int], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`random_split`, but each class keeps its share in both halves, so a
    small validation set still sees every class."""
    labels = np.asarray(labels)
    check_fraction(val_fraction)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = _num_val(len(idx), val_fraction)
        val.append(idx[:k])
        train.append(idx[k:])
    empty = np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train or [empty])), np.sort(np.concatenate(val or [empty]))


def balanced_subset(indices: np.ndarray, labels: Sequence[int], limit: int | None, seed: int) -> np.ndarray:
    """At most ``limit`` of ``indices``, taken round-robin over classes in a seeded order,
    so a quick run on 500 Food-101 images still sees many classes instead of only the
    first one in file order. Returns ``indices`` unchanged when ``limit`` is None."""
    indices = np.asarray(indices)
    if limit is None or limit >= len(indices):
        return indices
    labels = np.asarray(labels)[indices]
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(indices))
    rank = np.empty(len(indices), dtype=np.int64)
    for c in np.unique(labels):
        members = shuffled[labels[shuffled] == c]  # this class, in seeded order
        rank[members] = np.arange(len(members))
    order = np.lexsort((shuffled.argsort(), rank))  # by rank within class, ties in seeded order
    return np.sort(indices[order[:limit]])
