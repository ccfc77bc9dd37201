"""Self-check exercises for the notebooks: formative feedback for self-study, not grading.

``check`` runs inside the student's own kernel, so whatever it checks, the student can
change: it is feedback for someone who wants to learn, never a grade. A teacher grades
with the teacher's kit (``teacher/`` at the root of the repository, not in the pip
package): submitted notebooks are executed in a fresh kernel with hidden tests drawn from
a secret seed (see teacher/README.md). Neither this package nor the student notebooks hold
an answer key: no model answers and no expected values; a value exercise is compared with
a salted digest of its answer, and a function exercise with binedu's own function.

Three kinds of exercise, all registered under ids ``"NN.name"`` (``NN`` = notebook number)
in the notebook's own module of :mod:`binedu.course.exercises`, with :func:`register`, and
all checked with :func:`check`, which prints "✅ Correct!" or "❌ Not yet: ..." and returns
``True``/``False``. ``check`` never raises on a wrong or unfinished answer, so a notebook
with its ``...`` placeholders still runs top to bottom. Hints come only after a wrong
answer, one level more after each wrong attempt (``hint`` is a tuple of levels, from a
nudge to the method).

**Function exercises** (:class:`Exercise` with ``cases``): the student writes a function,
``check("02.quantize", my_quantize)`` runs it and ``reference`` on each case and compares.

**Value exercises** (:class:`Exercise` with ``digest``): the student computes a number or
a word, ``check("01.fits_in_24gb", x)`` compares :func:`answer_digest` of it (rounded to the
exercise's tolerance) with the stored digest; the answer is never printed, and no notebook
or page of the course may print it (a test scans them).

Writing it yourself (``forbidden``). A function exercise lists the dotted names of the
functions that would solve it for the student, e.g.
``Exercise(..., forbidden=("binedu.quantize.quantize",))``. The reference outputs are computed
first; then, while the student's function runs, each forbidden object is replaced, wherever
it is bound, by a stub that raises :class:`WriteItYourself`: in the module that defines it,
in every ``binedu.*`` module attribute bound to the same object, and in the student's
function's ``__globals__``, closure cells and default arguments. Before that, every object
reachable from the answer (its globals, closures and defaults, through lists, tuples, dicts
and sets) is scanned: a forbidden object or the reference found there, or a function whose
code was copied from one of them (same code object origin, or the same bytecode, names and
constants), fails with "write it yourself"; everything is put back afterwards.

**Predict-then-run exercises** (:class:`Prediction`): the student writes a prediction, then
changes ONE thing in an experiment, runs it with one of binedu's experiment functions (which
return a sealed :class:`Measured`: one made by hand is refused), and hands in both::

    prediction = "about chance"
    result = run_experiment(last_norm=False)      # prints nothing
    check("03.predict_no_norm", prediction, measured=result)

``check`` verifies the seal and that ``measured.settings`` holds every ``changed`` setting,
records the first prediction committed for the exercise, and grades against
``outcome(measured)``. A right guess prints what the run measured (``explain``); a wrong
one prints only that it is wrong, and what the run measured after the second wrong try.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import json
import math
import secrets
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
    "answer_digest",
    "first_predictions",
    "BITS_PER_BYTE",
]

BITS_PER_BYTE = 8
"""Bits in a byte, and inputs per lookup table (one table per byte of a packed row)."""

CORRECT = "✅ Correct!"
NOT_YET = "❌ Not yet:"
WRITE_IT_YOURSELF = "write it yourself"
DIGEST_SALT = "binedu-course-3"
"""Salt of :func:`answer_digest` (public: the digest hides an answer from a glance, not from a search)."""


class WriteItYourself(RuntimeError):
    """Raised by a forbidden function while a check runs the student's answer."""


def _digest_key(value: Any, rtol: float, atol: float) -> list[str]:
    """The keys a value rounds to at the exercise's tolerance: the nearest grid point and
    its two neighbours (so a value within the tolerance of the answer shares one)."""
    if isinstance(value, str):
        return [f"str:{value.strip().lower()}"]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    v = float(value)
    if not math.isfinite(v):
        return []
    if rtol == 0 and atol == 0:
        return [f"int:{int(v)}"] if v.is_integer() else []
    if rtol > 0 and v != 0:
        q = round(math.log(abs(v)) / math.log1p(rtol))
        sign = "+" if v > 0 else "-"
        return [f"log{sign}:{q + d}" for d in (0, -1, 1)]
    step = atol if atol > 0 else rtol
    q = round(v / step)
    return [f"abs:{q + d}" for d in (0, -1, 1)]


