"""Data for binedu: offline defaults (the UCI digits shipped with binedu, Python's documentation text),
loaders for the paper's Food-101 and WikiText-103, tokenizers, batching, and an opt-in
download helper."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DataError
from .fetch import download
from .images import ImageData, image_data, load_image
from .text import TextData, text_data
from .tokenizers import CharTokenizer, Tokenizer, WordPieceTokenizer, load_tokenizer
from .workers import die_with_parent

__all__ = [
    "DataError",
    "ImageData",
    "TextData",
    "image_data",
    "text_data",
    "load_image",
    "Tokenizer",
    "CharTokenizer",
    "WordPieceTokenizer",
    "load_tokenizer",
    "loader",
    "download",
    "die_with_parent",
]


def loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    *,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader whose shuffling depends only on ``seed``: the same seed gives the
    same batches on every run. ``num_workers`` processes decode in parallel (Food-101's
    JPEGs) and stay alive across epochs, but never longer than this process
    (:func:`~binedu.data.workers.die_with_parent`); ``pin_memory`` (default: when a CUDA
    GPU is present) speeds up copies to the GPU."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
        worker_init_fn=die_with_parent if num_workers > 0 else None,
    )
