"""KV cache (binedu.kv_cache) and the eval-time bit cache of the latent model (BinaryModule.q)."""

from __future__ import annotations

import pytest
import torch
from helpers import randomize
from hypothesis import given, settings
from hypothesis import strategies as st

import binedu.base as base_module
from binedu import BinaryLinear, LanguageModel, pack_model
from binedu.generate import decode_speed, generate
from binedu.kv_cache import KVCache

SMALL = dict(vocab_size=32, max_len=12, embed_dim=16, num_heads=2, num_blocks=2, mlp_units=(24,))


def small_models() -> dict[str, torch.nn.Module]:
    binary = randomize(LanguageModel.from_config("tiny", **SMALL), seed=1)
    return {
        "binary": binary,
        "packed": pack_model(binary),
        "float32": randomize(LanguageModel.from_config("tiny", binary=False, **SMALL), seed=2),
    }


MODELS = small_models()


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(sorted(MODELS)),
    cuts=st.lists(st.integers(1, 11), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_cached_logits_equal_the_whole_sequence(kind, cuts, seed):
    """Feeding a sequence in pieces through a cache gives the logits of one full pass."""
    model = MODELS[kind]
    tokens = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(seed))
    bounds = [0, *sorted(set(cuts)), 12]
    cache = KVCache()
    with torch.no_grad():
        full = model(tokens)
        pieces = [model(tokens[:, a:b], cache=cache) for a, b in zip(bounds, bounds[1:], strict=False)]
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-4, atol=1e-4)
    assert cache.length == 12 and len(cache.layers) == 2
    assert cache.layers[0].keys.shape == (2, 12, 16) and cache.nbytes() == 2 * 2 * 2 * 12 * 16 * 4


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("prompt_len", [1, 5, 20])  # 20 > max_len = 12: the window slides from the start
def test_cached_and_uncached_greedy_decoding_give_the_same_tokens(kind, prompt_len):
    model = MODELS[kind]
    prompt = torch.randint(0, 32, (prompt_len,), generator=torch.Generator().manual_seed(prompt_len)).tolist()
    cached = generate(model, prompt, max_new_tokens=15, temperature=0)
    uncached = generate(model, prompt, max_new_tokens=15, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached)
    assert len(cached) == prompt_len + 15


def test_sampling_with_a_seed_is_the_same_with_and_without_the_cache():
    model = MODELS["packed"]
    a = generate(model, [1, 2, 3], max_new_tokens=14, seed=3, top_k=5)
    b = generate(model, [1, 2, 3], max_new_tokens=14, seed=3, top_k=5, use_cache=False)
    assert torch.equal(a, b)


