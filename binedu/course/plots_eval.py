"""Figures that evaluate a trained model: confusion matrix, a grid of predicted digits,
attention heatmaps (notebooks 04 and 05) and measured sizes (notebook 06), with the
numbers they draw.

Like :mod:`binedu.course.plots`, every plotting function returns the
:class:`matplotlib.figure.Figure` it drew on and takes an ``ax=`` where one axes suffices.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..metrics import dataset_len
from .plots import _axes

__all__ = [
    "predict",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_digit_predictions",
    "plot_attention",
    "plot_measured_sizes",
    "plot_paper_metrics",
]


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes (argmax of the logits) and true labels of a classifier on an
    ``(input, label)`` data set, as two ``(N,)`` LongTensors. Runs in eval mode (no
    dropout) and leaves the model in the mode it was in."""
    if dataset_len(dataset) == 0:
        raise ValueError("the data set is empty: nothing to predict")
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            preds.append(model(x).argmax(dim=-1))
            targets.append(y)
    finally:
        model.train(was_training)
    return torch.cat(preds).long(), torch.cat(targets).long()


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts: entry ``[t, p]`` is how many examples of
    true class ``t`` were predicted as ``p`` (the diagonal holds the correct ones)."""
    preds, targets = torch.as_tensor(preds).long().flatten(), torch.as_tensor(targets).long().flatten()
    if preds.shape != targets.shape:
        raise ValueError(f"{preds.numel()} predictions for {targets.numel()} targets")
    for name, t in (("prediction", preds), ("target", targets)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"a {name} lies outside the {num_classes} classes [0, {num_classes})")
    flat = torch.bincount(targets * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str] | None = None, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Heatmap of a :func:`confusion_matrix` with the count in each cell; the title gives
    the accuracy (the diagonal's share)."""
    m = torch.as_tensor(matrix).detach().cpu()
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"a confusion matrix is square, got shape {tuple(m.shape)}")
    n = m.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else list(class_names)
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for a {n}x{n} matrix")
    fig, ax = _axes(ax, figsize=(5.2, 4.6))
    image = ax.imshow(m.numpy(), cmap="Blues")
    fig.colorbar(image, ax=ax, label="number of examples")
    big = float(m.max()) / 2
    for t in range(n):
        for p in range(n):
            if m[t, p]:
                color = "white" if float(m[t, p]) > big else "black"
                ax.text(p, t, str(int(m[t, p])), ha="center", va="center", fontsize="x-small", color=color)
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = float(m.diagonal().sum()) / max(float(m.sum()), 1.0)
    ax.set_title(f"{title or 'Confusion matrix'} (accuracy {accuracy:.1%})")
    return fig


def plot_digit_predictions(
    images: torch.Tensor,
    targets: Sequence[int] | torch.Tensor,
    preds: Sequence[int] | torch.Tensor,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
) -> Figure:
    """A grid of images, each titled "pred P / true T" (red when wrong): ``images`` is
    ``(N, 1, H, W)`` or ``(N, H, W)`` grey images (any scale, standardized is fine)."""
    x = torch.as_tensor(images).detach().float().cpu()
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W) with N >= 1, got {tuple(images.shape)}")
    targets, preds = torch.as_tensor(targets).flatten().tolist(), torch.as_tensor(preds).flatten().tolist()
    if not len(targets) == len(preds) == x.shape[0]:
        raise ValueError(f"{x.shape[0]} images, {len(targets)} targets and {len(preds)} predictions: need one each")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    name = (lambda c: str(c)) if class_names is None else (lambda c: str(class_names[c]))
    ncols = min(ncols, x.shape[0])
    nrows = -(-x.shape[0] // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows + 0.4), squeeze=False, layout="constrained"
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= x.shape[0]:
            continue
        ax.imshow(x[i].numpy(), cmap="gray_r", interpolation="nearest")
        wrong = preds[i] != targets[i]
        ax.set_title(
            f"pred {name(preds[i])}\ntrue {name(targets[i])}", fontsize="small", color="#c44e52" if wrong else "black"
        )
    wrong_count = sum(p != t for p, t in zip(preds, targets, strict=True))
    fig.suptitle(f"{title or 'Predictions'}: {wrong_count} of {len(preds)} wrong (in red)")
    return fig


def plot_attention(
    weights: torch.Tensor,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    vmax: float | None = None,
) -> Figure:
    """Heatmap of one ``(seq, seq)`` attention matrix: row = the position that attends
    (query), column = the position attended to (key). Above the diagonal are the future
    positions a causal mask must give weight 0."""
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"attention weights for one head are a square (seq, seq) matrix, got shape {tuple(w.shape)}")
    n = w.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a sequence of {n} positions")
    fig, ax = _axes(ax, figsize=(5.0, 4.4))
    image = ax.imshow(w.numpy(), cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="attention weight")
    if labels is not None:
        shown = [repr(s)[1:-1] if s.strip() else "␣" for s in labels]
        ax.set_xticks(range(n), shown, fontsize="x-small", rotation=90)
        ax.set_yticks(range(n), shown, fontsize="x-small")
    ax.set_xlabel("key: position attended to")
    ax.set_ylabel("query: position attending")
    future = float(torch.triu(w, diagonal=1).sum()) / n
    ax.set_title(f"{title or 'Attention weights'}\nmean weight on the future: {future:.3f}", fontsize="medium")
    ax.grid(False)
    return fig


