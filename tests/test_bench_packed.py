"""Smoke tests of the packed benchmarks (bench/bench_*.py) on tiny sizes: they run and
print their tables. The benchmarks themselves are not part of the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_checkpoint  # noqa: E402
import bench_memory  # noqa: E402
import bench_speed  # noqa: E402
import timing  # noqa: E402

from binedu import LanguageModel  # noqa: E402


def test_format_table_and_verdict():
    text = timing.format_table(["case", "ms"], [["a", "1.00"], ["longer", "10.00"]])
    lines = text.splitlines()
    assert lines[0].startswith("case") and set(lines[1]) == {"-"} and lines[3].endswith("10.00")
    assert len({len(line) for line in lines}) == 1
    assert timing.verdict(0.9, 1.0, at_least=False) == "yes" and timing.verdict(1.1, 1.0, at_least=False) == "NO"
    assert timing.verdict(32.0, 31.9, at_least=True) == "yes"


def test_best_times_interleaves_and_keeps_the_minimum():
    calls = []
    times = timing.best_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_speed_rows_on_a_small_layer():
    rows = bench_speed.dense_rows(40, 24, [1, 8], repeats=1)
    assert [r[0] for r in rows][:3] == [
        "dense 40x24, batch 1, auto (= lut)",
        "dense 40x24, batch 1, lut",
        "dense 40x24, batch 1, dense",
    ]
    assert rows[0][4] == "<= 1.0" and rows[0][5] in ("yes", "NO")
    assert all(float(r[3]) > 0 for r in rows)


def test_checkpoint_sizes_on_the_tiny_model(tmp_path):
    r = bench_checkpoint.sizes(LanguageModel, "tiny", tmp_path)
    assert r["params"] == LanguageModel.from_config("tiny").num_parameters()
    assert r["float32"] > 4 * r["params"] and r["bits"] < r["packed"] < r["float32"] / 10
    assert not list(tmp_path.iterdir())  # files removed


def test_memory_child_measures_the_tiny_model(tmp_path):
    files = bench_memory.write_files(tmp_path, "tiny")
    assert set(files) == {"packed", "float32", "binary latents"}
    result = bench_memory.child("packed", files["packed"], "tiny", passes=1)
    assert result["baseline"] > 0 and result["peak"] >= 0
    model = bench_memory.load("float32", files["float32"], "tiny")
    assert not any(p.is_meta for p in model.parameters())
    with torch.no_grad():
        assert model(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 256)
