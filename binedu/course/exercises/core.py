"""Self-check exercises for the notebooks.

Three kinds of exercise, all registered under ids ``"NN.name"`` (``NN`` = notebook number)
in the notebook's own module of :mod:`binedu.course.exercises`, with :func:`register`, and
all checked with :func:`check`, which prints "✅ Correct!" or "❌ Not yet: ..." plus a hint
and returns ``True``/``False``. ``check`` never raises on a wrong or unfinished answer, so a
notebook with its ``...`` placeholders still runs top to bottom.

**Function exercises** (:class:`Exercise` with ``cases``): the student writes a function,
``check("02.quantize", my_quantize)`` runs it and ``reference`` on each case and compares.

**Value exercises** (:class:`Exercise` without ``cases``): the student computes a number or
a word, ``check("01.fits_in_24gb", 192)`` compares it with ``reference()``; the expected
value is never printed, and no notebook may print it before its exercise (a test scans them).
:func:`solution` shows a model answer on demand (``solution("02.quantize")``).

Writing it yourself (``forbidden``). A function exercise lists the dotted names of the
functions that would solve it for the student, e.g.
``Exercise(..., forbidden=("binedu.quantize.quantize",))``. The reference outputs are computed
first; then, while the student's function runs, each forbidden object is replaced, wherever
it is bound, by a stub that raises :class:`WriteItYourself`: in the module that defines it
(``binedu.quantize``), in every ``binedu.*`` module attribute bound to the same object (so
``binedu.quantize``, ``from binedu import quantize`` inside binedu, ``binedu.bits.pack_bits``
alike), and in the student's function's ``__globals__``, closure cells and default arguments
(a notebook does ``from binedu import quantize``). Handing in the object itself, a wrapper, a
``functools.partial``, a module whose ``forward`` calls it, a class whose methods call it or
a subclass of a forbidden class all fail with "write it yourself"; everything is put back
afterwards (``try``/``finally``). The reference itself is switched off too when it can be
imported by name (:attr:`Exercise.switched_off`). Each exercise also has a
``solution``: a model answer written from scratch, used by the tests (default: ``reference``,
for exercises whose reference is not forbidden).

**Predict-then-run exercises** (:class:`Prediction`): the student writes a prediction, then
changes ONE thing in an experiment, runs it, and hands in the prediction together with what
their run measured, as a :class:`Measured` (the settings the run used and the values it
measured)::

    register(Prediction(
        id="03.predict_no_norm",
        title="Accuracy without Normalize on the last layer",
        options=("about chance", "a little lower", "about the same"),   # >= 3 choices
        changed={"last_norm": False},            # the run must really have been changed
        outcome=lambda m: "about chance" if m.values["val_acc"] < 0.2 else ...,
        hint="...",
    ))

    # in the notebook: the experiment helper returns Measured(settings=..., values=...)
    prediction = "about chance"
    result = run_experiment(last_norm=False)
    check("03.predict_no_norm", prediction, measured=result)

``check`` first verifies that ``measured.settings`` holds every ``changed`` setting (else
"❌ your run still ran with ...: change it and run again"), then grades the prediction
against ``outcome(measured)``: one of ``options`` (a choice; case and surrounding spaces are
ignored), or a number within ``tolerance`` (absolute) or ``rel_tolerance`` of it (a
prediction of a number). A direction ("higher"/"lower"/"about the same") is a choice whose
``outcome`` compares two measured values. Either way it prints what the run measured
(``explain(measured)``), right or wrong, so the student compares guess and result.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "Exercise",
    "Prediction",
    "Measured",
    "WriteItYourself",
    "register",
    "check",
    "exercises",
    "get_exercise",
    "solution",
    "BITS_PER_BYTE",
]

BITS_PER_BYTE = 8
"""Bits in a byte, and inputs per lookup table (one table per byte of a packed row)."""

CORRECT = "✅ Correct!"
NOT_YET = "❌ Not yet:"
WRITE_IT_YOURSELF = "write it yourself"


class WriteItYourself(RuntimeError):
    """Raised by a forbidden function while a check runs the student's answer."""


