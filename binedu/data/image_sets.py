"""Image data sets held in memory and what a model needs to know about them.

Shared by :mod:`binedu.data.images` and :mod:`binedu.data.hard_digits` (its own module,
so neither imports the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch.utils.data import Dataset

__all__ = ["ImageData", "TensorImageDataset", "MAX_IMAGE_SIZE"]

MAX_IMAGE_SIZE = 1024
"""The largest image side binedu resizes to: 4x the paper's 256 (one 1024x1024 RGB batch
of 64 is 800 MB of floats). A hand-edited ``run.json`` cannot ask for more either."""


@dataclass
class ImageData:
    """Train and validation sets of one image data set, and what a model needs to know
    about it. ``mean``/``std`` are the per-channel statistics the images were
    standardized with."""

    train: Dataset
    val: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    class_names: list[str]
    name: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    test: Dataset | None = None  # a held-out test split, where the data set has one ("digits-hard")


class TensorImageDataset(Dataset):
    """Images already in memory: ``images`` ``(N, C, H, W)`` float32, ``labels`` ``(N,)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``(N, C, H, W)`` images (a std of 0 becomes 1)."""
    flat = rearrange(images, "n c h w -> c (n h w)").double()
    mean, std = flat.mean(dim=1), flat.std(dim=1)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return tuple(mean.tolist()), tuple(std.tolist())
