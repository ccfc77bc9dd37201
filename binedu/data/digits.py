"""The 1,797 handwritten digits (8x8 grey, values 0..16), shipped with binedu so that the
first image model trains offline without scikit-learn and scipy (~196 MB for a 57 KB file).

Source: the test set of the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin, C. Kaynak, 1998; https://doi.org/10.24432/C50P49), licensed CC BY 4.0 by
the UCI Machine Learning Repository. ``files/digits.csv.gz`` is byte for byte the copy that
scikit-learn ships as ``sklearn/datasets/data/digits.csv.gz`` (scikit-learn is BSD-3-Clause),
so :func:`load_digits` returns exactly what ``sklearn.datasets.load_digits()`` returns as
``images`` and ``target``. See ``files/README`` for the attribution.
"""

from __future__ import annotations

import gzip
from importlib.resources import files

import numpy as np

__all__ = ["load_digits", "DIGITS_FILE"]

DIGITS_FILE = "digits.csv.gz"  # 1797 rows of 64 pixel counts then the label, comma-separated


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: images ``(1797, 8, 8)`` float64 with integer values 0..16,
    labels ``(1797,)`` int64 in 0..9, in the order of the original file."""
    with (files("binedu.data") / "files" / DIGITS_FILE).open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",")
    images = table[:, :-1].reshape(-1, 8, 8)
    labels = table[:, -1].astype(np.int64)
    return images, labels
