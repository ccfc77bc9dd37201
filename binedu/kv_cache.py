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

__all__ = ["KVCache", "LayerCache", "CHUNK"]


CHUNK = 16
"""Positions a :class:`LayerCache` grows by at a time."""


class LayerCache:
    """Keys and values of one attention layer, ``(batch, positions, embed_dim)`` each
    (heads not yet split), for the positions seen so far.

    They live in buffers that grow :data:`CHUNK` positions at a time: appending one
    decoded position writes it in place, instead of copying every earlier one into a
    freshly allocated tensor at every step (the buffers hold at most ``CHUNK - 1``
    positions more than seen)."""

    def __init__(self) -> None:
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self.length = 0

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, : self.length]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, : self.length]

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys and values; return all of them."""
        new = keys.shape[1]
        held = self._keys
        if held is None or self.length + new > held.shape[1] or held.shape[::2] != keys.shape[::2] or (
            held.dtype != keys.dtype or held.device != keys.device
        ):
            capacity = -(-(self.length + new) // CHUNK) * CHUNK
            grown_keys = keys.new_empty(keys.shape[0], capacity, keys.shape[2])
            grown_values = values.new_empty(values.shape[0], capacity, values.shape[2])
            if held is not None and self._values is not None:
                grown_keys[:, : self.length] = held[:, : self.length]
                grown_values[:, : self.length] = self._values[:, : self.length]
            self._keys, self._values = grown_keys, grown_values
        assert self._keys is not None and self._values is not None
        self._keys[:, self.length : self.length + new] = keys
        self._values[:, self.length : self.length + new] = values
        self.length += new
        return self._keys[:, : self.length], self._values[:, : self.length]


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
        """Bytes of the cached keys and values (the positions seen)."""
        return sum(t.numel() * t.element_size() for c in self.layers for t in (c.keys, c.values) if t is not None)
