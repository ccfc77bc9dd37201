"""Self-check exercises of notebook 04: the image model (Alg. 7).

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...conv import BinaryConv2d
from ...model import count_parameters
from .core import COUNTING, NORMS, Exercise, Measured, Prediction, _seal, is_placeholder, register


def bncvl_parameters(in_channels: int, out_channels: int, filter_size: int) -> int:
    """Parameters of one BNCVL (Alg. 3): an ``f x f x in x out`` kernel and ``out``
    biases (its Normalize has none); counted on a built layer."""
    with torch.device("meta"):
        return count_parameters(BinaryConv2d(in_channels, out_channels, filter_size))


def pooled_size(image_size: int, num_pools: int) -> int:
    """Height (= width) after ``num_pools`` 2x2 max-pools of stride 2 (Alg. 7); "same"
    convolutions keep the size, and each pool rounds down (as PyTorch's ``MaxPool2d``)."""
    size = image_size
    for _ in range(num_pools):
        if size < 2:
            raise ValueError(f"an image of size {image_size} cannot go through {num_pools} 2x2 max-pools")
        size //= 2
    return size


def normalized_loss_floor(num_classes: int) -> float:
    """The smallest cross-entropy a binary classifier can reach on any example.

    Its output BNFCL normalizes the ``C`` logits to mean 0 and standard deviation 1 with
    no learnable scale (Alg. 2), so they cannot grow to make the softmax confident. At best
    the right class gets ``sqrt(C - 1)`` and every other class ``-1 / sqrt(C - 1)``
    (the others equal, by Jensen's inequality), a loss of
    ``log(1 + (C - 1) exp(-C / sqrt(C - 1)))``: 0.28 for 10 classes, 0.004 for 101.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"a classifier needs num_classes >= 2, got {num_classes!r}")
    c = num_classes
    return math.log1p((c - 1) * math.exp(-c / math.sqrt(c - 1)))



register(
    Exercise(
        id="04.bncvl_parameters",
        title="bncvl_parameters(in_channels, out_channels, filter_size): parameters of one BNCVL (Alg. 3)",
        reference=bncvl_parameters,
        cases=lambda: [(3, 32, 3), (32, 32, 3), (128, 256, 3), (3, 32, 5), (1, 16, 3), (64, 64, 1)],
        forbidden=COUNTING,
        hint=(
            'what does one filter hold, and what does each filter add besides its weights?',
            "each of the out_channels filters has f * f * in_channels weights, and each filter has one bias; "
            "the normalization of a binary layer has no parameters.",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="04.pooled_size",
        title="Image height after num_pools 2x2 max-pools (stride 2) and 'same' convolutions",
        reference=pooled_size,
        cases=lambda: [(256, 4), (256, 0), (8, 2), (28, 3), (7, 1), (101, 4)],
        hint=(
            'what does one 2x2 pool with stride 2 do to an odd size?',
            "'same' convolutions keep the size; each 2x2 pool with stride 2 halves it, rounding down "
            "(size // 2, repeated num_pools times).",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="04.alg7_params",
        title="Parameters of Alg. 7 as printed (3x3 filters), for 1-channel images and 10 classes",
        digest="0032b60285107507d6d3",
        hint=(
            "use your bncvl_parameters for every convolution of the table, then add the dense head.",
            "the first convolution sees 1 channel; the ten convolutions have 32, 32, 64, 64, 64, 64, 128, 128, 256, "
            "256 filters; the head is 256->256, 256->256 and 256->10, each with weights and biases.",
        ),
        rtol=0,
        atol=0,
    )
)


register(
    Exercise(
        id="04.loss_floor",
        title="Smallest cross-entropy possible when the C output logits are normalized (mean 0, std 1)",
        reference=normalized_loss_floor,
        cases=lambda: [(2,), (3,), (10,), (101,), (1000,)],
        hint=(
            "the logits have mean 0 and standard deviation 1: how large can the right class's logit be?",
            "the loss of one example is -log softmax(z)[right class]; it is smallest when the right class's "
            "logit is as large as possible and the C - 1 others are all equal (call them a and b). Use mean 0 and "
            "(population) variance 1 to find a and b.",
        ),
        rtol=1e-6,
        atol=1e-9,
    )
)




def _norm_mode_band(measured: Measured) -> str:
    diff = float(measured.values["val_acc"]) - float(measured.values["channels_val_acc"])
    return "chw trains better" if diff > 0.02 else "chw trains worse" if diff < -0.02 else "about the same"


register(
    Prediction(
        id="04.predict_norm_mode",
        title="Predict, then run: the tiny binary classifier with norm_mode='chw' instead of 'channels'",
        options=("chw trains better", "about the same", "chw trains worse"),
        changed={"norm_mode": "chw"},
        keys=("val_acc", "channels_val_acc"),
        outcome=_norm_mode_band,
        explain=lambda m: (
            f"Your run (norm_mode={m.settings['norm_mode']!r}): best validation accuracy "
            f"{float(m.values['val_acc']):.3f}, against {float(m.values['channels_val_acc']):.3f} with 'channels' "
            "(within 0.02 counts as about the same)."
        ),
        hint=(
            'what does each normalization keep that the other removes?',
            "section 3: with 'chw' one mean and one std serve the whole feature map; a background pixel and a "
            "stroke pixel keep their difference in size. Which information does each choice hand to the next layer?",
        ),
    )
)


def norm_mode_experiment(data: Any, train: dict[str, Any], channels_val_acc: float,
                         norm_mode: str = "channels") -> Measured:
    """Predict-then-run (notebook 04): the best validation accuracy of the tiny binary
    classifier trained with ``train`` (``fit``'s arguments) and ``norm_mode``, next to
    ``channels_val_acc``, the one already trained with ``"channels"`` (not trained again)."""
    from ...image_model import ImageClassifier
    from ...train import fit

    if norm_mode == "channels":
        val_acc = channels_val_acc
    else:
        torch.manual_seed(0)
        model = ImageClassifier.from_config("tiny", norm_mode=norm_mode)
        val_acc = fit(model, data.train, data.val, **train).best("val_acc")
    return _seal(settings={"norm_mode": norm_mode}, values={"val_acc": val_acc, "channels_val_acc": channels_val_acc})


# ---------------------------------------------------------------- build: a BNCVL from scratch


def _bncvl_observe(cls: Callable[..., Any], args: tuple) -> tuple | None:
    """Build ``cls(in, out, k, activation)`` with the latent weights drawn from ``seed``,
    run a batch through it and back: the output and the gradients of the latent kernel
    and bias (the straight-through estimator must reach them)."""
    seed, c_in, c_out, k, activation = args
    layer = cls(c_in, c_out, k, activation)
    if is_placeholder(layer):
        return None
    w, b = getattr(layer, "weight", None), getattr(layer, "bias", None)
    if not isinstance(w, nn.Parameter) or not isinstance(b, nn.Parameter):
        raise TypeError("your layer needs its latent parameters as self.weight (out, in, k, k) and self.bias (out,)")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w.copy_(torch.randn(w.shape, generator=g) * 0.1)
        b.copy_(torch.randn(b.shape, generator=g) * 0.1)
    x = torch.randn(2, c_in, 6, 5, generator=g)
    out = layer(x)
    if is_placeholder(out):
        return None
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in (w, b)]
    return out.detach(), *grads


register(
    Exercise(
        id="04.build_bncvl",
        title="Build: a BNCVL (Alg. 3) from scratch, output and gradients equal to BinaryConv2d's",
        reference=BinaryConv2d,
        cases=lambda: [(0, 3, 8, 3, "relu"), (1, 4, 6, 5, None), (2, 1, 5, 1, "relu")],
        observe=_bncvl_observe,
        forbidden=(
            "binedu.conv.BinaryConv2d",
            "binedu.base.BinaryModule",
            "binedu.quantize.quantize",
            "binedu.quantize.quantize_ste",
            *NORMS,
        ),
        hint=(
            "three steps: binarize kernel and bias with the STE, convolve with 'same' padding, normalize.",
            "the STE of p is p + ((p > p.mean()).float() - p).detach(), for the kernel and the bias separately; "
            "F.conv2d(x, w_b, b_b, padding='same') is allowed.",
            "BinaryConv2d normalizes the out_channels values of each pixel on their own: mean and population "
            "variance over dim=1 (keepdim), eps = 1e-5 inside the square root; then ReLU if activation == 'relu'.",
        ),
        rtol=1e-4,
        atol=1e-5,
    )
)
