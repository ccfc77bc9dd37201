"""The image benchmark's committed results, read (not retyped) for notebook 04.

``bench/bench_results.py`` trains the small BCVNNs (Alg. 7) on ``"digits"`` (8x8) and
``"digits-hard"`` (28x28, rotated, rescaled, shifted, noisy), binary and float32, over
several seeds, and writes every run to ``bench/results/results.json``. This module reads
that file, summarizes test accuracy per task and model as mean ± sample standard
deviation (as ``bench_results.txt`` prints it), and draws the binary-vs-float32 gap.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["Summary", "image_summary", "plot_image_gap", "BINARY", "FLOAT32"]

BINARY = "binary"
FLOAT32 = "float32 (learnable norm)"  # the paper's "standard" counterpart
_COLOURS = {BINARY: "#1f77b4", FLOAT32: "#ff7f0e"}


@dataclass(frozen=True)
class Summary:
    """Test accuracy of one (task, model) over its seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def sd(self) -> float:
        """Sample standard deviation (0 for a single seed)."""
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.sd:.3f} ({self.n} seeds)"


def image_summary(path: str | Path) -> dict[tuple[str, str], Summary]:
    """``{(task, model): Summary}`` of the test accuracies in a ``results.json`` written by
    ``bench/bench_results.py``; a missing or malformed file raises a ValueError naming it."""
    path = Path(path)
    try:
        runs = json.loads(path.read_text())["images"]
        grouped: dict[tuple[str, str], list[float]] = {}
        for run in runs:
            grouped.setdefault((run["task"], run["variant"]), []).append(float(run["test_acc"]))
    except FileNotFoundError:
        raise ValueError(f"no benchmark results at {path} (run python bench/bench_results.py)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a bench_results.py results file: {err}") from None
    if not grouped:
        raise ValueError(f"{path} holds no image runs")
    return {key: Summary(tuple(values)) for key, values in grouped.items()}


def plot_image_gap(
    summary: dict[tuple[str, str], Summary],
    live: dict[str, dict[str, float]] | None = None,
    tasks: tuple[str, ...] = ("digits", "digits-hard"),
    ax: Axes | None = None,
) -> Figure:
    """Binary against float32 test accuracy per task: a bar for the mean over seeds, an
    error bar of one standard deviation and a dot per seed; ``live`` adds a diamond per
    ``{task: {model: accuracy}}`` of a run made in the notebook. Linear axis from 0 to 1."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    width = 0.36
    live_label: str | None = "this notebook's run (validation, 1 seed)"
    for t, task in enumerate(tasks):
        for k, model in enumerate((BINARY, FLOAT32)):
            if (task, model) not in summary:
                raise ValueError(f"the results have no {model!r} runs on {task!r}")
            s, x = summary[task, model], t + (k - 0.5) * width
            ax.bar(x, s.mean, width * 0.9, yerr=s.sd, capsize=4, color=_COLOURS[model], alpha=0.75,
                   label=f"{model}, benchmark mean ± sd" if t == 0 else None)
            ax.plot([x] * s.n, s.values, "k.", markersize=5, label="one seed" if t == 0 and k == 0 else None)
            if live and model in live.get(task, {}):
                ax.plot(x, live[task][model], "D", color="crimson", markersize=7, label=live_label)
                live_label = None  # one legend entry
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set(ylim=(0, 1), ylabel="test accuracy", title="Binary vs float32: the gap needs a harder task")
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    ax.legend(fontsize="small", loc="lower left")
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    return fig
