"""Self-check exercises of notebook 03: why normalization.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...linear import BinaryLinear
from ...normalize import EPS, normalize
from .core import NORMS, Exercise, Measured, Prediction, _seal, is_placeholder, register


def _normalize_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(5)
    return [
        (torch.randn(3, 6, generator=g) * 40 + 100,),  # a 0/1 layer's large, shifted outputs
        (torch.randn(2, 4, 5, generator=g),),  # (batch, seq, features): each token on its own
        (torch.ones(2, 3),),  # constant: eps keeps it finite (zeros)
    ]



register(
    Exercise(
        id="03.normalize",
        title="Normalize(z): zero mean, unit standard deviation over the last axis, no parameters",
        reference=lambda z: normalize(z, -1),
        cases=_normalize_cases,
        forbidden=NORMS,
        hint=(
            'over which axis, and with which variance (biased or not)? Where does epsilon go?',
            f"(z - mean) / sqrt(var + eps) over dim=-1 with keepdim=True; var is the population variance "
            f"(unbiased=False) and eps = {EPS}.",
        ),
        atol=1e-4,
        rtol=1e-4,
    )
)

register(
    Exercise(
        id="03.sum_std",
        title="Std of a 0/1 weighted sum of n standard-normal inputs (each weight a fair coin)",
        reference=lambda n: math.sqrt(n / 2),
        cases=lambda: [(1,), (2,), (64,), (1024,)],
        hint=(
            'variances of independent terms add up.',
            "each term w_i x_i has mean 0 and variance E[w_i^2] E[x_i^2]: what is E[w^2] for a fair 0/1 coin? "
            "Variances of independent terms add up, and the std is the square root of the variance.",
        ),
        rtol=1e-6,
    )
)

def relu_sum_mean(n: int, weights: str) -> float:
    """Expected value of ``sum_i w_i relu(x_i)`` for ``n`` standard-normal ``x_i`` and fair-coin
    weights: ``"01"`` (0 or 1) gives ``n / 2 * E[relu(x)] = n / (2 sqrt(2 pi))``, the mean
    drift of a 0/1 layer; ``"pm1"`` (-1 or +1) gives 0, as E[w] = 0."""
    if weights not in ("01", "pm1"):
        raise ValueError(f"weights must be '01' or 'pm1', got {weights!r}")
    return n / (2 * math.sqrt(2 * math.pi)) if weights == "01" else 0.0


register(
    Exercise(
        id="03.relu_sum_mean",
        title="Mean of a weighted sum of n ReLU inputs, with fair-coin weights 0/1 ('01') or -1/+1 ('pm1')",
        reference=relu_sum_mean,
        cases=lambda: [(256, "01"), (256, "pm1"), (1, "01"), (64, "01"), (1000, "pm1")],
        hint=(
            'the mean of a sum is the sum of the means.',
            "the mean of a sum is the sum of the means, and w_i and x_i are independent: E[w x] = E[w] E[relu(x)]. "
            "E[relu(x)] for a standard normal x is 1 / sqrt(2 pi) (half the mean of |x|). What is E[w] for each kind of coin?",
        ),
        rtol=1e-6,
    )
)


def _scale_band(measured: Any) -> str:
    std, std_01 = float(measured.values["std"]), float(measured.values["std_01"])
    if std < 10:
        return "about 1"
    if not math.isfinite(std_01) or math.log10(std_01) - math.log10(std) >= 3:
        return "large, but far below 0/1"
    return "as large as with 0/1"


register(
    Prediction(
        id="03.predict_pm1_scale",
        title="Predict, then run: activation std after the deep stack without Normalize, with -1/+1 weights",
        options=("about 1", "large, but far below 0/1", "as large as with 0/1"),
        changed={"weights": "pm1", "normalize": False},
        keys=("std", "std_01"),
        outcome=_scale_band,
        explain=lambda m: (
            f"Your run ({m.settings['weights']} weights, no Normalize): std {float(m.values['std']):.3g} after the "
            f"last layer; with 0/1 weights it was {float(m.values['std_01']):.3g}."
        ),
        hint=(
            '-1/+1 weights remove one of the two effects of section 1: which one is left?',
            "-1/+1 weights remove the mean drift (E[w] = 0), but what does a sum of n terms of size about 1 do to "
            "the spread, layer after layer?",
        ),
    )
)


# ---------------------------------------------------------------- the capstone



def _capstone_run(layer_cls: Callable[..., Any], args: tuple) -> tuple | None:
    """Build the README's two-layer task network with ``layer_cls`` (BinaryLinear's
    signature) from a fixed Glorot-uniform start, take ``steps`` Adam steps, and return the
    output and the gradient of every latent parameter at the end: two correct layers agree
    (to float32 rounding: how a student writes the square root must not matter, so the
    steps are few enough that rounding flips no bit)."""
    seed, steps = args
    x = torch.randn(256, 16, generator=torch.Generator().manual_seed(seed))
    y = x.view(-1, 4, 4).sum(-1).argmax(1)  # which group of 4 inputs is largest
    layers = [layer_cls(16, 64, "relu"), layer_cls(64, 4)]
    if any(is_placeholder(layer) for layer in layers):
        return None
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed + 1)
    params = []
    with torch.no_grad():
        for layer in model:
            w, b = getattr(layer, "weight", None), getattr(layer, "bias", None)
            if not isinstance(w, nn.Parameter) or not isinstance(b, nn.Parameter):
                raise TypeError("your layer needs its latent parameters as self.weight (out, in) and self.bias (out,)")
            bound = math.sqrt(6 / (w.shape[0] + w.shape[1]))
            w.copy_(torch.rand(w.shape, generator=g, dtype=w.dtype) * 2 * bound - bound)
            b.copy_(torch.randn(b.shape, generator=g) * 0.01)
            params += [w, b]
    opt = torch.optim.SGD(params, lr=1e-3)
    for _ in range(steps + 1):
        out = model(x)
        if is_placeholder(out):
            return None
        opt.zero_grad()
        F.cross_entropy(out, y).backward()
        if _ < steps:
            opt.step()
    return (out.detach(), *(p.grad if p.grad is not None else torch.zeros_like(p) for p in params))


register(
    Exercise(
        id="03.capstone",
        title="Capstone: a binary layer from your own quantize, STE and Normalize, with the outputs and gradients of BinaryLinear",
        reference=BinaryLinear,
        cases=lambda: [(0, 0), (1, 3)],
        observe=_capstone_run,
        forbidden=(
            "binedu.linear.BinaryLinear",
            "binedu.quantize.quantize",
            "binedu.quantize.quantize_ste",
            *NORMS,
        ),
        hint=(
            'compare your layer with BinaryLinear one step at a time: the bits, the pre-activation, the Normalize.',
            "forward: W_q = your STE of self.weight, b_q = your STE of self.bias (each against its own mean), "
            "z = F.linear(x, W_q, b_q), then your Normalize over the last axis, then ReLU if activation == 'relu'. "
            "Keep self.weight and self.bias as the only parameters.",
        ),
        rtol=1e-3,
        atol=1e-4,
    )
)


def depth_experiment(weights: str = "01", normalize: bool = False, width: int = 64, depth: int = 16) -> Measured:
    """Predict-then-run (notebook 03): the std of the activations after a stack of ``depth``
    ``BinaryLinear(width, width, "relu")`` layers with ``weights`` ("01" or "pm1") and with
    or without Normalize (``std``), next to the same stack with 0/1 weights and no
    Normalize (``std_01``). Same seed for both."""

    def last_std(kind: str, with_norm: bool) -> float:
        torch.manual_seed(0)
        stack = nn.Sequential(*[BinaryLinear(width, width, "relu", normalize=with_norm, weights=kind)
                                for _ in range(depth)])
        with torch.no_grad():
            return float(stack(torch.randn(256, width)).std())

    return _seal(settings={"weights": weights, "normalize": normalize, "depth": depth},
                 values={"std": last_std(weights, normalize), "std_01": last_std("01", False)})
