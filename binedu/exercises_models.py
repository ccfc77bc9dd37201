"""Self-check exercises of notebooks 04 (the image model, Alg. 7) and 05 (the language
model, Alg. 4-6 and 8), registered with :func:`binedu.exercises.register` at import.

The references are binedu's own code wherever it exists (parameter counts of a built
layer, the attention of :mod:`binedu.attention`, the padding-free loss of
:mod:`binedu.metrics`), so an exercise checks the student against what the models do.
"""

from __future__ import annotations

import math

import torch

from .attention_maps import attention_weights
from .conv import BinaryConv2d
from .exercises import Exercise, register
from .metrics import perplexity, token_loss
from .model import count_parameters

__all__ = [
    "bncvl_parameters",
    "pooled_size",
    "normalized_loss_floor",
    "future_mask",
    "leaky_future_weight",
    "padfree_perplexity",
]


# ---------------------------------------------------------------- notebook 04: the image model


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


def _alg7_parameters() -> int:
    from .image_model import ImageClassifier

    return ImageClassifier.on_meta("paper-3x3").num_parameters()


register(
    Exercise(
        id="04.bncvl_params",
        title="Parameters of one BNCVL (Alg. 3) with in_channels inputs, out_channels filters of size f x f",
        reference=bncvl_parameters,
        cases=lambda: [(3, 32, 3), (32, 32, 3), (128, 256, 3), (3, 32, 5), (1, 16, 3), (64, 64, 1)],
        hint="each of the out_channels filters has f * f * in_channels weights, and each filter has one bias; "
        "the normalization of a binary layer has no parameters.",
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
        hint="'same' convolutions keep the size; each 2x2 pool with stride 2 halves it, rounding down "
        "(size // 2, repeated num_pools times).",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="04.alg7_params",
        title="Parameters of Alg. 7 as written (3x3 filters, 3 input channels, 101 classes)",
        reference=_alg7_parameters,
        hint="add up your BNCVL counts for the ten convolutions (32, 32, 64, 64, 64, 64, 128, 128, 256, 256 "
        "filters; the first sees 3 channels), then the dense head: 256->256, 256->256 and 256->101, each with "
        "weights and biases. Global average pooling leaves 256 features whatever the image size.",
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
        hint="the loss of one example is -log softmax(z)[right class]; it is smallest when the right class's "
        "logit is as large as possible and the C - 1 others are all equal (call them a and b). Use mean 0 and "
        "(population) variance 1 to find a and b.",
        rtol=1e-6,
        atol=1e-9,
    )
)


# ---------------------------------------------------------------- notebook 05: the language model


def future_mask(seq_len: int) -> torch.Tensor:
    """The causal mask of BATL (Alg. 6): a ``(seq_len, seq_len)`` bool tensor, ``True``
    where query ``i`` must NOT see key ``j`` (``j > i``, the future)."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1)


def leaky_future_weight(seq_len: int) -> float:
    """Total attention weight that position 0 gives to the future when all scores are
    equal and the mask fills with the paper's -1e-10 (Alg. 6, line 17)."""
    zeros = torch.zeros(1, seq_len, 1)
    return float(attention_weights(zeros, zeros, 1, leaky=True)[0, 0, 0, 1:].sum())


def padfree_perplexity(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> float:
    """``exp`` of the mean next-token NLL over the targets that are not ``pad_id``."""
    return perplexity(float(token_loss(logits, targets, pad_id)))


def _perplexity_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(6)
    padded = torch.randint(1, 7, (2, 6), generator=g)
    padded[0, 4:] = 0  # the first example ends early: two padding targets
    padded[1, 2:] = 0
    confident = torch.full((1, 5, 4), -5.0)
    confident[0, torch.arange(5), torch.tensor([0, 0, 0, 1, 2])] = 5.0  # predicts the padding very well
    return [
        (torch.randn(2, 6, 7, generator=g), padded, 0),
        (torch.randn(3, 4, 5, generator=g), torch.randint(0, 5, (3, 4), generator=g), 3),
        (confident, torch.tensor([[2, 0, 0, 1, 2]]), 0),  # with the padding counted it would look better,
    ]


register(
    Exercise(
        id="05.causal_mask",
        title="The causal mask of Alg. 6: True where position i must not attend to position j",
        reference=future_mask,
        cases=lambda: [(1,), (2,), (5,), (8,)],
        hint="position i may attend to j <= i only; the positions to hide are those strictly above the "
        "diagonal (torch.triu with diagonal=1 of a matrix of ones, as bool).",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="05.leaky_weight",
        title="Paper's -1e-10 mask, 8 tokens, all scores equal: total weight position 0 puts on the future",
        reference=lambda: leaky_future_weight(8),
        hint="-1e-10 is practically 0, so a 'masked' score stays equal to the others; softmax of 8 equal "
        "scores gives each position the same weight. How many of the 8 positions are in position 0's future?",
        rtol=1e-6,
        atol=1e-6,
    )
)

register(
    Exercise(
        id="05.perplexity",
        title="Perplexity over real tokens: exp(mean NLL), padding targets excluded",
        reference=padfree_perplexity,
        cases=_perplexity_cases,
        hint="take log_softmax of the logits, pick each target's log-probability, keep only the targets that "
        "are not pad_id, average their negative, and exponentiate (F.cross_entropy with ignore_index=pad_id "
        "does the middle steps).",
        rtol=1e-5,
        atol=1e-6,
    )
)
