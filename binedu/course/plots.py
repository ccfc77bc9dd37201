"""The figures of the notebooks, one function each (matplotlib).

Every function returns the :class:`matplotlib.figure.Figure` it drew on; most take an
``ax=`` to draw into an existing axes. They read tensors, layers, models or
:class:`~binedu.History` records and never train anything themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from torch import nn

from ..history import History
from ..model import count_parameters
from ..packed import PackedLayer
from ..quantize import quantize
from ..units import PRECISION_BITS, bytes_at_bits, format_bytes

__all__ = [
    "plot_weight_histogram",
    "plot_binary_kernels",
    "plot_flip_ratio",
    "plot_grad_norms",
    "plot_learning_curves",
    "plot_memory_bars",
    "plot_schedule",
    "plot_layer_flips",
    "plot_ste",
    "plot_threshold_distance",
    "layer_labels",
]

BIT_COLORS = ("#4c72b0", "#dd8452")  # bit 0, bit 1


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.8)) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.figure
        return (fig if isinstance(fig, Figure) else fig.figure), ax  # an axes in a subfigure: its root figure
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _tensor(source: nn.Module | torch.Tensor, name: str) -> torch.Tensor:
    """The latent tensor of a layer (its parameter ``name``) or the tensor itself."""
    if isinstance(source, torch.Tensor):
        return source.detach().float().cpu()
    if isinstance(source, nn.Module) and isinstance(getattr(source, name, None), torch.Tensor):
        return getattr(source, name).detach().float().cpu()
    raise ValueError(f"expected a tensor or a layer with a {name!r} tensor, got {type(source).__name__}")


def _labels(histories: Sequence[History], labels: Sequence[str] | None) -> list[str]:
    if not histories:
        raise ValueError("give at least one History")
    if labels is None:
        return [f"run {i + 1}" for i in range(len(histories))] if len(histories) > 1 else ["training"]
    if len(labels) != len(histories):
        raise ValueError(f"{len(labels)} labels for {len(histories)} histories")
    return list(labels)


def plot_weight_histogram(
    layer_or_tensor: nn.Module | torch.Tensor, name: str = "weight", bins: int = 60, ax: Axes | None = None
) -> Figure:
    """Histogram of a layer's latent float weights, split at the Eq. 1 threshold.

    Values above the tensor's mean become bit 1, the others bit 0; the two parts are
    coloured by their bit and a vertical line marks the threshold (the mean).
    """
    values = _tensor(layer_or_tensor, name).flatten()
    if values.numel() == 0:
        raise ValueError("cannot draw the histogram of an empty tensor")
    bits = quantize(values).bool()
    threshold = float(values.double().mean())
    fig, ax = _axes(ax)
    edges = np.histogram_bin_edges(values.numpy(), bins=bins)
    for bit in (0, 1):
        part = values[bits == bool(bit)].numpy()
        share = 100 * len(part) / values.numel()
        ax.hist(part, bins=edges.tolist(), color=BIT_COLORS[bit], alpha=0.85, label=f"bit {bit} ({share:.1f}%)")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5, label=f"Eq. 1 threshold = mean = {threshold:.3g}")
    ax.set_xlabel("latent weight value (float32)")
    ax.set_ylabel("number of weights")
    title = name if isinstance(layer_or_tensor, torch.Tensor) else f"{type(layer_or_tensor).__name__}.{name}"
    ax.set_title(f"Latent weights of {title} and their bits (Eq. 1)")
    ax.legend(fontsize="small")
    return fig


def plot_binary_kernels(
    conv_or_tensor: nn.Module | torch.Tensor, max_filters: int = 16, max_channels: int = 8, ax: Axes | None = None
) -> Figure:
    """The Eq. 1 bits of a convolution's kernels as bitmaps: one row per output filter,
    one column per input channel (at most ``max_filters`` x ``max_channels``), white = 1."""
    weight = _tensor(conv_or_tensor, "weight")
    if weight.ndim != 4:
        raise ValueError(f"kernels must have shape (out, in, k, k), got {tuple(weight.shape)}")
    bits = quantize(weight)[:max_filters, :max_channels]
    rows, cols, kh, kw = bits.shape
    # one pixel of separation (NaN: drawn as the background) between kernels
    grid = torch.full((rows, cols, kh + 1, kw + 1), float("nan"))
    grid[:, :, :kh, :kw] = bits
    image = rearrange(grid, "r c h w -> (r h) (c w)")[:-1, :-1]
    height, width = image.shape
    fig, ax = _axes(ax, figsize=(max(3.0, 0.12 * width + 1.2), max(2.5, 0.12 * height + 1.0)))
    cmap = plt.get_cmap("gray").with_extremes(bad="#8c8c8c")  # grey separators
    ax.imshow(image.numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(cols)], [str(c) for c in range(cols)])
    ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(rows)], [str(r) for r in range(rows)])
    ax.set_xlabel("input channel")
    ax.set_ylabel("output filter")
    ax.set_title(f"Binary {kh}x{kw} kernels (Eq. 1): white = 1, black = 0")
    return fig


def plot_flip_ratio(
    *histories: History, labels: Sequence[str] | None = None, log: bool = False, ax: Axes | None = None
) -> Figure:
    """Fraction of all bits that flipped between records, over training steps: how much
    the binary network still changes (it falls as training settles)."""
    names = _labels(histories, labels)
    fig, ax = _axes(ax)
    for history, label in zip(histories, names, strict=True):
        if not history.flip_ratio:
            raise ValueError(f"{label!r} has no flip-ratio records (a float model, or no record_every steps yet)")
        ax.plot(history.flip_steps, [100 * r for r in history.flip_ratio], label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("bits flipped since last record (%)")
    ax.set_title("Bit flips during training")
    ax.legend()
    return fig


def layer_labels(names: Iterable[str], max_lines: int = 4) -> dict[str, str]:
    """At most ``max_lines`` layers out of ``names`` (ordered input to output), evenly
    spread and always with the first and the last, each with a readable label such as
    ``"layer 1 of 7 (input)"``; a plot with one line per layer of a deep model is a tangle."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be >= 1, got {max_lines}")
    names = list(names)
    n = len(names)
    k = min(max_lines, n)
    picks = sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})
    where = {0: " (input)", n - 1: " (output)"}
    return {names[i]: f"layer {i + 1} of {n}" + where.get(i, "") for i in picks}


