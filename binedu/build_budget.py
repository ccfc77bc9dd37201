"""Building the model a file describes without letting the file choose the cost.

A checkpoint's configuration says how big its model is (``num_blocks``, ``vocab_size``,
...); its tensors say how big it can be. :class:`BuildBudget` builds the skeleton on
PyTorch's ``meta`` device (no memory for weights) while counting every tensor the
constructors create, and stops with :class:`BudgetExceeded` as soon as they ask for more
tensors or elements than the file can back. So a 5 KB file that claims
``num_blocks=10**6`` stops after a handful of blocks, in milliseconds, instead of
building a million of them before anything is compared.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["BudgetExceeded", "BuildBudget"]

_FACTORIES = frozenset(
    {"empty", "zeros", "ones", "full", "rand", "randn", "randint", "arange", "tensor", "eye", "empty_strided",
     "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "new_empty", "new_zeros",
     "new_ones", "new_full", "new_tensor"}
)  # fmt: skip


class BudgetExceeded(ValueError):
    """The constructors asked for more tensors or elements than the file holds."""


class BuildBudget(TorchFunctionMode):
    """``with BuildBudget(tensors, elements):`` builds on the ``meta`` device and raises
    :class:`BudgetExceeded` once more than ``tensors`` tensors or ``elements`` elements
    in all have been created."""

    def __init__(self, tensors: int, elements: int) -> None:
        super().__init__()
        self.max_tensors, self.max_elements = tensors, elements
        self.tensors = self.elements = 0
        self._device = torch.device("meta")

    def __enter__(self) -> BuildBudget:
        self._device.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            self._device.__exit__(None, None, None)
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._device.__exit__(*exc)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if getattr(func, "__name__", "") in _FACTORIES and isinstance(result, torch.Tensor):
            self.tensors += 1
            self.elements += math.prod(result.shape)
            if self.tensors > self.max_tensors or self.elements > self.max_elements:
                raise BudgetExceeded(
                    f"building it needs more than {self.max_tensors:,} tensors or {self.max_elements:,} elements, "
                    "more than the file holds"
                )
        return result
