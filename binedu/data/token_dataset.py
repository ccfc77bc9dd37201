"""The examples of a tokenized corpus: one flat array of ids plus offsets.

Shared by :mod:`binedu.data.text`, which builds them, and :mod:`binedu.data.token_cache`,
which stores and memory-maps them (its own module, so neither imports the other's
user).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["TokenDataset"]


class TokenDataset(Dataset):
    """Examples stored as one flat array of ids plus offsets (compact even for
    WikiText-103); item ``i`` is a LongTensor of ``length`` ids padded with ``pad_id``.

    Both arrays are checked when the dataset is made (they may come from a file, the
    token cache): one-dimensional integer arrays, offsets from 0 to ``len(ids)`` that
    never decrease, no example longer than ``length`` and, given ``vocab_size``, every id
    in ``[0, vocab_size)``, so a bad array fails here with a ``ValueError`` rather than
    mid-training."""

    def __init__(
        self, ids: np.ndarray, offsets: np.ndarray, length: int, pad_id: int = 0, vocab_size: int | None = None
    ) -> None:
        for name, array in (("ids", ids), ("offsets", offsets)):
            if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype.kind not in "iu":
                dtype = getattr(array, "dtype", type(array).__name__)
                raise ValueError(f"{name} must be a one-dimensional array of integers, got {dtype}")
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError("offsets must start at 0 and end at len(ids)")
        steps = np.diff(offsets)
        if len(steps) and int(steps.min()) < 0:
            raise ValueError("offsets must never decrease")
        if len(steps) and int(steps.max()) > length:
            raise ValueError(f"an example is longer than length={length}")
        if vocab_size is not None and len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise ValueError(
                f"ids must lie in [0, {vocab_size}) (the vocabulary), found {int(ids.min())}..{int(ids.max())}"
            )
        self.ids, self.offsets, self.length, self.pad_id = ids, offsets, length, pad_id

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"example {i} out of range for {len(self)} examples")
        i %= len(self)
        piece = torch.from_numpy(self.ids[self.offsets[i] : self.offsets[i + 1]].astype(np.int64))
        seq = torch.full((self.length,), self.pad_id, dtype=torch.int64)
        seq[: len(piece)] = piece
        return seq

    @property
    def num_tokens(self) -> int:
        """Ids that are not padding, BOS included."""
        return len(self.ids)
