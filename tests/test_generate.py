"""Text generation (binedu.generate)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from train_fixtures import image_model, language_model

from binedu.data import CharTokenizer
from binedu.generate import generate, next_token


class Table(nn.Module):
    """A language model whose next-token logits are a fixed function of the last token;
    it remembers the context lengths it was given."""

    def __init__(self, logits: torch.Tensor, max_len: int = 4) -> None:
        super().__init__()
        self.config = SimpleNamespace(kind="language", max_len=max_len)
        self.register_buffer("table", logits)
        self.lengths: list[int] = []

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.lengths.append(tokens.shape[1])
        return self.table[tokens]


def cycle_table(vocab: int = 6) -> torch.Tensor:
    """After token i, token i + 1 is by far the most likely (ids cycle, 0 is skipped)."""
    logits = torch.zeros(vocab, vocab)
    for i in range(vocab):
        logits[i, i % (vocab - 1) + 1] = 5.0
    return logits


def test_greedy_follows_the_most_likely_token_and_crops_the_context():
    model = Table(cycle_table(), max_len=4)
    out = generate(model, [1], max_new_tokens=7, temperature=0)
    assert out.tolist() == [1, 2, 3, 4, 5, 1, 2, 3]
    assert max(model.lengths) == 4 and model.lengths[:4] == [1, 2, 3, 4]


def test_sampling_is_reproducible_with_a_seed_and_leaves_the_global_rng_alone():
    model = Table(torch.zeros(6, 6))  # uniform: every continuation possible
    state = torch.get_rng_state()
    a = generate(model, [1, 2], max_new_tokens=30, seed=5)
    b = generate(model, [1, 2], max_new_tokens=30, seed=5)
    c = generate(model, [1, 2], max_new_tokens=30, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)


def test_top_k_restricts_the_choice_and_top_1_is_greedy():
    logits = torch.tensor([0.0, 3.0, 2.9, 1.0, -1.0])
    g = torch.Generator().manual_seed(0)
    picks = {next_token(logits, 1.0, top_k=2, generator=g) for _ in range(200)}
    assert picks == {1, 2}
    model = Table(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(generate(model, [3], max_new_tokens=10, top_k=1, seed=3), generate(model, [3], max_new_tokens=10, temperature=0))


def test_low_temperature_concentrates_on_the_most_likely_token():
    logits = torch.tensor([0.0, 1.0, 0.5])
    g = torch.Generator().manual_seed(0)
    picks = [next_token(logits, 0.05, generator=g) for _ in range(100)]
    assert picks.count(1) >= 99


def test_text_prompt_with_a_tokenizer_returns_text_and_stops_at_eos():
    tok = CharTokenizer.fit(["abcab"])
    a, b, c = tok.encode("abc")
    logits = torch.full((tok.vocab_size, tok.vocab_size), -10.0)
    logits[tok.bos_id, a] = logits[a, b] = logits[b, c] = 10.0
    logits[c, tok.eos_id] = 10.0
    model = Table(logits, max_len=16)
    assert generate(model, "a", tok, max_new_tokens=20, temperature=0) == "abc"
    assert len(model.lengths) == 3  # b, c, then EOS ended it


def test_real_language_model_generates_the_asked_number_of_tokens():
    model = language_model()
    model.train()
    out = generate(model, torch.tensor([1, 2, 3]), max_new_tokens=12, seed=0)
    assert out.shape == (15,) and out[:3].tolist() == [1, 2, 3]
    assert int(out.max()) < 12 and model.training  # mode restored


def test_packed_language_model_generates_like_the_training_model():
    from binedu import pack_model

    model = language_model()
    packed = pack_model(model)
    assert list(packed.parameters()) == []
    for kwargs in (dict(temperature=0), dict(seed=4, top_k=5)):
        expected = generate(model, [1, 2], max_new_tokens=10, **kwargs)
        assert torch.equal(generate(packed, [1, 2], max_new_tokens=10, **kwargs), expected)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((language_model(), "hi"), {}, "needs a tokenizer"),
        ((language_model(), []), {}, "empty"),
        ((language_model(), [1]), dict(temperature=-1.0), "temperature"),
        ((language_model(), [1]), dict(top_k=0), "top_k"),
        ((language_model(), [1.5]), {}, "integers"),
        ((image_model(), [1]), {}, "language model"),
    ],
)
def test_bad_requests_raise_value_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(*args, **kwargs)


def test_cache_switch_gives_the_same_text_for_a_real_model_and_a_long_prompt():
    model = language_model()
    prompt = list(range(1, 12)) * 2  # 22 tokens > max_len = 8: generation starts on a cropped window
    for kwargs in (dict(temperature=0), dict(seed=1, top_k=4)):
        cached = generate(model, prompt, max_new_tokens=10, **kwargs)
        assert torch.equal(cached, generate(model, prompt, max_new_tokens=10, use_cache=False, **kwargs))
