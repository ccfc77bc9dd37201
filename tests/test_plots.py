"""The notebook figures (binedu.course.plots), drawn on the Agg backend; axes content is checked,
not pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from train_fixtures import image_model  # noqa: E402

from binedu.conv import BinaryConv2d  # noqa: E402
from binedu.course.plots import (  # noqa: E402
    layer_labels,
    plot_binary_kernels,
    plot_flip_ratio,
    plot_grad_norms,
    plot_layer_flips,
    plot_learning_curves,
    plot_memory_bars,
    plot_schedule,
    plot_ste,
    plot_threshold_distance,
    plot_weight_histogram,
)
from binedu.history import History  # noqa: E402
from binedu.quantize import quantize  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(layers=("layers.0", "layers.1"), epochs=3, lm=False, flips=True) -> History:
    h = History(steps=list(range(20)), loss=[1.0 / (s + 1) for s in range(20)], lr=[1e-3] * 20)
    for e in range(1, epochs + 1):
        record = {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_acc": 0.3 * e, "val_acc": 0.25 * e}
        if lm:
            record |= {"train_ppl": float(np.exp(2.0 / e)), "val_ppl": float(np.exp(2.2 / e))}
        h.epochs.append(record)
    h.grad_steps = [4, 9, 14, 19]
    h.grad_norms = {name: [0.1 * (i + 1)] * 4 for i, name in enumerate(layers)}
    if flips:
        h.flip_steps, h.flip_ratio = [4, 9, 14, 19], [0.2, 0.1, 0.05, 0.01]
    return h


def test_weight_histogram_splits_at_the_mean_and_draws_the_threshold():
    layer = BinaryConv2d(3, 8, 3)
    fig = plot_weight_histogram(layer)
    ax = fig.axes[0]
    (line,) = ax.lines
    mean = float(layer.weight.detach().double().mean())
    assert line.get_xdata()[0] == pytest.approx(mean)
    ones = int(quantize(layer.weight.detach()).sum())
    heights = [sum(p.get_height() for p in container) for container in ax.containers]
    assert heights == [layer.weight.numel() - ones, ones]  # bit-0 bars then bit-1 bars
    assert "latent" in ax.get_xlabel() and ax.get_ylabel()
    assert "Eq. 1 threshold" in " ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_weight_histogram_accepts_a_tensor_and_an_existing_axes():
    fig, ax = plt.subplots()
    assert plot_weight_histogram(torch.randn(100), ax=ax) is fig
    assert len(ax.lines) == 1
    with pytest.raises(ValueError, match="empty"):
        plot_weight_histogram(torch.empty(0))
    with pytest.raises(ValueError, match="weight"):
        plot_weight_histogram(torch.nn.ReLU())


def test_binary_kernels_are_drawn_as_bitmaps_of_the_bits():
    conv = BinaryConv2d(2, 3, 3)
    fig = plot_binary_kernels(conv)
    ax = fig.axes[0]
    (image,) = ax.images
    data = np.ma.filled(image.get_array().astype(float), np.nan)
    assert data.shape == (3 * 4 - 1, 2 * 4 - 1)
    bits = quantize(conv.weight.detach()).numpy()
    assert np.array_equal(data[0:3, 4:7], bits[0, 1]) and np.array_equal(data[8:11, 0:3], bits[2, 0])
    assert np.isnan(data[3, 0])  # separator
    assert ax.get_xlabel() == "input channel" and ax.get_ylabel() == "output filter"
    with pytest.raises(ValueError, match="out, in, k, k"):
        plot_binary_kernels(torch.randn(3, 3))


def test_binary_kernels_are_capped():
    fig = plot_binary_kernels(torch.randn(40, 20, 5, 5), max_filters=4, max_channels=2)
    assert fig.axes[0].images[0].get_array().shape == (4 * 6 - 1, 2 * 6 - 1)


def test_flip_ratio_draws_one_line_per_history_in_percent():
    fig = plot_flip_ratio(history(), history(), labels=["binary", "no norm"])
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert list(ax.lines[0].get_ydata()) == pytest.approx([20, 10, 5, 1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["binary", "no norm"]
    assert "%" in ax.get_ylabel() and ax.get_xlabel() == "training step"
    with pytest.raises(ValueError, match="no flip-ratio"):
        plot_flip_ratio(history(flips=False))
    with pytest.raises(ValueError, match="labels"):
        plot_flip_ratio(history(), labels=["a", "b"])


def test_grad_norms_one_log_panel_per_history_and_one_line_per_layer():
    fig = plot_grad_norms(history(), history(layers=("a", "b", "c")), labels=["normalized", "no normalization"])
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 3
    assert left.get_yscale() == "log" and "normalized" in left.get_title()
    assert list(right.lines[2].get_ydata()) == pytest.approx([0.3] * 4)
    one = plot_grad_norms(history(), layers=["layers.1"])
    assert len(one.axes[0].lines) == 1
    with pytest.raises(ValueError, match="no gradient-norm"):
        plot_grad_norms(history(), layers=["missing"])


def test_grad_norms_of_a_deep_model_draw_a_few_layers_with_readable_labels():
    deep = history(layers=tuple(f"layers.{i}" for i in (0, 1, 3, 4, 6, 9, 10)))
    fig = plot_grad_norms(deep)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "layer 1 of 7 (input)" and labels[-1] == "layer 7 of 7 (output)" and len(labels) == 4
    assert list(fig.axes[0].lines[-1].get_ydata()) == pytest.approx([0.7] * 4)  # layers.10 is the 7th


def test_layer_labels_pick_first_last_and_spread():
    assert list(layer_labels(["a", "b"], 4)) == ["a", "b"]
    assert list(layer_labels("abcdefghi", 3)) == ["a", "e", "i"]
    assert layer_labels(["only"], 4) == {"only": "layer 1 of 1 (output)"}
    with pytest.raises(ValueError, match="max_lines"):
        layer_labels(["a"], 0)


def test_layer_flips_per_layer_and_changed_since_init():
    h = history()
    h.layer_flips = {"layers.0": [0.3, 0.1, 0.0, 0.02], "layers.1": [0.1, 0.1, 0.1, 0.0]}
    h.changed_since_init = [0.2, 0.25, 0.27, 0.26]
    fig = plot_layer_flips(h)
    left, right = fig.axes
    assert len(left.lines) == 2 and left.get_yscale() == "log"
    assert np.isnan(left.lines[0].get_ydata()[2])  # zero flips: a gap on the log axis, not -inf
    assert list(right.lines[0].get_ydata()) == pytest.approx([20, 25, 27, 26])
    assert list(right.lines[1].get_ydata()) == pytest.approx([20, 30, 35, 36])  # flips added up
    with pytest.raises(ValueError, match="per-layer flip"):
        plot_layer_flips(history())


def test_ste_plot_shows_the_step_forward_and_a_unit_slope_backward():
    fig = plot_ste(threshold=0.3)
    forward, backward = fig.axes[0].lines[:2]
    x, y = forward.get_xdata(), forward.get_ydata()
    assert set(np.unique(y)) == {0.0, 1.0} and np.all((y == 1) == (x > 0.3 + 1e-12))
    assert np.allclose(np.diff(backward.get_ydata()) / np.diff(backward.get_xdata()), 1.0)
    assert "d bit / dw = 1" in backward.get_label()


def test_threshold_distance_histograms_count_the_weights_near_the_threshold():
    w0 = torch.tensor([-1.0, -0.001, 0.001, 1.0])  # mean 0: two of four within 0.01
    fig = plot_threshold_distance({0: w0, 100: w0 * 1000}, near=0.01)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["step 0: 50.0% within 0.01 of the threshold", "step 100: 0.0% within 0.01 of the threshold"]
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="near"):
        plot_threshold_distance({0: w0}, near=0)
    with pytest.raises(ValueError, match="snapshot"):
        plot_threshold_distance({}, near=0.1)


@pytest.mark.parametrize(("metric", "lm", "scale"), [("loss", False, "linear"), ("acc", False, "linear"), ("ppl", True, "log")])
def test_learning_curves_train_and_val_per_run(metric, lm, scale):
    fig = plot_learning_curves({"binary": history(lm=lm), "float32": history(lm=lm, epochs=2)}, metric=metric)
    ax = fig.axes[0]
    assert len(ax.lines) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["binary (train)", "binary (val)", "float32 (train)", "float32 (val)"]
    assert list(ax.lines[3].get_xdata()) == [1, 2]
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == scale


def test_learning_curves_reject_missing_metrics():
    with pytest.raises(ValueError, match="no history"):
        plot_learning_curves({"binary": history()}, metric="ppl")
    with pytest.raises(ValueError, match="unknown metric"):
        plot_learning_curves([history()], metric="f1")


def test_memory_bars_show_32x_between_float32_and_one_bit():
    fig = plot_memory_bars(1_000_000)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [4_000_000, 2_000_000, 1_000_000, 125_000]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["float32", "float16", "int8", "1 bit"]
    texts = [t.get_text() for t in ax.texts]
    assert "125 kB\n(32x smaller)" in texts and "4 MB" in texts
    assert ax.get_yscale() == "linear" and "bytes" in ax.get_ylabel()  # the float32 bar is 32x as tall


def test_memory_bars_count_a_models_parameters():
    model = image_model()
    fig = plot_memory_bars(model)
    assert fig.axes[0].patches[0].get_height() == 4 * model.num_parameters()
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            plot_memory_bars(bad)


def test_schedule_plot_draws_the_recorded_rates():
    fig = plot_schedule(history())
    assert len(fig.axes[0].lines[0].get_xdata()) == 20
    paper = plot_schedule([0.5, 1.0, 0.7, 0.1], label="Table 1")
    assert list(paper.axes[0].lines[0].get_ydata()) == [0.5, 1.0, 0.7, 0.1]
    assert paper.axes[0].get_legend().get_texts()[0].get_text() == "Table 1"
    with pytest.raises(ValueError, match="learning-rate"):
        plot_schedule(History())
