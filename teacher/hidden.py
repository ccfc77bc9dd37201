"""Hidden tests: each function exercise's cases, drawn again from the teacher's secret seed.

The public cases of an exercise (in binedu) show the shapes and kinds of input; the hidden
cases have the same shapes with new values drawn from ``seed`` (the teacher's secret:
``BINEDU_GRADING_SEED`` or a file), so publishing this code gives no answer away. The
references are binedu's own functions, run in the grading kernel next to the answer."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

SEED_ENV = "BINEDU_GRADING_SEED"


def secret_seed(path: str | Path | None = None) -> int:
    """The teacher's seed: ``BINEDU_GRADING_SEED``, else the integer in ``path``."""
    if os.environ.get(SEED_ENV):
        return int(os.environ[SEED_ENV])
    if path is not None and Path(path).is_file():
        return int(Path(path).read_text().strip())
    raise SystemExit(f"grading needs the secret seed: set {SEED_ENV} or pass --seed-file (an integer in a file)")


def _redraw(value: Any, rng: random.Random, gen: torch.Generator) -> Any:
    """A new value of the same kind and shape as a public case's argument."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:
            return torch.rand(value.shape, generator=gen) > 0.5
        if value.dtype == torch.uint8:
            return torch.randint(0, 256, value.shape, generator=gen, dtype=torch.uint8)
        if not value.is_floating_point():
            lo, hi = int(value.min()), int(value.max())
            return torch.randint(lo, hi + 1, value.shape, generator=gen, dtype=value.dtype)
        std = float(value.std()) if value.numel() > 1 and float(value.std()) > 0 else 1.0
        return torch.randn(value.shape, generator=gen) * std + float(value.mean())
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8:
            return np.frombuffer(rng.randbytes(value.size), dtype=np.uint8).reshape(value.shape).copy()
        return np.asarray(torch.randn(value.shape, generator=gen).numpy(), dtype=value.dtype)
    if isinstance(value, tuple) and value and all(v in (0, 1) for v in value if isinstance(v, int)):
        return tuple(rng.randint(0, 1) for _ in value)
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    if 0 <= value <= 255 and value > 1:
        return rng.randint(2, 255) if value < 256 else value
    return value


SEEDED = {"02.build_flip_log", "03.capstone", "04.build_bncvl"}
"""Exercises whose cases start with a seed that draws the whole case (a model, a batch):
their hidden cases draw a new seed and keep the other arguments (the sizes)."""


def hidden_cases(ex: Any, seed: int, copies: int = 2) -> list[tuple]:
    """``copies`` redrawn versions of each public case, keeping the ones the reference
    accepts (a redrawn case may be out of the reference's domain)."""
    rng = random.Random(f"{seed}|{ex.id}")
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    out = []
    for case in ex.cases():
        for _ in range(copies):
            if ex.id in SEEDED:
                new = (rng.randrange(10**6), *case[1:])
            else:
                new = tuple(_redraw(v, rng, gen) for v in case)
            try:
                (ex.observe or (lambda f, a: f(*a)))(ex.reference, new)
            except Exception:  # noqa: BLE001 - out of the reference's domain: use the public case
                new = case
            out.append(new)
    return out


def _fresh_core() -> Any:
    """A fresh copy of binedu's checking module, loaded from its file: whatever the student's
    cells replaced in the imported one, this copy's functions are the originals."""
    import importlib.util

    from binedu.course.exercises import core

    spec = importlib.util.spec_from_file_location("_binedu_grading_core", core.__file__)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fresh  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(fresh)
    finally:
        del sys.modules[spec.name]
    return fresh


def run_in_kernel(namespace: dict[str, Any], tests: dict[str, str], seed: int) -> str:
    """The hidden-test cell's body, run in the grading kernel after the student's cells:
    ``tests`` maps exercise ids to the names the notebook hands in. Returns one JSON line:
    per id, whether the answer passed every hidden case and why not. A prediction passes
    when this run's check accepted a prediction with a sealed, changed measurement."""
    from binedu.course.exercises import core, get_exercise

    judge = _fresh_core()
    results = {}
    for ex_id, name in tests.items():
        ex = get_exercise(ex_id)
        if ex.kind == "prediction":
            made = ex_id in core._FIRST
            results[ex_id] = {"ok": made, "why": "" if made else "no prediction with a changed run of binedu's experiment"}
            continue
        answer = namespace.get(name, ...)
        if isinstance(ex, core.Exercise) and ex.kind == "function":
            cases = hidden_cases(ex, seed)
            ex = dataclasses.replace(ex, cases=functools.partial(list, cases))
        try:
            ok, why = judge._judge(ex, answer)
        except Exception as err:  # noqa: BLE001 - the student's code broke the check: a zero, with the reason
            ok, why = False, f"{type(err).__name__}: {err}"
        judge._EXPECTED.clear()
        results[ex_id] = {"ok": bool(ok), "why": why}
    return json.dumps(results)
