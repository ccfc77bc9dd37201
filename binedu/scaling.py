"""Model sizes and the gap's trend for "Does 1 bit scale?" (``bench/bench_scaling.py``, notebook 09).

- :func:`scaled_language_model`: the ``"tiny"`` BLM (Alg. 8) at another width;
- :func:`scaled_image_model`: the ``"tiny-28"`` BCVNN (Alg. 7) with every width times a factor;
- :func:`slope` and :func:`gap_trend`: the gap against log10(parameters), fitted by least
  squares on the per-seed gaps, with a 95 % bootstrap interval that resamples the seeds
  within every size, and a verdict that calls the gap shrinking or growing only when that
  interval excludes 0.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from typing import Any

from .image_model import ImageClassifier
from .language_model import LanguageModel

__all__ = ["scaled_language_model", "scaled_image_model", "slope", "gap_trend", "plot_gaps", "HEAD_DIM", "PANELS"]

HEAD_DIM = 16
"""Dimensions per attention head of :func:`scaled_language_model`."""


def scaled_language_model(width: int, vocab_size: int, *, binary: bool = True) -> LanguageModel:
    """The ``"tiny"`` BLM (Alg. 8: 2 blocks, ``max_len`` 64) at ``embed_dim=width``, one
    head per :data:`HEAD_DIM` dimensions and an MLP head of ``2 * width`` units."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    return LanguageModel.from_config(
        "tiny", vocab_size=vocab_size, embed_dim=width, num_heads=max(1, width // HEAD_DIM), mlp_units=(2 * width,),
        binary=binary,
    )  # fmt: skip


def scaled_image_model(scale: float, *, binary: bool = True, image_size: int = 28) -> ImageClassifier:
    """``"tiny-28"`` (Alg. 7) with every convolution width and the dense head times
    ``scale`` (rounded, at least 1); float32 with its learnable normalization."""
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    base = ImageClassifier.configs["tiny-28"]
    widths = tuple(tuple(max(1, round(c * scale)) for c in block) for block in base.widths)
    dense = tuple(max(1, round(u * scale)) for u in base.dense_units)
    return ImageClassifier.from_config(
        "tiny-28", image_size=image_size, widths=widths, dense_units=dense, binary=binary
    )


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` on ``xs`` (NaN when every ``x`` is the same)."""
    if len(xs) != len(ys) or not xs:
        raise ValueError(f"slope needs two equally long, non-empty sequences, got {len(xs)} and {len(ys)} values")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else math.nan


def gap_trend(params: Sequence[int], gaps: Sequence[Sequence[float]], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The gap's slope per decade of parameters: ``gaps[i]`` are the per-seed gaps of the
    model with ``params[i]`` parameters. Returns the slope, its intercept, the 95 %
    bootstrap interval (seeds resampled within every size) and the verdict."""
    data = [(math.log10(p), list(g)) for p, g in zip(params, gaps, strict=True) if g]
    if len({x for x, _ in data}) < 2:
        return {"slope": math.nan, "intercept": math.nan, "low": math.nan, "high": math.nan, "verdict": "too few sizes"}
    xs = [x for x, g in data for _ in g]
    ys = [v for _, g in data for v in g]
    rng = random.Random(seed)
    boot = sorted(slope(xs, [v for _, g in data for v in rng.choices(g, k=len(g))]) for _ in range(resamples))
    low, high = boot[int(0.025 * (resamples - 1))], boot[int(0.975 * (resamples - 1))]
    fitted = slope(xs, ys)
    if low > 0:
        verdict = "grows with size (95 % interval above 0)"
    elif high < 0:
        verdict = "shrinks with size (95 % interval below 0)"
    else:
        verdict = "cannot be told apart from flat (95 % interval contains 0)"
    intercept = statistics.fmean(ys) - fitted * statistics.fmean(xs)
    return {"slope": fitted, "intercept": intercept, "low": low, "high": high, "verdict": verdict, "n": len(ys)}


PANELS = (
    ("lm", "loss ratio", "test-loss ratio binary / float32"),
    ("lm", "loss difference", "test-loss difference (nats/char)"),
    ("images", "accuracy points", "float32 - binary test accuracy (points)"),
)
"""The figure's panels: (task, gap measure, axis label)."""


def plot_gaps(points: Sequence[dict[str, Any]], trends: dict[str, dict[str, Any]]) -> Any:
    """The sweep's figure (a matplotlib Figure): one panel per gap measure of :data:`PANELS`
    against parameters on a log axis, mean ± sd over seeds, every seed as a grey dot, and
    the fitted trend with its 95 % interval in the legend. ``points`` and ``trends`` are
    those of ``bench/bench_scaling.py``'s ``scaling.json``."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(PANELS), figsize=(12.8, 4.0), dpi=100)
    for ax, (task, gap, label) in zip(axes, PANELS, strict=True):
        rows = [r for r in points if r["task"] == task and r["gaps"][gap]]
        if rows:
            xs = [r["params"] for r in rows]
            means = [statistics.fmean(r["gaps"][gap]) for r in rows]
            sds = [statistics.stdev(r["gaps"][gap]) if len(r["gaps"][gap]) > 1 else 0.0 for r in rows]
            ax.errorbar(xs, means, yerr=sds, fmt="o", capsize=4, color="tab:blue", label="mean ± sd over seeds")
            for r in rows:
                ax.plot([r["params"]] * len(r["gaps"][gap]), r["gaps"][gap], ".", color="tab:gray", alpha=0.6)
            t = trends.get(f"{task}: {gap}")
            if t and math.isfinite(t["slope"]):
                lo, hi = min(xs), max(xs)
                grid = [lo * (hi / lo) ** (i / 20) for i in range(21)]
                ax.plot(grid, [t["intercept"] + t["slope"] * math.log10(x) for x in grid], "-", color="tab:orange",
                        label=f"fit: {t['slope']:+.3g} per decade [{t['low']:+.3g}, {t['high']:+.3g}]")
        else:
            ax.text(0.5, 0.5, "not measured yet", transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.axhline(1.0 if gap == "loss ratio" else 0.0, color="black", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled decades only: minor labels overlap
        ax.set(xlabel="parameters (binary model)", ylabel=label, title="language (pydoc)" if task == "lm" else "digits-hard")
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Does 1 bit scale? The binary-float32 gap against model size (same budget at every size)")
    fig.tight_layout()
    return fig