@dataclass(frozen=True)
class Exercise:
    """One self-check of a function or a value.

    - A *function* exercise has ``cases`` (argument tuples): the answer and ``reference``
      are both called on each case and their results compared. ``forbidden`` names the
      functions switched off while the answer runs (see the module docstring), and
      ``solution`` is a model answer written from scratch (default: ``reference``).
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
    forbidden: tuple[str, ...] = ()
    solution: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.forbidden, str):
            raise TypeError(f"forbidden must be a tuple of dotted names, got the string {self.forbidden!r}")
        if self.forbidden and self.cases is None:
            raise ValueError(f"exercise {self.id!r}: only a function exercise can forbid functions")

    @property
    def kind(self) -> str:
        return "value" if self.cases is None else "function"

    @property
    def switched_off(self) -> tuple[str, ...]:
        """``forbidden`` plus the reference itself when it is importable by name (e.g.
        ``binedu.course.exercises.image_model.normalized_loss_floor``, which a notebook may
        import for another section): what a check switches off."""
        names = self.forbidden
        module, qualname = getattr(self.reference, "__module__", None), getattr(self.reference, "__qualname__", "")
        if self.cases is not None and module and "<" not in qualname:
            name = f"{module}.{qualname}"
            try:
                if resolve(name) is self.reference and name not in names:
                    names = (*names, name)
            except ValueError:
                pass
        return names

    @property
    def notebook(self) -> str:
        return self.id.split(".", 1)[0]

    def expected(self) -> Any:
        """The reference answer of a value exercise (tests use it)."""
        if self.cases is not None:
            raise ValueError(f"exercise {self.id!r} asks for a function; call .reference on its cases")
        return self.reference()

    def model_answer(self) -> Any:
        """What a student who got it right hands in: ``solution`` (or ``reference``) for a
        function exercise, the expected value for a value exercise."""
        if self.cases is None:
            return self.expected()
        if self.solution is not None:
            return self.solution
        ref = self.reference
        if isinstance(ref, types.FunctionType):  # a copy: the reference object itself is switched off
            copy = types.FunctionType(ref.__code__, ref.__globals__, ref.__name__, ref.__defaults__, ref.__closure__)
            copy.__kwdefaults__ = ref.__kwdefaults__
            return copy
        return ref


@dataclass(frozen=True)
class Measured:
    """What a student's run measured (``values``) and the settings it ran with (``settings``):
    what an experiment helper returns, and what ``check(..., measured=...)`` takes."""

    settings: Mapping[str, Any]
    values: Mapping[str, Any]

    def __repr__(self) -> str:
        def show(d: Mapping[str, Any]) -> str:
            return ", ".join(f"{k}={_show(v) if not isinstance(v, str) else repr(v)}" for k, v in d.items())

        return f"Measured(settings: {show(self.settings)}; values: {show(self.values)})"


@dataclass(frozen=True)
class Prediction:
    """A predict-then-run exercise: graded against what the student's own run measured.

    ``changed`` are the settings the run must have used (proof that the student changed
    the experiment); ``outcome(measured)`` is the truth on their run: one of ``options``
    (a choice among at least three) or, without options, a number that the prediction must
    match within ``tolerance`` (absolute) or ``rel_tolerance``. ``explain(measured)`` says
    what the run measured (printed after grading, right or wrong).
    """

    id: str
    title: str
    hint: str
    changed: Mapping[str, Any]
    outcome: Callable[[Measured], Any]
    options: tuple[str, ...] = ()
    tolerance: float = 0.0
    rel_tolerance: float = 0.0
    explain: Callable[[Measured], str] | None = None
    keys: tuple[str, ...] = field(default=())
    """Values the measured run must hold (checked before ``outcome`` runs)."""

    def __post_init__(self) -> None:
        if self.options and len(self.options) < 3:
            raise ValueError(f"prediction {self.id!r}: a choice needs at least 3 options, got {self.options}")
        if not self.options and self.tolerance <= 0 and self.rel_tolerance <= 0:
            raise ValueError(f"prediction {self.id!r}: a number needs a tolerance or a rel_tolerance > 0")
        if not self.changed:
            raise ValueError(f"prediction {self.id!r}: say which setting the run must change (changed=...)")

    @property
    def kind(self) -> str:
        return "prediction"

    @property
    def notebook(self) -> str:
        return self.id.split(".", 1)[0]


AnyExercise = Exercise | Prediction
_REGISTRY: dict[str, AnyExercise] = {}


def register(exercise: AnyExercise) -> AnyExercise:
    """Add an exercise to the registry; ids are unique and look like ``"NN.name"``."""
    notebook, _, name = exercise.id.partition(".")
    if not (notebook.isdigit() and name):
        raise ValueError(f"exercise id must look like 'NN.name' (notebook number, dot, name), got {exercise.id!r}")
    if exercise.id in _REGISTRY:
        raise ValueError(f"exercise {exercise.id!r} is already registered")
    _REGISTRY[exercise.id] = exercise
    return exercise


def get_exercise(exercise_id: str) -> AnyExercise:
    """The registered exercise, or a ValueError listing the known ids."""
    if exercise_id not in _REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known exercises: {sorted(_REGISTRY)}")
    return _REGISTRY[exercise_id]


def exercises(notebook: str | int | None = None) -> list[AnyExercise]:
    """All registered exercises, or those of one notebook (``"02"`` or ``2``)."""
    key = None if notebook is None else f"{int(notebook):02d}"
    return [e for e in _REGISTRY.values() if key is None or e.notebook == key]


def solution(exercise_id: str) -> str:
    """Print (and return) a model answer, one call away and never on the page unless asked
    for: the source of a function exercise's ``solution`` (or its reference), the value of
    a value exercise, and for a prediction the reminder that only the student's run
    decides."""
    ex = get_exercise(exercise_id)
    if isinstance(ex, Prediction):
        text = f"[{ex.id}] There is no answer to copy: change {dict(ex.changed)} in the experiment, run it, and compare."
    elif ex.cases is None:
        text = f"[{ex.id}] {_show(ex.expected())}\n💡 How: {ex.hint}"
    else:
        try:
            import inspect
            import textwrap

            source = textwrap.dedent(inspect.getsource(ex.model_answer())).strip()
            source = source.removeprefix("reference=").removesuffix(",")  # a lambda inside register(...)
        except (OSError, TypeError):
            source = f"(no source to show) 💡 {ex.hint}"
        text = f"[{ex.id}] A model answer:\n{source}"
    print(text)
    return text


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



# ---------------------------------------------------------------- forbidden functions


def resolve(name: str) -> Any:
    """The object a dotted name like ``"binedu.quantize.quantize"`` or ``"binedu.pack_bits"``
    refers to: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise ValueError(f"forbidden name {name!r} does not name an importable object")


