"""The argument values a packed checkpoint may give the modules it builds.

A packed checkpoint (:mod:`binedu.checkpoint`) names each module of its structure and
its constructor arguments. The constructors accept far more than a trained binedu model
ever holds: ``AdaptiveAvgPool1d(10**7)`` builds in microseconds from a 770-byte file and
then costs gigabytes at the first batch, ``Softmax(dim=7)`` or ``inplace="false"`` (a
string, so true) build and then fail or misbehave when used. So every argument of every
module type a checkpoint may store is checked against an allow-list before the
constructor runs, and :func:`binedu.checkpoint.save_packed` applies the same list, so
that nothing is saved that cannot be loaded:

- flags are real booleans, choices are among the known names, rates are finite numbers
  in their range (a dropout ``p`` in [0, 1]);
- a tensor dimension (``Softmax.dim``, ``Flatten.start_dim``, ...) is in
  ``[-MAX_RANK, MAX_RANK - 1]``: binedu's tensors have at most 4 dimensions;
- a pooling window, stride, padding, dilation or output size is at most
  :data:`MAX_WINDOW` (256, the side of the paper's images), so a pooling layer never
  outputs more values than the paper's input image has per channel;
- a layer width (features, channels, heads, vocabulary) is a positive integer of at
  most :data:`MAX_WIDTH`; the stored tensors bound it further
  (:mod:`binedu.build_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .activations import ACTIVATIONS

__all__ = ["MAX_RANK", "MAX_WINDOW", "MAX_WIDTH", "check_args", "ARG_RULES"]

MAX_RANK = 4
"""The most dimensions of a tensor in a binedu model (images: batch, channels, H, W)."""

MAX_WINDOW = 256
"""The largest pooling window, stride, padding, dilation or pooled output side."""

MAX_WIDTH = 2**20
"""The largest layer width: features, channels, heads, vocabulary, context."""

Rule = Callable[[Any], bool]


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _integer(low: int, high: int) -> Rule:
    def rule(value: Any) -> bool:
        return type(value) is int and low <= value <= high

    rule.__doc__ = f"an integer in [{low}, {high}]"
    return rule


def _integers(low: int, high: int, count: int) -> Rule:
    """One integer in range, or a tuple of ``count`` of them (``kernel_size=(2, 2)``)."""
    one = _integer(low, high)

    def rule(value: Any) -> bool:
        return one(value) or (isinstance(value, tuple) and len(value) == count and all(one(v) for v in value))

    rule.__doc__ = f"an integer in [{low}, {high}] or {count} of them"
    return rule


def _number(low: float, high: float) -> Rule:
    def rule(value: Any) -> bool:
        return type(value) in (int, float) and math.isfinite(value) and low <= value <= high

    rule.__doc__ = f"a number in [{low:g}, {high:g}]"
    return rule


def _choice(*values: Any) -> Rule:
    def rule(value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in values)

    rule.__doc__ = f"one of {list(values)}"
    return rule


def _optional(inner: Rule) -> Rule:
    def rule(value: Any) -> bool:
        return value is None or inner(value)

    rule.__doc__ = f"None or {inner.__doc__}"
    return rule


def _sizes(value: Any) -> bool:
    """``Unflatten``'s sizes: a tuple of positive integers (one may be -1)."""
    size = _integer(1, MAX_WIDTH)
    return (
        isinstance(value, tuple)
        and 1 <= len(value) <= MAX_RANK
        and all(size(v) or v == -1 for v in value)
        and sum(v == -1 for v in value) <= 1
    )


_boolean.__doc__ = "true or false"
_sizes.__doc__ = f"a tuple of at most {MAX_RANK} positive integers (one may be -1)"
_FLAG: Rule = _boolean
_DIM = _integer(-MAX_RANK, MAX_RANK - 1)
_WIDTH = _integer(1, MAX_WIDTH)
_ACTIVATION = _optional(_choice(*(name for name in ACTIVATIONS if isinstance(name, str))))
_FALSE = _choice(False)  # return_indices=True would hand a tuple to the next module
_DROPOUT: dict[str, Rule] = {"p": _number(0.0, 1.0), "inplace": _FLAG}
_INPLACE: dict[str, Rule] = {"inplace": _FLAG}


