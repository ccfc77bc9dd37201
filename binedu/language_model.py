"""BLM, the paper's binary decoder-only language model (Alg. 8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import LANGUAGE_CONFIGS, LanguageConfig
from .embedding import BinaryEmbedding
from .kv_cache import KVCache
from .linear import BinaryLinear
from .model import ConfigModel
from .normalize import make_norm
from .transformer import BinaryTransformerBlock

__all__ = ["LanguageModel"]


class LanguageModel(ConfigModel):
    """BLM (Alg. 8)::

        x = Normalize(BEMBL(tokens))
        x = BTFB(x)  (num_blocks times)
        logits = BNFCL(vocab)(BNFCL(mlp_k, gelu)(... BNFCL(mlp_0, gelu)(x)))

    The head runs at every position: ``logits[:, t]`` predicts token ``t + 1``, and the
    causal mask makes it depend on tokens ``0..t`` only. ``from_config("paper-small")``
    and ``"paper-large"`` are Table 3 (154.4 M and 332.8 M parameters). With
    ``binary=False`` it is the float32 counterpart with learnable normalization.
    """

    config_class = LanguageConfig
    configs = LANGUAGE_CONFIGS
    config: LanguageConfig

    def __init__(self, config: LanguageConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        c = self.config
        kw: dict[str, Any] = dict(binary=c.binary, normalize=c.normalize)
        self.embedding = BinaryEmbedding(c.vocab_size, c.embed_dim, c.max_len, **kw)
        self.norm = make_norm(c.embed_dim, affine=None, **kw)
        self.blocks = nn.Sequential(
            *(
                BinaryTransformerBlock(c.embed_dim, c.num_heads, c.ff_dim, leaky_mask=c.leaky_mask, **kw)
                for _ in range(c.num_blocks)
            )
        )
        head: list[nn.Module] = []
        width = c.embed_dim
        for units in c.mlp_units:
            head.append(BinaryLinear(width, units, "gelu", **kw))
            width = units
        head.append(BinaryLinear(width, c.vocab_size, **kw))
        self.head = nn.Sequential(*head)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None, *, last_only: bool = False) -> torch.Tensor:
        """``(batch, seq)`` token ids -> ``(batch, seq, vocab_size)`` next-token logits.

        With a :class:`~binedu.kv_cache.KVCache`, ``tokens`` continue the positions already
        in it (the first call is the prefill, then one token at a time) and the cache is
        extended: the logits equal those of the whole sequence without a cache.
        ``last_only=True`` runs the head on the last position only (``seq`` becomes 1):
        all that generation needs.
        """
        if cache is not None and not self.supports_cache():
            raise ValueError("this model uses the leaky mask (Alg. 6, line 17): a KV cache cannot reproduce it")
        start = 0 if cache is None else cache.length
        x = self.norm(self.embedding(tokens, start))
        if cache is None:
            x = self.blocks(x)
        else:
            for index, block in enumerate(self.blocks):
                x = block(x, cache.layer(index))
            cache.length += tokens.shape[1]
        return self.head(x[:, -1:] if last_only else x)

    def supports_cache(self) -> bool:
        """Whether cached decoding equals recomputation: not while an attention layer uses
        the paper's leaky mask, which lets a position see the later ones."""
        def leaky(module: nn.Module) -> bool:
            if type(module) is BinaryTransformerBlock:  # its one attention layer: one attribute to read
                return module.attention.leaky_mask
            return any(getattr(m, "leaky_mask", False) for m in module.modules())

        # walked block by block: this runs at every decoding step, and a walk over all of
        # a paper-size model's modules took 0.3 ms, 5 % of a packed step
        return not any(leaky(block) for block in self.blocks) and not any(
            leaky(child) for name, child in self.named_children() if name != "blocks"
        )
