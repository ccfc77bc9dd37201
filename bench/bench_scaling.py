"""Does 1 bit scale? The binary-float32 gap against model size, and recipes that might narrow it.

Built on ``bench/bench_results.py`` (its data, splits, seeds, training recipes, worker
initialisation and summaries are imported from there). Two tasks, binary and float32 (with
the learnable normalization, the results table's baseline), four sizes each:

- **language**: the BLM (Alg. 8) of the ``"tiny"`` configuration on the frozen pydoc
  corpus (characters, ``max_len=64``) at widths :data:`LM_WIDTHS` (``embed_dim``; one
  attention head per 16 dimensions, an MLP head of ``2 x width``; 2 blocks): about 11 k
  to 350 k parameters (31x). **Budget rule: the same tokens at every size**,
  :data:`LM_EPOCHS` passes over the 7,091 training examples (about 2.2 M characters),
  AdamW with warmup and cosine decay. The validation split of ``text_data`` (held-out
  paragraphs) is cut in two halves: the first selects the learning rate and the epoch,
  the second is the **test** split whose loss is reported.
- **images**: the BCVNN (Alg. 7) ``"tiny-28"`` on digits-hard with every width (and the
  dense head) times :data:`IMAGE_SCALES`: about 12 k to 750 k parameters (62x). **Budget
  rule: the same images at every size**, 8 epochs of the 2,338 training images (two
  distortions per digit), Adam with warmup and cosine decay. The epoch is chosen on
  validation accuracy and the test accuracy of that epoch is reported.

Learning rates: **a small grid at every size** (three rates per variant, :data:`GRIDS`)
run with seed 0; the rate with the best validation number (loss for the language model,
accuracy for images) is then run with the other seeds. Every point has ``--seeds`` (3)
seeds; binary and float32 are paired by seed.

The gap (language: test-loss ratio binary / float32 and difference; images: float32 minus
binary test accuracy in points) is summarised per size (mean ± sample sd over seeds) and
fitted against log10(parameters) by least squares on the per-seed gaps; the slope's 95 %
interval is a bootstrap that resamples the seeds within every size (2,000 resamples). The
verdict says "shrinks" or "grows" only when that interval excludes 0.

Recipes (:mod:`binedu.recipes`): ``low-rate-tail`` and ``clip``, each run on the binary
model at two sizes per task (:data:`RECIPE_SIZES`) with all seeds, at the binary model's
best rate of the paper recipe at that size (not re-tuned), and compared with that paper
run seed by seed; also their training time.

Resumable: every finished run is written at once to ``scaling_cache.json`` in ``--out``
(atomically), and a rerun skips what is cached, so the sweep can run in pieces. The
points run task by task (images first), smallest size first, each in two stages: the
grids (seed 0), then the other seeds at the chosen rates together with the recipes; an
interrupted sweep resumes with the same command.

Usage::

    python bench/bench_scaling.py --jobs 2      # the sweep (designed for about 60 min on 2 quiet cores)
    python bench/bench_scaling.py --quick       # a smoke run, under 2 minutes; numbers not meaningful
    python bench/bench_scaling.py --only lm     # one task
    python bench/bench_scaling.py --report      # tables and figure from the cache, no training

Writes ``scaling.txt`` (this report), ``scaling.json`` (the points, trends, recipes and
every run) and ``scaling.png`` (the figure) into ``--out`` (``bench/results``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_results import (  # noqa: E402  (the shared pieces of the results table)
    EPOCHS,
    IMAGE,
    LANGUAGE,
    LM_RATES,
    QUICK,
    RESULTS,
    _images,
    _init,
    _load,
    _text,
    machine,
    mean_sd,
    save_figure,
)

from binedu import evaluate  # noqa: E402
from binedu.recipes import apply_recipe  # noqa: E402
from binedu.scaling import gap_trend, plot_gaps, scaled_image_model, scaled_language_model  # noqa: E402
from binedu.train import fit  # noqa: E402

TASKS = ("images", "lm")
VARIANTS = ("binary", "float32")
LM_WIDTHS = (16, 32, 64, 128)
"""Language-model widths (``embed_dim``)."""
IMAGE_SCALES = (0.25, 0.5, 1.0, 2.0)
"""Factors on every width of ``"tiny-28"`` (1.0 is the results table's model)."""
SIZES: dict[str, tuple[float, ...]] = {"lm": LM_WIDTHS, "images": IMAGE_SCALES}
LM_EPOCHS = 5
"""Language budget: passes over the training text, the same at every size."""
IMAGE_EPOCHS = EPOCHS["digits-hard"]
GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "lm": dict(LM_RATES),  # the results table's grids, one step apart per variant
    "images": {"binary": (1e-3, 3e-3, 1e-2), "float32": (1e-3, 3e-3, 1e-2)},
}
RECIPE_SIZES: dict[str, tuple[float, ...]] = {"lm": (32, 64), "images": (0.5, 1.0)}
TRIALS = ("low-rate-tail", "clip")
"""The recipes measured against ``"paper"``."""
SEEDS = 3
BOOTSTRAP = 2000
QUICK_SIZES: dict[str, tuple[float, ...]] = {"lm": (8, 16), "images": (0.25, 0.5)}
CACHE = "scaling_cache.json"
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- models and runs


