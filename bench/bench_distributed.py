"""Speed-up of 2 torchrun processes against 1 on the CPU, same global batch.

    .venv/bin/python bench/bench_distributed.py [--repeats 3] [--steps 60]

Each run is a fresh ``torchrun`` launch (gloo, one thread per process) that trains the
tiny image model on digits or the tiny language model on pydoc characters with global
batch 32 (1 process x 32, or 2 processes x 16). Only the training steps are timed (after
3 warm-up steps), not the start-up. Prints steps/s per run and the 2-vs-1 ratio of each
repeat (median and worst).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLOBAL_BATCH = 32


def worker(result: Path, kind: str, steps: int) -> None:
    """One rank: train ``steps`` steps, rank 0 writes the global steps/s."""
    import torch

    from binedu import ImageClassifier, LanguageModel, distributed
    from binedu.data import image_data, text_data
    from binedu.train import fit, recipe

    torch.set_num_threads(1)
    procs = distributed.setup(torch.device("cpu"))
    if kind == "image":
        data = image_data("digits")
        make = lambda: ImageClassifier.from_config("tiny", in_channels=data.in_channels, num_classes=data.num_classes, image_size=data.image_size)  # noqa: E731
    else:
        data = text_data("pydoc", max_len=64)
        make = lambda: LanguageModel.from_config("tiny", vocab_size=data.vocab_size, max_len=64)  # noqa: E731
    settings = recipe(kind, "tiny") | dict(batch_size=GLOBAL_BATCH // procs.world_size, epochs=100, decay_steps=0)
    torch.manual_seed(0)
    model = make()
    fit(model, data.train, None, max_steps=3, progress=False, **settings)
    procs.barrier()
    start = time.perf_counter()
    fit(model, data.train, None, max_steps=steps, progress=False, **settings)
    procs.barrier()
    seconds = time.perf_counter() - start
    if procs.is_main:
        result.write_text(json.dumps({"steps_per_s": steps / seconds}))
    distributed.shutdown()


def launch(kind: str, nproc: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   __file__, "--worker", str(result), "--kind", kind, "--steps", str(steps)]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"torchrun failed ({kind}, {nproc} processes): {done.stderr[-2000:]}")
        return json.loads(result.read_text())["steps_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="image", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.kind, args.steps)
        return 0
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at start; global batch {GLOBAL_BATCH}, {args.steps} timed steps")
    print(f"{'model':<10} {'repeat':>6} {'1 proc steps/s':>15} {'2 procs steps/s':>16} {'2 vs 1':>7}")
    for kind in ("image", "language"):
        ratios = []
        for repeat in range(args.repeats):
            one, two = launch(kind, 1, args.steps), launch(kind, 2, args.steps)
            ratios.append(two / one)
            print(f"{kind:<10} {repeat + 1:>6} {one:>15.2f} {two:>16.2f} {two / one:>6.2f}x", flush=True)
        print(f"{kind:<10} 2 vs 1 processes: median {statistics.median(ratios):.2f}x, worst {min(ratios):.2f}x")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
