"""Self-check exercises of notebook 02: binarization (Eq. 1 and the STE).

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ...quantize import quantize, quantize_ste
from .core import Exercise, Prediction, is_placeholder, register


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


def _my_quantize(p: torch.Tensor) -> torch.Tensor:
    """Eq. 1 from scratch (the model answer; binedu's quantize also decides ties in float64)."""
    return (p > p.mean()).float()


def _my_ste(w: torch.Tensor) -> torch.Tensor:
    """Alg. 1 lines 2-3 from scratch: forward value Eq. 1, gradient the identity."""
    return w + ((w > w.mean()).float() - w).detach()


register(
    Exercise(
        id="02.quantize",
        title="Eq. 1: the 0/1 quantizer",
        reference=quantize,
        cases=_tensors_02,
        forbidden=("binedu.quantize.quantize", "binedu.quantize.quantize_ste"),
        solution=_my_quantize,
        hint="compare every entry with the mean of the whole tensor (not with 0), with a strict '>': a value "
        "equal to the mean gives 0; return 0.0/1.0 floats of the same shape as p.",
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
        solution=_my_ste,
        hint="the forward value must be quantize(w), yet the gradient must reach w as if the output were w "
        "itself: add to w a correction that has the value quantize(w) - w but no gradient (detach it).",
        atol=1e-6,
    )
)

register(
    Exercise(
        id="02.preactivation",
        title="A binary layer's pre-activation z = W_b x + b_b (Alg. 2, before Normalize)",
        reference=lambda x, w, b: F.linear(x, quantize(w), quantize(b)),
        cases=_preactivation_cases,
        hint="quantize the kernel and the bias separately (each against its own mean), then x @ W_b.T + b_b "
        "(or torch.nn.functional.linear).",
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
        hint="section 2: a threshold that does not move with the weights sees every weight above it once they all "
        "drift up. How many of the teacher's bits are 1?",
    )
)
