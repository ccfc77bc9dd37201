"""Packed inference: a trained binary model that holds its bits and nothing else.

During training every binary layer keeps float32 latent weights (Alg. 1); its forward
pass only ever uses their bits, Quant(W) (Eq. 1). After training the latents can go
(Section 2): :func:`pack_model` replaces every binedu layer by a *packed* layer whose
only tensors are ``uint8`` buffers holding 8 bits per byte (:func:`binedu.pack_bits`),
32x less than float32. The model around the layers (attention, transformer blocks, the
paper models and a user's ``nn.Sequential``) is kept, so a packed model is called exactly
like the binary one and gives the same outputs (up to float rounding).

Packed layers never rebuild a whole float weight. A dense layer computes ``W x`` from the
bits in one of three ways (:func:`packed_matmul`):

* ``"numba"``: the compiled lookup-table kernel of :mod:`binedu.lut_kernel_numba`
  (numba, the optional ``fast`` extra): multiplication-free lookup tables over groups of
  8 input bits, with the bias, the normalization and the activation fused after it
  (:class:`PackedLinear`); fastest for 1 to :data:`binedu.lut_kernel.MAX_ROWS` input
  rows, because it reads 32x fewer weight bytes than a float32 product (it takes any
  number of rows);
* ``"lut"``: the same lookup tables in plain PyTorch (:func:`lut_matmul`): the readable
  reference, and the fallback where numba is missing or fails to compile;
* ``"dense"``: unpack a bounded block of units to a 0/1 float matrix and multiply
  (:func:`dense_matmul`); fastest for many rows, where the matrix product is compute-bound.

``"auto"`` (the default) picks ``"numba"`` for up to ``MAX_ROWS`` (8) rows when the
compiled kernel runs here, else ``"lut"`` for at most :data:`LUT_MAX_ROWS` rows and
``"dense"`` above. The plain-PyTorch LUT kernel is a chain of many small operations, so it
runs on :data:`LUT_THREADS` thread(s) whatever ``torch.get_num_threads()`` says (see
:func:`lut_matmul`); the compiled one follows ``torch.get_num_threads()``. Packed models
are for inference only: they have no parameters and cannot be trained.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakTensorKeyDictionary

from . import lut_kernel
from .base import BinaryModule
from .bits import pack_bits, packed_length, unpack_bits
from .conv import BinaryConv2d
from .embedding import BinaryEmbedding, check_tokens
from .linear import BinaryLinear
from .model import ConfigModel
from .normalize import EPS, Normalize, make_norm
from .quantize import quantize

__all__ = [
    "pack_model",
    "PackedLayer",
    "PackedLinear",
    "PackedConv2d",
    "PackedEmbedding",
    "BitLayout",
    "packed_matmul",
    "lut_matmul",
    "dense_matmul",
    "subset_sums",
    "unpack_kernel",
    "unpack_float",
    "PACKED_LAYERS",
    "METHODS",
    "LUT_MAX_ROWS",
    "CHUNK_ELEMENTS",
    "DENSE_CHUNK_ELEMENTS",
    "LUT_CHUNK_ELEMENTS",
    "LUT_THREADS",
    "threads",
]

METHODS = ("auto", "numba", "lut", "dense")
LUT_MAX_ROWS = 4
"""``"auto"`` uses the lookup-table kernel for at most this many input rows: the
crossover measured with ``bench/bench_speed.py`` on a 2-core CPU (4 to 5 rows)."""
LUT_THREADS = 1
"""Threads the lookup-table kernel runs on (see :func:`lut_matmul`)."""
CHUNK_ELEMENTS = 1 << 20
"""At most this many weights are unpacked to float at a time (4 MiB as float32) by the
packed convolution: its peak extra memory (:func:`dense_matmul` unpacks
:data:`DENSE_CHUNK_ELEMENTS`)."""
DENSE_CHUNK_ELEMENTS = 1 << 19
"""Weights :func:`dense_matmul` unpacks per block (2 MiB as float32, the size of a
level-2 cache here): measured with 16 to 64 rows of a 4096 x 4096 layer on a 2-core CPU,
the same speed as :data:`CHUNK_ELEMENTS` at 1 thread and 2 to 5 % faster at 2."""
LUT_CHUNK_ELEMENTS = 1 << 18
"""At most this many table entries are gathered at a time by :func:`lut_matmul` (their
``int64`` indices, 2 MiB, stay in the CPU's level-2 cache)."""

# Row v holds the 8 bits of byte value v, least significant first: unpacking a byte to
# floats is one table lookup (same result as ``unpack_bits``, done in one step).
_BYTE_BITS = unpack_bits(torch.arange(256, dtype=torch.uint8).unsqueeze(1), 8).float()
_SHIFTS = torch.arange(8, dtype=torch.uint8).view(1, 8, 1)  # bit j of a byte is (byte >> j) & 1


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then restore the previous number."""
    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def unpack_float(packed: torch.Tensor, count: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The first ``count`` bits along the last axis of ``packed`` as a 0/1 float tensor
    (``unpack_bits(packed, count).to(dtype)``, by one lookup per byte)."""
    bits = F.embedding(packed.int(), _BYTE_BITS.to(dtype)).flatten(-2)
    return bits[..., :count]


def lut_matmul(x: torch.Tensor, weight_bits: torch.Tensor, chunk_elements: int = LUT_CHUNK_ELEMENTS) -> torch.Tensor:
    """``x @ W`` for a 0/1 matrix ``W`` of shape ``(n_x, n_units)`` stored as
    ``weight_bits = pack_bits(W, dim=0)``, without a single multiplication.

    How 1-bit inference engines do it: byte ``g`` of output column ``u`` holds the bits of
    ``W[8g : 8g + 8, u]``, so it says which of the 8 inputs ``x[8g : 8g + 8]`` are summed.
    There are only 256 possible bytes, so first build, for every group ``g``, the table

        T[g, v] = sum of x[8g + j] over the bits j set in v     (v = 0 .. 255)

    with 255 additions (``T[g, v + 2**j] = T[g, v] + x[8g + j]`` for ``v < 2**j``); then
    every output is ``y[u] = sum_g T[g, byte[g, u]]``: one table lookup and one addition
    per 8 weights. The tables cost about 32 additions per input feature and row, shared
    by all ``n_units`` outputs, and the weights are read as bytes: 32x fewer than float32,
    which is what makes it fast for one input row, where a float32 matrix-vector product
    spends its time reading weights from memory. For many rows the tables grow with the
    batch and :func:`dense_matmul` wins. (CPU engines for 1-bit and ternary language
    models, such as T-MAC and bitnet.cpp, use this idea with SIMD table lookups.)

    The kernel is about twenty small tensor operations. Each one run on several threads
    pays a fork and a join; on a machine where other processes use the cores, a helper
    thread that is not scheduled stalls every one of them, and a process whose threads
    share a core stays slow (the 2-thread timings were bimodal across processes). So it
    runs on :data:`LUT_THREADS` thread(s): the same speed in every process.

    ``x`` is ``(rows, n_x)``; the result is ``(rows, n_units)``.
    """
    with threads(LUT_THREADS):
        return _lut_matmul(x, weight_bits, chunk_elements)


def subset_sums(x: torch.Tensor, groups_count: int) -> torch.Tensor:
    """The lookup tables of :func:`lut_matmul`: ``(rows, groups_count, 256)``, entry ``v``
    of group ``g`` the sum of the inputs ``x[:, 8g + j]`` over the bits ``j`` set in ``v``
    (inputs past ``n_x`` count as zero), built with 255 additions per group and row."""
    rows, n_x = x.shape
    if n_x < 8 * groups_count:  # the last group is padded with zero inputs
        x = F.pad(x, (0, 8 * groups_count - n_x))
    groups = x.reshape(rows, groups_count, 8)
    table = x.new_empty(rows, groups_count, 256)
    table[..., 0] = 0  # the empty subset
    for j in range(8):  # T[..., v + 2**j] = T[..., v] + x_j: every subset sum, additions only
        size = 1 << j
        torch.add(table[..., :size], groups[..., j : j + 1], out=table[..., size : 2 * size])
    return table


def unpack_kernel(weight_bits: torch.Tensor, n_x: int, dtype: torch.dtype) -> torch.Tensor:
    """Packed ``(groups, units)`` kernel bytes -> the ``(n_x, units)`` 0/1 matrix.

    Bit ``j`` of byte ``g`` is input ``8g + j``: shifting every byte right by ``j`` and
    keeping the lowest bit gives the ``j``-th row of each group, all bytes at once, in
    the ``(n_x, units)`` order a product needs (no transpose, one byte per weight
    before the float conversion)."""
    return ((weight_bits.unsqueeze(1) >> _SHIFTS) & 1).flatten(0, 1)[:n_x].to(dtype)


def _lut_matmul(x: torch.Tensor, weight_bits: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    rows = x.shape[0]
    groups_count, n_units = weight_bits.shape
    table = subset_sums(x, groups_count)
    step = max(1, chunk_elements // max(1, rows * n_units))  # groups per chunk
    out: torch.Tensor | None = None
    for g in range(0, groups_count, step):
        index = weight_bits[g : g + step].long().expand(rows, -1, -1)  # (rows, step, n_units)
        part = table[:, g : g + step].gather(2, index).sum(1)
        out = part if out is None else out.add_(part)
    if out is None:  # no groups: in_features == 0 packs to no bytes
        return table.new_zeros(rows, n_units)
    return out


def dense_matmul(
    x: torch.Tensor, weight_bits: torch.Tensor, chunk_elements: int = DENSE_CHUNK_ELEMENTS
) -> torch.Tensor:
    """``x @ W`` like :func:`lut_matmul`, by unpacking at most ``chunk_elements`` weights
    (a block of output columns) to a 0/1 float matrix at a time and multiplying it.

    The unpacking is the compiled kernel's (:func:`binedu.lut_kernel.unpack`, into one
    buffer reused by every block, which stays in the CPU's cache for the product) where
    it runs, else :func:`unpack_kernel`."""
    rows, n_x = x.shape
    groups_count, n_units = weight_bits.shape
    out = x.new_empty(rows, n_units)
    step = max(1, chunk_elements // max(1, 8 * groups_count))  # output columns per chunk
    buffer = torch.empty(n_x * min(step, n_units)) if x.dtype == torch.float32 and x.is_cpu else None
    for u in range(0, n_units, step):
        stop = min(u + step, n_units)
        w = None if buffer is None else buffer[: n_x * (stop - u)].view(n_x, stop - u)
        if w is None or not lut_kernel.unpack(weight_bits, u, stop, w):
            w = unpack_kernel(weight_bits[:, u:stop], n_x, x.dtype)
        out[:, u:stop] = x @ w
    return out


def packed_matmul(x: torch.Tensor, weight_bits: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """``x @ W`` over the last axis of ``x`` (any leading axes) for packed ``W``; ``method``
    is ``"numba"``, ``"lut"``, ``"dense"`` or ``"auto"`` (see the module's docstring).
    ``"numba"`` where the compiled kernel cannot run falls back like ``"auto"``."""
    if method not in METHODS:
        raise ValueError(f"unknown packed method {method!r}; use one of {METHODS}")
    if packed_length(x.shape[-1]) != weight_bits.shape[0]:
        raise ValueError(
            f"{x.shape[-1]} input features do not fit packed weights of {weight_bits.shape[0]} bytes per unit"
        )
    flat = x.reshape(-1, x.shape[-1])
    out = None
    if method == "numba" or method == "auto" and flat.shape[0] <= lut_kernel.MAX_ROWS:
        out = lut_kernel.packed_linear(flat, weight_bits, None, False, "linear", EPS)
        if out is None:
            method = "lut" if flat.shape[0] <= LUT_MAX_ROWS else "dense"
    if out is None:
        out = (lut_matmul if method == "lut" else dense_matmul)(flat, weight_bits)
    return out.reshape(*x.shape[:-1], weight_bits.shape[1])


@dataclass(frozen=True)
class BitLayout:
    """How the bits of one latent tensor are stored.

    A tensor of shape ``shape`` is packed along its trailing axes, one packed row per
    entry of its first axis (biases: one row). ``kernel_first=True`` stores a dense
    ``(n_units, n_x)`` kernel as the paper writes it, ``(n_x, n_units)``, packed along
    ``n_x``: the layout :func:`lut_matmul` reads.
    """

    shape: tuple[int, ...]
    kernel_first: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def packed_shape(self) -> tuple[int, ...]:
        if self.kernel_first:
            n_units, n_x = self.shape
            return (packed_length(n_x), n_units)
        if len(self.shape) == 1:
            return (packed_length(self.shape[0]),)
        return (self.shape[0], packed_length(math.prod(self.shape[1:])))

    def pack(self, bits: torch.Tensor) -> torch.Tensor:
        """0/1 tensor of ``shape`` -> its ``uint8`` bytes of ``packed_shape``."""
        if tuple(bits.shape) != self.shape:
            raise ValueError(f"expected bits of shape {self.shape}, got {tuple(bits.shape)}")
        if self.kernel_first:
            return pack_bits(bits.t(), dim=0).contiguous()
        return pack_bits(bits if len(self.shape) == 1 else bits.flatten(1)).contiguous()

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """The bytes back to the 0/1 float32 tensor of ``shape``."""
        if self.kernel_first:
            return unpack_bits(packed, self.shape[1], dim=0).t().float()
        if len(self.shape) == 1:
            return unpack_bits(packed, self.numel).float()
        return unpack_bits(packed, math.prod(self.shape[1:])).reshape(self.shape).float()


_UNPACKED = WeakTensorKeyDictionary()
"""Unpacked small tensors (biases) by packed buffer (see :meth:`PackedLayer.bits`)."""


class PackedLayer(BinaryModule):
    """Base of the packed layers: ``uint8`` bit buffers (one per latent tensor of the
    binary layer, named ``<tensor>_bits``) and the binary layer's
    ``Normalize -> Activation`` tail (:meth:`BinaryModule.finish`).

    A packed layer is built empty from its arguments (``PackedLinear(768, 768)``) or from
    a trained binary layer (:meth:`from_binary`). It has no parameters; its buffers are
    the only state, and :meth:`binary_parameters` unpacks them to the binary layer's
    0/1 tensors.
    """

    binary_type: ClassVar[type[BinaryModule]]

    def layouts(self) -> dict[str, BitLayout]:
        """How each latent tensor of the binary layer is stored, by name."""
        raise NotImplementedError

    arg_names: ClassVar[tuple[str, ...]]
    """Constructor arguments that the packed layer shares, by name, with its binary layer."""

    def args(self) -> dict[str, Any]:
        """The constructor arguments (plain JSON values) that rebuild this layer empty."""
        return self.args_of(self)

    @classmethod
    def args_of(cls, layer: BinaryModule | PackedLayer) -> dict[str, Any]:
        """The constructor arguments of the packed layer that holds ``layer``'s bits
        (``layer`` is the binary layer or a packed one: both carry these attributes)."""
        return {name: getattr(layer, name) for name in cls.arg_names} | {"normalize": _normalizes(layer)}

    def _register_bits(self) -> None:
        for name, layout in self.layouts().items():
            self.register_buffer(f"{name}_bits", torch.zeros(layout.packed_shape, dtype=torch.uint8))

    @classmethod
    def from_binary(cls, layer: BinaryModule) -> PackedLayer:
        """Pack a trained binary layer: Eq. 1 on each latent tensor, then 8 bits a byte."""
        if type(layer) is not cls.binary_type:
            raise ValueError(f"{cls.__name__} packs a {cls.binary_type.__name__}, got {type(layer).__name__}")
        if not layer.binary:
            raise ValueError(
                f"{type(layer).__name__} was built with binary=False: its float weights are the model, "
                "there are no bits to pack"
            )
        if layer.weights != "01" or not isinstance(layer.norm, Normalize | nn.Identity):
            raise ValueError(
                f"{type(layer).__name__} is an ablation control (weights={layer.weights!r}, norm "
                f"{type(layer.norm).__name__}): only 0/1 layers with Normalize (or none) are packed"
            )
        learnable = [name for name, _ in layer.named_parameters() if "." in name]  # not the layer's own
        if learnable:
            raise ValueError(
                f"{type(layer).__name__} has a learnable normalization (affine=True): its float "
                f"parameters {learnable} cannot be stored as bits"
            )
        packed = cls(**cls.args_of(layer))
        layouts = packed.layouts()
        for name, p in layer.named_parameters(recurse=False):
            getattr(packed, f"{name}_bits").copy_(layouts[name].pack(quantize(p.detach()).bool()))
        return packed.eval()

    def bits(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One latent tensor's bits as a 0/1 float tensor (for small tensors: biases).

        Unpacked once and kept (a few KiB per layer, outside the module's state) until the
        buffer changes in place (its version counter moves) or is replaced: a decoding step
        then does not redo this small unpack in every layer. Do not modify the result."""
        packed = getattr(self, f"{name}_bits")
        if packed.is_inference():  # made under torch.inference_mode: no version counter to key on
            return self.layouts()[name].unpack(packed).to(dtype)
        key = (packed._version, packed.data_ptr(), packed.shape, dtype, packed.device)
        hit = _UNPACKED.get(packed)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = self.layouts()[name].unpack(packed).to(dtype)
        _UNPACKED[packed] = (key, value)
        return value

    def binary_parameters(self) -> dict[str, torch.Tensor]:
        """The 0/1 tensors by name, exactly as the binary layer's ``binary_parameters()``."""
        return {name: layout.unpack(getattr(self, f"{name}_bits")) for name, layout in self.layouts().items()}

    def num_bits(self) -> int:
        """Number of parameters (one bit each) this layer stores."""
        return sum(layout.numel for layout in self.layouts().values())


def _normalizes(layer: BinaryModule) -> bool:
    """Whether a layer normalizes its output (``normalize=False`` is the ablation)."""
    return not isinstance(layer.norm, nn.Identity)


class PackedLinear(PackedLayer):
    """Packed BNFCL (Alg. 2): ``Activation(Normalize(W_b x + b_b))`` from the bits.

    ``weight_bits`` is the paper's ``(n_x, n_units)`` kernel packed along ``n_x``:
    ``(ceil(in_features / 8), out_features)`` bytes; ``bias_bits`` the packed bias. Set
    ``.method`` to ``"lut"``, ``"dense"`` or ``"auto"`` (see :func:`packed_matmul`).
    """

    binary_type = BinaryLinear
    arg_names = ("in_features", "out_features", "activation")
    weight_bits: torch.Tensor  # registered by _register_bits
    bias_bits: torch.Tensor

    def __init__(
        self, in_features: int, out_features: int, activation: str | None = None, *, normalize: bool = True
    ) -> None:
        super().__init__(out_features, activation, normalize=normalize, affine=False)
        self.in_features = in_features
        self.out_features = out_features
        self.method = "auto"
        self._register_bits()

    def layouts(self) -> dict[str, BitLayout]:
        return {
            "weight": BitLayout((self.out_features, self.in_features), kernel_first=True),
            "bias": BitLayout((self.out_features,)),
        }


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_x = self.in_features
        if x.shape[-1] != n_x:
            raise ValueError(
                f"PackedLinear expects inputs with {n_x} features in the last axis, got shape {tuple(x.shape)}"
            )
        method = self.method
        if method == "numba" or method == "auto" and x.numel() <= n_x * lut_kernel.MAX_ROWS:
            # the compiled kernel, with the bias, Normalize and the activation fused after it
            layer = self._kernel_plan()
            out = None if layer is None else lut_kernel.run(layer, x if x.ndim == 2 else x.reshape(-1, n_x))
            if out is not None:
                return out if x.ndim == 2 else out.view(*x.shape[:-1], self.out_features)
        z = packed_matmul(x, self.weight_bits, "auto" if method == "numba" else method)
        z += self.bits("bias", x.dtype)  # in place: z is a fresh tensor, no second copy at peak
        return self.finish(z)

    def _kernel_plan(self) -> lut_kernel.Plan | None:
        """This layer's :class:`~binedu.lut_kernel.Plan`, made once and kept while the
        weight and bias buffers, the activation and the normalization stay the same (an
        in-place write, ``load_state_dict`` or ``.to()`` makes a new one). Buffers made
        under ``torch.inference_mode`` have no version counter: their plan is made at
        every call."""
        buffers = self._buffers
        weight, bias = buffers["weight_bits"], buffers["bias_bits"]
        assert weight is not None and bias is not None
        kept = self.__dict__.get("_plan")  # (weight, bias, weight version, bias version, activation, norm, plan)
        norm = self._modules["norm"]
        if (
            kept is not None
            and kept[0] is weight  # never an inference tensor: those have no version
            and kept[1] is bias
            and kept[2] == weight._version
            and kept[3] == bias._version
            and kept[4] == self.activation
            and kept[5] is norm
        ):
            return kept[6]
        layer = lut_kernel.plan(weight, self.bits("bias"), isinstance(norm, Normalize), self.activation, EPS)
        if not (weight.is_inference() or bias.is_inference()):
            self.__dict__["_plan"] = (weight, bias, weight._version, bias._version, self.activation, norm, layer)
        return layer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_plan", None)  # views of this layer's buffers: copies and pickles make their own
        return state

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, activation={self.activation!r}, method={self.method!r}"


class PackedConv2d(PackedLayer):
    """Packed BNCVL (Alg. 3, Eq. 2), stride 1, "same" padding.

    ``weight_bits`` holds each output channel's ``in_channels * k * k`` kernel bits in one
    packed row; the convolution unpacks at most :data:`CHUNK_ELEMENTS` weights (a block of
    output channels) at a time.
    """

    binary_type = BinaryConv2d
    weight_bits: torch.Tensor  # registered by _register_bits
    arg_names = ("in_channels", "out_channels", "kernel_size", "activation", "norm_mode")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: str | None = None,
        *,
        normalize: bool = True,
        norm_mode: str = "channels",
    ) -> None:
        if norm_mode not in ("channels", "chw"):
            raise ValueError(f"PackedConv2d norm_mode must be 'channels' or 'chw', got {norm_mode!r}")
        super().__init__(out_channels, activation, normalize=normalize, affine=False, norm_mode=norm_mode)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.norm_mode = norm_mode
        self._register_bits()

    def layouts(self) -> dict[str, BitLayout]:
        k = self.kernel_size
        return {
            "weight": BitLayout((self.out_channels, self.in_channels, k, k)),
            "bias": BitLayout((self.out_channels,)),
        }


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PackedConv2d expects (batch, {self.in_channels}, height, width) inputs, got shape {tuple(x.shape)}"
            )
        k = self.kernel_size
        fan_in = self.in_channels * k * k
        step = max(1, CHUNK_ELEMENTS // fan_in)
        parts = []
        for c in range(0, self.out_channels, step):
            w = unpack_float(self.weight_bits[c : c + step], fan_in, x.dtype)
            parts.append(F.conv2d(x, w.reshape(-1, self.in_channels, k, k), padding="same"))
        z = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return self.finish(z + self.bits("bias", x.dtype).view(-1, 1, 1))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, activation={self.activation!r}"
        )


class PackedEmbedding(PackedLayer):
    """Packed BEMBL (Alg. 4): the rows of the packed tables that the tokens and
    positions pick are unpacked, nothing else (one-hot times 0/1 matrix = row lookup)."""

    binary_type = BinaryEmbedding
    arg_names = ("num_embeddings", "embedding_dim", "max_len", "activation")
    weight_bits: torch.Tensor  # registered by _register_bits
    position_weight_bits: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_len: int,
        activation: str | None = None,
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__(embedding_dim, activation, normalize=normalize, affine=False)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_len = max_len
        self.position_norm = make_norm(embedding_dim, binary=True, normalize=normalize, affine=False)
        self._register_bits()

    def layouts(self) -> dict[str, BitLayout]:
        d = self.embedding_dim
        return {
            "weight": BitLayout((self.num_embeddings, d)),
            "bias": BitLayout((d,)),
            "position_weight": BitLayout((self.max_len, d)),
            "position_bias": BitLayout((d,)),
        }


    def forward(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        check_tokens(tokens, self.num_embeddings, self.max_len, start)
        d = self.embedding_dim
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        tok = unpack_float(self.weight_bits[tokens], d) + self.bits("bias")
        pos = unpack_float(self.position_weight_bits[positions], d) + self.bits("position_bias")
        return self.finish(tok) + self._act(self.position_norm(pos))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, max_len={self.max_len}"


PACKED_LAYERS: dict[type[nn.Module], type[PackedLayer]] = {
    BinaryLinear: PackedLinear,
    BinaryConv2d: PackedConv2d,
    BinaryEmbedding: PackedEmbedding,
}
"""Which packed layer holds the bits of which binedu layer."""


def _shell(module: nn.Module) -> nn.Module:
    """A shallow copy of a parameter-free module, with its own (still filled) child
    table, so that replacing children leaves ``module`` untouched."""
    shell = type(module).__new__(type(module))
    shell.__dict__.update({k: copy.copy(v) if isinstance(v, dict | set) else v for k, v in vars(module).items()})
    return shell


def _pack(module: nn.Module, name: str, method: str) -> nn.Module:
    label = name or type(module).__name__
    if isinstance(module, PackedLayer):
        return module
    kind = PACKED_LAYERS.get(type(module))
    if kind is not None and isinstance(module, BinaryModule):  # every key of PACKED_LAYERS is one
        try:
            packed = kind.from_binary(module)
        except ValueError as err:
            raise ValueError(f"cannot pack {label}: {err}") from None
        if isinstance(packed, PackedLinear):
            packed.method = method
        return packed
    own = [n for n, _ in module.named_parameters(recurse=False)] + [n for n, _ in module.named_buffers(recurse=False)]
    if own:
        raise ValueError(
            f"cannot pack {label} ({type(module).__name__}): it holds float tensors {own} that are not "
            "the parameters of a binedu binary layer; only binedu layers and parameter-free modules "
            "(ReLU, MaxPool2d, Flatten, Dropout, ...) can be packed"
        )
    shell = _shell(module)
    for child_name, child in module.named_children():
        shell._modules[child_name] = _pack(child, f"{name}.{child_name}" if name else child_name, method)
    return shell


def pack_model(model: nn.Module, method: str = "auto") -> nn.Module:
    """An inference-only copy of ``model`` that holds nothing but packed bits.

    Every binedu layer (:class:`~binedu.BinaryLinear`, :class:`~binedu.BinaryConv2d`,
    :class:`~binedu.BinaryEmbedding`) is replaced by its packed counterpart; every other
    module must be parameter-free (attention, transformer blocks, ``nn.Sequential``,
    ``ReLU``, ``MaxPool2d``, ...) and is shallow-copied, so a packed paper model keeps its
    class, its ``config`` and its call signature. ``model`` itself is not changed. The
    result is in eval mode; ``method`` sets how the packed dense layers multiply (see
    :func:`packed_matmul`); layers of ``model`` that are packed already are shared, not
    copied. A float model (``binary=False``) or a module with float parameters that are
    not binedu layer weights raises a ``ValueError`` naming it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown packed method {method!r}; use one of {METHODS}")
    bad = [n for n, p in model.named_parameters() if not p.is_meta and not bool(p.detach().isfinite().all())]
    if bad:  # NaN/inf latents have no meaningful bits (a diverged run)
        raise ValueError(f"cannot pack {type(model).__name__}: NaN or infinite latent parameters in {', '.join(bad[:3])}")
    if isinstance(model, ConfigModel) and not getattr(model.config, "binary", True):
        raise ValueError(
            f"cannot pack a float {type(model).__name__} (binary=False): only binary models have bits to store"
        )
    return _pack(model, "", method).eval()