def plot_measured_sizes(
    sizes: Mapping[str, float], title: str, reference: str | None = None, ax: Axes | None = None
) -> Figure:
    """Measured byte counts (file sizes, memory) as horizontal bars on a **linear** axis, in
    MB, each labelled with its size and how many times smaller than ``reference`` (default:
    the largest) it is: a 32x saving is a bar 32 times shorter, as it should look."""
    if not sizes:
        raise ValueError("give at least one measured size")
    if any(v < 0 for v in sizes.values()):
        raise ValueError(f"sizes cannot be negative, got {dict(sizes)}")
    ref_name = max(sizes, key=lambda name: sizes[name]) if reference is None else reference
    if ref_name not in sizes:
        raise ValueError(f"reference {ref_name!r} is not one of the measured sizes {list(sizes)}")
    ref = sizes[ref_name]
    names = list(sizes)
    mb = [sizes[n] / 1e6 for n in names]
    fig, ax = _axes(ax, figsize=(8.0, 0.55 * len(names) + 1.4))
    bars = ax.barh(range(len(names)), mb, color="#4c72b0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()  # first entry on top
    for bar, name, value in zip(bars, names, mb, strict=True):
        smaller = name != ref_name and sizes[name] > 0 and ref / sizes[name] >= 1.05  # "1.0x smaller" says nothing
        times = f", {ref / sizes[name]:.1f}x smaller" if smaller else ""
        ax.annotate(f" {value:,.2f} MB{times}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center")
    ax.set_xlim(0, max(mb) * 1.45 if max(mb) > 0 else 1)
    ax.set_xlabel("MB (10^6 bytes), measured; linear axis")
    ax.set_title(title)
    return fig


def plot_paper_metrics(rows: Sequence[Mapping], ax: Axes | None = None) -> Figure:
    """The rows of :func:`binedu.paper_metrics.paper_metrics_table` as grouped bars: one
    group per metric pipeline (row), a bar per model (variant) for its validation
    perplexity, and a tick at ``exp(loss)``. Linear axis: a perplexity 2x lower is a bar
    half as tall."""
    if not rows:
        raise ValueError("give at least one row of paper_metrics_table")
    pipelines = list(dict.fromkeys(r["row"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, ax = _axes(ax, figsize=(9.0, 4.2))
    width = 0.8 / len(variants)
    for k, variant in enumerate(variants):
        for p, pipeline in enumerate(pipelines):
            r = next((r for r in rows if r["variant"] == variant and r["row"] == pipeline), None)
            if r is None:
                continue
            x = p + (k - (len(variants) - 1) / 2) * width
            ax.bar(x, r["ppl"], width * 0.9, color=f"C{k}", label=variant if p == 0 else None)
            ax.plot([x - width * 0.4, x + width * 0.4], [math.exp(r["loss"])] * 2, color="black", linewidth=1.5,
                    label="exp(loss)" if p == 0 and k == 0 else None)
    ax.set_xticks(range(len(pipelines)), [textwrap.fill(p, 18) for p in pipelines], fontsize="small")
    ax.set_ylabel("validation perplexity (linear axis)")
    ax.set_title("The same models, measured five ways: lower looks better")
    ax.legend(fontsize="small")
    return fig
