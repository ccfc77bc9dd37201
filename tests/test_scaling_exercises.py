"""Notebook 09's exercises (binedu.course.exercises.scaling): graded against a sweep's JSON."""

from __future__ import annotations

import json
import math

import pytest

from binedu.course.exercises import Measured, check, get_exercise
from binedu.course.exercises import scaling as ex


def _sweep(gaps_by_params: dict[int, list[float]], trend: tuple[float, float, float]) -> dict:
    slope, low, high = trend
    points = [{"task": "images", "size": i, "params": p, "seeds": list(range(len(g))), "gaps": {"accuracy points": g}}
              for i, (p, g) in enumerate(gaps_by_params.items())]
    return {"points": points, "trends": {"images: accuracy points": {"slope": slope, "low": low, "high": high}}}


@pytest.mark.parametrize(
    ("trend", "truth"),
    [((-5.0, -8.0, -2.0), "smaller"), ((4.0, 1.0, 7.0), "larger"), ((0.5, -3.0, 4.0), "about the same")],
)
def test_the_prediction_is_graded_by_the_interval_not_the_mean(trend, truth, capsys, monkeypatch):
    from binedu.course.exercises import core

    monkeypatch.setattr(core, "_WRONG", {})  # earlier attempts in this session do not count here
    monkeypatch.setattr(core, "_FIRST", {})
    measured = ex.sweep_measured(_sweep({1_000: [30.0, 20.0], 100_000: [10.0, 12.0]}, trend))
    assert measured.values["gap_smallest"] == 25.0 and measured.values["gap_largest"] == 11.0
    assert check("09.predict_image_gap", truth, measured=measured, verbose=False) is True
    wrong = next(o for o in ex.DIRECTIONS if o != truth)
    assert check("09.predict_image_gap", wrong, measured=measured) is False
    assert "95 % interval" not in capsys.readouterr().out, "a first wrong guess reveals nothing"
    assert check("09.predict_image_gap", wrong, measured=measured) is False
    assert "95 % interval" in capsys.readouterr().out, "the second explains the interval"


def test_a_sweep_without_a_trend_grades_no_direction(capsys):
    measured = ex.sweep_measured({"points": [], "trends": {}})
    assert math.isnan(measured.values["gap_largest"])
    assert not any(check("09.predict_image_gap", o, measured=measured, verbose=False) for o in ex.DIRECTIONS)


def test_the_placeholder_reveals_nothing(capsys):
    assert check("09.predict_image_gap", ..., measured=ex.sweep_measured(_sweep({10: [1.0]}, (1, 0, 2)))) is False
    assert "points" not in capsys.readouterr().out.split("Hint")[0]


def test_committed_sweep_reads_a_given_file_and_refuses_others(tmp_path):
    good = tmp_path / "scaling.json"
    good.write_text(json.dumps(_sweep({10: [1.0]}, (0, 0, 0))))
    assert ex.committed_sweep(good)["points"][0]["params"] == 10
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FileNotFoundError, match="cannot read the sweep"):
        ex.committed_sweep(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(ValueError, match="not a bench_scaling.py result"):
        ex.committed_sweep(tmp_path / "other.json")


def _my_gap_slope(params, gaps):
    """Written out: centre both, then sum of products over sum of squares."""
    xs = [math.log10(p) for p in params]
    mx, my = sum(xs) / len(xs), sum(gaps) / len(gaps)
    return sum((x - mx) * (y - my) for x, y in zip(xs, gaps, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _my_largest_gap(sweep):
    done = [p for p in sweep["points"] if p["task"] == "images" and len(p["seeds"]) >= sweep.get("seeds", 1)]
    gaps = max(done, key=lambda p: p["params"])["gaps"]["accuracy points"]
    return sum(gaps) / len(gaps)


def test_written_answers_pass_and_the_usual_mistakes_do_not():
    assert check("09.gap_slope", _my_gap_slope, verbose=False)

    def on_params(params, gaps):  # forgets the log10
        mx, my = sum(params) / len(params), sum(gaps) / len(gaps)
        return sum((x - mx) * (y - my) for x, y in zip(params, gaps, strict=True)) / sum((x - mx) ** 2 for x in params)

    assert check("09.gap_slope", on_params, verbose=False) is False
    assert check("09.largest_image_gap", _my_largest_gap, verbose=False)

    def last_listed(sweep):  # the last point instead of the largest model
        gaps = [p for p in sweep["points"] if p["task"] == "images"][-1]["gaps"]["accuracy points"]
        return sum(gaps) / len(gaps)

    assert check("09.largest_image_gap", last_listed, verbose=False) is False


def test_the_committed_sweep_is_one_of_the_cases():
    committed = ex.committed_sweep()
    assert any(case[0] is committed for case in get_exercise("09.largest_image_gap").cases())


def test_the_prediction_refuses_a_measured_from_elsewhere():
    assert check("09.predict_image_gap", "smaller", measured=Measured({"source": "my run"}, {}), verbose=False) is False


def test_points_still_missing_seeds_are_left_out():
    sweep = _sweep({1_000: [1.0, 2.0], 10_000: [3.0, 4.0], 100_000: [9.0]}, (0, -1, 1)) | {"seeds": 2}
    assert [p["params"] for p in ex.task_points(sweep, "images")] == [1_000, 10_000]
    assert ex.sweep_measured(sweep).values["gap_largest"] == 3.5
