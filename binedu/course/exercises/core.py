"""Self-check exercises for the notebooks.

A student completes a small function or value in a notebook and calls
``check("02.quantize", my_quantize)``: the answer is run against binedu's reference on
several inputs, and ``check`` prints "✅ Correct!" or "❌ Not yet: ..." with the expected
value or a hint, and returns ``True``/``False``. It never raises on a wrong or unfinished
answer, so a notebook with the ``...`` placeholders still runs top to bottom.

Each notebook registers its exercises under ids ``"NN.name"`` (``NN`` = notebook
number) in its own module of :mod:`binedu.course.exercises`, with :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Exercise", "register", "check", "exercises", "get_exercise", "BITS_PER_BYTE"]

BITS_PER_BYTE = 8
"""Bits in a byte, and inputs per lookup table (one table per byte of a packed row)."""

CORRECT = "✅ Correct!"
NOT_YET = "❌ Not yet:"


@dataclass(frozen=True)
class Exercise:
    """One self-check.

    - A *function* exercise has ``cases`` (argument tuples): the answer and ``reference``
      are both called on each case and their results compared.
    - A *value* exercise has no cases: the answer is compared with ``reference()``.

    ``observe(fn, args)`` turns a function and a case into what is compared (default:
    ``fn(*args)``); an exercise about gradients observes the forward value and the
    gradient. Numbers and tensors are compared with ``rtol``/``atol``; strings ignore case
    and surrounding spaces. A value exercise's expected answer is never printed (that
    would give it away): the ``hint`` is.
    """

    id: str
    title: str
    reference: Callable[..., Any]
    hint: str
    cases: Callable[[], Sequence[tuple]] | None = None
    observe: Callable[[Callable[..., Any], tuple], Any] | None = None
    rtol: float = 1e-6
    atol: float = 1e-6

    @property
    def kind(self) -> str:
        return "value" if self.cases is None else "function"

    @property
    def notebook(self) -> str:
        return self.id.split(".", 1)[0]

    def expected(self) -> Any:
        """The reference answer of a value exercise (tests use it)."""
        if self.cases is not None:
            raise ValueError(f"exercise {self.id!r} asks for a function; call .reference on its cases")
        return self.reference()


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry; ids are unique and look like ``"NN.name"``."""
    notebook, _, name = exercise.id.partition(".")
    if not (notebook.isdigit() and name):
        raise ValueError(f"exercise id must look like 'NN.name' (notebook number, dot, name), got {exercise.id!r}")
    if exercise.id in _REGISTRY:
        raise ValueError(f"exercise {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def get_exercise(exercise_id: str) -> Exercise:
    """The registered exercise, or a ValueError listing the known ids."""
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known exercises: {sorted(_REGISTRY)}")
    return _REGISTRY[exercise_id]


def exercises(notebook: str | int | None = None) -> list[Exercise]:
    """All registered exercises, or those of one notebook (``"02"`` or ``2``)."""
    key = None if notebook is None else f"{int(notebook):02d}"
    return [e for e in _REGISTRY.values() if key is None or e.notebook == key]


# ---------------------------------------------------------------- comparing answers


def is_placeholder(x: Any) -> bool:
    return x is None or x is Ellipsis


def _show(x: Any) -> str:
    """A short printable form of an answer."""
    if isinstance(x, torch.Tensor):
        if x.numel() <= 8:
            values = x.detach().to(torch.float64).flatten().tolist() if x.is_floating_point() else x.flatten().tolist()
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values)
            return f"tensor of shape {tuple(x.shape)} [{shown}]"
        return f"tensor of shape {tuple(x.shape)}"
    if isinstance(x, tuple):
        return "(" + ", ".join(_show(v) for v in x) + ")"
    if isinstance(x, float):
        return f"{x:.10g}"
    return repr(x)