def plot_grad_norms(
    *histories: History, labels: Sequence[str] | None = None, layers: Sequence[str] | None = None, max_lines: int = 4
) -> Figure:
    """Per-layer gradient norms over training, one panel per history on a shared log
    scale, e.g. a binary model with and without normalization: without it the norms
    vanish or explode across layers (Sec. 1). Unless ``layers`` names them, at most
    ``max_lines`` layers are drawn (the first, the last and some between)."""
    names = _labels(histories, labels)
    fig, axes = plt.subplots(
        1, len(histories), figsize=(5.0 * len(histories), 3.8), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, history, label in zip(axes[0], histories, names, strict=True):
        if layers is None:
            chosen = layer_labels(history.grad_norms, max_lines)
        else:
            chosen = {n: n for n in layers if n in history.grad_norms}
        if not chosen:
            raise ValueError(f"{label!r} has no gradient-norm records for the asked layers")
        colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(chosen)))
        for (name, text), color in zip(chosen.items(), colors, strict=True):
            values = np.asarray(history.grad_norms[name], dtype=float)
            ax.plot(history.grad_steps, np.where(values > 0, values, np.nan), color=color, label=text)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{label}: gradient norm per layer")
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel("L2 norm of the layer's gradients")
    return fig


def plot_layer_flips(history: History, max_lines: int = 4, log: bool = True) -> Figure:
    """Left: the fraction of each layer's bits that flipped between records (at most
    ``max_lines`` layers, as :func:`layer_labels` picks). Right: the fraction of all bits
    that differ from initialisation, next to the running sum of the flips: where the sum
    runs ahead, bits flipped and flipped back (oscillation around the Eq. 1 threshold)."""
    if not history.layer_flips or not history.changed_since_init:
        raise ValueError("the history has no per-layer flip records (a float model, or recorded by an older binedu)")
    fig, (ax_l, ax_c) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    chosen = layer_labels(history.layer_flips, max_lines)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(chosen)))
    for (name, text), color in zip(chosen.items(), colors, strict=True):
        values = 100 * np.asarray(history.layer_flips[name], dtype=float)
        ax_l.plot(history.flip_steps, np.where(values > 0, values, np.nan) if log else values, color=color, label=text)
    if log:
        ax_l.set_yscale("log")
    ax_l.set(xlabel="training step", ylabel="bits flipped since last record (%)", title="Bit flips per layer")
    ax_l.legend(fontsize="small")
    ax_c.plot(history.flip_steps, 100 * np.asarray(history.changed_since_init), label="bits different from initialisation")
    ax_c.plot(history.flip_steps, 100 * np.cumsum(history.flip_ratio), "--", label="all flips added up")
    ax_c.set(xlabel="training step", ylabel="% of all bits", title="Bits changed since initialisation")
    ax_c.legend(fontsize="small")
    return fig


