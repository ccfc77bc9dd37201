"""Self-check exercises of notebook 01: why 1 bit.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from ...units import bytes_at_bits
from .core import Exercise, register


def _paper_large_params() -> int:
    from ...language_model import LanguageModel

    return LanguageModel.on_meta("paper-large").num_parameters()


def _my_bytes(num_params: int, bits: int) -> int:
    """The model answer: whole bytes, rounded up, in integers."""
    return -(-num_params * bits // 8)


register(
    Exercise(
        id="01.memory_bytes",
        title="Bytes for a model at a given precision",
        reference=bytes_at_bits,
        cases=lambda: [(1000, 32), (1000, 16), (1000, 8), (1000, 1), (1_234_567, 1), (7_000_000_000, 16), (13, 1)],
        forbidden=("binedu.units.bytes_at_bits",),
        solution=_my_bytes,
        hint="one parameter takes `bits` bits and a byte holds 8 bits; memory comes in whole bytes, so round up "
        "(math.ceil, or -(-a // b) with integers).",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="01.training_gb",
        title="Memory to *train* the paper's large language model with Adam in float32, in GB (10**9 bytes)",
        reference=lambda: _paper_large_params() * 16 / 1e9,
        hint="per parameter: the float32 latent value (4 bytes), its gradient (4) and Adam's two moments (8); "
        "count the parameters with binedu (LanguageModel.from_config('paper-large') built under "
        "torch.device('meta'), then .num_parameters(), or binedu.course.widgets.paper_model_parameters).",
        rtol=1e-3,
        atol=0,
    )
)

register(
    Exercise(
        id="01.fits_in_24gb",
        title="Billions of parameters that fit in 24 GB (24 * 10**9 bytes) at 1 bit",
        reference=lambda: 24e9 * 8 / 1e9,
        hint="at 1 bit a byte holds 8 parameters; at float16 (2 bytes) the same 24 GB hold only 12 billion.",
        rtol=1e-3,
        atol=0,
    )
)