def answer_digest(exercise_id: str, value: Any, rtol: float = 0.0, atol: float = 0.0) -> str:
    """The salted digest of a value answer, rounded to the tolerance (what a value
    exercise stores instead of its answer; the teacher's kit computes it)."""
    keys = _digest_key(value, rtol, atol)
    if not keys:
        raise ValueError(f"exercise {exercise_id!r}: {value!r} is not a finite number or a word")
    return _hash(exercise_id, keys[0])


def _hash(exercise_id: str, key: str) -> str:
    return hashlib.sha256(f"{DIGEST_SALT}|{exercise_id}|{key}".encode()).hexdigest()[:20]


Hint = str | tuple[str, ...]


@dataclass(frozen=True)
class Exercise:
    """One self-check of a function or a value.

    - A *function* exercise has ``cases`` (argument tuples) and a ``reference`` (binedu's
      function): both are called on each case and their results compared. ``forbidden``
      names the functions switched off while the answer runs (see the module docstring).
    - A *value* exercise has a ``digest`` (:func:`answer_digest` of the answer at the
      exercise's ``rtol``/``atol``) and no reference: the package holds no answer.

    ``observe(fn, args)`` turns a function and a case into what is compared (default:
    ``fn(*args)``). Numbers and tensors are compared with ``rtol``/``atol``; strings ignore
    case and surrounding spaces. ``hint``: one string, or a tuple of levels shown one more
    after each wrong attempt (a nudge first, the method last; never the answer).
    """

    id: str
    title: str
    hint: Hint
    reference: Callable[..., Any] | None = None
    cases: Callable[[], Sequence[tuple]] | None = None
    observe: Callable[[Callable[..., Any], tuple], Any] | None = None
    rtol: float = 1e-6
    atol: float = 1e-6
    forbidden: tuple[str, ...] = ()
    digest: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.forbidden, str):
            raise TypeError(f"forbidden must be a tuple of dotted names, got the string {self.forbidden!r}")
        if self.forbidden and self.cases is None:
            raise ValueError(f"exercise {self.id!r}: only a function exercise can forbid functions")
        if self.cases is None and self.digest is None:
            raise ValueError(f"exercise {self.id!r}: a value exercise needs the digest of its answer (answer_digest)")
        if self.cases is not None and self.reference is None:
            raise ValueError(f"exercise {self.id!r}: a function exercise needs binedu's reference function")

    @property
    def kind(self) -> str:
        return "value" if self.cases is None else "function"

    @property
    def hints(self) -> tuple[str, ...]:
        return (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)

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


_SECRET = secrets.token_bytes(32)
"""This process's key for sealing measurements: a Measured made in another process, or by
hand, does not carry a valid seal."""


def _canonical(settings: Mapping[str, Any], values: Mapping[str, Any]) -> bytes:
    return json.dumps([sorted((k, repr(v)) for k, v in settings.items()),
                       sorted((k, repr(v)) for k, v in values.items())]).encode()


