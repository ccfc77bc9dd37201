"""The identity of a training set: a digest of what a run trains on.

A resumed run must continue on the data it started with, not on another data set that
happens to have the same size (``binedu train --resume`` with another ``--data-root``, a
corpus that changed, another split). :func:`data_id` digests what the training examples
are made of, cheaply (no image is decoded):

- images in memory (the digits): the pixel values and the labels;
- image files (Food-101, a folder): each file's path relative to the data set's folder,
  its size and label, and the image size and standardization used;
- token sequences (Python's documentation, WikiText): every token id and where each
  example starts.

``fit(..., data_id=...)`` stores it in the checkpoint and compares it on resume;
the command line also records it in ``run.json``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

__all__ = ["data_id"]


def _feed(h: Any, value: Any) -> None:
    """Add a tensor or array (its dtype, shape and bytes) or a plain value to the digest."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous().numpy()
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype.str}{value.shape}".encode())
        flat = np.ascontiguousarray(value).reshape(-1)
        step = max(1, (1 << 24) // max(flat.itemsize, 1))  # 16 MiB at a time, also for a memory map
        for start in range(0, len(flat), step):
            h.update(flat[start : start + step].tobytes())
    else:
        h.update(repr(value).encode())
    h.update(b"\x00")


def _files(paths: list[Any]) -> list[tuple[str, int]]:
    if not paths:
        return []
    root = os.path.commonpath([str(Path(p).parent) for p in paths])
    return [(os.path.relpath(str(p), root), os.stat(p).st_size) for p in paths]


def data_id(dataset: Dataset) -> str | None:
    """A hex digest of ``dataset``'s examples (``None``: a kind of data set it does not
    know; such a run is resumed without the comparison)."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(dataset, TensorDataset):
        parts: list[Any] = ["tensors", *dataset.tensors]
    elif hasattr(dataset, "images") and hasattr(dataset, "labels"):
        parts = ["images", dataset.images, dataset.labels]
    elif hasattr(dataset, "paths") and hasattr(dataset, "labels"):
        stats = [getattr(dataset, k, None) for k in ("image_size", "mode", "mean", "std")]
        parts = ["files", _files(list(dataset.paths)), list(dataset.labels), *stats]
    elif hasattr(dataset, "ids") and hasattr(dataset, "offsets"):
        parts = ["tokens", np.asarray(dataset.ids), np.asarray(dataset.offsets), getattr(dataset, "length", None)]
    else:
        return None
    for part in parts:
        _feed(h, part)
    return h.hexdigest()
