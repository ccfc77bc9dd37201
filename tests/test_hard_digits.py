"""The harder offline image task (binedu.data.hard_digits): 28x28 distorted digits with
train / validation / test splits."""

import pytest
import torch

from binedu import ImageClassifier
from binedu.conv import BinaryConv2d
from binedu.data import DataError, image_data
from binedu.data.hard_digits import HARD_SIZE, digit_splits, distort


@pytest.fixture(scope="module")
def hard():
    return image_data("digits-hard", limit=60)


def test_registered_with_three_splits(hard):
    assert hard.name == "digits-hard" and hard.image_size == HARD_SIZE == 28
    assert (hard.num_classes, hard.in_channels) == (10, 1)
    x, y = hard.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= int(y) < 10
    assert len(hard.train) == 3 * 60 and len(hard.val) == 60 and len(hard.test) == 60  # 3 distortions per train digit
    assert sorted(set(hard.test.labels.tolist())) == list(range(10))


def test_standardized_with_the_training_statistics(hard):
    train = hard.train.images
    assert abs(float(train.mean())) < 1e-4 and float(train.std()) == pytest.approx(1.0, abs=1e-3)


def test_seeded(hard):
    again = image_data("digits-hard", limit=60)
    assert torch.equal(again.train.images, hard.train.images) and torch.equal(again.test.images, hard.test.images)
    other = image_data("digits-hard", limit=60, seed=1)
    assert not torch.equal(other.train.images, hard.train.images)


def test_distortions_differ_but_keep_the_ink():
    digit = torch.zeros(1, 1, 8, 8)
    digit[..., 2:6, 3:5] = 1.0
    g = torch.Generator().manual_seed(0)
    a, b = distort(digit, g), distort(digit, g)
    assert a.shape == (1, 1, 28, 28) and not torch.allclose(a, b)
    many = distort(digit.repeat(64, 1, 1, 1), g)  # the noise has mean 0: the ink is about the digit's
    ink = float(torch.nn.functional.interpolate(digit, size=(20, 20), mode="bilinear").sum())
    assert float(many.sum(dim=(1, 2, 3)).mean()) == pytest.approx(ink, rel=0.25)


def test_plain_digits_have_a_test_split_too():
    plain = digit_splits(hard=False)
    assert plain.image_size == 8 and plain.train[0][0].shape == (1, 8, 8)
    assert len(plain.train) + len(plain.val) + len(plain.test) == 1797
    assert len(plain.test) == pytest.approx(0.2 * 1797, abs=10)


def test_tiny_28_model_reads_it_and_pools_to_one_pixel(hard):
    model = ImageClassifier.from_config("tiny-28")
    assert model.config.image_size == hard.image_size and model.config.norm_mode == "chw"
    seen = []
    pool = next(m for m in model.layers if isinstance(m, torch.nn.AdaptiveAvgPool2d))
    pool.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[-2:]))
    assert model(hard.train.images[:2]).shape == (2, 10)
    assert tuple(seen[0]) == (1, 1)  # the last features see the whole canvas (module docstring)


@pytest.mark.parametrize("binary", [True, False])
def test_per_pixel_channel_normalization_erases_amplitude(binary):
    """The finding behind "tiny-28": normalized over channels, a stroke pixel's features
    are no larger than the background's; over C,H,W they are."""
    torch.manual_seed(0)
    x = 0.05 * torch.randn(4, 1, 28, 28)
    stroke = torch.zeros(28, 28, dtype=torch.bool)
    stroke[8:20, 12:16] = True
    x[..., stroke] += 1.0
    ratio = {}
    for mode in ("channels", "chw"):
        layer = BinaryConv2d(1, 16, 3, "relu", binary=binary, norm_mode=mode)
        with torch.no_grad():
            size = layer(x).norm(dim=1)  # per-pixel feature size
        ratio[mode] = float(size[:, stroke].mean() / size[:, ~stroke].mean())
    assert ratio["channels"] < 1.5 and ratio["chw"] > 3


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(val_fraction=0.5, test_fraction=0.5), "below 1"),
        (dict(copies=0), "copies"),
        (dict(image_size=16), "image_size"),
    ],
)
def test_bad_arguments_name_the_problem(kw, message):
    with pytest.raises((ValueError, DataError), match=message):
        digit_splits(**kw)
