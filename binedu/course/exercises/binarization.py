"""Self-check exercises of notebook 02: binarization (Eq. 1 and the STE).

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...linear import BinaryLinear
from ...quantize import quantize, quantize_ste
from ...train import binary_bits, layer_flip_ratios
from .core import Exercise, Measured, Prediction, _seal, is_placeholder, register


def _tensors_02() -> list[tuple]:
    g = torch.Generator().manual_seed(2)
    return [
        (torch.tensor([1.0, 2.0, 3.0]),),  # 2.0 ties with the mean: Eq. 1 gives 0
        (torch.full((4,), 0.5),),  # constant: all entries tie, all zeros
        (torch.randn(5, 7, generator=g),),
        (torch.randn(3, 4, generator=g) * 0.01 + 3.0,),  # shifted: zero threshold would give all ones
        (torch.tensor([[-1.0, 0.0], [0.0, 5.0]]),),
    ]


def _ste_observe(fn: Callable[..., Any], args: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Forward value and gradient of ``sum(fn(w) * upstream)`` with respect to ``w``."""
    w, upstream = args
    w = w.clone().requires_grad_(True)
    out = fn(w)
    if is_placeholder(out):
        return None  # check() reports the unfinished function
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError("no gradient reaches the latent weights: the output does not depend on w through autograd")
    (out * upstream).sum().backward()
    grad = w.grad if w.grad is not None else torch.zeros_like(w)
    return out.detach(), grad


def _ste_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(4, 3, generator=g) * 0.1, torch.randn(4, 3, generator=g)) for _ in range(3)]


def _preactivation_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(4)
    return [
        (torch.randn(2, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, generator=g)),
        (torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g) + 1.0, torch.zeros(6)),
    ]