def _stub(name: str, tripped: list[str]) -> Callable[..., Any]:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        tripped.append(name)
        raise WriteItYourself(
            f"{WRITE_IT_YOURSELF}: `{name}` is switched off while this exercise checks your answer"
        )

    forbidden.__name__ = forbidden.__qualname__ = name.rsplit(".", 1)[-1]
    return forbidden


def _functions_of(answer: Any) -> Iterator[types.FunctionType]:
    """The Python functions an answer runs first: itself, a partial's function, a bound
    method's function, or a callable object's ``forward``/``__call__``."""
    seen: set[int] = set()
    todo = [answer]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            yield obj
        elif isinstance(obj, functools.partial):
            todo.append(obj.func)
        elif isinstance(obj, types.MethodType):
            todo.append(obj.__func__)
        elif isinstance(obj, type):  # a class the student wrote: its methods run
            todo.extend(f for k in obj.__mro__ if k is not object and not k.__module__.startswith("torch")
                        for f in vars(k).values() if isinstance(f, types.FunctionType))
        elif callable(obj) and not isinstance(obj, types.BuiltinFunctionType):
            for attr in ("forward", "__call__"):
                fn = getattr(type(obj), attr, None)
                if isinstance(fn, types.FunctionType):
                    todo.append(fn)