def plot_ste(threshold: float = 0.0, span: float = 1.0, ax: Axes | None = None) -> Figure:
    """The straight-through estimator in one picture: the forward pass uses the step of
    Eq. 1 (0 below the threshold, 1 above), the backward pass the slope of the identity
    (1 everywhere), read from autograd through :func:`binedu.quantize_ste`."""
    from ..quantize import quantize_ste

    # a symmetric tensor around `threshold`: its mean, Eq. 1's threshold, is `threshold`
    half = torch.linspace(0.0, span, 201, dtype=torch.float64)[1:]
    w = torch.cat([threshold - half.flip(0), threshold + half]).requires_grad_()
    out = quantize_ste(w)
    (grad,) = torch.autograd.grad(out.sum(), w)
    fig, ax = _axes(ax, figsize=(6.5, 3.8))
    x = w.detach().numpy()
    ax.plot(x, out.detach().numpy(), color=BIT_COLORS[1], lw=2.5, label="forward: the bit, Eq. 1 (a step)")
    ax.plot(x, x - threshold + 0.5, "--", color=BIT_COLORS[0], lw=1.5,
            label=f"backward: slope of the identity, d bit / dw = {grad.mean().item():g} everywhere")
    ax.axvline(threshold, color="black", lw=0.8, ls=":", label="threshold (the tensor's mean)")
    ax.set(xlabel="latent weight w", ylabel="value used", ylim=(-0.6, 1.6),
           title="Straight-through estimator: step forward, identity backward")
    ax.legend(fontsize="small", loc="upper left")
    return fig


