"""What BATL (Alg. 6) attends to, and what the paper's -1e-10 mask lets through.

The attention weights are read out of :func:`binedu.attention.causal_attention` itself
(not recomputed with a copy of its code): with ``V`` set to the identity, the weighted sum
of ``V`` *is* the weight matrix. So the maps drawn in the notebooks are exactly the
weights the model uses, masked the same way (``-inf``, or the paper's leaky ``-1e-10``).
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange, repeat
from torch import nn

from ..attention import BinaryMultiheadAttention, causal_attention

__all__ = ["attention_weights", "attention_maps", "future_influence"]


def attention_weights(q: torch.Tensor, k: torch.Tensor, num_heads: int, leaky: bool = False) -> torch.Tensor:
    """``softmax(mask(Q K^T / sqrt(head_dim)))`` of Alg. 6 (lines 8-18) for projected
    ``(batch, seq, dim)`` queries and keys: a ``(batch, heads, seq, seq)`` tensor whose
    row ``i`` is how much position ``i`` attends to each position ``j``."""
    if q.ndim != 3 or q.shape != k.shape:
        raise ValueError(f"q and k must both have shape (batch, seq, dim), got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[-1] % num_heads:
        raise ValueError(f"dim={q.shape[-1]} is not divisible by num_heads={num_heads}")
    batch, seq, _ = q.shape
    eye = repeat(torch.eye(seq, dtype=q.dtype, device=q.device), "t s -> b t (h s)", b=batch, h=num_heads)
    out = causal_attention(q, k, eye, num_heads, leaky)
    return rearrange(out, "b t (h s) -> b h t s", h=num_heads)


@torch.no_grad()
def attention_maps(model: nn.Module, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Run ``model`` on ``tokens`` and return the attention weights of each of its
    :class:`~binedu.BinaryMultiheadAttention` layers, in forward order: one
    ``(batch, heads, seq, seq)`` tensor per layer (each row sums to 1)."""
    layers = [m for m in model.modules() if isinstance(m, BinaryMultiheadAttention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BinaryMultiheadAttention layer")
    maps: dict[int, torch.Tensor] = {}

    def capture(index: int):
        def hook(layer: BinaryMultiheadAttention, args: tuple) -> None:
            x = args[0]
            maps[index] = attention_weights(layer.query(x), layer.key(x), layer.num_heads, layer.leaky_mask)

        return hook

    handles = [layer.register_forward_pre_hook(capture(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        model(tokens)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [maps[i] for i in sorted(maps)]


@torch.no_grad()
def future_influence(
    model: nn.Module, tokens: torch.Tensor, position: int = -1, replacement: int | None = None
) -> torch.Tensor:
    """How much the token at ``position`` changes the model's outputs at every position.

    The token at ``position`` of a ``(seq,)`` id tensor is replaced (by ``replacement``,
    default the next id modulo the vocabulary) and the largest absolute change of the
    logits is returned per position, a ``(seq,)`` tensor. In a causal model the outputs
    *before* ``position`` cannot change (exact zeros); with the paper's leaky mask they do:
    an output that should predict a token has seen it.
    """
    if tokens.ndim != 1 or tokens.numel() == 0:
        raise ValueError(f"tokens must be a non-empty 1-D tensor of ids, got shape {tuple(tokens.shape)}")
    seq = tokens.numel()
    if not -seq <= position < seq:
        raise ValueError(f"position {position} is outside a sequence of {seq} tokens")
    config: Any = model.config  # LanguageModel's, or a packed one's
    vocab = config.vocab_size
    changed = tokens.clone()
    new = (int(tokens[position]) + 1) % vocab if replacement is None else replacement
    if new == int(tokens[position]):
        raise ValueError(f"replacement {new} is the token already at position {position}: nothing would change")
    changed[position] = new
    was_training = model.training
    model.eval()
    try:
        before, after = model(tokens[None])[0], model(changed[None])[0]
    finally:
        model.train(was_training)
    return (after - before).abs().amax(dim=-1)