def _mismatch(got: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """``None`` when ``got`` matches ``expected``, else why not."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"expected {len(expected)} results, got {_show(got)}"
        for g, e in zip(got, expected, strict=True):
            why = _mismatch(g, e, rtol, atol)
            if why:
                return why
        return None
    if is_placeholder(got):
        return "the answer is still None / `...`: fill it in"
    if isinstance(expected, torch.Tensor):
        try:
            got_t = torch.as_tensor(got).detach()
        except (TypeError, ValueError, RuntimeError):
            return f"expected a tensor, got {type(got).__name__}"
        if tuple(got_t.shape) != tuple(expected.shape):
            return f"expected shape {tuple(expected.shape)}, got shape {tuple(got_t.shape)}"
        e64, g64 = expected.detach().to(torch.float64), got_t.to(torch.float64)
        close = torch.isclose(g64, e64, rtol=rtol, atol=atol)
        if not bool(close.all()):
            if expected.numel() <= 8:
                return f"expected {_show(expected)}, got {_show(got_t)}"
            first = tuple(int(i) for i in (~close).nonzero()[0])
            return (
                f"the {tuple(expected.shape)} tensors differ at index {first}: "
                f"expected {e64[first].item():.6g}, got {g64[first].item():.6g}"
            )
        return None
    if isinstance(expected, str):
        if not isinstance(got, str) or got.strip().lower() != expected.strip().lower():
            return f"got {got!r}"
        return None
    if isinstance(expected, bool | int | float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) != isinstance(expected, bool) or not isinstance(got, int | float):
            try:
                got = float(got)  # numpy scalars and the like
            except (TypeError, ValueError):
                return f"expected a number, got {type(got).__name__}"
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            return f"expected {_show(expected)}, got {_show(got)}"
        return None
    return None if got == expected else f"expected {_show(expected)}, got {_show(got)}"


def _clone(args: tuple) -> tuple:
    """Fresh copies of tensor arguments, so a function that edits its input in place
    cannot change what the reference sees."""
    return tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args)


def _call(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args)


def _describe(args: tuple) -> str:
    return ", ".join(_show(a) for a in args)


def check(exercise_id: str, answer: Any, *, verbose: bool = True) -> bool:
    """Check a student's ``answer`` (a function or a value) to exercise ``exercise_id``.

    Prints "✅ Correct!" or "❌ Not yet: ..." with the expected value (function exercises)
    or a hint, and returns whether the answer is right. An unfinished answer (``...``,
    ``None``, or a function returning them) or a function that raises prints "Not yet"
    instead of raising, so a notebook runs top to bottom with the placeholders in place.
    """
    ex = get_exercise(exercise_id)
    ok, message = _judge(ex, answer)
    if verbose:
        print(f"[{ex.id}] {ex.title}")
        print(CORRECT if ok else f"{NOT_YET} {message}\n💡 Hint: {ex.hint}")
    return ok


def _judge(ex: Exercise, answer: Any) -> tuple[bool, str]:
    if is_placeholder(answer):
        return False, "replace the `...` placeholder with your answer, then run the cell again."
    if ex.cases is None:
        why = _mismatch(answer, ex.reference(), ex.rtol, ex.atol)
        return (True, "") if why is None else (False, f"your answer {_show(answer)} is not right.")
    if not callable(answer):
        return False, f"this exercise asks for a function, got an object of type {type(answer).__name__}."
    observe = ex.observe or _call
    for case in ex.cases():
        expected = observe(ex.reference, _clone(case))
        try:
            got = observe(answer, _clone(case))
        except NotImplementedError:
            return False, "your function is not written yet (it raised NotImplementedError)."
        except Exception as err:  # the student's code: report, don't crash the notebook
            return False, f"for input ({_describe(case)}) your function raised {type(err).__name__}: {err}"
        if is_placeholder(got):
            return False, "your function returned None: replace the `...` in its body with your code."
        why = _mismatch(got, expected, ex.rtol, ex.atol)
        if why:
            return False, f"for input ({_describe(case)}) {why}."
    return True, ""
