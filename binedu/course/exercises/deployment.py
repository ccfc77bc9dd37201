"""Self-check exercises of notebook 07: deployment and lookup tables.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.data import Dataset

from ...base import BinaryModule
from ...metrics import evaluate
from ...units import bytes_at_bits
from .core import BITS_PER_BYTE as _BITS
from .core import Exercise, Measured, Prediction, _seal, register


def lut_entry(x: torch.Tensor, k: int) -> torch.Tensor:
    """Entry ``k`` of the lookup table of 8 inputs ``x``: the sum of the ``x[j]`` whose bit
    ``j`` is set in byte ``k``, i.e. the dot product of ``x`` with the 0/1 weights that
    byte ``k`` packs. Only additions, no multiplication."""
    if x.shape != (_BITS,) or not 0 <= k <= 255:
        raise ValueError(f"lut_entry needs 8 inputs and a byte 0..255, got shape {tuple(x.shape)} and {k}")
    return sum((x[j] for j in range(_BITS) if (k >> j) & 1), torch.zeros((), dtype=x.dtype))


def lut_dot(x: torch.Tensor, packed_row: torch.Tensor) -> torch.Tensor:
    """``W_b x`` for ONE output unit, from its packed 0/1 weights: one 256-entry table per
    group of 8 inputs, then a gather (table ``g`` at byte ``packed_row[g]``) and a sum."""
    groups = x.reshape(-1, _BITS)  # (G, 8)
    if groups.shape[0] != packed_row.numel():
        raise ValueError(f"{x.numel()} inputs need {groups.shape[0]} bytes, got {packed_row.numel()}")
    return lut_tables(groups).gather(1, packed_row.long().reshape(-1, 1)).sum()


def lut_tables(groups: torch.Tensor) -> torch.Tensor:
    """The 256-entry table of every group of 8 inputs, ``(G, 8) -> (G, 256)``, built with
    255 additions per group: entry ``k`` is entry ``k`` without its lowest set bit, plus the
    input of that bit (``T[k] = T[k & (k - 1)] + x[j]``)."""
    tables = groups.new_zeros(groups.shape[0], 256)
    for k in range(1, 256):
        low = (k & -k).bit_length() - 1  # index of the lowest set bit of k
        tables[:, k] = tables[:, k & (k - 1)] + groups[:, low]
    return tables


def lut_table_bytes(in_features: int) -> int:
    """float32 bytes of the lookup tables for one input vector of ``in_features``
    (``in_features / 8`` tables of 256 entries of 4 bytes): the price of the trick."""
    return bytes_at_bits(in_features, 1) * 256 * 4




_LIBRARY = (
    "binedu.bits.unpack_bits",
    "numpy.unpackbits",
    "binedu.packed.lut_matmul",
    "binedu.packed.dense_matmul",
    "binedu.packed.packed_matmul",
    "binedu.lut_kernel.packed_linear",  # the compiled kernel a PackedLinear calls
)


def _lut_entry_cases() -> list[tuple]:
    x = torch.tensor([0.5, -1.0, 2.0, 0.25, 3.0, -0.5, 1.5, 4.0])
    return [(x, 0), (x, 1), (x, 0b00000110), (x, 141), (x, 255), (torch.arange(8.0), 170)]


def _lut_dot_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(7)
    return [
        (torch.randn(8, generator=g), torch.tensor([141], dtype=torch.uint8)),
        (torch.randn(16, generator=g), torch.tensor([0, 255], dtype=torch.uint8)),
        (torch.randn(32, generator=g), torch.randint(0, 256, (4,), generator=g, dtype=torch.uint8)),
    ]


register(
    Exercise(
        id="07.lut_entry",
        title="One lookup-table entry: the partial sum of the 8 inputs selected by byte k",
        reference=lut_entry,
        cases=_lut_entry_cases,
        forbidden=("binedu.course.exercises.deployment.lut_entry", "binedu.course.exercises.deployment.lut_tables", *_LIBRARY),
        hint=(
            'which of the 8 inputs does byte k select?',
            "bit j of k is (k >> j) & 1; add x[j] for every j whose bit is 1 (entry 0 is 0.0, entry 255 is "
            "x.sum()). Return a tensor or a float.",
        ),
        atol=1e-5,
    )
)

register(
    Exercise(
        id="07.lut_dot",
        title="A binary dot product from packed bytes with lookup tables (gather + add)",
        reference=lut_dot,
        cases=_lut_dot_cases,
        forbidden=("binedu.course.exercises.deployment.lut_dot", "binedu.course.exercises.deployment.lut_tables", "binedu.course.exercises.deployment.lut_entry", *_LIBRARY),
        hint=(
            'the packed row has one byte per group of 8 inputs.',
            "split x into groups of 8 (x.reshape(-1, 8)); for group g look up entry packed_row[g] of its table "
            "(use your lut_entry) and add the results. Check: it equals unpack_bits(packed_row, x.numel()) @ x.",
        ),
        atol=1e-4,
    )
)

register(
    Exercise(
        id="07.lut_table_bytes",
        title="float32 bytes of the lookup tables for one input of 2048 features",
        digest="3fe7d12fdcfce16999d9",
        hint=(
            'how many tables does one input of 2048 features need, and how large is each?',
            "one table per group of 8 inputs, 256 entries per table, 4 bytes per float32 entry.",
        ),
        rtol=0,
        atol=0,
    )
)




THRESHOLDS = ("mean", "zero")


def export_experiment(model: nn.Module, dataset: Dataset, threshold: str = "mean") -> Measured:
    """Predict-then-run (notebook 07): export a trained binary model's bits with another
    threshold rule than Eq. 1's mean, as a hand-written exporter that takes the sign of the
    latent weights (``threshold="zero"``: bit = latent > 0) would, and measure the accuracy
    on ``dataset`` of the model with those bits, next to that of Eq. 1's bits. The model
    itself is not changed (a copy is)."""
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    exported = copy.deepcopy(model)
    if threshold == "zero":
        for layer in exported.modules():
            if isinstance(layer, BinaryModule) and layer.binary:
                layer.q = lambda p: (p > 0).to(p.dtype)  # type: ignore[method-assign]  # on this copy only, the rule replaces Eq. 1
    return _seal(
        settings={"threshold": threshold},
        values={"acc_eq1": evaluate(model, dataset)["acc"], "acc": evaluate(exported, dataset)["acc"]},
    )


def _export_outcome(measured: Measured) -> str:
    drop = measured.values["acc_eq1"] - measured.values["acc"]
    return "about the same" if drop < 0.02 else "a little lower" if drop < 0.2 else "much lower"


register(
    Prediction(
        id="07.predict_export_threshold",
        title="Export the trained digit classifier's bits with a zero threshold instead of Eq. 1: its accuracy is ...",
        options=("about the same", "a little lower", "much lower"),
        changed={"threshold": "zero"},
        keys=("acc_eq1", "acc"),
        outcome=_export_outcome,
        explain=lambda m: (
            f"Your run measured a validation accuracy of {m.values['acc_eq1']:.3f} with Eq. 1's bits and "
            f"{m.values['acc']:.3f} with the bits of a zero threshold ('about the same': less than 2 points "
            "lower; 'a little lower': less than 20 points)."
        ),
        hint=(
            "Eq. 1's threshold moves with the weights; a zero threshold does not.",
            "the model was trained with Eq. 1's bits: the threshold is the mean of each tensor. How far from 0 "
            "are the means of the trained latent tensors, the biases in particular (they start at exactly 0)?",
        ),
    )
)