class Counting(torch.nn.Module):
    """Wraps a language model and records the length of every input it is given."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model, self.config, self.lengths = model, model.config, []

    def supports_cache(self) -> bool:
        return self.model.supports_cache()

    def forward(self, tokens, cache=None, *, last_only=False):
        self.lengths.append(tokens.shape[1])
        return self.model(tokens, cache=cache, last_only=last_only)


def test_generate_reads_one_token_per_step_and_rebuilds_the_window_past_max_len():
    model = Counting(MODELS["binary"])
    generate(model, [1, 2, 3], max_new_tokens=12, temperature=0)
    # prefill 3 tokens, then one per step until 12 positions are cached, then a full window each step
    assert model.lengths == [3] + [1] * 9 + [12, 12]
    model.lengths.clear()
    generate(model, [1, 2, 3], max_new_tokens=4, temperature=0, use_cache=False)
    assert model.lengths == [3, 4, 5, 6]


def test_leaky_mask_refuses_the_cache_and_generate_falls_back():
    model = LanguageModel.from_config("tiny", leaky_mask=True, **SMALL).eval()
    assert not model.supports_cache()
    with pytest.raises(ValueError, match="leaky mask"):
        model(torch.zeros(1, 2, dtype=torch.long), cache=KVCache())
    assert torch.equal(
        generate(model, [1, 2], max_new_tokens=5, temperature=0),
        generate(model, [1, 2], max_new_tokens=5, temperature=0, use_cache=False),
    )


def test_a_full_cache_names_the_problem():
    model, cache = MODELS["packed"], KVCache()
    with torch.no_grad():
        model(torch.zeros(1, 12, dtype=torch.long), cache=cache)
        with pytest.raises(ValueError, match="past max_len=12"):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_last_only_is_the_last_position_of_the_full_logits():
    model = MODELS["float32"]
    tokens = torch.randint(0, 32, (3, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, last_only=True), model(tokens)[:, -1:])


def test_decode_speed_reports_positive_tokens_per_second():
    speeds = decode_speed({"packed": MODELS["packed"], "float32": MODELS["float32"]}, [1, 2], new_tokens=3, repeats=1)
    assert set(speeds) == {"packed", "float32"} and all(v > 0 for v in speeds.values())
    with pytest.raises(ValueError, match="new_tokens"):
        decode_speed(MODELS, [1], new_tokens=1)


# --- the bit cache of the latent (unpacked) binary model ---------------------------------


def count_quantize(monkeypatch) -> list[int]:
    calls = []
    real = base_module.quantize
    monkeypatch.setattr(base_module, "quantize", lambda p: calls.append(p.numel()) or real(p))
    return calls


def reference(layer: BinaryLinear, x: torch.Tensor) -> torch.Tensor:
    from binedu import quantize

    with torch.no_grad():
        return layer.finish(x @ quantize(layer.weight).t() + quantize(layer.bias))


def test_eval_no_grad_reuses_the_bits(monkeypatch):
    layer, x = BinaryLinear(12, 5).eval(), torch.randn(3, 12)
    calls = count_quantize(monkeypatch)
    with torch.no_grad():
        first, second = layer(x), layer(x)
    assert torch.equal(first, second) and calls == [60, 5]  # weight and bias quantized once
    with torch.inference_mode():
        layer(x)
    assert calls == [60, 5]


def test_no_bit_cache_in_train_mode_or_with_gradients(monkeypatch):
    layer, x = BinaryLinear(12, 5), torch.randn(3, 12)
    layer(x).sum().backward()  # train mode, gradients on: the STE path
    with torch.no_grad():
        layer(x)  # train mode under no_grad: no cache either
    layer.eval()
    layer(x)  # eval mode with gradients enabled: no cache
    assert layer.weight.grad is not None
    calls = count_quantize(monkeypatch)
    with torch.no_grad():
        layer(x)
    assert calls == [60, 5]  # nothing was cached by the three calls above


def test_an_optimizer_step_invalidates_the_bits_even_in_eval_mode():
    layer, x = BinaryLinear(12, 5).eval(), torch.randn(3, 12)
    optimizer = torch.optim.SGD(layer.parameters(), lr=10.0)
    for _ in range(3):
        with torch.no_grad():
            torch.testing.assert_close(layer(x), reference(layer, x))
        optimizer.zero_grad()
        (layer(x) * torch.randn(3, 5)).sum().backward()  # eval mode, gradients on
        optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), reference(layer, x))


def test_load_state_dict_and_train_mode_invalidate_the_bits():
    layer, other, x = BinaryLinear(12, 5).eval(), BinaryLinear(12, 5), torch.randn(3, 12)
    with torch.no_grad():
        before = layer(x)
        layer.load_state_dict(other.state_dict())
        after = layer(x)
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, reference(other, x))
    with torch.no_grad():
        layer(x)
        assert layer.weight in base_module._BIT_CACHE
        layer.train()
        assert layer.weight not in base_module._BIT_CACHE


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.sampled_from(["add", "copy", "eval", "train", "replace"]), max_size=8), seed=st.integers(0, 99))
def test_cached_eval_output_always_equals_recomputation(steps, seed):
    """Whatever in-place updates, mode switches and parameter replacements happen, the
    cached eval output is the one Eq. 1 gives for the current weights."""
    g = torch.Generator().manual_seed(seed)
    layer, x = BinaryLinear(10, 6).eval(), torch.randn(2, 10, generator=g)
    for step in steps:
        with torch.no_grad():
            if step == "add":
                layer.weight.add_(torch.randn(6, 10, generator=g))
            elif step == "copy":
                layer.bias.copy_(torch.randn(6, generator=g))
            elif step == "replace":
                layer.weight = torch.nn.Parameter(torch.randn(6, 10, generator=g))
            else:
                layer.train(step == "train")
            if not layer.training:
                torch.testing.assert_close(layer(x), reference(layer, x))


def test_models_built_under_inference_mode_run_without_the_caches():
    """Inference tensors have no version counter: they are simply not cached."""
    with torch.inference_mode():
        model = randomize(LanguageModel.from_config("tiny", **SMALL), seed=3)
        packed = pack_model(model)
        tokens = torch.randint(0, 32, (1, 5), generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(packed(tokens), model(tokens), rtol=1e-4, atol=1e-4)
    assert not any(p in base_module._BIT_CACHE for p in model.parameters())
