"""How much memory a model needs as float32 and as packed bits, layer by layer.

The paper's claim (Section 6): stored as bits, a trained binary model needs 32x less
memory than float32. :func:`memory_report` counts it for a real model, before packing
(a binary model, from its parameter shapes) or after (a packed model, from its buffers),
and prints it as a table in the spirit of larq's model summary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .base import BinaryModule
from .packed import PACKED_LAYERS, PackedLayer
from .units import format_bytes

__all__ = ["memory_report", "MemoryReport", "LayerMemory"]

FLOAT32_BYTES = 4


def _ratio(float32_bytes: int, packed_bytes: int) -> float:
    return float32_bytes / packed_bytes if packed_bytes else math.inf if float32_bytes else 1.0


@dataclass(frozen=True)
class LayerMemory:
    """One layer: its parameter count, their size as float32 and as stored when packed
    (``packed_bytes`` equals ``float32_bytes`` for tensors that cannot be packed)."""

    name: str
    type: str
    parameters: int
    float32_bytes: int
    packed_bytes: int
    packable: bool = True

    @property
    def ratio(self) -> float:
        """``float32_bytes / packed_bytes``: 32 at most, a little less when rows are padded."""
        return _ratio(self.float32_bytes, self.packed_bytes)


@dataclass(frozen=True)
class MemoryReport:
    """Rows per layer and the totals; ``print(report)`` shows the table."""

    rows: tuple[LayerMemory, ...]

    @property
    def total_params(self) -> int:
        return sum(r.parameters for r in self.rows)

    @property
    def float32_bytes(self) -> int:
        return sum(r.float32_bytes for r in self.rows)

    @property
    def packed_bytes(self) -> int:
        return sum(r.packed_bytes for r in self.rows)

    @property
    def ratio(self) -> float:
        return _ratio(self.float32_bytes, self.packed_bytes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the rows (with their ratios) and the totals."""
        return {
            "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
            "total_params": self.total_params,
            "float32_bytes": self.float32_bytes,
            "packed_bytes": self.packed_bytes,
            "ratio": self.ratio,
        }

    def __str__(self) -> str:
        header = ("Layer (type)", "Params", "float32", "packed", "ratio")
        body = [
            (
                f"{r.name or '(model)'} ({r.type})",
                f"{r.parameters:,}",
                format_bytes(r.float32_bytes, binary=True),
                format_bytes(r.packed_bytes, binary=True) + ("" if r.packable else " (float)"),
                f"{r.ratio:.2f}x",
            )
            for r in self.rows
        ]
        total = (
            "Total",
            f"{self.total_params:,}",
            format_bytes(self.float32_bytes, binary=True),
            format_bytes(self.packed_bytes, binary=True),
            f"{self.ratio:.2f}x",
        )
        widths = [max(len(line[i]) for line in [header, *body, total]) for i in range(5)]

        def fmt(line: tuple[str, ...]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )

        rule = "-" * len(fmt(header))
        lines = [fmt(header), rule, *map(fmt, body), rule.replace("-", "="), fmt(total)]
        lines.append(
            f"Total params: {self.total_params:,}  |  float32: {format_bytes(self.float32_bytes, binary=True)}  |  "
            f"packed: {format_bytes(self.packed_bytes, binary=True)}  |  {self.ratio:.2f}x smaller"
        )
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython / Jupyter
        printer.text(str(self))


def _packed_bytes_of(layer: BinaryModule) -> int:
    """Bytes a binary layer's bits take once packed, from its shapes (no packing done)."""
    kind = PACKED_LAYERS[type(layer)]
    with torch.device("meta"):  # the empty packed layer allocates nothing
        shell = kind(**kind.args_of(layer))
    return sum(math.prod(layout.packed_shape) for layout in shell.layouts().values())


def memory_report(model: nn.Module) -> MemoryReport:
    """Parameters, float32 bytes, packed bytes and their ratio, per layer and in total.

    Works on a binary model (counted from its parameter shapes, nothing is packed) and on
    a packed one (counted from its bit buffers): both give the same numbers. Tensors that
    cannot be packed (float layers, learnable normalizations, other modules' parameters)
    are listed as kept in float (``packable=False``, ratio 1).
    """
    rows = []
    for name, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        kind = type(module).__name__
        if isinstance(module, PackedLayer):
            n = module.num_bits()
            packed = sum(b.numel() * b.element_size() for b in module.buffers(recurse=False))
            rows.append(LayerMemory(name, kind, n, FLOAT32_BYTES * n, packed))
        elif isinstance(module, BinaryModule) and type(module) in PACKED_LAYERS and module.binary:
            n = sum(p.numel() for p in own)
            rows.append(LayerMemory(name, kind, n, FLOAT32_BYTES * n, _packed_bytes_of(module)))
        elif own:
            n = sum(p.numel() for p in own)
            kept = sum(p.numel() * p.element_size() for p in own)
            rows.append(LayerMemory(name, kind, n, FLOAT32_BYTES * n, kept, packable=False))
    return MemoryReport(tuple(rows))
