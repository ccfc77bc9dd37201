"""Text generation with a trained language model (BLM, Alg. 8), training or packed.

Autoregressive sampling: the model reads the last ``max_len`` tokens, its logits at the
last position are divided by the temperature, cut to the ``top_k`` most likely tokens,
and one token is drawn; temperature 0 takes the most likely token (greedy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .metrics import task_of

__all__ = ["generate", "next_token"]


def next_token(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, generator: torch.Generator | None = None
) -> int:
    """Pick one token id from last-position ``logits`` ``(vocab,)``: greedy when
    ``temperature == 0``, else a draw from ``softmax(logits / temperature)`` restricted
    to the ``top_k`` largest logits."""
    if temperature == 0:
        return int(logits.argmax())
    scaled = logits.detach().float().cpu() / temperature
    if top_k is not None and top_k < scaled.numel():
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _prompt_ids(prompt: str | Sequence[int] | torch.Tensor, tokenizer: Any) -> list[int]:
    if isinstance(prompt, str):
        if tokenizer is None:
            raise ValueError("a text prompt needs a tokenizer (or pass the prompt as token ids)")
        # binedu's examples start with BOS: so does a text prompt
        bos = getattr(tokenizer, "bos_id", None)
        return ([] if bos is None else [bos]) + list(tokenizer.encode(prompt))
    ids = prompt.tolist() if isinstance(prompt, torch.Tensor) else list(prompt)
    if any(not isinstance(i, int) or isinstance(i, bool) for i in ids) or (
        isinstance(prompt, torch.Tensor) and prompt.ndim != 1
    ):
        raise ValueError("token-id prompts must be a flat sequence (or 1-D tensor) of integers")
    return ids


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: str | Sequence[int] | torch.Tensor,
    tokenizer: Any = None,
    max_new_tokens: int = 50,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> str | torch.Tensor:
    """Continue ``prompt`` with up to ``max_new_tokens`` tokens.

    ``prompt`` is text (encoded with ``tokenizer``, after its BOS id as in the training
    examples) or token ids. Generation stops early at the tokenizer's EOS id, if it has
    one. Returns the prompt with its continuation: text (``tokenizer.decode``) for a text
    prompt, else a 1-D LongTensor of ids. The context is cropped to ``model.config.max_len`` tokens.
    ``temperature=0`` is greedy; ``top_k`` keeps the k most likely tokens; ``seed`` makes
    sampling reproducible without touching the global random state. Works for a
    training :class:`~binedu.LanguageModel` and for a packed one.
    """
    if task_of(model) != "language":
        raise ValueError(f"generate needs a language model, got {type(model).__name__}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ids = _prompt_ids(prompt, tokenizer)
    if not ids:
        raise ValueError("the prompt is empty: give at least one token")
    max_len = model.config.max_len
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    eos = getattr(tokenizer, "eos_id", None)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            context = torch.tensor([ids[-max_len:]], dtype=torch.long, device=device)
            logits = model(context)[0, -1]
            ids.append(next_token(logits, temperature, top_k, generator))
            if ids[-1] == eos:
                break
    finally:
        model.train(was_training)
    if isinstance(prompt, str):
        return tokenizer.decode(ids)
    return torch.tensor(ids, dtype=torch.long)
