"""Speed: packed vs float32 vs int8 dense layers, the kernel's JIT cost, and a training step.

A packed dense layer (:class:`binedu.packed.PackedLinear`, no normalization so that it
computes ``W x + b`` like ``nn.Linear``) against a float32 ``nn.Linear`` of the same
shape and PyTorch's dynamic int8 quantization of it, at 1 to 64 input rows, for each
packed kernel: ``numba`` (the compiled lookup-table kernel, :mod:`binedu.lut_kernel_numba`),
``lut`` (the same tables in plain PyTorch: the reference and fallback), ``dense`` (unpack
a chunk, multiply) and ``auto`` (what a packed model uses). Then the batch-1 figures again
in ``--processes`` fresh Python processes (median and worst: a kernel must be fast in
every process, not on average), the compile time of the kernel in a fresh process (an
empty numba cache, then a warm one), and one training step (forward, backward, AdamW) of
the tiny binary models against their float32 counterparts. Times are the best of
``--repeats`` interleaved calls, measured in this run; ratio = this / float32. Before each
layer call the CPU caches are flushed (64 MiB written), so every contender reads its
weights from memory, as the layers of a large model do.

Goals (issue 20): batch 1, packed / float32 <= 0.35 for 4096x4096 and 2048x30522 in the
worst of the fresh processes, <= 1.0 for 768x768; 2 to 64 rows of 4096x4096 <= 1.0;
training step <= 1.3. Run it at 1 and at 2 threads.

Usage::

    python bench/bench_speed.py --threads 1  # 5-10 minutes on 2 CPU cores
    python bench/bench_speed.py --threads 2
    python bench/bench_speed.py --quick      # small shapes, seconds; numbers not meaningful
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_times, cache_flusher, format_table, int8_linear, kernel_name, load_line, spread, verdict  # noqa: E402

from binedu import (  # noqa: E402
    BinaryLinear,
    ImageClassifier,
    LanguageModel,
    lut_kernel,  # noqa: E402
)
from binedu.packed import LUT_MAX_ROWS, PackedLinear  # noqa: E402

SHAPES = [(4096, 4096), (2048, 30522), (768, 768)]  # (in_features, out_features): big square, LM head, paper-small
QUICK_SHAPES = [(256, 256), (128, 1000)]
BATCHES = [1, 2, 4, 8, 16, 32, 64]
BATCH1_GOALS = {"4096x4096": 0.35, "2048x30522": 0.35, "768x768": 1.0}
"""Batch-1 goals per layer shape (others, e.g. the quick shapes, are not judged)."""
BATCH_GOAL = 1.0
TRAIN_GOAL = 1.3
PROCESS_KINDS = ("auto", "lut", "int8 dynamic")
"""What the fresh-process rows compare with float32 (``auto`` is the numba kernel where it runs)."""
FLUSH = cache_flusher()  # layer timings start from cold caches: weights come from memory


def contenders(n_x: int, n_units: int) -> tuple[nn.Module, nn.Module, PackedLinear]:
    """A float32 ``nn.Linear``, its dynamic int8 version and a packed layer of that shape."""
    torch.manual_seed(0)
    float_layer = nn.Linear(n_x, n_units).eval()
    int8 = int8_linear(nn.Linear(n_x, n_units)).eval()
    packed = PackedLinear.from_binary(BinaryLinear(n_x, n_units, normalize=False))
    return float_layer, int8, packed


def layer_times(
    float_layer: nn.Module, int8: nn.Module, packed: PackedLinear, x: torch.Tensor, methods: list[str], repeats: int
) -> dict[str, float]:
    """Best seconds per call of the float32 layer, the int8 one and the packed layer with each method."""

    def packed_with(method: str) -> Callable[[], object]:
        layer = copy.copy(packed)  # the same buffers; setting .method outside the timed call
        layer.method = method
        return lambda: layer(x)

    with torch.inference_mode():
        fns = {"float32": lambda: float_layer(x), "int8 dynamic": lambda: int8(x)}
        return best_times(fns | {m: packed_with(m) for m in methods}, repeats, before_each=FLUSH)


def auto_kernel(batch: int) -> str:
    """What ``auto`` runs for ``batch`` rows in this process."""
    if lut_kernel.available() and batch <= lut_kernel.MAX_ROWS:
        return "numba"
    return "lut" if batch <= LUT_MAX_ROWS else "dense"


def dense_rows(n_x: int, n_units: int, batches: list[int], repeats: int) -> list[list[object]]:
    """Table rows for one layer shape: float32 nn.Linear vs int8 vs the packed kernels."""
    float_layer, int8, packed = contenders(n_x, n_units)
    name = f"{n_x}x{n_units}"
    rows = []
    for batch in batches:
        methods = ["auto", "numba", "lut", "dense"] if batch <= LUT_MAX_ROWS else ["auto", "numba", "dense"]
        times = layer_times(float_layer, int8, packed, torch.randn(batch, n_x), methods, repeats)
        base = times["float32"]
        goal = BATCH1_GOALS.get(name) if batch == 1 else (BATCH_GOAL if name == "4096x4096" else None)
        for method in ["int8 dynamic", *methods]:
            ratio = times[method] / base
            auto = f" (= {auto_kernel(batch)})" if method == "auto" else ""
            judged = goal is not None and method == "auto"
            rows.append(
                [
                    f"dense {name}, batch {batch}, {method}{auto}",
                    f"{base * 1e3:.3f}",
                    f"{times[method] * 1e3:.3f}",
                    f"{ratio:.2f}",
                    f"<= {goal}" if judged else "",
                    verdict(ratio, goal, at_least=False) if judged and goal is not None else "",
                ]
            )
    return rows


def batch1_ratios(shapes: list[tuple[int, int]], repeats: int) -> dict[str, dict[str, float]]:
    """Batch-1 time / float32 time of each of :data:`PROCESS_KINDS` per layer shape, in this process."""
    ratios = {}
    for n_x, n_units in shapes:
        float_layer, int8, packed = contenders(n_x, n_units)
        times = layer_times(float_layer, int8, packed, torch.randn(1, n_x), ["auto", "lut"], repeats)
        ratios[f"{n_x}x{n_units}"] = {kind: times[kind] / times["float32"] for kind in PROCESS_KINDS}
    return ratios


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script with ``args`` in a fresh interpreter; its last line is JSON."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"child {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def process_rows(shapes: list[tuple[int, int]], processes: int, repeats: int, threads: int) -> list[list[object]]:
    """Batch-1 ratios measured in ``processes`` fresh interpreters: median and worst."""
    runs = [
        run_child(["--child", json.dumps(shapes), "--threads", str(threads), "--repeats", str(repeats)])
        for _ in range(processes)
    ]
    rows = []
    for name in runs[0]:
        for kind in PROCESS_KINDS:
            ratios = [run[name][kind] for run in runs]
            worst = max(ratios)
            goal = BATCH1_GOALS.get(name) if kind == "auto" else None
            label = f"auto (= {auto_kernel(1)})" if kind == "auto" else kind
            rows.append(
                [
                    f"dense {name}, batch 1, {label}, {processes} fresh processes: " + " ".join(f"{r:.2f}" for r in ratios),
                    "",
                    "",
                    spread(ratios),
                    "" if goal is None else f"<= {goal} in every process",
                    "" if goal is None else verdict(worst, goal, at_least=False),
                ]
            )
    return rows


def jit_child() -> dict[str, float | str | None]:
    """In a fresh process: seconds to import numba and start its threads, and the first
    kernel call (compiling, or loading the compiled code from numba's cache)."""
    start = time.perf_counter()
    lut_kernel.available()
    imported = time.perf_counter() - start
    packed = PackedLinear.from_binary(BinaryLinear(64, 64, "gelu"))
    with torch.no_grad():
        packed(torch.randn(1, 64))
    return {"import": imported, "first call": lut_kernel.compile_seconds(), "kernel": kernel_name()}


def jit_rows(threads: int) -> list[list[object]]:
    """The kernel's one-time cost in fresh processes: with an empty numba cache (it
    compiles), then with the cache that run left (a later session: it loads)."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache (compiles)", "warm cache (loads)"):
            r = run_child(["--jit", "--threads", str(threads)], env)
            first = "n/a" if r["first call"] is None else f"{r['first call']:.2f} s"
            rows.append(
                [f"numba kernel, fresh process, {label}: import {r['import']:.2f} s, first call {first}", "", "", "", "", ""]
            )
    return rows


def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One optimizer step (forward, cross-entropy, backward, AdamW) on a fixed batch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).flatten(0, -2), y.flatten())
        loss.backward()
        optimizer.step()

    return step


def training_rows(repeats: int) -> list[list[object]]:
    g = torch.Generator().manual_seed(0)
    cases = {
        "image tiny, batch 64": (
            ImageClassifier,
            torch.randn(64, 1, 8, 8, generator=g),
            torch.randint(0, 10, (64,), generator=g),
        ),
        "language tiny, 16x64 tokens": (
            LanguageModel,
            torch.randint(0, 256, (16, 64), generator=g),
            torch.randint(0, 256, (16, 64), generator=g),
        ),
    }
    rows = []
    for name, (cls, x, y) in cases.items():
        torch.manual_seed(0)
        steps = {
            kind: training_step(cls.from_config("tiny", binary=kind == "binary"), x, y)
            for kind in ("float32", "binary")
        }
        times = best_times(steps, repeats)
        ratio = times["binary"] / times["float32"]
        rows.append(
            [
                f"training step, {name}",
                f"{times['float32'] * 1e3:.2f}",
                f"{times['binary'] * 1e3:.2f}",
                f"{ratio:.2f}",
                f"<= {TRAIN_GOAL}",
                verdict(ratio, TRAIN_GOAL, at_least=False),
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes and few repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per contender (default 10, quick 3)")
    parser.add_argument("--processes", type=int, default=None, help="fresh processes for batch 1 (default 5, quick 2)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 10)
    if args.child:
        print(json.dumps(batch1_ratios([tuple(s) for s in json.loads(args.child)], repeats)))
        return ""
    if args.jit:
        print(json.dumps(jit_child()))
        return ""
    before = load_line()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = []
    for n_x, n_units in shapes:
        rows += dense_rows(n_x, n_units, BATCHES if (n_x, n_units) == shapes[0] else [1], repeats)
    processes = args.processes or (2 if args.quick else 5)
    rows += process_rows(shapes, processes, repeats, torch.get_num_threads())
    rows += jit_rows(torch.get_num_threads())
    rows += training_rows(repeats)
    table = format_table(["case", "float32 ms", "this ms", "ratio", "goal", "met"], rows)
    header = (
        f"bench_speed: best of {repeats} interleaved calls, {torch.get_num_threads()} torch thread(s), "
        f"{os.cpu_count()} CPU(s), packed kernel: {kernel_name()}\nload before: {before}\nload after:  {load_line()}"
    )
    text = f"{header}\n{table}"
    print(text)
    return text


if __name__ == "__main__":
    main()
