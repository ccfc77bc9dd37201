"""Per-layer statistics of binary training: bit flips and gradient norms.

The functions compare snapshots of the Eq. 1 bits (``bit = 1 if latent > 0.5``, Alg. 1)
of a model's binary layers; :class:`LayerStatistics` is the part of
:func:`binedu.fit` that records them in the :class:`~binedu.History` every
``record_every`` steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .base import BinaryModule
from .train_callbacks import Callback, Step

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = [
    "binary_layers",
    "binary_bits",
    "flip_ratio",
    "layer_flip_ratios",
    "layer_grad_norms",
    "LayerStatistics",
]


def binary_layers(model: nn.Module) -> dict[str, BinaryModule]:
    """The binedu layers of ``model`` by module name (``"layers.0"``, ``"blocks.1.ff1"``)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, BinaryModule)}


def binary_bits(model: nn.Module) -> dict[str, torch.Tensor]:
    """The Eq. 1 bits of every latent parameter of every binary layer, as bool tensors
    keyed ``"<layer>.<parameter>"``; empty for a float model."""
    return {
        f"{layer}.{pname}": bits.bool()
        for layer, m in binary_layers(model).items()
        if m.binary
        for pname, bits in m.binary_parameters().items()
    }


def flip_ratio(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Fraction of all bits that differ between two :func:`binary_bits` snapshots."""
    if before.keys() != after.keys():
        raise ValueError("the two bit snapshots come from different models")
    total = sum(b.numel() for b in before.values())
    if total == 0:
        return 0.0
    changed = torch.stack([(before[k] != after[k]).sum() for k in before]).sum()
    return float(changed) / total


def layer_flip_ratios(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per binary layer, the fraction of its bits (all its parameters together) that
    differ between two :func:`binary_bits` snapshots; keys are the layer names."""
    if before.keys() != after.keys():
        raise ValueError("the two bit snapshots come from different models")
    changed: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}
    for key in before:
        layer = key.rsplit(".", 1)[0]
        changed.setdefault(layer, []).append((before[key] != after[key]).sum())
        sizes[layer] = sizes.get(layer, 0) + before[key].numel()
    counts = {layer: torch.stack(c).sum() for layer, c in changed.items()}
    return {layer: float(n) / max(sizes[layer], 1) for layer, n in counts.items()}


def layer_grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradients of each binedu layer's parameters (its normalization's
    scale and shift included), by layer name; layers without gradients are left out."""
    names, norms = [], []
    for name, layer in binary_layers(model).items():
        grads = [p.grad for p in layer.parameters() if p.grad is not None]
        if grads:
            names.append(name)
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    return dict(zip(names, torch.stack(norms).tolist(), strict=True)) if norms else {}


class LayerStatistics(Callback):
    """Every ``record_every`` steps: each layer's gradient norm (taken after the
    backward pass, before the optimizer step) and, for binary models, the fraction of
    bits (Eq. 1) flipped since the previous record, per layer and in all, and since
    initialisation.

    ``bits`` is the snapshot of the previous record, ``init_bits`` the one at
    initialisation; both are kept in the training checkpoint (``bits/<name>``,
    ``init_bits/<name>``, as uint8) so that a resumed run counts on exactly.
    """

    def __init__(self, bits: dict[str, torch.Tensor], init_bits: dict[str, torch.Tensor] | None = None) -> None:
        self.bits = bits
        self.init_bits = bits if init_bits is None else init_bits
        self.norms: dict[str, float] = {}

    def on_after_backward(self, run: TrainRun, step: Step) -> None:
        if step.record:
            self.norms = layer_grad_norms(run.model)

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        if not step.record:
            return
        history = run.history
        history.grad_steps.append(step.number)
        for name, value in self.norms.items():
            history.grad_norms.setdefault(name, []).append(value)
        if self.bits:
            now = binary_bits(run.model)
            history.flip_steps.append(step.number)
            history.flip_ratio.append(flip_ratio(self.bits, now))
            for layer, ratio in layer_flip_ratios(self.bits, now).items():
                history.layer_flips.setdefault(layer, []).append(ratio)
            history.changed_since_init.append(flip_ratio(self.init_bits, now))
            self.bits = now

    def checkpoint_tensors(self, run: TrainRun) -> dict[str, torch.Tensor]:
        tensors = {f"bits/{k}": v.to(torch.uint8) for k, v in self.bits.items()}
        return tensors | {f"init_bits/{k}": v.to(torch.uint8) for k, v in self.init_bits.items()}
