"""Smoke tests of the packed benchmarks (bench/bench_*.py) on tiny sizes: they run and
print their tables. The benchmarks themselves are not part of the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_checkpoint  # noqa: E402
import bench_generate  # noqa: E402
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


def test_best_times_interleaves_rotates_and_keeps_the_minimum():
    calls = []
    times = timing.best_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] + ["b", "a"] + ["a", "b"], "one warm-up each, then rounds in rotating order"
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())

    calls.clear()
    names = ["a", "b", "c"]
    timing.best_times({n: (lambda n=n: calls.append(n)) for n in names}, repeats=3, warmup=0)
    rounds = [calls[i : i + 3] for i in range(0, 9, 3)]
    assert all(sorted(r) == names for r in rounds), "every contender once per round"
    assert {r.index("a") for r in rounds} == {0, 1, 2}, "each contender in every position over the rounds"


def test_speed_rows_on_a_small_layer():
    rows = bench_speed.dense_rows(40, 24, [1, 8], repeats=1)
    auto = bench_speed.auto_kernel(1)
    assert [r[0] for r in rows][:5] == [
        "dense 40x24, batch 1, int8 dynamic",
        f"dense 40x24, batch 1, auto (= {auto})",
        "dense 40x24, batch 1, numba",
        "dense 40x24, batch 1, lut",
        "dense 40x24, batch 1, dense",
    ]
    assert rows[1][4] == "" and rows[1][5] == ""  # a shape without a goal is not judged
    assert rows[5][0] == "dense 40x24, batch 8, int8 dynamic"
    assert rows[6][0] == f"dense 40x24, batch 8, auto (= {bench_speed.auto_kernel(8)})"
    assert all(float(r[3]) > 0 for r in rows)


def test_speed_judges_the_goal_shapes(monkeypatch):
    monkeypatch.setattr(bench_speed, "BATCH1_GOALS", {"40x24": 0.35})
    rows = bench_speed.dense_rows(40, 24, [1], repeats=1)
    assert rows[1][4] == "<= 0.35" and rows[1][5] in ("yes", "NO")


def test_speed_batch1_ratios_per_shape():
    ratios = bench_speed.batch1_ratios([(40, 24), (16, 100)], repeats=1)
    assert set(ratios) == {"40x24", "16x100"}
    assert all(set(r) == set(bench_speed.PROCESS_KINDS) and min(r.values()) > 0 for r in ratios.values())


def test_speed_jit_child_reports_the_first_call():
    r = bench_speed.jit_child()
    assert r["import"] >= 0 and (r["first call"] is None) == (r["kernel"] != "numba")


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


def test_generate_child_measures_each_contender_on_the_tiny_model(tmp_path, monkeypatch):
    files = bench_memory.write_files(tmp_path, "tiny")
    monkeypatch.setenv("BINEDU_NUMBA", "1")  # restored after the test: the PyTorch child sets it to 0
    for kind in bench_generate.KINDS:
        path = files[bench_generate.FILES[kind]]
        r = bench_generate.child(kind, path, "tiny", threads=1, prompt_len=4, new_tokens=12, repeats=2, what="speed")
        assert r["ttft"] > 0 and r["tokens_per_s"] > 0 and r["kernel"]
    r = bench_generate.child(
        "packed (numba)", files["packed"], "tiny", 1, prompt_len=4, new_tokens=3, repeats=1, what="memory"
    )
    # peak above the baseline; in this (not fresh) process a few pages freed since the
    # baseline can make the tiny model's peak dip below it
    assert r["peak"] is None or r["peak"] >= -16 * 4096
    r = bench_generate.child(
        "packed (numba)", files["packed"], "tiny", 1, prompt_len=4, new_tokens=3, repeats=1, what="profile"
    )
    assert "operator calls per decoding step" in r["table"] and "Self CPU" in r["table"]


def test_int8_dynamic_replaces_every_float_dense_layer_and_stays_close():
    torch.manual_seed(0)
    model = LanguageModel.from_config("tiny", binary=False).eval()
    tokens = torch.randint(0, 256, (1, 6))
    with torch.no_grad():
        expected = model(tokens)
        quantized = bench_generate.int8_dynamic(model)
        got = quantized(tokens)
    kinds = {type(m).__name__ for m in quantized.modules()}
    assert "DynamicInt8Linear" in kinds and "BinaryLinear" not in kinds
    assert got.shape == expected.shape and (got - expected).abs().max() < 0.5 * expected.abs().max()


def test_generate_goal_lines_judge_the_ratios():
    def result(speeds, peak):
        return {"ttft": [0.1], "tokens_per_s": speeds, "peak": peak, "kernel": "numba"}

    fast, slow = result([31.0, 30.0, 32.0], 10), result([10.0, 9.0, 11.0], 200)
    kinds = dict(zip(bench_generate.KINDS, [fast, slow, slow, result([19.0], 200)], strict=True))
    lines = bench_generate.goal_lines({(1, k): v for k, v in kinds.items()}, [1])
    assert "3.00x yes" in lines[0] and "1.58x yes" in lines[0] and "20.0x yes" in lines[1]
    kinds = dict(zip(bench_generate.KINDS, [slow, fast, fast, fast], strict=True))
    lines = bench_generate.goal_lines({(1, k): v for k, v in kinds.items()}, [1])
    assert "NO" in lines[0] and "NO" in lines[1]