@contextmanager
def _switched_off(names: Sequence[str], answer: Any, tripped: list[str]) -> Iterator[Any]:
    """Replace every binding of the forbidden objects by a stub (see the module docstring)
    and yield the answer to call (a stub if the answer IS a forbidden object, or a partial
    of one); restore everything on exit."""
    resolved = {name: resolve(name) for name in names}
    targets = {id(obj): (obj, _stub(name, tripped)) for name, obj in resolved.items()}
    if not targets:
        yield answer
        return
    undo: list[Callable[[], None]] = []

    def swap_in(namespace: dict[str, Any]) -> None:
        for key, value in list(namespace.items()):
            if id(value) in targets and value is targets[id(value)][0]:
                namespace[key] = targets[id(value)][1]
                undo.append(functools.partial(namespace.__setitem__, key, value))

    try:
        modules = {id(m): m for n, m in list(sys.modules.items()) if n == "binedu" or n.startswith("binedu.")}
        for name, obj in resolved.items():
            owner = sys.modules.get(getattr(obj, "__module__", "") or "")
            if owner is not None:
                modules[id(owner)] = owner
            parent = sys.modules.get(name.rsplit(".", 1)[0])
            if parent is not None:
                modules[id(parent)] = parent
        for module in modules.values():
            if module is not None:
                swap_in(vars(module))
        for fn in _functions_of(answer):
            swap_in(fn.__globals__)
            for cell in fn.__closure__ or ():
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if id(value) in targets and value is targets[id(value)][0]:
                    cell.cell_contents = targets[id(value)][1]
                    undo.append(functools.partial(setattr, cell, "cell_contents", value))
            if fn.__defaults__ and any(id(d) in targets for d in fn.__defaults__):
                old = fn.__defaults__
                fn.__defaults__ = tuple(targets[id(d)][1] if id(d) in targets else d for d in old)
                undo.append(functools.partial(setattr, fn, "__defaults__", old))
            if fn.__kwdefaults__:
                swap_in(fn.__kwdefaults__)
        direct = answer.func if isinstance(answer, functools.partial) else answer
        if id(direct) in targets:
            yield targets[id(direct)][1]
        elif isinstance(direct, type) and (
            parents := [n for n, o in resolved.items() if isinstance(o, type) and issubclass(direct, o)]
        ):
            yield _stub(parents[0], tripped)  # a subclass of a forbidden class inherits the answer
        else:
            yield answer
    finally:
        for restore in reversed(undo):
            restore()


def check(exercise_id: str, answer: Any, *, measured: Any = None, verbose: bool = True) -> bool:
    """Check a student's ``answer`` (a function, a value or a prediction) to ``exercise_id``.

    Prints "✅ Correct!" or "❌ Not yet: ..." with the expected value (function exercises)
    or a hint, and returns whether the answer is right. An unfinished answer (``...``,
    ``None``, or a function returning them) or a function that raises prints "Not yet"
    instead of raising, so a notebook runs top to bottom with the placeholders in place.
    A prediction also needs ``measured``: what the student's changed run measured.
    """
    ex = get_exercise(exercise_id)
    if isinstance(ex, Prediction):
        ok, message = _judge_prediction(ex, answer, measured)
    else:
        if measured is not None:
            raise ValueError(f"exercise {ex.id!r} is not a prediction: it takes no measured=")
        ok, message = _judge(ex, answer)
    if verbose:
        print(f"[{ex.id}] {ex.title}")
        print(CORRECT if ok else f"{NOT_YET} {message}\n💡 Hint: {ex.hint}")
        if isinstance(ex, Prediction) and ok and message:
            print(message)
    return ok