@dataclass(frozen=True)
class Measured:
    """What a student's run measured (``values``) and the settings it ran with (``settings``):
    what binedu's experiment functions return, sealed for this process (``check`` refuses
    one made by hand or changed afterwards). Its repr shows the settings only, so that
    displaying it does not print a measurement before the prediction is checked."""

    settings: Mapping[str, Any]
    values: Mapping[str, Any]
    seal: str = field(default="", repr=False, compare=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"Measured(settings: {shown}; values: hidden until check() grades your prediction)"

    @property
    def sealed(self) -> bool:
        """Whether binedu's experiment function made it in this process, unchanged."""
        want = hmac.new(_SECRET, _canonical(self.settings, self.values), "sha256").hexdigest()
        return hmac.compare_digest(want, self.seal)


def _seal(settings: Mapping[str, Any], values: Mapping[str, Any]) -> Measured:
    """A sealed :class:`Measured`: for binedu's experiment functions only."""
    settings, values = dict(settings), dict(values)
    return Measured(settings, values, hmac.new(_SECRET, _canonical(settings, values), "sha256").hexdigest())


@dataclass(frozen=True)
class Prediction:
    """A predict-then-run exercise: graded against what the student's own run measured.

    ``changed`` are the settings the run must have used (proof that the student changed
    the experiment); ``outcome(measured)`` is the truth on their run: one of ``options``
    (a choice among at least three) or, without options, a number that the prediction must
    match within ``tolerance`` (absolute) or ``rel_tolerance``. ``explain(measured)`` says
    what the run measured (printed after a right guess, or after the second wrong one).
    """

    id: str
    title: str
    hint: Hint
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
    def hints(self) -> tuple[str, ...]:
        return (self.hint,) if isinstance(self.hint, str) else tuple(self.hint)

    @property
    def notebook(self) -> str:
        return self.id.split(".", 1)[0]


AnyExercise = Exercise | Prediction
_REGISTRY: dict[str, AnyExercise] = {}
_WRONG: dict[str, int] = {}
"""Wrong attempts per exercise in this session (how many hint levels to show)."""
_FIRST: dict[str, Any] = {}
"""The first prediction committed for each predict-then-run exercise in this session."""


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


def first_predictions() -> dict[str, Any]:
    """The first prediction committed for each predict-then-run exercise in this session."""
    return dict(_FIRST)


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


def _library(obj: Any) -> bool:
    """Whether ``obj`` belongs to binedu, torch or numpy (not scanned into: it is the library)."""
    module = getattr(obj, "__module__", None) or ""
    return module.split(".", 1)[0] in ("binedu", "torch", "numpy", "builtins", "math")


def _names_of(code: types.CodeType) -> set[str]:
    """Global and attribute names a code object (and the code nested in it) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_of(const)
    return names


def _codes_of(obj: Any) -> Iterator[types.CodeType]:
    """The code objects of a forbidden object: a function's code and the code nested in it,
    a class's methods."""
    fns: list[Any] = []
    if isinstance(obj, types.FunctionType):
        fns = [obj]
    elif isinstance(obj, type):
        fns = [f for k in obj.__mro__ if k is not object for f in vars(k).values() if isinstance(f, types.FunctionType)]
    todo = [f.__code__ for f in fns]
    while todo:
        code = todo.pop()
        yield code
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def _code_key(code: types.CodeType) -> tuple:
    consts = tuple(repr(c) for c in code.co_consts if not isinstance(c, types.CodeType))
    return code.co_code, code.co_names, consts


def _reachable(answer: Any, limit: int = 20_000) -> Iterator[Any]:
    """Every object the answer's code can reach: the answer, its functions' globals (the
    names their code uses), closure cells and defaults, a class's methods, and the items of
    lists, tuples, sets and dicts found on the way. binedu's, torch's and numpy's own
    objects are yielded but not entered, nor are modules."""
    seen: set[int] = set()
    todo = [answer]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, types.ModuleType) or (not isinstance(obj, list | tuple | dict | set | frozenset) and _library(obj)):
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, functools.partial):
            todo.extend([obj.func, *obj.args, *obj.keywords.values()])
        elif isinstance(obj, types.MethodType):
            todo.extend([obj.__func__, obj.__self__])
        elif isinstance(obj, types.FunctionType):
            todo.extend(obj.__globals__[n] for n in _names_of(obj.__code__) if n in obj.__globals__)
            todo.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
            todo.extend(obj.__defaults__ or ())
            todo.extend((obj.__kwdefaults__ or {}).values())
        elif isinstance(obj, type):
            todo.extend(f for k in obj.__mro__ if k is not object and not _library(k) for f in vars(k).values())
        elif isinstance(obj, types.SimpleNamespace):
            todo.extend(vars(obj).values())
        elif callable(obj):
            todo.append(type(obj))


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


