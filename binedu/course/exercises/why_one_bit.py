"""Self-check exercises of notebook 01: why 1 bit.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from ...units import bytes_at_bits
from .core import Exercise, register

register(
    Exercise(
        id="01.memory_bytes",
        title="Bytes for a model at a given precision",
        reference=bytes_at_bits,
        cases=lambda: [(1000, 32), (1000, 16), (1000, 8), (1000, 1), (1_234_567, 1), (7_000_000_000, 16), (13, 1)],
        forbidden=("binedu.units.bytes_at_bits",),
        hint=(
            "compare your answer with the one that failed: is it a fraction, or one byte short?",
            "memory comes in whole bytes: a part of a byte still takes the whole byte.",
            "one parameter takes `bits` bits and a byte holds 8; round up with integers only (floats lose digits "
            "for 7 billion parameters).",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="01.training_gb",
        title="Memory to *train* the paper's small language model with Adam in float32, in GB (10**9 bytes)",
        digest="c22764345f8b93d041ff",
        hint=(
            "training keeps more than the weights: list everything Adam stores for one parameter.",
            "per parameter: the float32 latent value, its gradient and Adam's two moments, 4 bytes each.",
            "count the parameters with binedu: LanguageModel.on_meta('paper-small').num_parameters().",
        ),
        rtol=1e-3,
        atol=0,
    )
)

register(
    Exercise(
        id="01.fits_in_24gb",
        title="Billions of parameters that fit in 24 GB (24 * 10**9 bytes) at 1 bit",
        digest="286aeeb7e7e3a6d38bbf",
        hint=(
            "how many parameters does one byte hold at 1 bit?",
            "at float16 (2 bytes per parameter) the same 24 GB hold 12 billion parameters; 1 bit is 16 times smaller.",
        ),
        rtol=1e-3,
        atol=0,
    )
)
