"""A harder offline image task built from the shipped digits: ``"digits-hard"``.

The 8x8 digits are saturated (a float32 CNN reaches ~0.99), so a binary-vs-float32 gap
cannot show there. Here each digit is upsampled to 20x20, placed on a 28x28 canvas (the
size of MNIST) and randomly rotated (up to ±30°), rescaled (0.8-1.2x) and shifted (up to
±4 pixels), then Gaussian noise (std 0.25 on [0, 1] pixels) is added: the position,
pose and noise change from image to image, so the CNN's depth and pooling matter.

Splits come from the 1,797 source digits first (stratified, seeded): test, validation and
train hold different handwritten digits, never two distortions of the same one. Train
holds ``copies`` distortions of each of its digits; validation and test one each. Every
split also exists for the plain 8x8 digits (``hard=False``), so that a benchmark can
choose the epoch on validation and report test on both tasks.

**The model it needs: ``"tiny-28"``, not ``"tiny"``** (a lesson in reading a flat curve).
The ``"tiny"`` BCVNN made for the 8x8 digits stays at chance here, binary and float32
alike, although a float MLP on the 784 pixels learns the task. Two things, each enough
to stop it (checked one at a time, 1 thread, a few hundred Adam steps):

- *Receptive field before the global average pool.* ``"tiny"`` pools twice (28 -> 7)
  and then averages 49 positions whose features each see only part of a digit that
  moves by ±4 pixels and changes size. Even a plain PyTorch CNN (no Normalize) with that
  layout stays at chance for 300 steps; the same CNN flattening the 7x7 map, or with two
  more pooled blocks (28 -> 1, the last features see the whole canvas), reaches 0.6-0.7.
- *Per-pixel channel normalization erases amplitude.* ``norm_mode="channels"`` scales
  the feature vector of every pixel to the same size, so the noisy background, 3/4 of
  the canvas, weighs as much as the strokes (the first layer's feature size is about
  equal on both; over C,H,W it is 8-60x larger on the strokes). On 8x8 digits there is
  hardly any background, so it did not matter. With the deeper layout but per-pixel
  normalization, binedu's model still stays at chance; with ``norm_mode="chw"`` both the
  binary and the float32 model leave it within 300 steps.

So ``"tiny-28"`` (:data:`binedu.config.IMAGE_CONFIGS`) has five blocks (16,16 / 32,32 /
64,64 / 64,64 / 64, pooled 28 -> 14 -> 7 -> 3 -> 1) and normalizes convolutions over
C,H,W. It is not the paper's architecture: Alg. 7's network pools 4 times too, on
256x256 photographs where the object fills the frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from .digits import load_digits
from .image_sets import MAX_IMAGE_SIZE, ImageData, TensorImageDataset, _channel_stats
from .split import balanced_subset, check_fraction, check_limit, stratified_split

__all__ = ["digit_splits", "distort", "HARD_SIZE"]

HARD_SIZE = 28  # canvas side, as MNIST
DIGIT_SIZE = 20  # the 8x8 digit upsampled to this before it is placed on the canvas
MAX_ROTATION = 30.0  # degrees
SCALES = (0.8, 1.2)
MAX_SHIFT = 4  # pixels
NOISE = 0.25  # std of the Gaussian noise on [0, 1] pixels


def distort(images: torch.Tensor, generator: torch.Generator, size: int = HARD_SIZE) -> torch.Tensor:
    """``(N, 1, 8, 8)`` digits in [0, 1] -> ``(N, 1, size, size)`` randomly rotated, scaled,
    shifted and noisy images (see the module docstring), drawn from ``generator``."""
    n = len(images)
    big = F.interpolate(images, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", align_corners=False)
    pad = (size - DIGIT_SIZE) // 2
    canvas = F.pad(big, (pad, size - DIGIT_SIZE - pad, pad, size - DIGIT_SIZE - pad))
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION)
    scale = SCALES[0] + torch.rand(n, generator=generator) * (SCALES[1] - SCALES[0])
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * MAX_SHIFT / size)  # grid units: 2 = the side
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(canvas.shape), align_corners=False)
    out = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + NOISE * torch.randn(out.shape, generator=generator)


def digit_splits(
    hard: bool = True,
    image_size: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    copies: int = 3,
    limit: int | None = None,
) -> ImageData:
    """Train, validation and test splits of the digits (``ImageData.test`` is set).

    ``hard=True``: the ``"digits-hard"`` task, ``image_size`` (default 28) pixels,
    ``copies`` distortions of each training digit. ``hard=False``: the plain 8x8 digits
    (``image_size`` resamples them). Standardized with the training split's mean and std.
    ``limit`` keeps at most that many source digits per split, spread over the classes.
    """
    check_fraction(val_fraction)
    check_fraction(test_fraction)
    check_limit(limit)
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1, got {val_fraction} + {test_fraction}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    size = (HARD_SIZE if hard else 8) if image_size is None else image_size
    low = DIGIT_SIZE if hard else 1
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer from {low} to {MAX_IMAGE_SIZE}, got {image_size!r}")
    pixels, target = load_digits()
    images = rearrange(torch.tensor(pixels, dtype=torch.float32) / 16.0, "n h w -> n 1 h w")
    labels = torch.tensor(target, dtype=torch.int64)
    rest, test = stratified_split(target, test_fraction, seed)
    train, val = stratified_split(target[rest], val_fraction / (1 - test_fraction), seed + 1)
    train, val = rest[train], rest[val]
    splits = [balanced_subset(idx, target, limit, seed + k) for k, idx in enumerate((train, val, test))]
    made = []
    for k, idx in enumerate(splits):
        x, y = images[idx], labels[idx]
        if hard:
            g = torch.Generator().manual_seed(1000 * seed + k)
            reps = copies if k == 0 else 1
            x = torch.cat([distort(x, g, size) for _ in range(reps)])
            y = y.repeat(reps)
        elif size != 8:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
        made.append((x, y))
    mean, std = _channel_stats(made[0][0])
    m, s = torch.tensor(mean).reshape(-1, 1, 1).float(), torch.tensor(std).reshape(-1, 1, 1).float()
    sets = [TensorImageDataset((x - m) / s, y) for x, y in made]
    return ImageData(
        train=sets[0],
        val=sets[1],
        test=sets[2],
        num_classes=10,
        in_channels=1,
        image_size=size,
        class_names=[str(d) for d in range(10)],
        name="digits-hard" if hard else "digits",
        mean=mean,
        std=std,
    )
