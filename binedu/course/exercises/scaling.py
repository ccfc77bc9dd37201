"""Self-check exercises of notebook 09: does 1 bit scale?

Graded against the committed sweep of ``bench/bench_scaling.py``
(``bench/results/scaling.json``), read by :func:`committed_sweep`. Importing this module
registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

import json
import math
import statistics
import urllib.request
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from .core import Exercise, Measured, Prediction, _seal, register

SWEEP_PATH = Path(__file__).resolve().parents[3] / "bench" / "results" / "scaling.json"
"""The committed sweep in a checkout of the repository (JupyterLab, Binder)."""
SWEEP_URL = "https://raw.githubusercontent.com/binedu/binedu/main/bench/results/scaling.json"
"""Where an installed binedu without the repository (Colab) reads it from."""
SOURCE = {"source": "committed sweep"}
DIRECTIONS = ("smaller", "about the same", "larger")


@cache
def _read(path: str | None) -> dict[str, Any]:
    if path is None and not SWEEP_PATH.is_file():
        try:
            with urllib.request.urlopen(SWEEP_URL, timeout=30) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"the committed sweep is neither at {SWEEP_PATH} nor downloadable from {SWEEP_URL} ({exc}); "
                "clone the repository or pass committed_sweep(path=...)"
            ) from None
    file = Path(path) if path is not None else SWEEP_PATH
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"cannot read the sweep {file}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ValueError(f"{file} is not a bench_scaling.py result (no 'points' list)")
    return data


def committed_sweep(path: str | Path | None = None) -> dict[str, Any]:
    """The sweep's JSON (``points``, ``trends``, ``recipes``, ``runs``, the command and the
    machine): ``path``, else the repository's ``bench/results/scaling.json``, else its copy
    on GitHub."""
    return _read(None if path is None else str(path))


def task_points(sweep: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """The sweep's points of one task (``"lm"`` or ``"images"``) that have every seed (those
    its trends are fitted to), smallest model first."""
    seeds = sweep.get("seeds", 1)
    done = (p for p in sweep["points"] if p["task"] == task and len(p["seeds"]) >= seeds)
    return sorted(done, key=lambda p: p["params"])


def largest_image_gap(sweep: dict[str, Any]) -> float:
    """Float32 minus binary test accuracy (points, mean over seeds) of the largest image
    model of ``sweep`` (among its points with every seed)."""
    return statistics.fmean(task_points(sweep, "images")[-1]["gaps"]["accuracy points"])


def _image_sweep(gaps_by_params: dict[int, list[float]]) -> dict[str, Any]:
    """A small sweep with image points only (a case of the exercises)."""
    points = [{"task": "images", "size": i, "params": p, "seeds": list(range(len(g))), "gaps": {"accuracy points": g}}
              for i, (p, g) in enumerate(gaps_by_params.items())]
    return {"points": points, "seeds": 1}


def _committed_or_none() -> dict[str, Any] | None:
    try:
        return committed_sweep()
    except (FileNotFoundError, ValueError):  # an installed binedu without the results
        return None


def _largest_cases() -> list[tuple[dict[str, Any]]]:
    cases = [(_image_sweep({100_000: [5.0, 7.0], 1_000: [1.0, 2.0]}),), (_image_sweep({10: [3.0]}),)]
    sweep = _committed_or_none()
    return cases + ([(sweep,)] if sweep is not None and task_points(sweep, "images") else [])


def gap_slope(params: Sequence[int], gaps: Sequence[float]) -> float:
    """The least-squares slope of ``gaps`` against ``log10(params)``: the change of the gap
    per tenfold growth of the model (``statistics.linear_regression``, so that the check
    can switch :func:`binedu.scaling.slope` off)."""
    return statistics.linear_regression([math.log10(p) for p in params], list(gaps)).slope


def _slope_cases() -> list[tuple[list[int], list[float]]]:
    cases: list[tuple[list[int], list[float]]] = [([1_000, 10_000, 100_000], [3.0, 2.0, 1.0]), ([10, 1_000], [0.5, 0.5])]
    sweep = _committed_or_none()
    if sweep is None:
        return cases
    for task in ("images", "lm"):
        points = task_points(sweep, task)
        gap = "accuracy points" if task == "images" else "loss ratio"
        if len(points) >= 2:
            cases.append(([p["params"] for p in points], [statistics.fmean(p["gaps"][gap]) for p in points]))
    return cases


def sweep_measured(sweep: dict[str, Any] | None = None) -> Measured:
    """What the committed sweep measured for the image gap, as the ``measured`` of the
    prediction: the gap (points) at the smallest and the largest image model and the fitted
    trend with its 95 % interval (NaN where the sweep has not measured it yet)."""
    sweep = committed_sweep() if sweep is None else sweep
    points = task_points(sweep, "images")
    t = sweep.get("trends", {}).get("images: accuracy points", {})
    nan = math.nan
    values = {
        "gap_smallest": statistics.fmean(points[0]["gaps"]["accuracy points"]) if points else nan,
        "gap_largest": statistics.fmean(points[-1]["gaps"]["accuracy points"]) if points else nan,
        "params": (points[0]["params"], points[-1]["params"]) if points else (0, 0),
        "slope": t.get("slope", nan), "low": t.get("low", nan), "high": t.get("high", nan),
    }  # fmt: skip
    return _seal(SOURCE, values)


def _direction(m: Measured) -> str:
    """The trend's verdict as a direction: only an interval that excludes 0 is a direction."""
    low, high = m.values["low"], m.values["high"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not measured yet"
    if low > 0:
        return "larger"
    if high < 0:
        return "smaller"
    return "about the same"


def _explain(m: Measured) -> str:
    v = m.values
    if _direction(m) == "not measured yet":
        return "The committed sweep has fewer than two image sizes yet: there is no trend to compare with."
    return (
        f"The sweep measured a gap of {v['gap_smallest']:+.1f} points at {v['params'][0]:,} parameters and "
        f"{v['gap_largest']:+.1f} at {v['params'][1]:,}; the fitted slope is {v['slope']:+.1f} points per tenfold, "
        f"95 % interval [{v['low']:+.1f}, {v['high']:+.1f}] (a direction only counts when the interval excludes 0)."
    )


register(
    Prediction(
        id="09.predict_image_gap",
        title="Predict before you look: at the largest image model, the float32 - binary accuracy gap is ... "
        "than at the smallest",
        options=DIRECTIONS,
        changed=SOURCE,
        keys=("gap_smallest", "gap_largest", "low", "high"),
        outcome=_direction,
        explain=_explain,
        hint=(
            "what would the paper's claim predict, and what decides a direction: the means or the error bars?",
            "a direction only counts when the 95 % interval of the fitted slope excludes 0; otherwise the honest "
            "answer is 'about the same'.",
        ),
    )
)

register(
    Exercise(
        id="09.largest_image_gap",
        title="largest_image_gap(sweep): float32 minus binary test accuracy, in points, of the sweep's largest image "
        "model (mean over its seeds)",
        reference=largest_image_gap,
        cases=_largest_cases,
        hint=(
            "which points are image points with every seed, and which of them is the largest model?",
            "keep the points whose task is 'images' and that have every seed, take the one with the most params, "
            "and average its gaps['accuracy points'] (one gap per seed, already in points).",
        ),
        rtol=1e-9,
        atol=1e-12,
    )
)

register(
    Exercise(
        id="09.gap_slope",
        title="gap_slope(params, gaps): the least-squares slope of the gap against log10(params)",
        reference=gap_slope,
        cases=_slope_cases,
        forbidden=("binedu.scaling.slope", "binedu.scaling.gap_trend"),
        hint=(
            "the x axis is log10(params), not params; what is the least-squares slope of y on x?",
            "subtract the means of x and of the gaps; the slope is sum(dx * dy) / sum(dx * dx).",
        ),
        rtol=1e-9,
        atol=1e-12,
    )
)