def _pool(dims: int, average: bool) -> dict[str, Rule]:
    window = _integers(1, MAX_WINDOW, dims)
    rules = {
        "kernel_size": window,
        "stride": _optional(window),
        "padding": _integers(0, MAX_WINDOW // 2, dims),
        "ceil_mode": _FLAG,
    }
    if average:
        rules["count_include_pad"] = _FLAG
        if dims == 2:
            rules["divisor_override"] = _optional(_integer(1, MAX_WINDOW * MAX_WINDOW))
    else:
        rules |= {"dilation": window, "return_indices": _FALSE}
    return rules


ARG_RULES: dict[str, dict[str, Rule]] = {
    # parameter-free torch.nn modules (binedu.checkpoint.TORCH_MODULES)
    "Identity": {},
    "ReLU": _INPLACE,
    "ReLU6": _INPLACE,
    "LeakyReLU": {"negative_slope": _number(-1e6, 1e6), "inplace": _FLAG},
    "GELU": {"approximate": _choice("none", "tanh")},
    "SiLU": _INPLACE,
    "Tanh": {},
    "Sigmoid": {},
    "Softmax": {"dim": _optional(_DIM)},
    "LogSoftmax": {"dim": _optional(_DIM)},
    "Flatten": {"start_dim": _DIM, "end_dim": _DIM},
    "Unflatten": {"dim": _DIM, "unflattened_size": _sizes},
    "Dropout": _DROPOUT,
    "Dropout1d": _DROPOUT,
    "Dropout2d": _DROPOUT,
    "MaxPool1d": _pool(1, average=False),
    "MaxPool2d": _pool(2, average=False),
    "AvgPool1d": _pool(1, average=True),
    "AvgPool2d": _pool(2, average=True),
    "AdaptiveAvgPool1d": {"output_size": _integers(1, MAX_WINDOW, 1)},
    "AdaptiveAvgPool2d": {"output_size": _integers(1, MAX_WINDOW, 2)},
    "AdaptiveMaxPool2d": {"output_size": _integers(1, MAX_WINDOW, 2), "return_indices": _FALSE},
    # containers
    "Sequential": {},
    "ModuleList": {},
    "ModuleDict": {},
    # binedu layers (the packed ones stand for the binary layers)
    "Normalize": {"num_features": _WIDTH, "mode": _choice("last", "channels", "chw")},
    "PackedLinear": {"in_features": _WIDTH, "out_features": _WIDTH, "activation": _ACTIVATION, "normalize": _FLAG},
    "PackedConv2d": {
        "in_channels": _WIDTH, "out_channels": _WIDTH, "kernel_size": _integer(1, 31), "activation": _ACTIVATION,
        "normalize": _FLAG, "norm_mode": _choice("channels", "chw"),
    },
    "PackedEmbedding": {
        "num_embeddings": _WIDTH, "embedding_dim": _WIDTH, "max_len": _WIDTH, "activation": _ACTIVATION,
        "normalize": _FLAG,
    },
    "BinaryMultiheadAttention": {"embed_dim": _WIDTH, "num_heads": _WIDTH, "leaky_mask": _FLAG, "normalize": _FLAG},
    "BinaryTransformerBlock": {
        "embed_dim": _WIDTH, "num_heads": _WIDTH, "ff_dim": _optional(_WIDTH), "leaky_mask": _FLAG,
        "normalize": _FLAG,
    },
}  # fmt: skip
"""For each module type a packed checkpoint may hold (the binedu models, whose
``config`` is checked by the configuration itself, aside): its arguments and their rules."""


def check_args(kind: str, args: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first argument of a ``kind`` module that is
    unknown or breaks its rule (module docstring). ``args`` hold tuples, not lists."""
    rules = ARG_RULES.get(kind)
    if rules is None:
        raise ValueError(f"unknown module type {kind!r}")
    for name, value in args.items():
        if name not in rules:
            raise ValueError(f"{kind} has no argument {name!r} (it takes {sorted(rules) or 'none'})")
        if not rules[name](value):
            raise ValueError(f"{kind}({name}={value!r}): {name} must be {rules[name].__doc__}")
