"""Tiny data sets and models shared by the training, resume, CLI and generation tests."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, TensorDataset

from binedu import ImageClassifier, LanguageModel

TINY_LM = dict(vocab_size=12, max_len=8, embed_dim=16, num_heads=2, num_blocks=1, mlp_units=(16,))


def image_set(n: int = 60, seed: int = 0) -> TensorDataset:
    """8x8 one-channel images whose class (0..9) is where a bright square sits."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    for i, c in enumerate(labels.tolist()):
        r, col = divmod(c, 4)
        images[i, 0, 2 * r : 2 * r + 2, 2 * col : 2 * col + 2] += 1.0
    return TensorDataset(images, labels)


class Sequences(Dataset):
    """Items as binedu.data gives them: ``(length + 1,)`` id tensors padded with 0."""

    def __init__(self, seqs: list[list[int]], length: int) -> None:
        self.items = [torch.tensor(s + [0] * (length + 1 - len(s))) for s in seqs]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.items[i]


def counting_sequences(n: int = 24, length: int = 8, seed: int = 0) -> Sequences:
    """Runs of ids counting up modulo 11 (ids 1..11; 0 is padding), of varied lengths."""
    g = torch.Generator().manual_seed(seed)
    seqs = []
    for _ in range(n):
        start = int(torch.randint(1, 12, (1,), generator=g))
        size = int(torch.randint(3, length + 2, (1,), generator=g))
        seqs.append([(start + j - 1) % 11 + 1 for j in range(size)])
    return Sequences(seqs, length)


def image_model(seed: int = 0, **overrides) -> ImageClassifier:
    torch.manual_seed(seed)
    return ImageClassifier.from_config("tiny", **overrides)


def language_model(seed: int = 0, **overrides) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel.from_config("tiny", **(TINY_LM | overrides))


class Crashing(torch.utils.data.Dataset):
    """``data`` that fails after ``after`` item reads, like a run killed mid-epoch."""

    def __init__(self, data, after: int) -> None:
        self.data, self.left = data, after

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("killed")
        return self.data[i]


class Poisoned(Crashing):
    """Images that turn NaN after ``after`` item reads (a corrupt file mid-epoch)."""

    def __getitem__(self, i):
        self.left -= 1
        image, label = self.data[i]
        return (image * float("nan") if self.left < 0 else image), label
