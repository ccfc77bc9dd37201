"""BLM, the paper's binary decoder-only language model (Alg. 8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import LANGUAGE_CONFIGS, LanguageConfig
from .embedding import BinaryEmbedding
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
        kw = dict(binary=c.binary, normalize=c.normalize)
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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, seq)`` token ids -> ``(batch, seq, vocab_size)`` next-token logits."""
        return self.head(self.blocks(self.norm(self.embedding(tokens))))
