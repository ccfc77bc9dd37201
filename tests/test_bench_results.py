"""Smoke test of bench/bench_results.py: the quick run trains every variant, control and
learning rate on tiny data, prints its tables and writes the figure and results.json.
The benchmark's numbers are not part of the test suite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_results  # noqa: E402


def test_quick_run_prints_every_part(tmp_path, capsys):
    report = bench_results.main(["--quick", "--jobs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    variants = {(r["task"], r["variant"]) for r in report["images"]}
    assert {("digits", v) for v in [*bench_results.IMAGE_VARIANTS, *bench_results.CONTROLS]} <= variants
    assert ("digits-hard", "binary") in variants
    assert {(r["variant"], r["lr"]) for r in report["lm"]} == {
        (v, lr) for v in bench_results.LM_VARIANTS for lr in bench_results.LM_RATES[v]
    }
    assert all(len(r["val_loss"]) == 1 + 2 for r in report["lm"])  # before training, then each epoch
    assert all(0.0 <= r["test_acc"] <= 1.0 and 1 <= r["epoch"] for r in report["images"])
    assert "threads per run: 1" in out and "| digits-hard | binary |" in out and "ratio" in out
    assert (tmp_path / "lm_convergence.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text())["threads"] == 1


def test_only_digits_hard_runs_just_its_rows(tmp_path):
    report = bench_results.main(["--quick", "--only", "digits-hard", "--jobs", "1", "--out", str(tmp_path)])
    assert {(r["task"], r["variant"]) for r in report["images"]} == {
        ("digits-hard", v) for v in bench_results.HARD_VARIANTS
    }
    assert report["lm"] == []
    tiny_28 = bench_results.ImageClassifier.from_config("tiny-28").num_parameters()
    assert {r["params"] for r in report["images"] if r["variant"] == "binary"} == {tiny_28}


def test_mean_sd():
    assert bench_results.mean_sd([0.5, 0.7]) == "0.600 ± 0.141"
    assert bench_results.mean_sd([0.25]) == "0.250"


def test_lm_rate_replaces_a_variants_grid(tmp_path):
    report = bench_results.main(
        ["--quick", "--only", "lm", "--lm-rate", "binary:0.003", "--jobs", "1", "--out", str(tmp_path)]
    )
    assert [(r["variant"], r["lr"]) for r in report["lm"]] == [("binary", 0.003)]


def test_a_bad_lm_rate_is_a_usage_error(tmp_path, capsys):
    for spec in ("binary", "ternary:0.01", "float32:-1", "binary:nan"):
        with pytest.raises(SystemExit) as exit_info:
            bench_results.main(["--quick", "--only", "lm", "--lm-rate", spec, "--out", str(tmp_path)])
        assert exit_info.value.code == 2
        assert "--lm-rate" in capsys.readouterr().err
