"""binedu.scaling (the scaled models, the gap's trend) and binedu.recipes (the two recipes)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from binedu import ImageClassifier, LanguageModel, fit
from binedu.base import BinaryModule
from binedu.recipes import RECIPE_NAMES, TAIL_RATIO, apply_recipe, clip_latents, recipe_options
from binedu.scaling import gap_trend, scaled_image_model, scaled_language_model, slope
from binedu.schedule import learning_rate

finite = st.floats(-100, 100, allow_nan=False)


def test_scale_one_and_width_64_are_the_results_tables_models():
    assert scaled_image_model(1.0).num_parameters() == ImageClassifier.from_config("tiny-28").num_parameters()
    tiny = LanguageModel.from_config("tiny", vocab_size=107).num_parameters()
    assert scaled_language_model(64, 107).num_parameters() == tiny


def test_bigger_sizes_have_more_parameters_and_the_float_variant_is_float():
    lm = [scaled_language_model(w, 50).num_parameters() for w in (16, 32, 64)]
    images = [scaled_image_model(s).num_parameters() for s in (0.25, 0.5, 1.0)]
    assert lm == sorted(lm) and len(set(lm)) == 3 and images == sorted(images) and len(set(images)) == 3
    assert not scaled_image_model(0.5, binary=False).config.binary
    assert not scaled_language_model(16, 50, binary=False).config.binary


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_width_is_refused(bad):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        scaled_language_model(bad, 50)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf])
def test_bad_scale_is_refused(bad):
    with pytest.raises(ValueError, match="scale must be a positive number"):
        scaled_image_model(bad)


@given(a=finite, b=finite, tenths=st.lists(st.integers(0, 100), min_size=2, max_size=12, unique=True))
def test_slope_recovers_a_line(a, b, tenths):
    xs = [t / 10 for t in tenths]  # log10 sizes: distinct, at least 0.1 apart
    ys = [a + b * x for x in xs]
    assert slope(xs, ys) == pytest.approx(b, abs=1e-6 * (1 + abs(a) + abs(b)))


def test_slope_of_one_x_is_nan_and_bad_lengths_are_refused():
    assert math.isnan(slope([2.0, 2.0], [1.0, 3.0]))
    with pytest.raises(ValueError, match="equally long"):
        slope([1.0, 2.0], [1.0])


def test_trend_verdicts():
    params = [1_000, 10_000, 100_000, 1_000_000]
    growing = gap_trend(params, [[1.0, 1.1, 0.9], [2.0, 2.1, 1.9], [3.0, 3.1, 2.9], [4.0, 4.1, 3.9]])
    assert growing["slope"] == pytest.approx(1.0) and growing["low"] > 0 and growing["verdict"].startswith("grows")
    shrinking = gap_trend(params, [[4.0, 4.2], [3.0, 3.2], [2.0, 2.2], [1.0, 1.2]])
    assert shrinking["high"] < 0 and shrinking["verdict"].startswith("shrinks")
    noisy = gap_trend(params, [[0.0, 5.0, -5.0], [5.0, -5.0, 0.0], [-5.0, 0.0, 5.0], [1.0, -1.0, 0.0]])
    assert noisy["low"] < 0 < noisy["high"] and "flat" in noisy["verdict"]
    assert gap_trend([1_000], [[1.0, 2.0]])["verdict"] == "too few sizes"


def test_trend_interval_is_reproducible_and_brackets_the_slope():
    params, gaps = [10, 100, 1000], [[1.0, 2.0, 1.5], [1.2, 2.5, 1.1], [2.0, 1.0, 2.6]]
    first, second = gap_trend(params, gaps), gap_trend(params, gaps)
    assert first == second
    assert first["low"] <= first["slope"] <= first["high"]


# ---------------------------------------------------------------- recipes


def test_paper_and_clip_change_no_fit_argument_and_the_tail_holds_a_low_rate():
    assert recipe_options("paper", 100) == {} and recipe_options("clip", 100) == {}
    tail = recipe_options("low-rate-tail", 1000, warmup_steps=20)
    assert tail == {"decay_steps": 480, "min_lr_ratio": TAIL_RATIO}
    rates = [learning_rate(s, 1.0, 20, tail["decay_steps"], tail["min_lr_ratio"]) for s in range(1000)]
    assert rates[499] > TAIL_RATIO and all(r == pytest.approx(TAIL_RATIO) for r in rates[500:])
    assert rates[100] > TAIL_RATIO


def test_unknown_recipe_and_bad_steps_are_refused():
    with pytest.raises(ValueError, match="unknown recipe 'bop'"):
        recipe_options("bop", 10)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        recipe_options("clip", 0)
    assert set(RECIPE_NAMES) == {"paper", "low-rate-tail", "clip"}


def _latents(model):
    return [p for m in model.modules() if isinstance(m, BinaryModule) and m.binary for p in m.parameters(recurse=False)]


@given(shift=st.floats(0.5, 50.0), seed=st.integers(0, 2**16))
def test_clip_keeps_every_latent_within_its_initial_radius_of_the_mean(shift, seed):
    torch.manual_seed(seed)
    model = ImageClassifier.from_config("tiny", num_classes=10, image_size=8, in_channels=1)
    radii = [float((p - p.mean()).abs().max()) for p in _latents(model)]
    clip_latents(model)
    with torch.no_grad():
        for p in _latents(model):  # a latent pushed far away, as a long run of one-sided updates would
            p.view(-1)[0] += shift
    centres = [float(p.mean()) for p in _latents(model)]
    model.train()
    model(torch.zeros(2, 1, 8, 8))
    for p, r, c in zip(_latents(model), radii, centres, strict=True):
        if r > 0:  # within r of the threshold (the mean) it was compared with at that step
            assert float((p - c).abs().max()) <= r + 1e-5 and float(p.view(-1)[0]) <= c + r + 1e-5
        else:  # a constant start (zero biases) is not clipped
            assert float(p.view(-1)[0]) >= shift * (1 - 1e-6) - 1e-6


def test_clip_leaves_eval_alone_and_can_be_removed():
    model = ImageClassifier.from_config("tiny", num_classes=10, image_size=8, in_channels=1)
    handle = clip_latents(model)
    p = _latents(model)[0]
    with torch.no_grad():
        p.view(-1)[0] += 100.0
    model.eval()
    model(torch.zeros(1, 1, 8, 8))
    assert float(p.view(-1)[0]) > 50
    handle.remove()
    model.train()
    model(torch.zeros(1, 1, 8, 8))
    assert float(p.view(-1)[0]) > 50


def test_apply_recipe_trains_with_fit(tiny_digits):
    model = ImageClassifier.from_config("tiny", num_classes=10, image_size=8, in_channels=1)
    radii = [float((p - p.mean()).abs().max()) for p in _latents(model)]
    options = apply_recipe("clip", model, steps=4)
    fit(model, tiny_digits, epochs=1, batch_size=8, lr=0.5, progress=False, max_steps=4, **options)
    centres = [float(p.mean()) for p in _latents(model)]
    model.train()
    model(torch.zeros(1, 1, 8, 8))  # the clip runs before each training forward pass
    for p, r, c in zip(_latents(model), radii, centres, strict=True):
        if r:
            assert float((p - c).abs().max()) <= r + 1e-5


@pytest.fixture
def tiny_digits():
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))
