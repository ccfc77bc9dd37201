"""Self-check exercises for the notebooks.

A student completes a small function or value in a notebook and calls
``check("02.quantize", my_quantize)``: the answer is run against binedu's reference on
several inputs, and ``check`` prints "✅ Correct!" or "❌ Not yet: ..." with the expected
value or a hint, and returns ``True``/``False``. It never raises on a wrong or unfinished
answer, so a notebook with the ``...`` placeholders still runs top to bottom.

Each notebook registers its exercises under ids ``"NN.name"`` (``NN`` = notebook
number); later notebooks add theirs with :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .normalize import EPS, normalize
from .quantize import quantize, quantize_ste
from .units import bytes_at_bits

__all__ = ["Exercise", "register", "check", "exercises", "get_exercise"]

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


def _is_placeholder(x: Any) -> bool:
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
    if _is_placeholder(got):
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
    if _is_placeholder(answer):
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
        if _is_placeholder(got):
            return False, "your function returned None: replace the `...` in its body with your code."
        why = _mismatch(got, expected, ex.rtol, ex.atol)
        if why:
            return False, f"for input ({_describe(case)}) {why}."
    return True, ""


# ---------------------------------------------------------------- notebook 01: why 1 bit


def _paper_large_params() -> int:
    from .language_model import LanguageModel

    return LanguageModel.on_meta("paper-large").num_parameters()


register(
    Exercise(
        id="01.memory_bytes",
        title="Bytes for a model at a given precision",
        reference=bytes_at_bits,
        cases=lambda: [(1000, 32), (1000, 16), (1000, 8), (1000, 1), (1_403_653, 1), (7_000_000_000, 16), (13, 1)],
        hint="one parameter takes `bits` bits and a byte holds 8 bits; memory comes in whole bytes, so round up "
        "(math.ceil, or -(-a // b) with integers).",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="01.training_gb",
        title="Memory to *train* the paper's large language model with Adam in float32, in GB (10**9 bytes)",
        reference=lambda: _paper_large_params() * 16 / 1e9,
        hint="per parameter: the float32 latent value (4 bytes), its gradient (4) and Adam's two moments (8); "
        "count the parameters with binedu (LanguageModel.from_config('paper-large') built under "
        "torch.device('meta'), then .num_parameters(), or binedu.widgets.paper_model_parameters).",
        rtol=1e-3,
        atol=0,
    )
)

register(
    Exercise(
        id="01.fits_in_16gb",
        title="Billions of parameters that fit in 16 GB (16 * 10**9 bytes) at 1 bit",
        reference=lambda: 16e9 * 8 / 1e9,
        hint="at 1 bit a byte holds 8 parameters; at float16 (2 bytes) the same 16 GB hold only 8 billion.",
        rtol=1e-3,
        atol=0,
    )
)


# ---------------------------------------------------------------- notebook 02: binarization


def _tensors_02() -> list[tuple]:
    g = torch.Generator().manual_seed(2)
    return [
        (torch.tensor([1.0, 2.0, 3.0]),),  # 2.0 ties with the mean: Eq. 1 gives 0
        (torch.full((4,), 0.5),),  # constant: all entries tie, all zeros
        (torch.randn(5, 7, generator=g),),
        (torch.randn(3, 4, generator=g) * 0.01 + 3.0,),  # shifted: zero threshold would give all ones
        (torch.tensor([[-1.0, 0.0], [0.0, 5.0]]),),
    ]


def _ste_observe(fn: Callable[..., Any], args: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Forward value and gradient of ``sum(fn(w) * upstream)`` with respect to ``w``."""
    w, upstream = args
    w = w.clone().requires_grad_(True)
    out = fn(w)
    if _is_placeholder(out):
        return None  # check() reports the unfinished function
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"expected a tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError("no gradient reaches the latent weights: the output does not depend on w through autograd")
    (out * upstream).sum().backward()
    grad = w.grad if w.grad is not None else torch.zeros_like(w)
    return out.detach(), grad


def _ste_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(4, 3, generator=g) * 0.1, torch.randn(4, 3, generator=g)) for _ in range(3)]


def _preactivation_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(4)
    return [
        (torch.randn(2, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, generator=g)),
        (torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g) + 1.0, torch.zeros(6)),
    ]


register(
    Exercise(
        id="02.quantize",
        title="Eq. 1: the 0/1 quantizer",
        reference=quantize,
        cases=_tensors_02,
        hint="compare every entry with the mean of the whole tensor (not with 0), with a strict '>': a value "
        "equal to the mean gives 0; return 0.0/1.0 floats of the same shape as p.",
        rtol=0,
        atol=0,
    )
)

register(
    Exercise(
        id="02.ste",
        title="Alg. 1 lines 2-3: the straight-through estimator, written with detach()",
        reference=quantize_ste,
        cases=_ste_cases,
        observe=_ste_observe,
        hint="the forward value must be quantize(w), yet the gradient must reach w as if the output were w "
        "itself: add to w a correction that has the value quantize(w) - w but no gradient (detach it).",
        atol=1e-6,
    )
)

register(
    Exercise(
        id="02.preactivation",
        title="A binary layer's pre-activation z = W_b x + b_b (Alg. 2, before Normalize)",
        reference=lambda x, w, b: F.linear(x, quantize(w), quantize(b)),
        cases=_preactivation_cases,
        hint="quantize the kernel and the bias separately (each against its own mean), then x @ W_b.T + b_b "
        "(or torch.nn.functional.linear).",
        atol=1e-5,
    )
)


# ---------------------------------------------------------------- notebook 03: why normalization


def _normalize_cases() -> list[tuple]:
    g = torch.Generator().manual_seed(5)
    return [
        (torch.randn(3, 6, generator=g) * 40 + 100,),  # a 0/1 layer's large, shifted outputs
        (torch.randn(2, 4, 5, generator=g),),  # (batch, seq, features): each token on its own
        (torch.ones(2, 3),),  # constant: eps keeps it finite (zeros)
    ]


register(
    Exercise(
        id="03.normalize",
        title="Normalize(z): zero mean, unit standard deviation over the last axis, no parameters",
        reference=lambda z: normalize(z, -1),
        cases=_normalize_cases,
        hint=f"(z - mean) / sqrt(var + eps) over dim=-1 with keepdim=True; var is the population variance "
        f"(unbiased=False) and eps = {EPS}.",
        atol=1e-4,
        rtol=1e-4,
    )
)

register(
    Exercise(
        id="03.sum_std",
        title="Std of a 0/1 weighted sum of n standard-normal inputs (each weight a fair coin)",
        reference=lambda n: math.sqrt(n / 2),
        cases=lambda: [(1,), (2,), (64,), (1024,)],
        hint="each term w_i x_i has mean 0 and variance E[w_i^2] E[x_i^2]: what is E[w^2] for a fair 0/1 coin? "
        "Variances of independent terms add up, and the std is the square root of the variance.",
        rtol=1e-6,
    )
)

register(
    Exercise(
        id="03.which_trains",
        title="Which binary model learned the digits: 'with' or 'without' Normalize?",
        reference=lambda: "with",
        hint="look at the validation accuracy of the two runs and compare it with chance (1 in 10 for digits).",
    )
)
from . import exercises_deploy  # noqa: E402,F401  (registers the 06/07/08 exercises)
from . import exercises_models as _exercises_models  # noqa: E402,F401  (registers the 04/05 exercises)