def _lm_splits(quick: bool) -> tuple[Any, Dataset, Dataset, Dataset]:
    """Train, validation (first half of the held-out paragraphs) and test (second half)."""
    data, train, held_out = _text(quick)
    half = len(held_out) // 2
    return data, train, Subset(held_out, range(half)), Subset(held_out, range(half, len(held_out)))


def train_run(task: str, size: float, variant: str, lr: float, recipe: str, seed: int, quick: bool) -> dict[str, Any]:
    """Train one model under ``recipe``; validation and test after every epoch; the epoch
    with the best validation number gives the test number."""
    language = task == "lm"
    if language:
        data, train, val, test = _lm_splits(quick)
        pad = data.tokenizer.pad_id
        torch.manual_seed(seed)
        model: torch.nn.Module = scaled_language_model(int(size), data.vocab_size, binary=variant == "binary")
        epochs, settings = (QUICK["lm_epochs"] if quick else LM_EPOCHS), LANGUAGE
    else:
        images = _images("digits-hard", quick)
        train, val, test, pad = images.train, images.val, images.test, None
        torch.manual_seed(seed)
        model = scaled_image_model(size, binary=variant == "binary", image_size=images.image_size)
        epochs, settings = (QUICK["epochs"] if quick else IMAGE_EPOCHS), IMAGE
    steps = epochs * math.ceil(len(train) / settings["batch_size"])
    options = {k: v for k, v in settings.items() if k != "lr"} | apply_recipe(recipe, model, steps, settings["warmup_steps"])
    curve: list[tuple[dict[str, float], dict[str, float]]] = []

    def on_epoch(record: dict[str, Any]) -> None:
        curve.append((evaluate(model, val, pad_id=pad), evaluate(model, test, pad_id=pad)))

    start = time.perf_counter()
    fit(model, train, epochs=epochs, lr=lr, seed=seed, progress=False, on_epoch=on_epoch, **options)
    seconds = time.perf_counter() - start
    if language:
        best = min(range(len(curve)), key=lambda i: (curve[i][0]["loss"], i))
    else:
        best = max(range(len(curve)), key=lambda i: (curve[i][0]["acc"], -i))
    return {
        "task": task, "size": size, "variant": variant, "lr": lr, "recipe": recipe, "seed": seed,
        "params": model.num_parameters(), "epochs": epochs, "steps": steps, "epoch": best + 1,
        "val_loss": curve[best][0]["loss"], "val_acc": curve[best][0]["acc"],
        "test_loss": curve[best][1]["loss"], "test_acc": curve[best][1]["acc"],
        "val_curve": [c[0]["loss" if language else "acc"] for c in curve], "seconds": seconds,
    }  # fmt: skip


# ---------------------------------------------------------------- the resumable runner


