"""Self-check exercises of the notebooks, one module per notebook: formative feedback for
self-study, not grading (a teacher grades with the teacher's kit, outside the student's
kernel; this package holds no answer key).

A student completes a small function or value in a notebook and calls
``check("02.quantize", my_quantize)``; :mod:`.core` holds the checking machinery and each
notebook's module registers that notebook's exercises when it is imported (below).
"""

from . import (  # noqa: F401  (importing a notebook's module registers its exercises)
    binarization,
    bitpacking,
    deployment,
    image_model,
    language_model,
    normalization,
    paper_scale,
    scaling,
    why_one_bit,
)
from .core import Exercise, Measured, Prediction, check, exercises, get_exercise, register

__all__ = ["Exercise", "Prediction", "Measured", "register", "check", "exercises", "get_exercise"]