register(
    Exercise(
        id="02.quantize",
        title="Eq. 1: the 0/1 quantizer",
        reference=quantize,
        cases=_tensors_02,
        forbidden=("binedu.quantize.quantize", "binedu.quantize.quantize_ste"),
        hint=(
            'Eq. 1 compares each entry with one number computed from the whole tensor: which one?',
            "compare every entry with the mean of the whole tensor (not with 0), with a strict '>': a value "
            "equal to the mean gives 0; return 0.0/1.0 floats of the same shape as p.",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="02.ste",
        title="Alg. 1 lines 2-3: the straight-through estimator, written with detach()",
        reference=quantize_ste,
        cases=_ste_cases,
        observe=_ste_observe,
        forbidden=("binedu.quantize.quantize_ste",),
        hint=(
            'the forward pass and the backward pass need different things: which part of the expression should autograd not see?',
            "the forward value must be quantize(w), yet the gradient must reach w as if the output were w "
            "itself: add to w a correction that has the value quantize(w) - w but no gradient (detach it).",
        ),
        atol=1e-6,
    )
)

register(
    Exercise(
        id="02.preactivation",
        title="A binary layer's pre-activation z = W_b x + b_b (Alg. 2, before Normalize)",
        reference=lambda x, w, b: F.linear(x, quantize(w), quantize(b)),
        cases=_preactivation_cases,
        hint=(
            'the layer uses the bits of its parameters, not the latent floats.',
            "quantize the kernel and the bias separately (each against its own mean), then x @ W_b.T + b_b "
            "(or torch.nn.functional.linear).",
        ),
        atol=1e-5,
    )
)




def _agreement_band(measured: Any) -> str:
    agree = float(measured.values["agree"])
    return "almost all" if agree > 0.9 else "almost none" if agree < 0.1 else "about half"


register(
    Prediction(
        id="02.predict_zero_threshold",
        title="Predict, then run: shift every latent weight of the trained student, with a zero threshold",
        options=("almost all", "about half", "almost none"),
        changed={"rule": "zero"},
        keys=("agree", "ones"),
        outcome=_agreement_band,
        explain=lambda m: (
            f"Your run (threshold {m.settings['rule']!r}, shift {m.settings.get('shift')}): "
            f"{float(m.values['agree']):.1%} of the bits still equal the teacher's, "
            f"{float(m.values['ones']):.1%} of them are 1."
        ),
        hint=(
            'after the shift, where are the latent weights relative to 0?',
            "section 2: a threshold that does not move with the weights sees every weight above it once they all "
            "drift up. How many of the teacher's bits are 1?",
        ),
    )
)


def threshold_experiment(weight: torch.Tensor, teacher_bits: torch.Tensor, rule: str = "mean",
                         shift: float = 1.0) -> Measured:
    """Predict-then-run (notebook 02): shift every latent weight by ``shift``, binarize with
    ``rule`` ("mean" is Eq. 1, "zero" a fixed threshold at 0) and measure the fraction of
    bits that still equal ``teacher_bits`` (``agree``) and the fraction of ones."""
    from ..widgets import threshold_bits  # imported late: the widgets need ipywidgets

    bits, _ = threshold_bits(weight.detach() + shift, rule)
    return _seal(settings={"rule": rule, "shift": shift},
                 values={"agree": (bits == teacher_bits).float().mean().item(), "ones": bits.mean().item()})


# ---------------------------------------------------------------- build: a training loop that logs flips


def train_with_flip_log(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                        lr: float) -> list[dict[str, float]]:
    """Alg. 1's training loop, written out: ``steps`` full-batch Adam steps (learning rate
    ``lr``) on the cross-entropy of ``model(x)`` against ``y``; after every step, the
    fraction of each binary layer's bits (kernel and bias together, Eq. 1) that the step
    flipped, keyed by the layer's module name."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log = []
    for _ in range(steps):
        before = binary_bits(model)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append(layer_flip_ratios(before, binary_bits(model)))
    return log


FLIP_LAYERS = ("0", "1", "2")


def flip_log_model(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The small binary network and batch that the flip-log build is checked on."""
    torch.manual_seed(seed)
    model = nn.Sequential(BinaryLinear(12, 32, "relu"), BinaryLinear(32, 32, "relu"), BinaryLinear(32, 4))
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(64, 12, generator=g)
    return model, x, (x[:, :4] + x[:, 4:8]).argmax(1)


def _flip_log_observe(fn: Callable[..., Any], args: tuple) -> torch.Tensor | None:
    seed, steps, lr = args
    model, x, y = flip_log_model(seed)
    log = fn(model, x, y, steps, lr)
    if is_placeholder(log):
        return None
    if not isinstance(log, list) or len(log) != steps or not all(isinstance(d, dict) for d in log):
        raise TypeError(f"return a list of {steps} dicts (one per step), got {type(log).__name__}")
    missing = [name for name in FLIP_LAYERS if name not in log[0]]
    if missing:
        raise KeyError(f"the dicts must be keyed by the layer names {FLIP_LAYERS}; missing {missing}")
    return torch.tensor([[float(d[name]) for name in FLIP_LAYERS] for d in log], dtype=torch.float64)


register(
    Exercise(
        id="02.build_flip_log",
        title="Build: a training loop that logs, after every step, the fraction of each layer's bits that flipped",
        reference=train_with_flip_log,
        cases=lambda: [(0, 5, 0.05), (1, 3, 0.2)],
        observe=_flip_log_observe,
        forbidden=("binedu.train.fit", "binedu.train.binary_bits", "binedu.train.layer_flip_ratios",
                   "binedu.train.flip_ratio"),
        hint=(
            "take the bits of every layer before the step, do the step, take them again, and compare.",
            "the bits of a layer are Eq. 1 of its weight and of its bias (quantize is allowed); a layer's flip "
            "fraction is (changed bits of weight + bias) / (bits of weight + bias).",
            "loop over model.named_modules() and keep the modules that have a weight and a bias; their names are "
            "'0', '1', '2' in an nn.Sequential. Create the Adam optimizer once, before the loop.",
        ),
        rtol=0,
        atol=1e-9,
    )
)