def run_key(task: str, size: float, variant: str, lr: float, recipe: str, seed: int) -> str:
    return f"{task}|{size:g}|{variant}|{lr:g}|{recipe}|{seed}"


def load_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The cached runs (JSON; an unreadable file is a clear error, never silently lost)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: cannot read the run cache {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SystemExit(f"error: the run cache {path} is not a JSON object of runs")
    return data


def write_json(path: Path, data: Any) -> None:
    """Atomic write: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


Job = tuple[str, str, float, str, float, str, int]  # key, task, size, variant, lr, recipe, seed


def run_jobs(jobs: list[Job], cache: dict[str, dict], path: Path, workers: int, threads: int, quick: bool) -> None:
    """Run the jobs not in ``cache``; each result is cached (and the file rewritten) as it finishes."""
    todo = [j for j in jobs if j[0] not in cache]
    if not todo:
        return

    def done(n: int, r: dict[str, Any]) -> None:
        cache[run_key(r["task"], r["size"], r["variant"], r["lr"], r["recipe"], r["seed"])] = r
        write_json(path, cache)
        print(f"[{n}/{len(todo)}] {r['task']} size {r['size']:g} {r['variant']} lr {r['lr']:g} {r['recipe']} "
              f"seed {r['seed']}: {r['seconds']:.0f} s", file=sys.stderr, flush=True)

    if workers <= 1:
        _init(threads)
        for n, (_, *args) in enumerate(todo, start=1):
            done(n, train_run(*args, quick))  # type: ignore[arg-type]
        return
    context = multiprocessing.get_context("spawn")  # as bench_results: no fork of OpenMP threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(threads,)) as pool:
        futures = [pool.submit(train_run, *args, quick) for _, *args in todo]
        for n, future in enumerate(as_completed(futures), start=1):
            done(n, future.result())


def _job(task: str, size: float, variant: str, lr: float, recipe: str, seed: int) -> Job:
    return (run_key(task, size, variant, lr, recipe, seed), task, size, variant, lr, recipe, seed)


def _score(task: str, run: dict[str, Any]) -> float:
    """Lower is better: validation loss (language) or minus validation accuracy (images)."""
    return run["val_loss"] if task == "lm" else -run["val_acc"]


def best_rate(cache: dict[str, dict], task: str, size: float, variant: str, grid: tuple[float, ...]) -> float | None:
    """The grid rate with the best seed-0 validation number (ties: the lower rate), or None
    while a grid run is missing."""
    runs = [cache.get(run_key(task, size, variant, lr, "paper", 0)) for lr in grid]
    if any(r is None for r in runs):
        return None
    return min(runs, key=lambda r: (_score(task, r), r["lr"]))["lr"]  # type: ignore[index]


def point_stages(task: str, size: float, grids: dict[str, tuple[float, ...]], seeds: int, cache: dict[str, dict],
                 recipes: bool) -> list[list[Job]]:
    """The jobs of one size, in two stages: the grids (seed 0); then the other seeds at the
    chosen rates, and with ``recipes`` the recipes on the binary model (planned from the grids)."""
    grid = [_job(task, size, v, lr, "paper", 0) for v in VARIANTS for lr in grids[v]]
    more: list[Job] = []
    for v in VARIANTS:
        lr = best_rate(cache, task, size, v, grids[v])
        if lr is None:
            continue
        more += [_job(task, size, v, lr, "paper", seed) for seed in range(1, seeds)]
        if v == "binary" and recipes:
            more += [_job(task, size, v, lr, r, seed) for r in TRIALS for seed in range(seeds)]
    return [grid, more]


def recipe_sizes(task: str, sizes: dict[str, tuple[float, ...]]) -> tuple[float, ...]:
    return RECIPE_SIZES[task] if set(RECIPE_SIZES[task]) <= set(sizes[task]) else sizes[task][:2]


def plan(tasks: list[str], sizes: dict[str, tuple[float, ...]]) -> list[tuple[str, float]]:
    """The points in the order they run: task by task (images first: they are cheap, and one
    finished task says more than two half-finished ones), smallest size first."""
    return [(t, s) for t in tasks for s in sorted(sizes[t])]


def _longest_first(jobs: list[Job]) -> list[Job]:
    return sorted(jobs, key=lambda j: (j[1] != "lm", -j[2]))


# ---------------------------------------------------------------- summaries


def _point_runs(cache: dict[str, dict], task: str, size: float, variant: str, recipe: str, lr: float) -> dict[int, dict]:
    return {r["seed"]: r for r in cache.values()
            if (r["task"], r["size"], r["variant"], r["recipe"], r["lr"]) == (task, size, variant, recipe, lr)}


GAPS: dict[str, dict[str, Callable[[dict, dict], float]]] = {
    "lm": {
        "loss ratio": lambda b, f: b["test_loss"] / f["test_loss"],
        "loss difference": lambda b, f: b["test_loss"] - f["test_loss"],
    },
    "images": {"accuracy points": lambda b, f: 100 * (f["test_acc"] - b["test_acc"])},
}
"""The gap measures, from a binary and a float32 run of the same seed."""


def points(cache: dict[str, dict], task: str, sizes: tuple[float, ...], grids: dict[str, tuple[float, ...]]) -> list[dict]:
    """One row per size with both variants at their chosen rates and the per-seed gaps."""
    rows = []
    for size in sizes:
        rates = {v: best_rate(cache, task, size, v, grids[v]) for v in VARIANTS}
        if None in rates.values():
            continue
        b = _point_runs(cache, task, size, "binary", "paper", rates["binary"])  # type: ignore[arg-type]
        f = _point_runs(cache, task, size, "float32", "paper", rates["float32"])  # type: ignore[arg-type]
        seeds = sorted(set(b) & set(f))
        metric = "test_loss" if task == "lm" else "test_acc"
        rows.append({
            "task": task, "size": size, "params": b[0]["params"], "params_float32": f[0]["params"],
            "lr": rates, "seeds": seeds,
            "binary": [b[s][metric] for s in seeds], "float32": [f[s][metric] for s in seeds],
            "gaps": {name: [g(b[s], f[s]) for s in seeds] for name, g in GAPS[task].items()},
        })  # fmt: skip
    return rows


def trend(rows: list[dict], gap: str, resamples: int = BOOTSTRAP) -> dict[str, Any]:
    """:func:`binedu.scaling.gap_trend` of one gap measure over the rows of one task."""
    return {"gap": gap} | gap_trend([r["params"] for r in rows], [r["gaps"][gap] for r in rows], resamples)


def recipe_rows(cache: dict[str, dict], task: str, sizes: tuple[float, ...], grid: tuple[float, ...]) -> list[dict]:
    """Each recipe against the paper recipe on the binary model, paired by seed."""
    rows = []
    metric = "test_loss" if task == "lm" else "test_acc"
    for size in sizes:
        lr = best_rate(cache, task, size, "binary", grid)
        if lr is None:
            continue
        paper = _point_runs(cache, task, size, "binary", "paper", lr)
        for name in TRIALS:
            trial = _point_runs(cache, task, size, "binary", name, lr)
            seeds = sorted(set(paper) & set(trial))
            if not seeds:
                continue
            sign = 1.0 if task == "lm" else 100.0  # accuracy in points
            rows.append({
                "task": task, "size": size, "recipe": name, "lr": lr, "seeds": seeds, "params": paper[seeds[0]]["params"],
                "paper": [paper[s][metric] for s in seeds], "recipe_values": [trial[s][metric] for s in seeds],
                "change": [sign * (trial[s][metric] - paper[s][metric]) for s in seeds],
                "time_ratio": [trial[s]["seconds"] / paper[s]["seconds"] for s in seeds],
            })  # fmt: skip
    return rows


def _fmt(values: list[float], digits: int) -> str:
    return mean_sd(values, digits) if values else "-"


def point_table(rows: list[dict]) -> str:
    lines = ["| task | size | params (binary) | lr binary / float32 | binary | float32 | gap | seeds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lm = r["task"] == "lm"
        what = "test loss" if lm else "test acc"
        gap = (f"ratio {_fmt(r['gaps']['loss ratio'], 3)}; diff {_fmt(r['gaps']['loss difference'], 3)}" if lm
               else f"{_fmt(r['gaps']['accuracy points'], 1)} points")
        size = f"width {r['size']:g}" if lm else f"x{r['size']:g}"
        lines.append(f"| {'language' if lm else 'digits-hard'} | {size} | {r['params']:,} | {r['lr']['binary']:g} / "
                     f"{r['lr']['float32']:g} | {what} {_fmt(r['binary'], 3)} | {_fmt(r['float32'], 3)} | {gap} "
                     f"| {len(r['seeds'])} |")
    return "\n".join(lines)


def recipe_table(rows: list[dict]) -> str:
    lines = ["| task | size | recipe | binary, paper recipe | binary, this recipe | change (paired) | time vs paper | seeds |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lm = r["task"] == "lm"
        unit = "test loss (lower is better)" if lm else "points of test accuracy (higher is better)"
        lines.append(f"| {'language' if lm else 'digits-hard'} | {r['size']:g} | {r['recipe']} | {_fmt(r['paper'], 3)} "
                     f"| {_fmt(r['recipe_values'], 3)} | {_fmt(r['change'], 3 if lm else 1)} {unit} "
                     f"| {statistics.fmean(r['time_ratio']):.2f}x | {len(r['seeds'])} |")
    return "\n".join(lines)


def recipe_verdict(r: dict) -> str:
    """Helps / hurts only when every seed agrees and the mean is beyond one sd; else no clear effect."""
    better = [-c for c in r["change"]] if r["task"] == "lm" else list(r["change"])
    mean = statistics.fmean(better)
    sd = statistics.stdev(better) if len(better) > 1 else math.inf
    if all(b > 0 for b in better) and mean > sd:
        return "helps"
    if all(b < 0 for b in better) and -mean > sd:
        return "hurts"
    return "no clear effect"


def plot(rows: list[dict], trends: dict[str, dict], path: Path) -> Path:
    """:func:`binedu.scaling.plot_gaps`, written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    return save_figure(plot_gaps(rows, trends), path)


def remaining(tasks: list[str], sizes: dict, grids: dict, seeds: int, cache: dict[str, dict]) -> int:
    """Runs of the full plan not cached yet (before a size's grid is in, its later runs are
    counted from the plan: the other seeds of both variants, and the recipes)."""
    left = 0
    for t, s in plan(tasks, sizes):
        recipes = s in recipe_sizes(t, sizes)
        grid, more = point_stages(t, s, grids[t], seeds, cache, recipes)
        if any(j[0] not in cache for j in grid):
            more_count = len(VARIANTS) * (seeds - 1) + (len(TRIALS) * seeds if recipes else 0)
        else:
            more_count = sum(1 for j in more if j[0] not in cache)
        left += sum(1 for j in grid if j[0] not in cache) + more_count
    return left


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two tiny sizes, tiny data, 2 seeds: checks the script runs")
    parser.add_argument("--only", choices=TASKS, action="append", help="run only this task (repeatable)")
    parser.add_argument("--seeds", type=int, help=f"seeds per point (default {SEEDS}; quick 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel processes")
    parser.add_argument("--report", action="store_true", help="no training: tables and figure from the cache")
    parser.add_argument("--out", help="folder for the cache, scaling.txt/.json/.png (default bench/results; quick: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.jobs < 1:
        parser.error("--threads and --jobs must be >= 1")
    seeds = args.seeds or (2 if args.quick else SEEDS)
    if seeds < 2:
        parser.error("--seeds must be >= 2 (the gap's spread needs two)")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scaling-quick-")) if args.quick else RESULTS
    tasks = [t for t in TASKS if not args.only or t in args.only]
    sizes = QUICK_SIZES if args.quick else SIZES
    grids = {t: {v: g[:2] for v, g in gs.items()} for t, gs in GRIDS.items()} if args.quick else GRIDS
    cache_path = out / CACHE
    cache = load_cache(cache_path)

    load_before, start = _load(), time.perf_counter()
    if not args.report:
        for task, size in plan(tasks, sizes):
            for n in range(2):  # the second stage is planned from the finished grid
                stage = point_stages(task, size, grids[task], seeds, cache, size in recipe_sizes(task, sizes))[n]
                run_jobs(_longest_first(stage), cache, cache_path, args.jobs, args.threads, args.quick)
    total = time.perf_counter() - start

    rows = [r for t in tasks for r in points(cache, t, sizes[t], grids[t])]
    complete = [r for r in rows if len(r["seeds"]) >= seeds]  # a point still missing seeds is in the table only
    trends = {f"{t}: {g}": trend([r for r in complete if r["task"] == t], g) for t in tasks for g in GAPS[t]}
    recipes = [r for t in tasks for r in recipe_rows(cache, t, recipe_sizes(t, sizes), grids[t]["binary"])]
    for r in recipes:
        r["verdict"] = recipe_verdict(r)
    left = remaining(tasks, sizes, grids, seeds, cache)
    figure = plot(complete, trends, out / "scaling.png")

    command = "python bench/bench_scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        f"command: {command.strip()}" + (" (a report of the cached runs of the sweep, which ran as "
                                          "`nice -n 19 python bench/bench_scaling.py --jobs 2`)" if args.report else ""),
        f"machine: {machine()}",
        f"threads per run: {args.threads}, parallel runs: {args.jobs}; load average before {load_before}, after {_load()}",
        f"budget rule: language {QUICK['lm_epochs'] if args.quick else LM_EPOCHS} epochs of the pydoc training text at every "
        f"width, {LANGUAGE}; images {QUICK['epochs'] if args.quick else IMAGE_EPOCHS} epochs of digits-hard at every scale, "
        f"{ {k: v for k, v in IMAGE.items() if k != 'lr'} }; cosine decay; rate grids {grids} (seed 0 picks the rate on validation), seeds 0..{seeds - 1}, "
        "epoch chosen on validation, test reported",
        "",
        point_table(rows),
        "",
        "trend of the gap against log10(parameters) over the points with every seed (least squares on per-seed gaps; "
        "95 % bootstrap over seeds):",
    ]
    for name, t in trends.items():
        lines.append(f"- {name}: slope {t['slope']:+.4f} per decade, 95 % interval [{t['low']:+.4f}, {t['high']:+.4f}]: "
                     + (f"the gap {t['verdict']}" if t["verdict"] != "too few sizes" else "too few sizes for a trend yet"))
    if recipes:
        lines += ["", "recipes on the binary model (binedu.recipes), against the paper recipe at the same rate:", "",
                  recipe_table(recipes), ""]
        lines += [f"- {r['task']} size {r['size']:g}, {r['recipe']}: {r['verdict']}" for r in recipes]
    resume = " ".join(a for a in command.split() if a != "--report")
    shown = figure.relative_to(ROOT) if figure.is_relative_to(ROOT) else figure
    lines += ["", f"figure: {shown}", f"runs cached: {len(cache)}; runs of the plan still to do: {left}"
              + ("" if not left else f" (resume: nice -n 19 {resume} --jobs 2)" if args.report else f" (resume: {resume})"),
              f"this invocation: {total:.0f} s"]
    text = "\n".join(lines)
    print(text)
    report = {"command": command.strip(), "machine": machine(), "threads": args.threads, "jobs": args.jobs,
              "quick": args.quick, "seeds": seeds, "budget": {"lm_epochs": QUICK["lm_epochs"] if args.quick else LM_EPOCHS,
              "image_epochs": QUICK["epochs"] if args.quick else IMAGE_EPOCHS}, "grids": grids, "points": rows,
              "trends": trends, "recipes": recipes, "remaining": left, "runs": list(cache.values()), "seconds": total}
    write_json(out / "scaling.json", report)
    tmp = out / "scaling.txt.tmp"
    tmp.write_text(text + "\n")
    os.replace(tmp, out / "scaling.txt")
    return report


if __name__ == "__main__":
    main()
