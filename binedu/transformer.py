"""BTFB, the binary transformer block (Alg. 5), post-norm."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .attention import BinaryMultiheadAttention
from .kv_cache import LayerCache
from .linear import BinaryLinear
from .normalize import make_norm

__all__ = ["BinaryTransformerBlock"]


class BinaryTransformerBlock(nn.Module):
    """BTFB (Alg. 5)::

        h   = Normalize(x + BATL(x))
        f   = BNFCL(ff_dim, gelu)(h)
        f   = BNFCL(embed_dim)(f)
        out = Normalize(h + f)

    ``ff_dim`` defaults to ``2 * embed_dim`` as in the paper's language model.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        ff_dim: int | None = None,
        *,
        binary: bool = True,
        normalize: bool = True,
        affine: bool | None = None,
        leaky_mask: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.ff_dim = ff_dim or 2 * embed_dim
        kw: dict[str, Any] = dict(binary=binary, normalize=normalize, affine=affine)
        self.attention = BinaryMultiheadAttention(embed_dim, num_heads, leaky_mask=leaky_mask, **kw)
        self.ff1 = BinaryLinear(embed_dim, self.ff_dim, "gelu", **kw)
        self.ff2 = BinaryLinear(self.ff_dim, embed_dim, **kw)
        self.norm1 = make_norm(embed_dim, **kw)
        self.norm2 = make_norm(embed_dim, **kw)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        """``x`` holds the new positions; ``cache`` the attention's keys and values of the
        earlier ones (see :class:`~binedu.kv_cache.KVCache`)."""
        h = self.norm1(x + self.attention(x, cache))
        return self.norm2(h + self.ff2(self.ff1(h)))
