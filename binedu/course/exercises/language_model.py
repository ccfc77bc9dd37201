"""Self-check exercises of notebook 05: the language model (Alg. 8).

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from ...metrics import evaluate, perplexity, token_loss
from ...paper_metrics import leaky_masks
from ..attention_maps import attention_weights
from .core import Exercise, Measured, Prediction, _seal, register


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
        forbidden=("binedu.course.exercises.language_model.future_mask",),
        hint=(
            'which positions j are in the future of position i?',
            "position i may attend to j <= i only; the positions to hide are those strictly above the "
            "diagonal (torch.triu with diagonal=1 of a matrix of ones, as bool).",
        ),
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="05.leaky_weight",
        title="Paper's -1e-10 mask, 8 tokens, all scores equal: total weight position 0 puts on the future",
        digest="5d7bdd8ac1733f4bf429",
        hint=(
            'is -1e-10 a large or a small number next to the other scores?',
            "-1e-10 is practically 0, so a 'masked' score stays equal to the others; softmax of 8 equal "
            "scores gives each position the same weight. How many of the 8 positions are in position 0's future?",
        ),
        rtol=0,
        atol=1e-6,
    )
)

register(
    Exercise(
        id="05.perplexity",
        title="Perplexity over real tokens: exp(mean NLL), padding targets excluded",
        reference=padfree_perplexity,
        cases=_perplexity_cases,
        forbidden=("binedu.course.exercises.language_model.padfree_perplexity", "binedu.metrics.token_loss", "binedu.metrics.perplexity"),
        hint=(
            'which targets must not count, and where does the mean go?',
            "take log_softmax of the logits, pick each target's log-probability, keep only the targets that "
            "are not pad_id, average their negative, and exponentiate (F.cross_entropy with ignore_index=pad_id "
            "does the middle steps).",
        ),
        rtol=1e-5,
        atol=1e-6,
    )
)


def mask_experiment(model: nn.Module, dataset: Dataset, leaky_mask: bool = False) -> Measured:
    """Predict-then-run (notebook 05): score a model that was trained with binedu's causal
    ``-inf`` mask under the paper's leaky ``-1e-10`` mask instead (``leaky_mask=True``),
    with the same weights. Returns the validation perplexity over real tokens under the
    trained mask (``ppl_causal``) and under the chosen one (``ppl``)."""
    with leaky_masks(model, leaky=False):
        causal = evaluate(model, dataset)["ppl"]
    with leaky_masks(model, leaky=leaky_mask):
        chosen = evaluate(model, dataset)["ppl"]
    return _seal(settings={"leaky_mask": leaky_mask}, values={"ppl_causal": causal, "ppl": chosen})


def _direction(measured: Measured) -> str:
    ratio = measured.values["ppl"] / measured.values["ppl_causal"]
    return "higher" if ratio > 1.05 else "lower" if ratio < 1 / 1.05 else "about the same"


register(
    Prediction(
        id="05.predict_leaky_swap",
        title="Give the honestly trained model the paper's leaky mask: its perplexity over real tokens is ...",
        options=("lower", "about the same", "higher"),
        changed={"leaky_mask": True},
        keys=("ppl_causal", "ppl"),
        outcome=_direction,
        explain=lambda m: (
            f"Your run measured a validation perplexity of {m.values['ppl_causal']:.2f} with the mask the model "
            f"was trained with, and {m.values['ppl']:.2f} with the leaky mask."
        ),
        hint=(
            'did this model ever see the future during training?',
            "with the leaky mask a future position gets the score -1e-10, practically 0, next to the scores "
            "this model learned for the past: is 0 large or small next to them (section 6's maps)? And could a model "
            "that never saw the future in training make any use of it?",
        ),
    )
)