_INNER_CODE = frozenset({"<lambda>", "<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})


def _smuggled(ex: Exercise, answer: Any) -> str | None:
    """The forbidden name (or "the reference") an answer reaches: the object itself in a
    container, or a function whose code was copied from it; ``None`` if none."""
    named = {name: resolve(name) for name in ex.switched_off}
    objects = {id(o): n for n, o in named.items()}
    objects.setdefault(id(ex.reference), "the reference")
    origins: dict[tuple[str, int], str] = {}
    keys: dict[tuple, str] = {}
    for name, obj in [*named.items(), ("the reference", ex.reference)]:
        for code in _codes_of(obj):
            origins.setdefault((code.co_filename, code.co_firstlineno), name)
            # a lambda's or a comprehension's bytecode a student may write too: only whole functions count
            if len(code.co_code) > 24 and name != "the reference" and code.co_name not in _INNER_CODE:
                keys.setdefault(_code_key(code), name)
    for obj in _reachable(answer):
        if id(obj) in objects and obj is not answer:
            return objects[id(obj)]
        if isinstance(obj, types.FunctionType):  # a library function too: a copy takes its module's name
            code = obj.__code__
            for c in [code, *(c for c in code.co_consts if isinstance(c, types.CodeType))]:
                hit = origins.get((c.co_filename, c.co_firstlineno)) or keys.get(_code_key(c))
                if hit:
                    return hit
    return None


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


def _checker_intact() -> bool:
    """Whether this module's checking functions are still the ones it defined (a student
    who replaces one gets feedback from nothing: the check says so)."""
    here = sys.modules[__name__]
    return all(getattr(here, name, None) is fn for name, fn in _GUARDED.items())


def check(exercise_id: str, answer: Any, *, measured: Any = None, verbose: bool = True) -> bool:
    """Formative feedback on a student's ``answer`` (a function, a value or a prediction)
    to ``exercise_id``: not a grade (the teacher grades outside the student's kernel).

    Prints "✅ Correct!" or "❌ Not yet: ..." and returns whether the answer is right; after
    a wrong answer it prints one more hint level each time. An unfinished answer (``...``,
    ``None``, or a function returning them) or a function that raises prints "Not yet"
    instead of raising, so a notebook runs top to bottom with the placeholders in place.
    A prediction also needs ``measured``: what binedu's experiment function returned.
    """
    ex = get_exercise(exercise_id)
    if not _checker_intact():
        ok, message, attempt = False, "the checker was changed in this kernel: restart the kernel and run again.", False
    elif isinstance(ex, Prediction):
        ok, message, attempt = _judge_prediction(ex, answer, measured)
    else:
        if measured is not None:
            raise ValueError(f"exercise {ex.id!r} is not a prediction: it takes no measured=")
        ok, message = _judge(ex, answer)
        attempt = not ok and not is_placeholder(answer) and "placeholder" not in message
    if attempt and not ok:
        _WRONG[ex.id] = _WRONG.get(ex.id, 0) + 1
    if verbose:
        print(f"[{ex.id}] {ex.title}")
        print(CORRECT if ok else f"{NOT_YET} {message}")
        if isinstance(ex, Prediction) and ok and message:
            print(message)
        wrong = _WRONG.get(ex.id, 0)
        if not ok and attempt and wrong:
            hints = ex.hints
            for level in range(min(wrong, len(hints))):
                print(f"💡 Hint {level + 1}/{len(hints)}: {hints[level]}")
    return ok


_EXPECTED: dict[str, list[Any]] = {}


def _judge(ex: Exercise, answer: Any) -> tuple[bool, str]:
    if is_placeholder(answer):
        return False, "replace the `...` placeholder with your answer, then run the cell again."
    if ex.cases is None:
        assert ex.digest is not None
        try:
            candidates = _digest_key(answer, ex.rtol, ex.atol)
        except (TypeError, ValueError):
            candidates = []
        right = any(hmac.compare_digest(_hash(ex.id, key), ex.digest) for key in candidates)
        return (True, "") if right else (False, f"your answer {_show(answer)} is not right.")
    if not callable(answer):
        return False, f"this exercise asks for a function, got an object of type {type(answer).__name__}."
    assert ex.reference is not None
    smuggled = _smuggled(ex, answer)
    if smuggled:
        return False, f"{WRITE_IT_YOURSELF}: your answer reaches `{smuggled}`, which this exercise switches off."
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


def _judge_prediction(ex: Prediction, answer: Any, measured: Any) -> tuple[bool, str, bool]:
    """(right, message, whether it was a graded attempt)."""
    if is_placeholder(answer):
        return False, "write your prediction in place of the `...` BEFORE you run the experiment.", False
    if ex.options:
        choice = answer.strip().lower() if isinstance(answer, str) else None
        if choice not in [o.lower() for o in ex.options]:
            return False, f"your prediction {answer!r} is not one of the options {list(ex.options)}.", False
    elif isinstance(answer, bool) or not isinstance(answer, int | float):
        try:
            answer = float(answer)
        except (TypeError, ValueError):
            return False, f"this prediction is a number, got {answer!r}.", False
    if measured is None:
        return False, "run the experiment, then hand in what it measured: check(..., prediction, measured=result).", False
    if type(measured) is not Measured or not measured.sealed:
        return False, ("measured= must be what binedu's experiment function returned in this kernel "
                       f"(a Measured made by hand or changed does not count), got {type(measured).__name__}."), False
    settings, values = measured.settings, measured.values
    for key, want in ex.changed.items():
        if key not in settings:
            return False, f"your run does not record the setting {key!r}: hand in what the experiment returned.", False
        if settings[key] != want:
            return False, (
                f"your run still ran with {key}={settings[key]!r}; this experiment asks you to change it to "
                f"{key}={want!r}, then run it again."
            ), False
    for key in ex.keys:
        if key not in values:
            return False, f"your run did not measure {key!r}: hand in what the experiment returned.", False
    first = _FIRST.setdefault(ex.id, answer.strip().lower() if isinstance(answer, str) else answer)
    recorded = f"Your first prediction, recorded: {first!r}."
    truth = ex.outcome(measured)
    said = ex.explain(measured) if ex.explain else f"Your run measured: {_show(truth)}."
    if ex.options:
        ok = answer.strip().lower() == str(truth).strip().lower()
    else:
        ok = math.isclose(float(answer), float(truth), rel_tol=ex.rel_tolerance, abs_tol=ex.tolerance)
    if ok:
        return True, f"{said}\n{recorded}", True
    tries = _WRONG.get(ex.id, 0) + 1
    if tries >= 2:  # the second wrong guess: now show what the run measured
        return False, f"you predicted {answer!r}. {said}\n{recorded}", True
    return False, (f"your run does not agree with {answer!r}. Think again about why, change your prediction and "
                   f"run the cell once more (what the run measured is shown after a second try). {recorded}"), True


_GUARDED: dict[str, Any] = {name: obj for name, obj in dict(globals()).items()
            if name.startswith("_") and isinstance(obj, types.FunctionType) and obj.__module__ == __name__}
_GUARDED |= {"check": check, "Measured": Measured, "_SECRET": _SECRET}

COUNTING = (
    "binedu.model.count_parameters",
    "binedu.conv.BinaryConv2d",
    "binedu.linear.BinaryLinear",
    "torch.nn.Linear",
    "torch.nn.LazyLinear",
    "torch.nn.Bilinear",
    "torch.nn.Conv1d",
    "torch.nn.Conv2d",
    "torch.nn.Conv3d",
    "torch.nn.LazyConv2d",
)
"""Layers and counters that would count parameters for the student: switched off in the
counting exercises."""

NORMS = (
    "binedu.normalize.normalize",
    "torch.nn.functional.layer_norm",
    "torch.layer_norm",
    "torch.native_layer_norm",
    "torch.nn.functional.group_norm",
    "torch.group_norm",
    "torch.native_group_norm",
    "torch.nn.functional.instance_norm",
    "torch.instance_norm",
    "torch.nn.functional.batch_norm",
    "torch.batch_norm",
    "torch.nn.functional.normalize",
    "torch.nn.LayerNorm",
    "torch.nn.GroupNorm",
    "torch.nn.InstanceNorm1d",
    "torch.nn.BatchNorm1d",
    "torch.nn.RMSNorm",
)
"""Every function of binedu and torch that normalizes a tensor: switched off for a Normalize written by hand."""