_EXPECTED: dict[str, list[Any]] = {}


def _judge(ex: Exercise, answer: Any) -> tuple[bool, str]:
    if is_placeholder(answer):
        return False, "replace the `...` placeholder with your answer, then run the cell again."
    if ex.cases is None:
        why = _mismatch(answer, ex.reference(), ex.rtol, ex.atol)
        return (True, "") if why is None else (False, f"your answer {_show(answer)} is not right.")
    if not callable(answer):
        return False, f"this exercise asks for a function, got an object of type {type(answer).__name__}."
    observe = ex.observe or _call
    cases = list(ex.cases())
    if ex.id not in _EXPECTED:  # the references are deterministic: run them once per session
        _EXPECTED[ex.id] = [observe(ex.reference, _clone(case)) for case in cases]  # before anything is switched off
    expected = _EXPECTED[ex.id]
    tripped: list[str] = []
    with _switched_off(ex.switched_off, answer, tripped) as run:
        for case, want in zip(cases, expected, strict=True):
            try:
                got = observe(run, _clone(case))
            except WriteItYourself as err:
                return False, f"{err}."
            except NotImplementedError:
                return False, "your function is not written yet (it raised NotImplementedError)."
            except Exception as err:  # the student's code: report, don't crash the notebook
                if tripped:
                    break
                return False, f"for input ({_describe(case)}) your function raised {type(err).__name__}: {err}"
            if tripped:
                break
            if is_placeholder(got):
                return False, "your function returned None: replace the `...` in its body with your code."
            why = _mismatch(got, want, ex.rtol, ex.atol)
            if why:
                return False, f"for input ({_describe(case)}) {why}."
    if tripped:
        return False, f"{WRITE_IT_YOURSELF}: `{tripped[0]}` is switched off while this exercise checks your answer."
    return True, ""


def _judge_prediction(ex: Prediction, answer: Any, measured: Any) -> tuple[bool, str]:
    if is_placeholder(answer):
        return False, "write your prediction in place of the `...` BEFORE you run the experiment."
    if ex.options:
        choice = answer.strip().lower() if isinstance(answer, str) else None
        if choice not in [o.lower() for o in ex.options]:
            return False, f"your prediction {answer!r} is not one of the options {list(ex.options)}."
    elif isinstance(answer, bool) or not isinstance(answer, int | float):
        try:
            answer = float(answer)
        except (TypeError, ValueError):
            return False, f"this prediction is a number, got {answer!r}."
    if measured is None:
        return False, "run the experiment, then hand in what it measured: check(..., prediction, measured=result)."
    settings, values = getattr(measured, "settings", None), getattr(measured, "values", None)
    if not isinstance(settings, Mapping) or not isinstance(values, Mapping):
        return False, f"measured= must be what the experiment returned (a Measured), got {type(measured).__name__}."
    for key, want in ex.changed.items():
        if key not in settings:
            return False, f"your run does not record the setting {key!r}: hand in what the experiment returned."
        if settings[key] != want:
            return False, (
                f"your run still ran with {key}={settings[key]!r}; this experiment asks you to change it to "
                f"{key}={want!r}, then run it again."
            )
    for key in ex.keys:
        if key not in values:
            return False, f"your run did not measure {key!r}: hand in what the experiment returned."
    truth = ex.outcome(measured)
    said = ex.explain(measured) if ex.explain else f"Your run measured: {_show(truth)}."
    if ex.options:
        ok = answer.strip().lower() == str(truth).strip().lower()
        return ok, said if ok else f"you predicted {answer!r}. {said}"
    close = math.isclose(float(answer), float(truth), rel_tol=ex.rel_tolerance, abs_tol=ex.tolerance)
    return close, said if close else f"you predicted {_show(float(answer))}. {said}"
