"""Exercises of notebooks 04 (image model) and 05 (language model): the references agree
with the paper's formulas and binedu's layers, and wrong answers get a useful "Not yet"."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from binedu import ImageClassifier
from binedu.config import IMAGE_CONFIGS
from binedu.course.attention_maps import attention_weights
from binedu.course.exercises import check, exercises
from binedu.course.exercises.image_model import bncvl_parameters, normalized_loss_floor, pooled_size
from binedu.course.exercises.language_model import future_mask, leaky_future_weight, padfree_perplexity
from binedu.metrics import Tally
from binedu.normalize import normalize
from teacher.answers import model_answer


def test_notebooks_04_and_05_have_two_to_six_exercises():
    assert 2 <= len(exercises("04")) <= 7
    assert 2 <= len(exercises("05")) <= 6


@pytest.mark.parametrize(
    "ex", [e for e in exercises("04") + exercises("05") if e.kind != "prediction"], ids=lambda e: e.id
)
def test_reference_is_correct_and_placeholder_is_not_yet(ex, capsys):
    answer = model_answer(ex.id)
    assert check(ex.id, answer) is True
    assert check(ex.id, ...) is False
    out = capsys.readouterr().out
    assert "✅ Correct!" in out and "❌ Not yet" in out and "Hint" not in out


# ---------------------------------------------------------------- 04


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 7))
def test_bncvl_parameters_is_kernel_plus_bias(c_in, c_out, f):
    assert bncvl_parameters(c_in, c_out, f) == f * f * c_in * c_out + c_out


@given(st.integers(0, 6), st.integers(0, 300))
def test_pooled_size_is_what_maxpool_gives(pools, extra):
    size = 2**pools + extra
    x = torch.empty(1, 1, size, size, device="meta")
    for _ in range(pools):
        x = torch.nn.MaxPool2d(2)(x)
    assert pooled_size(size, pools) == x.shape[-1]


def test_pooled_size_rejects_too_many_pools():
    with pytest.raises(ValueError, match="cannot go through 3"):
        pooled_size(7, 3)


def test_alg7_count_is_the_sum_of_its_layers_and_not_the_papers_number():
    c = IMAGE_CONFIGS["paper-3x3-as-printed"]
    convs, channels = 0, 1  # grayscale digits
    for block in c.widths:
        for width in block:
            convs += bncvl_parameters(channels, width, c.filter_size)
            channels = width
    dense, width = 0, channels
    for units in (*c.dense_units, 10):
        dense += width * units + units
        width = units
    expected = model_answer("04.alg7_params")
    assert expected == convs + dense
    assert expected == ImageClassifier.on_meta("paper-3x3-as-printed", in_channels=1, num_classes=10).num_parameters()
    assert check("04.alg7_params", expected, verbose=False)


def test_wrong_bncvl_count_without_bias_is_not_yet(capsys):
    assert check("04.bncvl_parameters", lambda i, o, f: f * f * i * o) is False
    out = capsys.readouterr().out
    assert "expected 896, got 864" in out


def test_ceil_pooling_is_not_yet(capsys):
    assert check("04.pooled_size", lambda s, n: math.ceil(s / 2**n)) is False
    assert "for input (28, 3) expected 3, got 4" in capsys.readouterr().out


def test_papers_stated_count_is_not_yet_and_the_value_is_not_given_away(capsys):
    assert check("04.alg7_params", ImageClassifier.on_meta("paper-3x3").num_parameters()) is False
    assert check("04.alg7_params", ImageClassifier.on_meta("paper-3x3-as-printed").num_parameters()) is False
    out = capsys.readouterr().out
    expected = model_answer("04.alg7_params")
    assert "is not right" in out and str(expected) not in out and f"{expected:,}" not in out


@given(st.integers(2, 200))
def test_loss_floor_is_reached_by_the_best_normalized_logits(c):
    best = torch.full((1, c), -1 / math.sqrt(c - 1), dtype=torch.float64)
    best[0, 0] = math.sqrt(c - 1)
    assert torch.allclose(normalize(best, eps=0.0), best)  # already mean 0, std 1
    loss = float(torch.nn.functional.cross_entropy(best, torch.tensor([0])))
    assert loss == pytest.approx(normalized_loss_floor(c), rel=1e-9)


@given(st.integers(2, 30), st.integers(0, 2**31 - 1))
def test_no_normalized_logits_go_below_the_floor(c, seed):
    g = torch.Generator().manual_seed(seed)
    logits = normalize(torch.randn(64, c, generator=g, dtype=torch.float64) * 5, eps=0.0)
    losses = torch.nn.functional.cross_entropy(logits, torch.randint(0, c, (64,), generator=g), reduction="none")
    assert float(losses.min()) >= normalized_loss_floor(c) - 1e-9


def test_a_binary_classifier_respects_the_floor():
    torch.manual_seed(0)
    model = ImageClassifier.from_config("tiny")
    with torch.no_grad():
        logits = model(torch.randn(32, 1, 8, 8) * 3)
    losses = torch.nn.functional.cross_entropy(logits, logits.argmax(-1), reduction="none")
    assert float(losses.min()) >= normalized_loss_floor(10) - 1e-4
    with pytest.raises(ValueError, match="num_classes >= 2"):
        normalized_loss_floor(1)


def test_zero_threshold_floor_is_not_yet(capsys):
    assert check("04.loss_floor", lambda c: 0.0) is False
    assert "for input (2) expected" in capsys.readouterr().out


# ---------------------------------------------------------------- 05


@given(st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_future_mask_is_where_causal_attention_gives_zero_weight(seq, seed):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(1, seq, 4, generator=g), torch.randn(1, seq, 4, generator=g)
    weights = attention_weights(q, k, num_heads=2)
    mask = future_mask(seq)
    assert mask.dtype == torch.bool and mask.shape == (seq, seq)
    assert bool((weights[..., mask] == 0).all()) and bool((weights[..., ~mask] > 0).all())


def test_lower_triangle_mask_is_not_yet(capsys):
    assert check("05.causal_mask", lambda t: torch.ones(t, t, dtype=torch.bool).tril(-1)) is False
    assert "for input (2) expected" in capsys.readouterr().out


@given(st.integers(2, 64))
def test_leaky_mask_spreads_equal_scores_over_the_future(seq):
    assert leaky_future_weight(seq) == pytest.approx((seq - 1) / seq, rel=1e-6)


def test_leaky_weight_zero_is_the_causal_answer_and_not_yet(capsys):
    assert check("05.leaky_weight", 0.0) is False
    assert check("05.leaky_weight", 7 / 8) is True


@given(st.integers(0, 2**31 - 1), st.integers(1, 5))
def test_perplexity_ignores_padding_added_to_examples(seed, extra):
    g = torch.Generator().manual_seed(seed)
    logits, targets = torch.randn(2, 5, 6, generator=g), torch.randint(1, 6, (2, 5), generator=g)
    pad_logits = torch.randn(2, extra, 6, generator=g)
    padded = padfree_perplexity(
        torch.cat([logits, pad_logits], 1), torch.cat([targets, torch.zeros(2, extra).long()], 1), 0
    )
    assert padded == pytest.approx(padfree_perplexity(logits, targets, 0), rel=1e-5)
    tally = Tally()
    tally.add(logits, targets, pad_id=0)
    assert padded == pytest.approx(tally.metrics(language=True)["ppl"], rel=1e-5)


def test_perplexity_counting_padding_is_not_yet(capsys):
    def counts_padding(logits, targets, pad_id):
        return math.exp(float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())))

    assert check("05.perplexity", counts_padding) is False
    assert "for input (" in capsys.readouterr().out


def test_perplexity_from_binedu_metrics_is_not_accepted(capsys):
    from binedu.metrics import perplexity, token_loss

    def wraps_binedu(logits, targets, pad_id):
        return perplexity(float(token_loss(logits, targets, pad_id)))

    def written(logits, targets, pad_id):
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)
        return math.exp(float(loss))

    assert check("05.perplexity", wraps_binedu) is False
    assert "write it yourself" in capsys.readouterr().out
    assert check("05.perplexity", written, verbose=False) is True
    assert check("05.causal_mask", future_mask, verbose=False) is False


def test_mask_experiment_with_the_trained_mask_changes_nothing():
    from binedu import LanguageModel, text_data
    from binedu.course.exercises.language_model import mask_experiment

    data = text_data("pydoc", tokenizer="char", max_len=16, limit=40)
    torch.manual_seed(0)
    model = LanguageModel.from_config("tiny", vocab_size=data.vocab_size)
    same = mask_experiment(model, data.val)
    assert same.values["ppl"] == same.values["ppl_causal"]
    leaky = mask_experiment(model, data.val, leaky_mask=True)
    assert leaky.values["ppl_causal"] == same.values["ppl_causal"] and leaky.values["ppl"] != same.values["ppl"]
    assert not any(m.leaky_mask for m in model.modules() if hasattr(m, "leaky_mask")), "the model's mask came back"
    assert check("05.predict_leaky_swap", "about the same", measured=same) is False  # the run was not changed
