"""Evaluation figures (confusion matrix, digit grid, attention heatmap) drawn on Agg, and
the attention read-out of BATL (Alg. 6): weights identical to the model's, causal unless
the paper's leaky mask is on."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from binedu import ImageClassifier, LanguageModel  # noqa: E402
from binedu.attention import causal_attention  # noqa: E402
from binedu.course.attention_maps import attention_maps, attention_weights, future_influence  # noqa: E402
from binedu.course.plots_eval import (  # noqa: E402
    confusion_matrix,
    plot_attention,
    plot_confusion_matrix,
    plot_digit_predictions,
    predict,
)
from binedu.data.images import TensorImageDataset  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def tiny_lm(**overrides) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel.from_config("tiny", vocab_size=20, max_len=12, embed_dim=16, num_heads=2, **overrides)


# ---------------------------------------------------------------- classification


@given(st.integers(1, 6), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=40))
def test_confusion_matrix_counts_every_pair(n, pairs):
    pairs = [(t % n, p % n) for t, p in pairs]
    targets, preds = torch.tensor([t for t, _ in pairs]), torch.tensor([p for _, p in pairs])
    m = confusion_matrix(preds, targets, n)
    assert m.shape == (n, n) and int(m.sum()) == len(pairs)
    for t in range(n):
        for p in range(n):
            assert int(m[t, p]) == pairs.count((t, p))
    assert int(m.diagonal().sum()) == int((preds == targets).sum())


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="outside the 3 classes"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)


def test_predict_is_the_argmax_in_eval_mode_and_restores_training_mode():
    torch.manual_seed(0)
    model = ImageClassifier.from_config("tiny", binary=False)  # has dropout: eval mode matters
    images, labels = torch.randn(10, 1, 8, 8), torch.arange(10) % 10
    model.train()
    preds, targets = predict(model, TensorImageDataset(images, labels), batch_size=3)
    assert model.training
    model.eval()
    assert torch.equal(preds, model(images).argmax(-1)) and torch.equal(targets, labels)
    with pytest.raises(ValueError, match="empty"):
        predict(model, TensorImageDataset(images[:0], labels[:0]))


def test_plot_confusion_matrix_shows_counts_and_accuracy():
    m = torch.tensor([[3, 1], [0, 4]])
    fig = plot_confusion_matrix(m, ["cat", "dog"], title="Pets")
    ax = fig.axes[0]
    assert "accuracy 87.5%" in ax.get_title() and "Pets" in ax.get_title()
    assert sorted(t.get_text() for t in ax.texts) == ["1", "3", "4"]  # zero cells are left blank
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(m, ["a", "b", "c"])


def test_plot_digit_predictions_marks_wrong_ones_in_red():
    images = torch.rand(5, 1, 8, 8)
    fig = plot_digit_predictions(images, [1, 2, 3, 4, 5], [1, 2, 0, 4, 0], ncols=3, title="Digits")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 5 and len(fig.axes) == 6  # 2 rows x 3 columns, one left empty
    red = [ax.get_title() for ax in titled if ax.title.get_color() == "#c44e52"]
    assert red == ["pred 0\ntrue 3", "pred 0\ntrue 5"]
    assert fig._suptitle.get_text() == "Digits: 2 of 5 wrong (in red)"
    with pytest.raises(ValueError, match="need one each"):
        plot_digit_predictions(images, [1, 2], [1, 2])


def test_plot_attention_reports_weight_on_the_future():
    causal = attention_weights(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), 1)[0, 0]
    leaky = attention_weights(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), 1, leaky=True)[0, 0]
    fig = plot_attention(causal, list("ab c"), title="causal")
    ax = fig.axes[0]
    assert ax.get_title().endswith("mean weight on the future: 0.000")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "␣", "c"]
    # 4 equal scores, leaky: each row puts (4 - 1 - i) / 4 on the future, mean (3+2+1+0)/16
    assert plot_attention(leaky).axes[0].get_title().endswith(f"{6 / 16:.3f}")
    with pytest.raises(ValueError, match="square"):
        plot_attention(torch.zeros(2, 3))


# ---------------------------------------------------------------- attention read-out


@given(st.integers(1, 9), st.sampled_from([1, 2, 4]), st.booleans(), st.integers(0, 2**31 - 1))
def test_weights_times_values_is_causal_attention(seq, heads, leaky, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, seq, 8, generator=g) for _ in range(3))
    w = attention_weights(q, k, heads, leaky)
    assert w.shape == (2, heads, seq, seq)
    assert torch.allclose(w.sum(-1), torch.ones(2, heads, seq), atol=1e-5)
    heads_v = v.reshape(2, seq, heads, 8 // heads).transpose(1, 2)
    out = (w @ heads_v).transpose(1, 2).reshape(2, seq, 8)
    assert torch.allclose(out, causal_attention(q, k, v, heads, leaky), atol=1e-5)
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    if leaky and seq > 1:
        assert bool((w[..., future] > 0).all())
    else:
        assert bool((w[..., future] == 0).all())


def test_attention_weights_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        attention_weights(torch.zeros(1, 3, 6), torch.zeros(1, 3, 6), 4)
    with pytest.raises(ValueError, match="shape"):
        attention_weights(torch.zeros(3, 6), torch.zeros(3, 6), 2)


def test_attention_maps_are_one_per_block_and_match_a_hand_computation():
    model = tiny_lm()
    tokens = torch.randint(0, 20, (2, 7), generator=torch.Generator().manual_seed(1))
    model.train()
    maps = attention_maps(model, tokens)
    assert model.training and len(maps) == model.config.num_blocks
    assert all(m.shape == (2, 2, 7, 7) for m in maps)
    attn = model.blocks[0].attention
    x = model.norm(model.embedding(tokens))
    q, k = attn.query(x), attn.key(x)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.reshape(2, 7, 2, 8), k.reshape(2, 7, 2, 8)) / math.sqrt(8)
    expected = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    assert torch.allclose(maps[0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="no BinaryMultiheadAttention"):
        attention_maps(nn.Linear(2, 2), tokens)


def test_future_influence_is_zero_before_the_change_only_with_a_causal_mask():
    causal, leaky = tiny_lm(), tiny_lm(leaky_mask=True)
    leaky.load_state_dict(causal.state_dict())
    tokens = torch.randint(0, 20, (10,), generator=torch.Generator().manual_seed(2))
    c, lk = future_influence(causal, tokens, position=6), future_influence(leaky, tokens, position=6)
    assert c.shape == (10,)
    assert bool((c[:6] == 0).all()) and float(c[6:].max()) > 0
    assert bool((lk[:6] > 0).all())
    with pytest.raises(ValueError, match="outside a sequence"):
        future_influence(causal, tokens, position=10)
    with pytest.raises(ValueError, match="already at position"):
        future_influence(causal, tokens, position=0, replacement=int(tokens[0]))


def test_plot_measured_sizes_draws_linear_bars_with_their_ratio():
    from binedu.course.plots_eval import plot_measured_sizes

    fig = plot_measured_sizes({"float32": 32e6, "packed": 1e6}, title="files")
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([32.0, 1.0])  # linear: 32x is a bar 32 times longer
    assert ax.get_xscale() == "linear"
    labels = [t.get_text() for t in ax.texts]
    assert any("1.00 MB, 32.0x smaller" in t for t in labels) and any("32.00 MB" in t for t in labels)
    plt.close(fig)
    with pytest.raises(ValueError, match="reference"):
        plot_measured_sizes({"a": 1.0}, title="t", reference="b")
    with pytest.raises(ValueError, match="negative"):
        plot_measured_sizes({"a": -1.0}, title="t")


def test_plot_paper_metrics_draws_a_bar_per_model_and_pipeline() -> None:
    from binedu.course.plots_eval import plot_paper_metrics

    rows = [{"variant": v, "row": r, "loss": loss, "ppl": ppl}
            for v, base in (("binary", 2.0), ("float32", 1.5))
            for r, loss, ppl in (("ours", base, math.exp(base)), ("all three", base / 2, 1.1 * math.exp(base / 2)))]
    fig = plot_paper_metrics(rows)
    ax = fig.axes[0]
    assert sorted(round(p.get_height(), 6) for p in ax.patches) == sorted(round(r["ppl"], 6) for r in rows)
    ticks = [line for line in ax.lines if line.get_label() != "_nolegend_"]
    assert len(ax.lines) == len(rows)  # one exp(loss) tick per bar
    assert {round(line.get_ydata()[0], 6) for line in ax.lines} == {round(math.exp(r["loss"]), 6) for r in rows}
    assert ticks and [t.get_text() for t in ax.get_xticklabels()] == ["ours", "all three"]
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one row"):
        plot_paper_metrics([])
