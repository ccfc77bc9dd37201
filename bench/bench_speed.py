"""Speed: packed vs float32 dense layers, and a binary vs float32 training step.

A packed dense layer (:class:`binedu.packed.PackedLinear`, no normalization so that it
computes ``W x + b`` like ``nn.Linear``) against a float32 ``nn.Linear`` of the same
shape, at 1 to 64 input rows, for each kernel: ``lut`` (multiplication-free lookup
tables), ``dense`` (unpack a chunk, multiply) and ``auto`` (what a packed model uses:
``lut`` for at most ``LUT_MAX_ROWS`` rows). Then the batch-1 ratio again in
``--processes`` fresh Python processes (worst and median: a kernel must be fast in every
process, not on average), and one training step (forward, backward, AdamW) of the tiny
binary models against their float32 counterparts. Times are the best of ``--repeats``
interleaved calls, measured in this run; ratio = binedu / float32. Before each layer
call the CPU caches are flushed (64 MiB written), so every contender reads its weights
from memory, as the layers of a large model do.

Goals (issue 11, which tightens issue 3): batch 1 ratio <= 0.6 in every fresh process;
every batch from 1 to 64 rows <= 1.0; training step <= 1.3.

Usage::

    python bench/bench_speed.py              # a few minutes on 2 CPU cores
    python bench/bench_speed.py --threads 1  # one thread (steadier on a busy machine)
    python bench/bench_speed.py --quick      # small shapes, seconds; numbers not meaningful
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_times, cache_flusher, format_table, verdict  # noqa: E402

from binedu import BinaryLinear, ImageClassifier, LanguageModel  # noqa: E402
from binedu.packed import LUT_MAX_ROWS, PackedLinear  # noqa: E402

SHAPES = [(4096, 4096), (2048, 30522)]  # (in_features, out_features): a big square layer, the LM head
QUICK_SHAPES = [(256, 256), (128, 1000)]
BATCHES = [1, 2, 4, 8, 16, 32, 64]
BATCH1_GOAL = 0.6
BATCH_GOAL = 1.0
TRAIN_GOAL = 1.3
FLUSH = cache_flusher()  # layer timings start from cold caches: weights come from memory


def layer_times(
    float_layer: nn.Module, packed: PackedLinear, x: torch.Tensor, methods: list[str], repeats: int
) -> dict[str, float]:
    """Best seconds per call of the float32 layer and of the packed layer with each method."""

    def packed_with(method: str) -> Callable[[], object]:
        def call() -> object:
            packed.method = method
            return packed(x)

        return call

    with torch.inference_mode():
        contenders = {"float32": lambda: float_layer(x), **{m: packed_with(m) for m in methods}}
        return best_times(contenders, repeats, before_each=FLUSH)


def dense_rows(n_x: int, n_units: int, batches: list[int], repeats: int) -> list[list[object]]:
    """Table rows for one layer shape: float32 nn.Linear vs the packed kernels."""
    torch.manual_seed(0)
    float_layer = nn.Linear(n_x, n_units).eval()
    packed = PackedLinear.from_binary(BinaryLinear(n_x, n_units, normalize=False))
    rows = []
    for batch in batches:
        methods = ["auto", "lut", "dense"] if batch <= LUT_MAX_ROWS else ["auto", "dense"]
        times = layer_times(float_layer, packed, torch.randn(batch, n_x), methods, repeats)
        base = times["float32"]
        goal = BATCH1_GOAL if batch == 1 else BATCH_GOAL
        for method in methods:
            ratio = times[method] / base
            auto = f" (= {'lut' if batch <= LUT_MAX_ROWS else 'dense'})" if method == "auto" else ""
            judged = goal is not None and method == "auto"
            rows.append(
                [
                    f"dense {n_x}x{n_units}, batch {batch}, {method}{auto}",
                    f"{base * 1e3:.2f}",
                    f"{times[method] * 1e3:.2f}",
                    f"{ratio:.2f}",
                    f"<= {goal}" if judged else "",
                    verdict(ratio, goal, at_least=False) if judged else "",
                ]
            )
    return rows


def batch1_ratios(shapes: list[tuple[int, int]], repeats: int) -> dict[str, float]:
    """Batch-1 packed (``auto``) / float32 time per layer shape, in this process."""
    ratios = {}
    for n_x, n_units in shapes:
        torch.manual_seed(0)
        float_layer = nn.Linear(n_x, n_units).eval()
        packed = PackedLinear.from_binary(BinaryLinear(n_x, n_units, normalize=False))
        times = layer_times(float_layer, packed, torch.randn(1, n_x), ["auto"], repeats)
        ratios[f"{n_x}x{n_units}"] = times["auto"] / times["float32"]
    return ratios


def process_rows(shapes: list[tuple[int, int]], processes: int, repeats: int, threads: int) -> list[list[object]]:
    """Batch-1 ratios measured in ``processes`` fresh interpreters: worst and median."""
    runs = []
    for _ in range(processes):
        cmd = [sys.executable, __file__, "--child", json.dumps(shapes), "--threads", str(threads)]
        cmd += ["--repeats", str(repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"batch-1 child failed:\n{done.stderr}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for name in runs[0]:
        ratios = [run[name] for run in runs]
        worst = max(ratios)
        rows.append(
            [
                f"dense {name}, batch 1, auto, {processes} fresh processes: "
                + " ".join(f"{r:.2f}" for r in ratios),
                "",
                "",
                f"worst {worst:.2f}, median {statistics.median(ratios):.2f}",
                f"<= {BATCH1_GOAL} in every process",
                verdict(worst, BATCH1_GOAL, at_least=False),
            ]
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
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 10)
    if args.child:
        print(json.dumps(batch1_ratios([tuple(s) for s in json.loads(args.child)], repeats)))
        return ""
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = []
    for n_x, n_units in shapes:
        rows += dense_rows(n_x, n_units, BATCHES, repeats)
    processes = args.processes or (2 if args.quick else 5)
    rows += process_rows(shapes, processes, repeats, torch.get_num_threads())
    rows += training_rows(repeats)
    table = format_table(["case", "float32 ms", "binedu ms", "ratio", "goal", "met"], rows)
    load = os.getloadavg()[0]
    header = (
        f"bench_speed: best of {repeats} interleaved calls, {torch.get_num_threads()} torch thread(s), "
        f"{os.cpu_count()} CPU(s), load average {load:.1f} at the end"
    )
    if load > (os.cpu_count() or 1) + 0.5:  # this run itself keeps up to one load per thread
        header += "\n(busy machine: other processes compete for the cores; --threads 1 gives steadier numbers)"
    text = f"{header}\n{table}"
    print(text)
    return text


if __name__ == "__main__":
    main()
