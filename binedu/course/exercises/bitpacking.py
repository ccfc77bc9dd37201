"""Self-check exercises of notebook 06: bit-packing.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ...linear import BinaryLinear
from ...packed import PackedLinear, pack_model
from ...units import bytes_at_bits
from .core import BITS_PER_BYTE as _BITS
from .core import Exercise, Measured, Prediction, _seal, register


def pack_byte(bits: Sequence[int]) -> int:
    """The byte that holds eight 0/1 values, the first in the least significant bit (the
    "little" bit order of ``binedu.pack_bits`` and ``numpy.packbits(bitorder="little")``)."""
    if len(bits) != _BITS or any(b not in (0, 1) for b in bits):
        raise ValueError(f"pack_byte needs exactly 8 values of 0 or 1, got {list(bits)}")
    return sum(int(b) << j for j, b in enumerate(bits))


def unpack_byte(byte: int) -> tuple[int, ...]:
    """The eight bits of ``byte`` (0..255), least significant first: inverse of :func:`pack_byte`."""
    if not 0 <= byte <= 255:
        raise ValueError(f"a byte is a number from 0 to 255, got {byte}")
    return tuple((byte >> j) & 1 for j in range(_BITS))


def _as_bit_tuple(fn: Callable[..., Any], args: tuple) -> Any:
    """Observe an unpacking answer as a tuple of ints, so a list or a tensor of bits counts too."""
    out = fn(*args)
    if out is None or out is Ellipsis:
        return out
    return tuple(int(b) for b in (out.tolist() if isinstance(out, torch.Tensor) else out))


def packed_matrix_bytes(rows: int, cols: int) -> int:
    """Bytes of a ``(rows, cols)`` 0/1 matrix packed row by row: each row is padded to whole
    bytes, ``rows * ceil(cols / 8)`` (so a row of 10 bits takes 2 bytes, not 1.25)."""
    if rows < 0 or cols < 0:
        raise ValueError(f"rows and cols must be >= 0, got {rows} and {cols}")
    return rows * bytes_at_bits(cols, 1)





_PACKING = ("binedu.bits.pack_bits", "binedu.bits.unpack_bits", "numpy.packbits", "numpy.unpackbits")


def _bytes_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(6)
    random = [tuple(torch.randint(0, 2, (_BITS,), generator=g).tolist()) for _ in range(4)]
    return [
        ((1, 0, 0, 0, 0, 0, 0, 0),),
        ((0, 0, 0, 0, 0, 0, 0, 1),),
        ((1, 0, 1, 1, 0, 0, 0, 1),),
        *((r,) for r in random),
    ]


register(
    Exercise(
        id="06.pack_byte",
        title="Pack eight bits into one byte (little bit order: the first bit is worth 1)",
        reference=pack_byte,
        cases=_bytes_cases,
        forbidden=("binedu.course.exercises.bitpacking.pack_byte", *_PACKING),
        hint=(
            'what is the first bit worth, and the last one, in the little bit order?',
            "bit j (counting from 0) is worth 2**j: add bits[j] << j (or bits[j] * 2**j) over j = 0..7. "
            "The first value is the *least* significant bit, unlike how we write binary numbers.",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="06.unpack_byte",
        title="Unpack one byte into its eight bits, least significant first (a tuple of 0/1)",
        reference=unpack_byte,
        cases=lambda: [(0,), (1,), (128,), (141,), (255,), (0b01010101,)],
        observe=_as_bit_tuple,
        forbidden=("binedu.course.exercises.bitpacking.unpack_byte", *_PACKING),
        hint=(
            'how do you read one bit of an integer with a shift and a mask?',
            "bit j of the byte is (byte >> j) & 1, for j = 0..7; return them as a tuple.",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="06.packed_matrix_bytes",
        title="Bytes of a (rows, cols) 0/1 matrix packed row by row",
        reference=packed_matrix_bytes,
        cases=lambda: [(1, 8), (1, 10), (3, 8), (10, 100), (2048, 2048), (256, 1), (5, 0)],
        forbidden=("binedu.course.exercises.bitpacking.packed_matrix_bytes", "binedu.units.bytes_at_bits", "binedu.bits.packed_length"),
        hint=(
            'can two rows share a byte?',
            "each row starts a fresh byte, so one row takes ceil(cols / 8) bytes (10 bits need 2 bytes), "
            "and there are `rows` of them.",
        ),
        rtol=0,
        atol=0,
    )
)




def packing_experiment(in_features: int = 64, out_features: int = 64) -> Measured:
    """Predict-then-run (notebook 06): pack a ``BinaryLinear(in_features, out_features)``
    (kernel and bias) with binedu and measure the bytes its packed buffers hold, and the
    bits stored per parameter (1.0 when no row needs padding)."""
    packed = PackedLinear.from_binary(BinaryLinear(in_features, out_features))
    stored = sum(b.numel() * b.element_size() for b in packed.buffers())
    parameters = in_features * out_features + out_features
    return _seal(
        settings={"in_features": in_features, "out_features": out_features},
        values={"packed_bytes": stored, "parameters": parameters, "bits_per_parameter": 8 * stored / parameters},
    )


register(
    Prediction(
        id="06.predict_padding",
        title="Bits stored per parameter when a layer with 12 inputs and 64 units is packed",
        changed={"in_features": 12},
        keys=("bits_per_parameter",),
        outcome=lambda m: m.values["bits_per_parameter"],
        tolerance=0.05,
        explain=lambda m: (
            f"Your run packed {m.values['parameters']:,} parameters into {m.values['packed_bytes']:,} bytes: "
            f"{m.values['bits_per_parameter']:.3f} bits per parameter."
        ),
        hint=(
            '12 bits do not fill whole bytes: what happens to the rest of the last byte of each row?',
            "each unit's 12 kernel bits are packed on their own and start a fresh byte; the 64 bias bits fill "
            "whole bytes. Count the bytes, times 8, divided by the parameters (kernel and bias).",
        ),
    )
)


# ---------------------------------------------------------------- build: NumPy-only packed inference


def packed_layers(model: nn.Module) -> list[dict[str, Any]]:
    """What the packed-inference build gets: ``pack_model(model)``'s layers as plain NumPy
    arrays, in order: ``weight`` (``uint8``, ``(ceil(in_features / 8), out_features)``: the
    paper's ``(n_x, n_units)`` kernel packed along ``n_x``, little bit order), ``bias``
    (``uint8``, ``(ceil(out_features / 8),)``), ``in_features``, ``out_features`` and
    ``activation`` ("relu" or "linear")."""
    packed = pack_model(model)
    return [
        {"weight": _array(layer.weight_bits), "bias": _array(layer.bias_bits),
         "in_features": layer.in_features, "out_features": layer.out_features, "activation": layer.activation}
        for layer in packed.modules() if isinstance(layer, PackedLinear)
    ]


def _array(buffer: Any) -> np.ndarray:
    assert isinstance(buffer, torch.Tensor)
    return buffer.numpy().copy()


def packed_model_forward(layers: list[dict[str, Any]], x: np.ndarray) -> np.ndarray:
    """The reference: the same layers run by binedu's PackedLinear (Alg. 2 from the bits)."""
    out = torch.from_numpy(np.asarray(x, dtype=np.float32))
    for spec in layers:
        layer = PackedLinear(spec["in_features"], spec["out_features"], spec["activation"])
        for buffer, key in ((layer.weight_bits, "weight"), (layer.bias_bits, "bias")):
            assert isinstance(buffer, torch.Tensor)
            buffer.copy_(torch.from_numpy(spec[key]))
        with torch.no_grad():
            out = layer(out)
    return out.numpy()


def inference_model(seed: int) -> nn.Module:
    """The tiny binary MLP the packed-inference build is checked on (odd widths: the rows
    need padding)."""
    torch.manual_seed(seed)
    return nn.Sequential(BinaryLinear(20, 37, "relu"), BinaryLinear(37, 16, "relu"), BinaryLinear(16, 5))


def _inference_cases() -> list[tuple]:
    """(packed layers, input batch) of three seeded models: packed before the check switches
    pack_model off."""
    return [(packed_layers(inference_model(seed)),
             torch.randn(batch, 20, generator=torch.Generator().manual_seed(seed + 1)).numpy())
            for seed, batch in ((0, 4), (1, 1), (2, 7))]


def _inference_observe(fn: Callable[..., Any], args: tuple) -> torch.Tensor | None:
    layers, x = args
    out = fn(copy.deepcopy(layers), x.copy())
    if out is None or out is Ellipsis:
        return None
    if isinstance(out, torch.Tensor):
        raise TypeError("use NumPy only: return a numpy array, not a torch tensor")
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


register(
    Exercise(
        id="06.build_packed_inference",
        title="Build: NumPy-only inference of a packed binary network, equal to binedu's pack_model",
        reference=packed_model_forward,
        cases=_inference_cases,
        observe=_inference_observe,
        forbidden=(*_PACKING, "binedu.packed.pack_model", "binedu.packed.PackedLinear", "binedu.packed.packed_matmul",
                   "binedu.packed.unpack_kernel", "binedu.packed.unpack_float", "binedu.packed.lut_matmul",
                   "binedu.packed.dense_matmul"),
        hint=(
            "first unpack each layer's bytes back to a 0/1 matrix, then run Alg. 2 layer by layer.",
            "bit j of byte g in column u of `weight` is the weight from input 8 * g + j to unit u: "
            "(byte >> j) & 1; drop the padding rows beyond in_features. The bias is packed the same way.",
            "each layer: z = x @ W + b, then Normalize over the last axis (population variance, eps = 1e-5 inside "
            "the square root), then ReLU when activation == 'relu'.",
        ),
        rtol=1e-4,
        atol=1e-4,
    )
)
