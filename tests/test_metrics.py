"""Loss, accuracy and perplexity with padding excluded (binedu.metrics)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import TensorDataset

from binedu import ImageClassifier, LanguageModel
from binedu.metrics import Tally, evaluate, split_batch, task_of, token_loss

PAD = 0


class Bigram(nn.Module):
    """A language model whose next-token probabilities depend on the current token only."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.config = SimpleNamespace(kind="language")
        self.register_buffer("log_probs", probs.log())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.log_probs[tokens]


# p(next | current) over the vocabulary {0: pad, 1, 2, 3}
PROBS = torch.tensor(
    [
        [0.25, 0.25, 0.25, 0.25],
        [0.1, 0.1, 0.5, 0.3],  # after 1: 2 is most likely
        [0.1, 0.2, 0.1, 0.6],  # after 2: 3 is most likely
        [0.4, 0.4, 0.1, 0.1],  # after 3: tie between pad and 1 -> argmax picks 0 (pad)
    ]
)


def padded(seqs: list[list[int]], length: int) -> torch.Tensor:
    return torch.tensor([s + [PAD] * (length - len(s)) for s in seqs])


def test_hand_computed_language_metrics_ignore_padding():
    # targets: 1->2 (p .5, correct), 2->3 (p .6, correct), 3->1 (p .4, wrong: argmax is 0), 1->3 (p .3, wrong)
    data = padded([[1, 2, 3, 1], [1, 3]], 6)
    metrics = evaluate(Bigram(PROBS), data, batch_size=2, pad_id=PAD)
    nll = -(math.log(0.5) + math.log(0.6) + math.log(0.4) + math.log(0.3)) / 4
    assert metrics["loss"] == pytest.approx(nll)
    assert metrics["acc"] == pytest.approx(2 / 4)
    assert metrics["ppl"] == pytest.approx(math.exp(nll))


def test_counting_padding_would_change_the_numbers():
    data = padded([[1, 2, 3, 1], [1, 3]], 6)
    with_pad = evaluate(Bigram(PROBS), data, pad_id=None)
    without = evaluate(Bigram(PROBS), data, pad_id=PAD)
    assert with_pad["loss"] != pytest.approx(without["loss"])


@settings(max_examples=30, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(1, 3), min_size=2, max_size=6), min_size=1, max_size=5),
    extra=st.integers(1, 6),
    batch_size=st.integers(1, 4),
)
def test_adding_padding_never_changes_the_metrics(seqs, extra, batch_size):
    model = Bigram(PROBS)
    short = evaluate(model, padded(seqs, 6), batch_size=len(seqs), pad_id=PAD)
    long = evaluate(model, padded(seqs, 6 + extra), batch_size=batch_size, pad_id=PAD)
    assert long == pytest.approx(short)


def test_padding_invariance_on_a_real_language_model():
    torch.manual_seed(0)
    model = LanguageModel.from_config("tiny", vocab_size=11, max_len=16, embed_dim=16, num_heads=2, num_blocks=1)
    seqs = [[3, 4, 5, 6, 7], [1, 2], [9, 9, 8, 7, 6, 5, 4, 3]]
    short = evaluate(model, padded(seqs, 9), batch_size=3)
    long = evaluate(model, padded(seqs, 17), batch_size=2)
    assert long == pytest.approx(short, rel=1e-5)
    assert set(short) == {"loss", "acc", "ppl"}


def test_image_metrics_match_a_direct_computation_and_count_class_zero():
    torch.manual_seed(0)
    model = ImageClassifier.from_config("tiny")
    x = torch.randn(10, 1, 8, 8)
    y = torch.zeros(10, dtype=torch.long)  # class 0 is a real label, not padding
    metrics = evaluate(model, TensorDataset(x, y), batch_size=3)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert metrics["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert metrics["acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert "ppl" not in metrics


def test_evaluate_restores_training_mode():
    model = ImageClassifier.from_config("tiny", binary=False)
    model.train()
    evaluate(model, TensorDataset(torch.randn(4, 1, 8, 8), torch.arange(4)))
    assert model.training


def test_task_is_read_from_the_model():
    assert task_of(LanguageModel.from_config("tiny")) == "language"
    assert task_of(ImageClassifier.from_config("tiny")) == "image"
    assert task_of(Bigram(PROBS)) == "language"


def test_token_loss_ignores_padding_and_matches_tally():
    logits = torch.randn(2, 5, 7)
    targets = torch.tensor([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]])
    tally = Tally()
    tally.add(logits, targets, pad_id=0)
    real = targets != 0
    expected = F.cross_entropy(logits[real], targets[real])
    assert float(token_loss(logits, targets, 0)) == pytest.approx(float(expected))
    assert tally.metrics()["loss"] == pytest.approx(float(expected))
    assert tally.count == 4


def test_no_real_targets_is_an_error():
    with pytest.raises(ValueError, match="no real targets"):
        evaluate(Bigram(PROBS), padded([[1], [2]], 4), pad_id=PAD)


def test_bad_batches_are_named():
    with pytest.raises(ValueError, match="language batches"):
        split_batch(torch.zeros(3, dtype=torch.long), "language")
    with pytest.raises(ValueError, match="image batch"):
        split_batch(torch.zeros(3, 4), "image")
