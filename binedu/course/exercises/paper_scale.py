"""Self-check exercises of notebook 08: paper scale.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from ...units import bytes_at_bits
from .core import Exercise, get_exercise, register
from .image_model import bncvl_parameters  # one name and signature per concept: notebook 04 defines it


def bnfcl_parameters(n_x: int, n_units: int) -> int:
    """Parameters of a BNFCL (Alg. 1): an ``(n_x, n_units)`` kernel and ``n_units`` biases."""
    return n_x * n_units + n_units


def paper_packed_megabytes(name: str) -> float:
    """Megabytes (10**6 bytes) of a paper model stored at 1 bit per parameter, counted on
    the meta device (nothing allocated)."""
    from ..widgets import paper_model_parameters  # imported late: only this check needs ipywidgets

    return bytes_at_bits(paper_model_parameters(name), 1) / 1e6


def _my_bnfcl_parameters(n_x: int, n_units: int) -> int:
    """The model answer: one weight per (input, unit) pair, one bias per unit."""
    return n_units * (n_x + 1)


register(
    Exercise(
        id="08.bnfcl_parameters",
        title="Parameters of a BNFCL with n_x inputs and n_units units (kernel and bias)",
        reference=bnfcl_parameters,
        cases=lambda: [(768, 4096), (4096, 2048), (2048, 30522), (256, 101), (1, 1)],
        forbidden=("binedu.course.exercises.paper_scale.bnfcl_parameters", "binedu.model.count_parameters", "binedu.linear.BinaryLinear",
                   "torch.nn.Linear"),
        solution=_my_bnfcl_parameters,
        hint="the kernel has one parameter per (input, unit) pair and the bias one per unit; both are "
        "binarized, so both count.",
        rtol=0,
        atol=0,
    )
)

_BNCVL_04 = get_exercise("04.bncvl_parameters")  # notebook 04's exercise, asked again at paper scale
if not isinstance(_BNCVL_04, Exercise):
    raise TypeError("04.bncvl_parameters must be a function exercise (an Exercise)")

register(
    Exercise(
        id="08.bncvl_parameters",
        title="bncvl_parameters(in_channels, out_channels, filter_size), as in notebook 04",
        reference=bncvl_parameters,
        cases=lambda: [(3, 32, 3), (32, 32, 3), (128, 256, 5), (1, 1, 1)],
        forbidden=_BNCVL_04.forbidden,
        solution=_BNCVL_04.solution,
        hint="each of the out_channels filters has f * f * in_channels weights, plus one bias per filter.",
        rtol=0,
        atol=0,
    )
)

def mixed_precision_megabytes(name: str = "paper-large") -> float:
    """Megabytes (10**6 bytes) of a paper language model deployed the way many binary
    networks are (XNOR-Net, BitNet): its embedding (BEMBL) and its last layer (the BNFCL
    over the vocabulary) kept in float32, every other parameter at 1 bit."""
    from ...language_model import LanguageModel

    model = LanguageModel.on_meta(name)
    kept = sum(p.numel() for m in (model.embedding, model.head[-1]) for p in m.parameters())
    return (4 * kept + bytes_at_bits(model.num_parameters() - kept, 1)) / 1e6


register(
    Exercise(
        id="08.mixed_precision_mb",
        title="paper-large with its embedding and its last layer in float32, the rest at 1 bit: MB (10**6 bytes)",
        reference=mixed_precision_megabytes,
        hint="count the parameters of model.embedding and of model.head[-1] (on the meta device), 4 bytes each; "
        "every other parameter takes 1/8 byte. Add, divide by 10**6.",
        rtol=1e-3,
        atol=0,
    )
)