def plot_threshold_distance(
    snapshots: Mapping[int, torch.Tensor], near: float, bins: int = 40, ax: Axes | None = None
) -> Figure:
    """Histograms of ``|w - mean(w)|`` (each latent weight's distance to its Eq. 1
    threshold) at several training steps (``{step: latent tensor}``), on a log axis. A
    weight closer than ``near`` (e.g. the size of one optimizer step) can flip at the
    next step; the others are frozen for now."""
    if not snapshots:
        raise ValueError("give at least one {step: latent tensor} snapshot")
    if near <= 0:
        raise ValueError(f"near must be > 0, got {near}")
    distances = {}
    for step, w in snapshots.items():
        w = w.detach().double().flatten()
        distances[step] = (w - w.mean()).abs().clamp_min(1e-9).numpy()
    low = max(min(float(d.min()) for d in distances.values()), 1e-7)
    high = max(float(d.max()) for d in distances.values())
    edges = np.geomspace(low, high * 1.01, bins)
    fig, ax = _axes(ax, figsize=(6.5, 3.8))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(distances)))
    for (step, d), color in zip(distances.items(), colors, strict=True):
        close = float((d < near).mean())
        ax.hist(d, bins=edges.tolist(), histtype="step", lw=1.8, color=color,
                label=f"step {step}: {close:.1%} within {near:g} of the threshold")
    ax.axvline(near, color="black", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set(xlabel="|latent weight - threshold| (log scale)", ylabel="weights",
           title="How far each latent weight is from flipping its bit")
    ax.legend(fontsize="small")
    return fig


METRIC_LABELS = {
    "loss": "cross-entropy loss (nats)",
    "acc": "accuracy",
    "ppl": "perplexity",
}


def plot_learning_curves(
    histories: Mapping[str, History] | Sequence[History], metric: str = "loss", ax: Axes | None = None
) -> Figure:
    """Train (solid) and validation (dashed) ``metric`` per epoch for each run, e.g.
    ``{"binary": h1, "float32": h2}``; ``metric`` is ``"loss"``, ``"acc"`` or ``"ppl"``."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; use one of {sorted(METRIC_LABELS)}")
    if not isinstance(histories, Mapping):
        histories = dict(zip(_labels(list(histories), None), histories, strict=True))
    if not histories:
        raise ValueError("give at least one History")
    fig, ax = _axes(ax)
    colors = plt.get_cmap("tab10")
    drawn = 0
    for i, (label, history) in enumerate(histories.items()):
        for split, style in (("train", "-"), ("val", "--")):
            points = [(e["epoch"], e[f"{split}_{metric}"]) for e in history.epochs if f"{split}_{metric}" in e]
            if points:
                x, y = zip(*points, strict=True)
                ax.plot(x, y, style, color=colors(i % 10), marker="o", markersize=3, label=f"{label} ({split})")
                drawn += 1
    if drawn == 0:
        raise ValueError(f"no history has per-epoch {metric!r} values")
    ax.set_xlabel("epoch")
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.set_title(f"Learning curves: {METRIC_LABELS[metric]}")
    if metric == "ppl":
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return fig


def plot_memory_bars(num_params_or_model: int | nn.Module, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Bytes needed to store ``num_params`` parameters at float32, float16, int8 and 1 bit,
    as labelled bars on a linear axis, so the float32 bar is 32 times taller than the
    1-bit bar (a log axis would make 32x look like a small step). A model gives its
    parameter count; a packed model the number of bits it stores."""
    if isinstance(num_params_or_model, nn.Module):
        model = num_params_or_model
        n = count_parameters(model) or sum(m.num_bits() for m in model.modules() if isinstance(m, PackedLayer))
    else:
        n = num_params_or_model
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"the number of parameters must be a positive integer, got {n!r}")
    fig, ax = _axes(ax)
    names = list(PRECISION_BITS)
    sizes = [bytes_at_bits(n, PRECISION_BITS[k]) for k in names]
    bars = ax.bar(names, sizes, color=["#8c8c8c", "#a1a1a1", "#bdbdbd", BIT_COLORS[1]])
    labels = [format_bytes(s) + (f"\n({sizes[0] / s:.0f}x smaller)" if s < sizes[0] else "") for s in sizes]
    ax.bar_label(bars, labels)
    ax.set_ylim(0, sizes[0] * 1.3)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_bytes(max(value, 0))))
    ax.set_xlabel("storage per parameter")
    ax.set_ylabel("memory (bytes)")
    ax.set_title(title or f"Memory of {n:,} parameters")
    return fig


def plot_schedule(
    history: History | Sequence[float], ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """The learning rate at each step (warmup then decay, :mod:`binedu.schedule`): a run's
    History, or the rates of :func:`binedu.schedule.schedule_values` (e.g. the paper's
    Table 1 schedule, drawn without training)."""
    rates = history.lr if isinstance(history, History) else list(history)
    if not rates:
        raise ValueError("the history has no learning-rate records")
    steps = history.steps if isinstance(history, History) else list(range(len(rates)))
    fig, ax = _axes(ax)
    ax.plot(steps, rates, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("learning rate")
    ax.set_title(title or "Learning-rate schedule (warmup, then decay)")
    if label:
        ax.legend(fontsize="small")
    return fig
