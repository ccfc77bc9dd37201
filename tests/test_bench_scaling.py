"""bench/bench_scaling.py: the quick sweep end to end (tables, trends, recipes, figure, JSON,
the run cache and resuming from it), and the planning that picks each variant's rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_scaling  # noqa: E402


@pytest.mark.slow
def test_quick_sweep_reports_every_part_and_resumes_from_its_cache(tmp_path, monkeypatch, capsys):
    report = bench_scaling.main(["--quick", "--jobs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    sizes = bench_scaling.QUICK_SIZES
    assert [(p["task"], p["size"]) for p in report["points"]] == [(t, s) for t in bench_scaling.TASKS for s in sizes[t]]
    assert all(p["seeds"] == [0, 1] and len(p["binary"]) == 2 for p in report["points"])
    assert set(report["trends"]) == {"lm: loss ratio", "lm: loss difference", "images: accuracy points"}
    assert {(r["task"], r["size"], r["recipe"]) for r in report["recipes"]} == {
        (t, s, r) for t in bench_scaling.TASKS for s in sizes[t] for r in bench_scaling.TRIALS
    }
    assert report["remaining"] == 0 and "runs of the plan still to do: 0" in out
    assert "| language | width 8 |" in out and "| digits-hard | x0.25 |" in out and "per decade" in out
    assert (tmp_path / "scaling.png").stat().st_size > 1000
    assert json.loads((tmp_path / "scaling.json").read_text())["points"] == json.loads(json.dumps(report["points"]))
    cache = json.loads((tmp_path / bench_scaling.CACHE).read_text())
    # 2 tasks x 2 sizes x (2 variants x 2 rates + 2 variants x 1 more seed + 2 recipes x 2 seeds)
    assert len(cache) == 2 * 2 * (4 + 2 + 4) == len(report["runs"])
    for key, run in cache.items():
        assert key == bench_scaling.run_key(run["task"], run["size"], run["variant"], run["lr"], run["recipe"], run["seed"])
        assert 1 <= run["epoch"] <= run["epochs"] and len(run["val_curve"]) == run["epochs"]

    def no_training(*args):
        raise AssertionError(f"a cached run was trained again: {args}")

    monkeypatch.setattr(bench_scaling, "train_run", no_training)
    again = bench_scaling.main(["--quick", "--jobs", "1", "--out", str(tmp_path)])
    assert again["points"] == report["points"] and again["recipes"] == report["recipes"]
    report_only = bench_scaling.main(["--quick", "--report", "--only", "images", "--out", str(tmp_path)])
    assert {p["task"] for p in report_only["points"]} == {"images"}


def _run(task, size, variant, lr, seed=0, val_loss=1.0, val_acc=0.5, recipe="paper"):
    return {"task": task, "size": size, "variant": variant, "lr": lr, "recipe": recipe, "seed": seed,
            "val_loss": val_loss, "val_acc": val_acc}


def _cache(*runs):
    return {bench_scaling.run_key(r["task"], r["size"], r["variant"], r["lr"], r["recipe"], r["seed"]): r for r in runs}


def test_best_rate_is_chosen_on_validation_with_ties_to_the_lower_rate():
    grid = (0.01, 0.03, 0.1)
    lm = _cache(*[_run("lm", 16, "binary", lr, val_loss=v) for lr, v in zip(grid, (2.0, 1.5, 1.7), strict=True)])
    assert bench_scaling.best_rate(lm, "lm", 16, "binary", grid) == 0.03
    images = _cache(*[_run("images", 1.0, "binary", lr, val_acc=a) for lr, a in zip(grid, (0.4, 0.6, 0.6), strict=True)])
    assert bench_scaling.best_rate(images, "images", 1.0, "binary", grid) == 0.03  # a tie: the lower rate
    del lm[next(iter(lm))]
    assert bench_scaling.best_rate(lm, "lm", 16, "binary", grid) is None  # a grid run is missing


def test_later_seeds_and_recipes_wait_for_the_grid():
    grids = {"binary": (0.01, 0.03), "float32": (0.003, 0.01)}
    grid, more = bench_scaling.point_stages("lm", 32, grids, 3, {}, recipes=True)
    assert len(grid) == 4 and more == []
    cache = _cache(*[_run("lm", 32, v, lr, val_loss=1.0 + lr) for v in grids for lr in grids[v]])
    grid, more = bench_scaling.point_stages("lm", 32, grids, 3, cache, recipes=True)
    seeds = {(j[3], j[4], j[5], j[6]) for j in more if j[5] == "paper"}
    assert seeds == {("binary", 0.01, "paper", 1), ("binary", 0.01, "paper", 2), ("float32", 0.003, "paper", 1),
                     ("float32", 0.003, "paper", 2)}
    trials = {(j[3], j[5], j[6]) for j in more if j[5] != "paper"}
    assert trials == {("binary", r, s) for r in bench_scaling.TRIALS for s in range(3)}
    _, without = bench_scaling.point_stages("lm", 32, grids, 3, cache, recipes=False)
    assert all(j[5] == "paper" for j in without)


def test_a_corrupt_cache_is_a_one_line_error(tmp_path):
    (tmp_path / bench_scaling.CACHE).write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read the run cache"):
        bench_scaling.main(["--quick", "--report", "--out", str(tmp_path)])
    (tmp_path / bench_scaling.CACHE).write_text("[1, 2]")
    with pytest.raises(SystemExit, match="not a JSON object of runs"):
        bench_scaling.main(["--quick", "--report", "--out", str(tmp_path)])


@pytest.mark.parametrize("args", [["--seeds", "1"], ["--jobs", "0"], ["--only", "speech"]])
def test_bad_arguments_are_usage_errors(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_scaling.main(["--quick", "--report", "--out", str(tmp_path), *args])
    assert exit_info.value.code == 2 and "error:" in capsys.readouterr().err


def test_remaining_counts_the_whole_plan_before_any_run():
    grids = {"lm": {"binary": (0.01, 0.03), "float32": (0.003, 0.01)}}
    # per size: 4 grid runs, 2 more seeds (one per variant), 2 recipes x 2 seeds
    assert bench_scaling.remaining(["lm"], {"lm": (8, 16)}, grids, 2, {}) == 2 * (4 + 2 + 4)
    # the real plan: 4 sizes x (6 grid + 4 seeds) per task, and 2 recipes x 3 seeds at two sizes
    assert bench_scaling.remaining(list(bench_scaling.TASKS), bench_scaling.SIZES, bench_scaling.GRIDS, 3, {}) == 2 * (4 * 10 + 2 * 6)
