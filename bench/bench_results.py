"""Results table: binary vs float32 vs binary-without-normalization, same budget.

Trains the tiny image model (Alg. 7, ``"tiny"`` config) on scikit-learn's digits and the
tiny language model (Alg. 8, ``"tiny"`` config, characters) on Python's documentation
text: the offline defaults, no download. Within a task every variant gets the same
budget (epochs, batch size, optimizer steps, data) and the same recipe, and the table
reports, as the paper's Tables 2 and 5 do, the best validation values over the epochs,
next to the final ones. Then it checks the goals of the project:

- image: binary within 3 accuracy points of float32;
- language: binary validation loss within 15% of float32's;
- without normalization the binary model clearly fails (near-chance accuracy, a
  validation loss far above the normalized model's).

Usage::

    python bench/bench_results.py            # the full table (a few minutes on 2 CPU cores)
    python bench/bench_results.py --quick    # a smoke run, seconds; numbers not meaningful

Exit status 0 even when a goal is missed: the table says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binedu import ImageClassifier, LanguageModel  # noqa: E402
from binedu.data import image_data, text_data  # noqa: E402
from binedu.train import fit  # noqa: E402

VARIANTS = {
    "binary": dict(binary=True, normalize=True),
    "float32": dict(binary=False, normalize=True),
    "binary, no normalization": dict(binary=True, normalize=False),
}

# The recipes (same for the three variants of a task).
IMAGE = dict(epochs=15, batch_size=32, lr=3e-3, optimizer="adam", warmup_steps=20)
LANGUAGE = dict(epochs=1, batch_size=32, lr=1e-2, optimizer="adamw", warmup_steps=20)
QUICK = dict(image_epochs=2, image_limit=200, lm_examples=128, lm_val=64)


@dataclass
class Row:
    task: str
    model: str
    parameters: int
    steps: int
    val_loss: float
    val_acc: float
    best_val_loss: float
    best_val_acc: float
    val_ppl: float | None
    seconds: float


def run_image(quick: bool, seed: int) -> list[Row]:
    data = image_data("digits", seed=seed, limit=QUICK["image_limit"] if quick else None)
    recipe = IMAGE | ({"epochs": QUICK["image_epochs"]} if quick else {})
    rows = []
    for name, variant in VARIANTS.items():
        torch.manual_seed(seed)
        model = ImageClassifier.from_config("tiny", **variant)
        start = time.perf_counter()
        h = fit(model, data.train, data.val, **recipe, seed=seed, progress=False)
        rows.append(_row("image (digits)", name, model, h, time.perf_counter() - start))
    return rows


def run_language(quick: bool, seed: int, epochs: int | None = None) -> list[Row]:
    data = text_data("pydoc", seed=seed, max_len=64)
    train, val = data.train, data.val
    if quick:
        train, val = Subset(train, range(QUICK["lm_examples"])), Subset(val, range(QUICK["lm_val"]))
    rows = []
    for name, variant in VARIANTS.items():
        torch.manual_seed(seed)
        model = LanguageModel.from_config("tiny", vocab_size=data.vocab_size, **variant)
        start = time.perf_counter()
        h = fit(model, train, val, **(LANGUAGE | ({"epochs": epochs} if epochs else {})), seed=seed, progress=False)
        rows.append(_row(f"language (pydoc, {data.vocab_size} chars)", name, model, h, time.perf_counter() - start))
    return rows


def _row(task: str, name: str, model: torch.nn.Module, h, seconds: float) -> Row:
    last = h.epochs[-1]
    return Row(
        task=task,
        model=name,
        parameters=model.num_parameters(),
        steps=len(h.steps),
        val_loss=last["val_loss"],
        val_acc=last["val_acc"],
        best_val_loss=h.best("val_loss"),
        best_val_acc=h.best("val_acc"),
        val_ppl=last.get("val_ppl"),
        seconds=seconds,
    )


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else (f"{x:.{digits}g}" if abs(x) >= 1e4 else f"{x:.{digits}f}")


def table(rows: list[Row]) -> str:
    lines = [
        "| task | model | params | steps | best val loss | best val acc | final val loss | final val acc | final val ppl | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.model} | {r.parameters:,} | {r.steps} | {_fmt(r.best_val_loss)} | {_fmt(r.best_val_acc, 3)} "
            f"| {_fmt(r.val_loss)} | {_fmt(r.val_acc, 3)} | {_fmt(r.val_ppl, 2) if r.val_ppl else '-'} | {r.seconds:.0f} |"
        )
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[tuple[str, bool]]:
    """The project's goals, each with whether these numbers meet it."""
    by = {(r.task.split()[0], r.model): r for r in rows}
    out = []
    if ("image", "binary") in by:
        b, f, n = by["image", "binary"], by["image", "float32"], by["image", "binary, no normalization"]
        gap = 100 * (f.best_val_acc - b.best_val_acc)
        out.append(
            (
                f"image: binary best val acc {b.best_val_acc:.3f} vs float32 {f.best_val_acc:.3f}: {gap:+.1f} points (goal: within 3)",
                gap <= 3,
            )
        )
        out.append(
            (
                f"image: no normalization best val acc {n.best_val_acc:.3f} (chance 0.100; goal: clearly fails, <= 0.3)",
                n.best_val_acc <= 0.3,
            )
        )
    if ("language", "binary") in by:
        b, f, n = by["language", "binary"], by["language", "float32"], by["language", "binary, no normalization"]
        ratio = b.best_val_loss / f.best_val_loss
        out.append(
            (
                f"language: binary best val loss {b.best_val_loss:.4f} vs float32 {f.best_val_loss:.4f}: ratio {ratio:.3f} (goal: <= 1.15)",
                ratio <= 1.15,
            )
        )
        worse = n.best_val_loss / b.best_val_loss
        out.append(
            (
                f"language: no normalization best val loss {n.best_val_loss:.4g}, {worse:.3g}x the binary model's (goal: clearly fails, >= 1.5x)",
                worse >= 1.5,
            )
        )
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical cores visible, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, {platform.system()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny budget: checks the script runs, numbers not meaningful"
    )
    parser.add_argument("--only", choices=("image", "language"), help="run one task only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lm-epochs", type=int, help="language-model epochs instead of the recipe's (a longer budget)")
    parser.add_argument("--json", help="also write the rows and goals to this JSON file")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows: list[Row] = []
    if args.only in (None, "image"):
        rows += run_image(args.quick, args.seed)
    if args.only in (None, "language"):
        rows += run_language(args.quick, args.seed, args.lm_epochs)
    total = time.perf_counter() - start

    print(f"machine: {machine()}")
    print("command: python bench/bench_results.py " + " ".join(sys.argv[1:] if argv is None else argv))
    img = IMAGE | ({"epochs": QUICK["image_epochs"]} if args.quick else {})
    print(f"image recipe (all three variants): {img}")
    quick_lm = f" on {QUICK['lm_examples']} examples" if args.quick else ""
    lm = LANGUAGE | ({"epochs": args.lm_epochs} if args.lm_epochs else {})
    print(f"language recipe (all three variants): {lm}{quick_lm}")
    print()
    print(table(rows))
    print()
    checked = goals(rows)
    for text, ok in checked:
        print(f"[{'met' if ok else 'NOT met'}] {text}")
    print(f"\ntotal time: {total:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": [asdict(r) for r in rows], "goals": checked, "machine": machine()}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
