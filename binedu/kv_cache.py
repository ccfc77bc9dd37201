"""The key/value cache of a language model: decode one new token at a time.

Generating token ``t + 1`` needs the keys and values of positions ``0..t`` in every
attention layer (Alg. 6). Without a cache the model recomputes them all at every step;
with one it computes them once and appends the newest position. This is exact for the
paper's model: the causal mask hides later positions (``-inf``), and every other
operation (the BNFCLs, Normalize, the residual sums of Alg. 5) works on each position on
its own, so position ``t``'s keys and values never change once computed. The paper's
leaky mask (Alg. 6, line 17) lets a position see later ones, so a cache cannot be used
with it.
"""

from __future__ import annotations

import torch

__all__ = ["KVCache", "LayerCache"]


class LayerCache:
    """Keys and values of one attention layer, ``(batch, positions, embed_dim)`` each
    (heads not yet split), for the positions seen so far."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys and values; return all of them."""
        if self.keys is not None and self.values is not None:  # set together
            keys = torch.cat([self.keys, keys], dim=1)
            values = torch.cat([self.values, values], dim=1)
        self.keys, self.values = keys, values
        return keys, values


class KVCache:
    """Decoding state of a :class:`~binedu.LanguageModel` (training, float32 or packed):
    one :class:`LayerCache` per transformer block and ``length``, the number of positions
    seen, which is also the position of the next token.

    Pass the same cache to successive calls: ``model(prompt, cache=cache)`` (the prefill),
    then ``model(next_token, cache=cache)`` for each new token.
    """

    def __init__(self) -> None:
        self.layers: list[LayerCache] = []
        self.length = 0

    def layer(self, index: int) -> LayerCache:
        """The cache of block ``index`` (created empty on first use)."""
        while len(self.layers) <= index:
            self.layers.append(LayerCache())
        return self.layers[index]

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        return sum(t.numel() * t.element_size() for c in self.layers for t in (c.keys, c.values) if t is not None)
