"""BEMBL, the binary embedding layer (Alg. 4): token embedding + position embedding."""

from __future__ import annotations

import torch
from torch import nn

from .base import BinaryModule
from .normalize import make_norm

__all__ = ["BinaryEmbedding", "check_tokens"]


def check_tokens(tokens: torch.Tensor, vocab_size: int, max_len: int, start: int = 0) -> None:
    """Raise a ``ValueError`` naming the problem unless ``tokens`` is a ``(batch, seq)``
    integer tensor with ``start + seq <= max_len`` and ids in ``[0, vocab_size)``
    (``start`` is the position of the first token, past the ones in a KV cache)."""
    if not isinstance(tokens, torch.Tensor):
        raise ValueError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
    if tokens.dtype not in (torch.int64, torch.int32):  # uint8 would index as a mask, int16 not at all
        raise ValueError(f"tokens must be an integer tensor of int64 (or int32) ids, got dtype {tokens.dtype}: use tokens.long()")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (batch, seq), got shape {tuple(tokens.shape)}")
    if tokens.shape[1] > max_len:
        raise ValueError(f"sequence length {tokens.shape[1]} is longer than max_len={max_len}")
    if start + tokens.shape[1] > max_len:
        raise ValueError(
            f"positions {start}..{start + tokens.shape[1] - 1} go past max_len={max_len}: the cached "
            "context is full (start a new cache on the last max_len tokens)"
        )
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(
            f"token id out of range: ids must lie in [0, {vocab_size}), "
            f"got min {int(tokens.min())} and max {int(tokens.max())}"
        )


class BinaryEmbedding(BinaryModule):
    """BEMBL (Alg. 4): ``Normalize(onehot(tok) W + b) + Normalize(onehot(pos) P + c)``.

    Both halves are BNFCLs applied to one-hot vectors, with a linear activation in the
    paper (``activation`` applies another one to each half). A one-hot
    row times a 0/1 matrix picks one row, so the layer looks rows up instead of
    multiplying (identical result, normalization included). ``weight`` is
    ``(num_embeddings, embedding_dim)`` like :class:`torch.nn.Embedding`, ``bias`` has
    ``embedding_dim`` entries; ``position_weight`` ``(max_len, embedding_dim)`` and
    ``position_bias`` are the position half. Each of the four tensors is quantized on
    its own (Eq. 1).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_len: int,
        activation: str | None = None,
        *,
        binary: bool = True,
        normalize: bool = True,
        affine: bool | None = None,
    ) -> None:
        super().__init__(embedding_dim, activation, binary=binary, normalize=normalize, affine=affine)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
        self.bias = nn.Parameter(torch.zeros(embedding_dim))
        self.position_weight = nn.Parameter(torch.empty(max_len, embedding_dim))
        self.position_bias = nn.Parameter(torch.zeros(embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        nn.init.xavier_uniform_(self.position_weight)
        self.position_norm = make_norm(embedding_dim, binary=binary, normalize=normalize, affine=affine)

    def forward(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``(batch, seq)`` ids at positions ``start .. start + seq - 1`` -> ``(batch, seq, dim)``."""
        check_tokens(tokens, self.num_embeddings, self.max_len, start)
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        tok = self.finish(self.q(self.weight)[tokens] + self.q(self.bias))
        pos = self._act(self.position_norm(self.q(self.position_weight)[positions] + self.q(self.position_bias)))
        return tok + pos

    def extra_repr(self) -> str:
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, max_len={self.max_len}, "
            f"activation={self.activation!r}, binary={self.binary}"
        )
