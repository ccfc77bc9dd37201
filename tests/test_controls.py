"""The ablation's controls (bench/bench_results.py), which are not the paper: -1/+1
weights, a fixed 1/sqrt(fan_in) scale instead of Normalize, the float32 baseline without
a learnable normalization, and the conv normalization axes."""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import randomize
from hypothesis import given, settings
from hypothesis import strategies as st

from binedu import BinaryConv2d, BinaryLinear, ImageClassifier, ImageConfig, pack_model
from binedu.normalize import FixedScale, normalize
from binedu.quantize import quantize

torch.manual_seed(0)


def test_pm1_weights_are_the_bits_mapped_to_minus_one_and_one():
    layer = randomize(BinaryLinear(7, 5, weights="pm1"))
    x = torch.randn(3, 7)
    w, b = 2 * quantize(layer.weight) - 1, 2 * quantize(layer.bias) - 1
    assert set(w.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(layer(x), normalize(F.linear(x, w, b)), atol=1e-5, rtol=1e-5)


def test_pm1_gradient_is_twice_the_straight_through_one():
    x = torch.randn(4, 6)
    grads = {}
    for weights in ("01", "pm1"):
        torch.manual_seed(1)
        layer = BinaryLinear(6, 3, normalize=False, weights=weights)
        layer(x).sum().backward()
        grads[weights] = layer.weight.grad
    torch.testing.assert_close(grads["pm1"], 2 * grads["01"])  # d(2b - 1)/dW = 2 dL/db


@given(st.integers(1, 64), st.integers(1, 8))
@settings(max_examples=25, deadline=None)
def test_fixed_scale_divides_by_the_square_root_of_fan_in(fan_in, units):
    layer = randomize(BinaryLinear(fan_in, units, normalize="fixed"))
    x = torch.randn(2, fan_in)
    z = F.linear(x, quantize(layer.weight), quantize(layer.bias))
    torch.testing.assert_close(layer(x), z / math.sqrt(fan_in))


def test_conv_fixed_scale_counts_the_whole_receptive_field():
    layer = BinaryConv2d(3, 4, 5, normalize="fixed")
    assert isinstance(layer.norm, FixedScale) and layer.norm.fan_in == 3 * 5 * 5


def test_fixed_scale_does_not_centre_01_sums():
    # the reason the control is needed: with 0/1 weights and non-negative inputs (after a
    # relu) a fixed scale lets the mean grow like sqrt(fan_in); Normalize removes it
    torch.manual_seed(0)
    means = []
    for fan_in in (16, 256):
        layer = randomize(BinaryLinear(fan_in, 64, normalize="fixed"))
        with torch.no_grad():
            means.append(float(layer(torch.rand(32, fan_in)).mean()))
    assert means[1] > 2.5 * means[0] > 0
    with torch.no_grad():
        normalized = randomize(BinaryLinear(256, 64))(torch.rand(32, 256))
    assert abs(float(normalized.mean())) < 1e-5


def test_literal_float_baseline_has_no_learnable_normalization():
    binary = ImageClassifier.from_config("tiny")
    literal = ImageClassifier.from_config("tiny", binary=False, affine=False)
    learnable = ImageClassifier.from_config("tiny", binary=False)
    assert literal.num_parameters() == binary.num_parameters() < learnable.num_parameters()
    assert literal.config.to_dict()["affine"] is False
    assert ImageConfig.from_dict(literal.config.to_dict()) == literal.config


def test_conv_normalization_axes_differ():
    x = torch.randn(2, 1, 8, 8)
    torch.manual_seed(0)
    channels = ImageClassifier.from_config("tiny", norm_mode="channels").eval()
    torch.manual_seed(0)
    chw = ImageClassifier.from_config("tiny", norm_mode="chw").eval()
    convs = [m for m in chw.modules() if isinstance(m, BinaryConv2d)]
    assert convs and all(m.norm.mode == "chw" for m in convs)
    with torch.no_grad():
        assert not torch.allclose(channels(x), chw(x))


@pytest.mark.parametrize("overrides", [{"weights": "pm1"}, {"normalize": "fixed"}])
def test_controls_are_not_packed(overrides):
    with pytest.raises(ValueError, match="ablation control"):
        pack_model(ImageClassifier.from_config("tiny", **overrides))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"weights": "+-1"}, "weights must be"),
        ({"normalize": "layer"}, "normalize must be"),
        ({"normalize": 1}, "normalize must be"),
        ({"norm_mode": "height"}, "norm_mode must be"),
    ],
)
def test_bad_control_names_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        ImageClassifier.from_config("tiny", **overrides)


def test_bad_layer_control_names_the_problem():
    with pytest.raises(ValueError, match="weights must be one of"):
        BinaryLinear(3, 2, weights="ternary")
    with pytest.raises(ValueError, match="normalize must be True, False or 'fixed'"):
        BinaryLinear(3, 2, normalize="batch")


@given(st.integers(2, 12), st.integers(2, 9), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_pm1_weights_with_normalize_are_the_01_model(n_in, n_out, seed):
    # (2b - 1) . x + (2c - 1) = 2 (b . x + c) - (sum(x) + 1): the offset is the same for every
    # output feature, so the centring of Normalize removes it and its scaling the factor 2
    torch.manual_seed(seed)
    layer01 = randomize(BinaryLinear(n_in, n_out))
    pm1 = BinaryLinear(n_in, n_out, weights="pm1")
    pm1.load_state_dict(layer01.state_dict())
    x = torch.randn(4, n_in, dtype=torch.float64)
    with torch.no_grad():
        a, b = layer01.double()(x), pm1.double()(x)
    z = F.linear(x, quantize(layer01.weight), quantize(layer01.bias))
    spread = z.std(dim=-1, unbiased=False)
    keep = spread > 0.5  # eps (1e-5) weighs relatively 3 eps / (8 var) more in the 0/1 layer
    torch.testing.assert_close(a[keep], b[keep], atol=1e-4, rtol=1e-4)
