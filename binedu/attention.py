"""BATL, binary multi-head causal self-attention (Alg. 6)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .kv_cache import LayerCache
from .linear import BinaryLinear

__all__ = ["BinaryMultiheadAttention", "causal_attention", "PAPER_MASK_VALUE"]

PAPER_MASK_VALUE = -1.0e-10
"""The fill value of Alg. 6, line 17. It is ~0, so it does NOT hide future tokens."""


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, leaky: bool = False
) -> torch.Tensor:
    """Alg. 6 lines 8-20 on projected ``(batch, seq, dim)`` tensors.

    Split into heads, ``softmax(Q K^T / sqrt(head_dim))`` with a causal mask, weight
    ``V``, merge the heads. Future positions get ``-inf`` so their weight is exactly 0;
    ``leaky=True`` reproduces the paper's line 17 (fill with -1e-10), which lets each
    position attend to the tokens it has to predict: kept only for demonstrations.

    ``k`` and ``v`` may hold more positions than ``q`` (decoding with a
    :class:`~binedu.kv_cache.KVCache`): the queries are then the last positions.

    Without gradients (inference, generation) the causal case runs as one fused
    ``torch.nn.functional.scaled_dot_product_attention`` call (same result up to float
    rounding), with no mask at all for a single query, which sees every cached key.
    """
    q, k, v = (rearrange(t, "b t (h d) -> b h t d", h=num_heads) for t in (q, k, v))
    tq, tk = q.shape[-2], k.shape[-2]
    if not leaky and not torch.is_grad_enabled():  # inference: the same softmax(Q K^T / sqrt(d)) V, fused
        # one query (decoding with a cache) sees every key: no mask at all
        mask = None if tq == 1 else torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril(tk - tq)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return rearrange(out, "b h t d -> b t (h d)")
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    # query i sits at position tk - tq + i; keys after it are the future
    future = torch.ones(tq, tk, dtype=torch.bool, device=scores.device).triu(tk - tq + 1)
    fill = PAPER_MASK_VALUE if leaky else float("-inf")
    weights = torch.softmax(scores.masked_fill(future, fill), dim=-1)
    out = torch.einsum("bhqk,bhkd->bhqd", weights, v)
    return rearrange(out, "b h t d -> b t (h d)")


class BinaryMultiheadAttention(nn.Module):
    """BATL (Alg. 6): causal multi-head self-attention built from four BNFCLs.

    ``Q, K, V`` are three ``BinaryLinear(embed_dim, embed_dim)`` projections (each with
    its normalization), attention runs per head of ``embed_dim / num_heads`` features,
    and an output ``BinaryLinear(embed_dim, embed_dim)`` follows. The causal mask uses
    ``-inf`` (see :func:`causal_attention` for the paper's leaky ``-1e-10``).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        binary: bool = True,
        normalize: bool = True,
        affine: bool | None = None,
        leaky_mask: bool = False,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.leaky_mask = leaky_mask
        kw: dict[str, Any] = dict(binary=binary, normalize=normalize, affine=affine)
        self.query = BinaryLinear(embed_dim, embed_dim, **kw)
        self.key = BinaryLinear(embed_dim, embed_dim, **kw)
        self.value = BinaryLinear(embed_dim, embed_dim, **kw)
        self.out = BinaryLinear(embed_dim, embed_dim, **kw)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        """``x`` holds the new positions; with a ``cache`` the keys and values of the
        earlier positions come from it, and the new ones are appended to it."""
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"BinaryMultiheadAttention expects (batch, seq, {self.embed_dim}) inputs, "
                f"got shape {tuple(x.shape)}"
            )
        keys, values = self.key(x), self.value(x)
        if cache is not None:
            if self.leaky_mask:
                raise ValueError(
                    "a KV cache cannot be used with the leaky mask: it lets each position see later "
                    "ones, which are not computed yet when decoding one token at a time"
                )
            keys, values = cache.extend(keys, values)
        heads = causal_attention(self.query(x), keys, values, self.num_heads, self.leaky_mask)
        return self.out(heads)
