"""The paper-style evaluation (binedu.paper_metrics): each switch moves the numbers the
way it should on a padded batch, and with every switch off it is binedu's evaluate."""

import math

import pytest
import torch
from helpers import randomize
from torch import nn

from binedu import LanguageModel, evaluate
from binedu.attention import BinaryMultiheadAttention
from binedu.config import LanguageConfig
from binedu.data import text_data
from binedu.metrics import token_loss
from binedu.paper_metrics import format_paper_metrics_table, leaky_masks, paper_metrics_table, paper_style_evaluate

V, PAD = 12, 0


def padded_examples(n: int = 24, length: int = 9, seed: int = 0) -> torch.Tensor:
    """``n`` examples of ``length`` ids (BOS-free random text 1..V-1) with 0-5 pads at the end."""
    g = torch.Generator().manual_seed(seed)
    seqs = torch.randint(1, V, (n, length), generator=g)
    for i in range(n):
        pads = int(torch.randint(0, 6, (1,), generator=g))
        if pads:
            seqs[i, length - pads :] = PAD
    return seqs


def tiny(**kw) -> LanguageModel:
    return LanguageModel.from_config("tiny", vocab_size=V, max_len=8, embed_dim=32, mlp_units=(32,), **kw)


class PredictsPadding(nn.Module):
    """A stand-in for a model trained with padding counted: it has learned that padding
    follows padding (certain) and knows nothing else (uniform over the ids)."""

    config = LanguageConfig(vocab_size=V, max_len=8, embed_dim=4, num_heads=1, num_blocks=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*tokens.shape, V)
        logits[..., PAD] = torch.where(tokens == PAD, 20.0, 0.0)
        return logits


def test_all_switches_off_is_binedus_evaluate():
    model, data = randomize(tiny()), padded_examples()
    assert paper_style_evaluate(model, data, batch_size=5) == pytest.approx(evaluate(model, data, pad_id=PAD))


def test_counting_padding_lowers_loss_and_raises_accuracy_of_a_model_that_learned_it():
    data = padded_examples()
    ours = paper_style_evaluate(PredictsPadding(), data)
    paper = paper_style_evaluate(PredictsPadding(), data, count_padding=True)
    assert ours["loss"] == pytest.approx(math.log(V), rel=1e-6) and ours["acc"] == 0.0  # uniform; ties pick id 0
    assert paper["acc"] > 0.05
    assert paper["loss"] < ours["loss"] - 0.1 and paper["ppl"] < ours["ppl"]


def test_counting_padding_is_the_token_weighted_mix_of_real_and_padding_targets():
    model, data = randomize(tiny()), padded_examples()
    x, y = data[:, :-1], data[:, 1:]
    with torch.no_grad():
        logits = model(x)
    real, pad = y != PAD, y == PAD
    mix = (real.sum() * token_loss(logits[real], y[real], None) + pad.sum() * token_loss(logits[pad], y[pad], None)) / y.numel()
    assert paper_style_evaluate(model, data, count_padding=True)["loss"] == pytest.approx(float(mix), rel=1e-5)


@pytest.mark.parametrize("count_padding", [False, True])
def test_per_batch_perplexity_is_at_least_exp_of_the_loss(count_padding):
    model, data = randomize(tiny()), padded_examples(n=30)
    m = paper_style_evaluate(model, data, per_batch=True, batch_size=4, count_padding=count_padding)
    assert m["ppl"] > math.exp(m["loss"])  # Jensen: mean(exp(L_b)) >= exp(mean(L_b)), strict as the L_b differ


def test_per_batch_over_one_batch_is_the_data_set_mean():
    model, data = randomize(tiny()), padded_examples(n=10)
    one = paper_style_evaluate(model, data, per_batch=True, batch_size=10)
    assert one == pytest.approx(evaluate(model, data, pad_id=PAD))


def test_leaky_mask_lowers_the_loss_of_a_model_that_learned_to_peek():
    # random tokens: nothing to predict without seeing the future
    torch.manual_seed(0)
    model = tiny(binary=False, leaky_mask=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(100):
        batch = padded_examples(n=32, seed=step + 100)
        loss = token_loss(model(batch[:, :-1]), batch[:, 1:], PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    data = padded_examples(n=64, seed=1)
    honest = paper_style_evaluate(model, data)  # -inf, although the model was built leaky
    leaky = paper_style_evaluate(model, data, leaky_mask=True)
    assert all(m.leaky_mask for m in model.modules() if isinstance(m, BinaryMultiheadAttention))  # restored
    assert honest["loss"] > math.log(V - 1) - 0.2  # without the future: about chance
    assert leaky["loss"] < honest["loss"] - 0.3 and leaky["acc"] > honest["acc"]


def test_leaky_masks_restores_the_setting_and_needs_attention():
    model = tiny()
    with leaky_masks(model):
        assert all(m.leaky_mask for m in model.modules() if isinstance(m, BinaryMultiheadAttention))
    assert not any(m.leaky_mask for m in model.modules() if isinstance(m, BinaryMultiheadAttention))
    with pytest.raises(ValueError, match="no attention layer"), leaky_masks(PredictsPadding()):
        pass
    with pytest.raises(ValueError, match="language models"):
        paper_style_evaluate(nn.Linear(2, 2), [])


def test_the_table_has_every_row_for_both_variants():
    rows = paper_metrics_table(text_data(limit=40), limit=40, batch_size=8)
    assert [(r["variant"], r["row"][:5]) for r in rows][:5] == [("binary", n) for n in ("ours ", "+ pad", "+ lea", "+ per", "all t")]
    assert {r["variant"] for r in rows} == {"binary", "float32"}
    per_batch = [r for r in rows if r["row"].startswith("+ per")]
    assert all(r["ppl"] >= math.exp(r["loss"]) for r in per_batch)
    table = format_paper_metrics_table(rows)
    assert table.count("\n") == 1 + len(rows) and "exp(val loss)" in table
