"""The digits shipped with binedu (binedu/data/digits.py) are exactly scikit-learn's
``load_digits()``: checked against hashes of the arrays, since scikit-learn is no longer
installed."""

from __future__ import annotations

import hashlib

import numpy as np

from binedu.data.digits import load_digits

# sha256 of sklearn.datasets.load_digits().images as uint8 and .target as little-endian int64
# (scikit-learn 1.9.1), computed once while scikit-learn was still a dependency.
IMAGES_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"
LABELS_SHA256 = "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21"


def test_digits_shapes_types_and_range():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    assert np.array_equal(images, np.round(images)), "pixel counts are integers"
    assert sorted(set(labels.tolist())) == list(range(10))


def test_digits_equal_scikit_learns_arrays():
    images, labels = load_digits()
    assert hashlib.sha256(images.astype("<u1").tobytes()).hexdigest() == IMAGES_SHA256
    assert hashlib.sha256(labels.astype("<i8").tobytes()).hexdigest() == LABELS_SHA256


def test_digits_file_ships_with_its_attribution():
    from importlib.resources import files

    readme = files("binedu.data").joinpath("files", "README").read_text()
    assert "CC BY 4.0" in readme and "Optical Recognition of Handwritten Digits" in readme
