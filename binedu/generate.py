"""Text generation with a trained language model (BLM, Alg. 8), training or packed.

Autoregressive sampling: the model reads the last ``max_len`` tokens, its logits at the
last position are divided by the temperature, cut to the ``top_k`` most likely tokens,
and one token is drawn; temperature 0 takes the most likely token (greedy).

By default a :class:`~binedu.kv_cache.KVCache` keeps the keys and values of the tokens
already read, so each step runs the model on one new token (see :mod:`binedu.kv_cache`).
``use_cache=False`` recomputes the whole context at every step, as the model is trained;
both give the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .kv_cache import KVCache
from .metrics import task_of

__all__ = ["generate", "next_token", "decode_speed"]


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
    use_cache: bool = True,
) -> str | torch.Tensor:
    """Continue ``prompt`` with up to ``max_new_tokens`` tokens.

    ``prompt`` is text (encoded with ``tokenizer``, after its BOS id as in the training
    examples) or token ids. Generation stops early at the tokenizer's EOS id, if it has
    one. Returns the prompt with its continuation: text (``tokenizer.decode``) for a text
    prompt, else a 1-D LongTensor of ids. The context is cropped to ``model.config.max_len`` tokens.
    ``temperature=0`` is greedy; ``top_k`` keeps the k most likely tokens; ``seed`` makes
    sampling reproducible without touching the global random state. Works for a
    training :class:`~binedu.LanguageModel` and for a packed one.

    ``use_cache=True`` (the default) reads the prompt once (the prefill) and then one new
    token per step, with a :class:`~binedu.kv_cache.KVCache`. When the context outgrows
    ``max_len``, the uncached model sees the last ``max_len`` tokens at positions
    ``0 .. max_len - 1``, so every position shifts by one at each step and no cached key
    stays valid: the cache is then rebuilt from the cropped window at every step (same
    tokens as without a cache, at the cost of a full window per step). Models without a
    cache (the leaky mask, or any model whose ``supports_cache()`` is missing or false)
    always run uncached.
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
    config: Any = model.config  # duck-typed: any model whose config.kind is "language" (task_of)
    max_len = config.max_len
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    eos = getattr(tokenizer, "eos_id", None)
    was_training = model.training
    model.eval()
    cached = use_cache and getattr(model, "supports_cache", lambda: False)()
    cache = None
    try:
        for _ in range(max_new_tokens):
            if not cached:
                logits = model(torch.tensor([ids[-max_len:]], dtype=torch.long, device=device))[0, -1]
            else:
                if cache is None or cache.length >= max_len:  # prefill, or the window slid: rebuild
                    cache, context = KVCache(), ids[-max_len:]
                else:
                    context = ids[-1:]  # the earlier tokens are in the cache
                tokens = torch.tensor([context], dtype=torch.long, device=device)
                logits = model(tokens, cache=cache, last_only=True)[0, -1]
            ids.append(next_token(logits, temperature, top_k, generator))
            if ids[-1] == eos:
                break
    finally:
        model.train(was_training)
    if isinstance(prompt, str):
        return tokenizer.decode(ids)
    return torch.tensor(ids, dtype=torch.long)


def decode_speed(
    models: Mapping[str, nn.Module],
    prompt: Sequence[int] | torch.Tensor,
    new_tokens: int = 16,
    repeats: int = 2,
    use_cache: bool = True,
) -> dict[str, float]:
    """Decoding speed of each model, in generated tokens per second, from a short greedy run.

    The prefill (reading the prompt, up to the first new token) is timed on its own and
    subtracted: ``(new_tokens - 1) / (time(new_tokens) - time(1))``, the best of
    ``repeats`` runs each. Timings depend on the machine and on what else runs on it.
    """
    if new_tokens < 2:
        raise ValueError(f"new_tokens must be >= 2 (the first token is the prefill), got {new_tokens}")

    def best(model: nn.Module, count: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            generate(model, prompt, max_new_tokens=count, temperature=0, use_cache=use_cache)
            times.append(time.perf_counter() - start)
        return min(times)

    speeds = {}
    for name, model in models.items():
        best(model, 2)  # warm-up
        decode = best(model, new_tokens) - best(model, 1)
        speeds[name] = (new_tokens - 1) / max(decode, 1e-9)
    return speeds
