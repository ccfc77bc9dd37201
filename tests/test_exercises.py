"""The self-check exercises: references pass, wrong or unfinished answers fail with a
useful message and never raise."""

import functools
import inspect
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import binedu
from binedu.course.exercises import (
    Exercise,
    Measured,
    Prediction,
    check,
    core,
    exercises,
    get_exercise,
    register,
)
from binedu.course.exercises.core import _seal, resolve
from binedu.quantize import quantize
from binedu.units import bytes_at_bits
from teacher.answers import model_answer

ALL = [e for e in exercises() if e.kind != "prediction"]
FUNCTIONS = [e for e in ALL if e.kind == "function"]


def reference_answer(ex: Exercise):
    return model_answer(ex.id)


def test_notebooks_01_to_03_have_two_to_six_exercises():
    for nb in ("01", "02", "03"):
        assert 2 <= len(exercises(nb)) <= 6, nb
    assert exercises(2) == exercises("02")


@pytest.mark.parametrize("ex", ALL, ids=[e.id for e in ALL])
def test_reference_answer_is_correct(ex, capsys):
    assert check(ex.id, reference_answer(ex)) is True
    out = capsys.readouterr().out
    assert "✅ Correct!" in out and ex.id in out


@pytest.mark.parametrize("ex", ALL, ids=[e.id for e in ALL])
@pytest.mark.parametrize("placeholder", [..., None])
def test_placeholder_is_not_yet_and_does_not_raise(ex, placeholder, capsys):
    assert check(ex.id, placeholder) is False
    out = capsys.readouterr().out
    assert "❌ Not yet" in out and "placeholder" in out and "Hint" not in out  # hints come after an attempt


@pytest.mark.parametrize("ex", FUNCTIONS, ids=lambda e: e.id)
def test_unfinished_or_crashing_function_is_not_yet(ex, capsys):
    def unfinished(*args):
        ...

    def crashing(*args):
        raise RuntimeError("boom")

    def todo(*args):
        raise NotImplementedError

    assert check(ex.id, unfinished) is False
    assert "returned None" in capsys.readouterr().out
    assert check(ex.id, crashing) is False
    assert "raised RuntimeError: boom" in capsys.readouterr().out
    assert check(ex.id, todo) is False
    assert "not written yet" in capsys.readouterr().out
    assert check(ex.id, 42) is False
    assert "asks for a function" in capsys.readouterr().out


def test_wrong_memory_bytes_shows_expected_value(capsys):
    assert check("01.memory_bytes", lambda n, bits: n * bits / 8) is False
    out = capsys.readouterr().out
    assert "expected 154321, got 154320.875" in out
    assert "round up" in out


def test_quantize_with_ties_wrong_shows_expected_bits(capsys):
    assert check("02.quantize", lambda p: (p >= p.mean()).float()) is False
    out = capsys.readouterr().out
    assert "expected tensor of shape (3,) [0, 0, 1], got tensor of shape (3,) [0, 1, 1]" in out
    assert check("02.quantize", lambda p: (p > 0).float()) is False


def test_quantize_as_bool_tensor_is_accepted():
    assert check("02.quantize", lambda p: p > p.mean(), verbose=False) is True


def test_ste_without_gradient_fails_and_detach_form_passes(capsys):
    assert check("02.ste", lambda w: quantize(w)) is False
    assert "no gradient reaches the latent weights" in capsys.readouterr().out
    assert check("02.ste", lambda w: w * 0 + quantize(w)) is False  # right value, zero gradient
    assert "differ at index" in capsys.readouterr().out
    assert check("02.ste", lambda w: w + (quantize(w) - w).detach(), verbose=False) is True


def test_normalize_with_unbiased_std_fails_at_a_named_index(capsys):
    wrong = lambda z: (z - z.mean(-1, keepdim=True)) / z.std(-1, keepdim=True)  # noqa: E731
    assert check("03.normalize", wrong) is False
    assert "differ at index" in capsys.readouterr().out


def test_normalize_wrong_shape_is_reported(capsys):
    assert check("03.normalize", lambda z: z.mean(-1)) is False
    assert "expected shape" in capsys.readouterr().out


def test_value_exercise_hides_the_expected_answer(capsys):
    assert check("01.fits_in_24gb", 64) is False
    out = capsys.readouterr().out
    assert "64" in out and "192" not in out.split("Hint")[0]
    assert core._mismatch(" WITH ", "with", 0, 0) is None  # words ignore case and spaces
    assert core._mismatch("without", "with", 0, 0) is not None


def test_value_exercise_accepts_tolerance_and_tensor_scalars():
    expected = model_answer("01.training_gb")
    assert expected == pytest.approx(154_406_714 * 16 / 1e9, rel=1e-3)
    assert check("01.training_gb", expected * (1 + 5e-4), verbose=False)
    assert not check("01.training_gb", expected * 1.01, verbose=False)
    assert not check("01.training_gb", expected / 128, verbose=False)  # the 1-bit size is not it
    assert not check("01.training_gb", 5.33, verbose=False)  # paper-large's, printed in 08 in the second edition
    assert check("01.fits_in_24gb", torch.tensor(192.0), verbose=False)
    assert not check("01.fits_in_24gb", "192 billion", verbose=False)


def test_student_mutating_its_input_cannot_fool_the_check():
    def sneaky(p):
        p.zero_()
        return quantize(p)

    assert check("02.quantize", sneaky, verbose=False) is False


def test_registry_rejects_bad_and_duplicate_ids_and_unknown_lookups():
    ex = get_exercise("02.quantize")
    with pytest.raises(ValueError, match="already registered"):
        register(ex)
    with pytest.raises(ValueError, match="NN.name"):
        register(Exercise(id="quantize", title="t", reference=quantize, hint="h", cases=lambda: []))
    with pytest.raises(ValueError, match="unknown exercise 'nope'"):
        check("nope", 1)
    with pytest.raises(ValueError, match="needs the digest"):
        Exercise(id="99.v", title="t", hint="h")
    assert not hasattr(ex, "expected") and not hasattr(ex, "model_answer")


@given(n=st.integers(0, 10**12), bits=st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_bytes_at_bits_is_the_smallest_whole_number_of_bytes(n, bits):
    b = bytes_at_bits(n, bits)
    assert 8 * b >= n * bits > 8 * (b - 1)
    assert b == math.ceil(n * bits / 8) or n * bits > 2**52  # floats lose exactness past 2**53


def test_bytes_at_bits_rejects_bad_input():
    with pytest.raises(ValueError, match="num_params"):
        bytes_at_bits(-1, 8)
    with pytest.raises(ValueError, match="bits"):
        bytes_at_bits(10, 0)


# ---------------------------------------------------------------- writing it yourself


def _wrappers(obj):
    """Ways a student might hand in a forbidden function instead of writing it."""
    namespace = {"fn": obj}
    exec("def in_notebook(*args, **kwargs):\n    return fn(*args, **kwargs)\n", namespace)
    return {
        "itself": obj,
        "lambda": lambda *args, **kwargs: obj(*args, **kwargs),
        "notebook global": namespace["in_notebook"],
        "default argument": lambda *args, _f=obj: _f(*args),
        "partial": functools.partial(obj),
    }


FORBIDDEN = [(e, name) for e in FUNCTIONS for name in e.switched_off]


@pytest.mark.parametrize("ex, name", FORBIDDEN, ids=[f"{e.id}:{n}" for e, n in FORBIDDEN])
def test_forbidden_function_and_its_wrappers_cannot_pass(ex, name, capsys):
    obj = resolve(name)
    before = {m: dict(vars(sys.modules[m])) for m in sys.modules if m == "binedu" or m.startswith("binedu.")}
    for how, answer in _wrappers(obj).items():
        assert check(ex.id, answer) is False, how
        out = capsys.readouterr().out
        assert "write it yourself" in out and name in out, (how, out)
    assert resolve(name) is obj  # everything is put back
    for m, attrs in before.items():
        assert all(vars(sys.modules[m]).get(k) is v for k, v in attrs.items()), m
    assert check(ex.id, model_answer(ex.id), verbose=False) is True


def _public_functions():
    """binedu's public functions, and those of the modules that hold the maths."""
    found = {f"binedu.{n}": getattr(binedu, n) for n in binedu.__all__}
    for module in (binedu.units, binedu.bits, binedu.model, binedu.metrics, sys.modules["binedu.normalize"],
                   sys.modules["binedu.quantize"]):
        found |= {f"{module.__name__}.{n}": f for n, f in vars(module).items()
                  if not n.startswith("_") and inspect.isfunction(f) and f.__module__ == module.__name__}
    return {n: f for n, f in found.items() if inspect.isfunction(f)}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("ex", FUNCTIONS, ids=lambda e: e.id)
def test_no_public_binedu_function_passes_a_function_exercise(ex, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a wrong call might write lands in the tree
    passing = [name for name, fn in _public_functions().items() if check(ex.id, fn, verbose=False)]
    assert passing == []


def test_a_reference_that_a_notebook_can_import_is_switched_off():
    from binedu.course.exercises.image_model import normalized_loss_floor

    assert "binedu.course.exercises.image_model.normalized_loss_floor" in get_exercise("04.loss_floor").switched_off
    assert check("04.loss_floor", normalized_loss_floor, verbose=False) is False
    assert get_exercise("02.preactivation").switched_off == ()  # a lambda cannot be imported


def test_every_function_exercise_that_binedu_solves_forbids_it():
    # the exercises whose reference IS a binedu function must switch it off
    for ex in FUNCTIONS:
        if inspect.isfunction(ex.reference) and ex.reference.__module__.startswith("binedu.") and not (
            ex.reference.__module__.startswith("binedu.course")
        ):
            assert ex.forbidden, ex.id


def test_a_student_who_writes_it_passes_even_while_binedu_is_switched_off():
    ns = {}
    exec("import torch\nfrom binedu import quantize\n"
         "def my_ste(w):\n    return w + ((w > w.mean()).float() - w).detach()\n", ns)
    assert check("02.ste", ns["my_ste"], verbose=False) is True
    assert ns["quantize"] is quantize


def test_forbidden_needs_a_tuple_of_importable_names():
    with pytest.raises(TypeError, match="tuple of dotted names"):
        Exercise(id="99.x", title="t", reference=quantize, hint="h", cases=lambda: [], forbidden="binedu.quantize")
    with pytest.raises(ValueError, match="does not name"):
        resolve("binedu.no_such_thing")


# ---------------------------------------------------------------- predict, then run

_PRED = Prediction(
    id="99.predict_test",
    title="a test prediction",
    hint="h",
    options=("lower", "about the same", "higher"),
    changed={"rule": "zero"},
    keys=("after", "before"),
    outcome=lambda m: "higher" if m.values["after"] > 1.1 * m.values["before"] else (
        "lower" if m.values["after"] < 0.9 * m.values["before"] else "about the same"),
    explain=lambda m: f"before {m.values['before']}, after {m.values['after']}",
)
_NUM = Prediction(id="99.predict_number", title="a number", hint="h", changed={"rule": "zero"},
                  outcome=lambda m: m.values["after"], tolerance=0.05)


@pytest.fixture(autouse=False)
def test_predictions():
    """Two predictions registered for a test only (other test modules iterate the registry)."""
    for p in (_PRED, _NUM):
        core._REGISTRY[p.id] = p
    yield
    for p in (_PRED, _NUM):
        core._REGISTRY.pop(p.id)


@pytest.mark.usefixtures("test_predictions")
def test_prediction_is_graded_against_the_students_own_run(capsys):
    run = _seal(settings={"rule": "zero"}, values={"before": 1.0, "after": 2.0})
    assert check("99.predict_test", " Higher ", measured=run) is True
    assert "before 1.0, after 2.0" in capsys.readouterr().out  # what the run measured is shown
    assert check("99.predict_test", "lower", measured=run) is False
    out = capsys.readouterr().out  # a first wrong guess: no measurement yet, the first prediction recorded
    assert "does not agree with 'lower'" in out and "before 1.0" not in out and "recorded: 'higher'" in out
    assert check("99.predict_test", "lower", measured=run) is False
    out = capsys.readouterr().out  # the second wrong guess: now the run's numbers
    assert "you predicted 'lower'" in out and "before 1.0, after 2.0" in out
    other = _seal(settings={"rule": "zero"}, values={"before": 1.0, "after": 0.5})
    assert check("99.predict_test", "lower", measured=other, verbose=False) is True


@pytest.mark.usefixtures("test_predictions")
def test_prediction_needs_a_changed_run_and_an_allowed_answer(capsys):
    unchanged = _seal(settings={"rule": "mean"}, values={"before": 1.0, "after": 2.0})
    assert check("99.predict_test", "higher", measured=unchanged) is False
    assert "still ran with rule='mean'" in capsys.readouterr().out
    assert check("99.predict_test", "higher", measured=None) is False
    assert "run the experiment" in capsys.readouterr().out
    assert check("99.predict_test", "maybe", measured=unchanged) is False
    assert "not one of the options" in capsys.readouterr().out
    assert check("99.predict_test", ..., measured=unchanged) is False
    assert "BEFORE you run" in capsys.readouterr().out
    assert check("99.predict_test", "higher", measured={"rule": "zero"}) is False
    assert "must be what binedu's experiment function returned" in capsys.readouterr().out
    forged = Measured(settings={"rule": "zero"}, values={"before": 1.0, "after": 2.0})
    assert check("99.predict_test", "higher", measured=forged) is False  # made by hand: no seal
    assert "made by hand" in capsys.readouterr().out
    real = _seal({"rule": "zero"}, {"before": 1.0, "after": 2.0})
    edited = Measured(real.settings, {"before": 1.0, "after": 0.5}, real.seal)
    assert check("99.predict_test", "lower", measured=edited, verbose=False) is False
    missing = _seal(settings={"rule": "zero"}, values={"after": 2.0})
    assert check("99.predict_test", "higher", measured=missing) is False
    assert "did not measure 'before'" in capsys.readouterr().out


@pytest.mark.usefixtures("test_predictions")
def test_number_prediction_uses_its_tolerance():
    run = _seal(settings={"rule": "zero"}, values={"after": 0.52})
    assert check("99.predict_number", 0.5, measured=run, verbose=False) is True
    assert check("99.predict_number", 0.4, measured=run, verbose=False) is False
    assert check("99.predict_number", "half", measured=run, verbose=False) is False


def test_prediction_rejects_two_way_guesses_and_missing_settings():
    with pytest.raises(ValueError, match="at least 3 options"):
        Prediction(id="99.a", title="t", hint="h", options=("with", "without"), changed={"a": 1}, outcome=str)
    with pytest.raises(ValueError, match="tolerance"):
        Prediction(id="99.a", title="t", hint="h", changed={"a": 1}, outcome=str)
    with pytest.raises(ValueError, match="changed"):
        Prediction(id="99.a", title="t", hint="h", options=("a", "b", "c"), changed={}, outcome=str)
    with pytest.raises(ValueError, match="not a prediction"):
        check("02.quantize", quantize, measured=_seal({}, {}))


REAL_PREDICTIONS = [e for e in exercises() if e.kind == "prediction"]


@pytest.mark.parametrize("ex", REAL_PREDICTIONS, ids=lambda e: e.id)
def test_real_prediction_refuses_an_unchanged_run(ex, capsys):
    unchanged = _seal(settings={k: ("not", v) for k, v in ex.changed.items()}, values={})
    guess = ex.options[0] if ex.options else 0.0
    assert check(ex.id, guess, measured=unchanged) is False
    assert "still ran with" in capsys.readouterr().out
    assert check(ex.id, ..., measured=unchanged, verbose=False) is False


# ---------------------------------------------------------------- no answer on the page before its exercise

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _spellings(value) -> set[str]:
    """The usual ways a notebook would print a value exercise's answer (ints with and
    without thousands separators, floats rounded to 1-4 decimals); short forms that any
    text holds by chance (fewer than 3 significant digits) are left out."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return set()
    forms = set()
    if float(value).is_integer():
        n = int(value)
        forms |= {str(n), f"{n:,}", f"{n:_}", f"{n:,}".replace(",", " ")}
    for decimals in range(1, 5):
        forms.add(f"{value:.{decimals}f}")
    for digits in range(3, 6):
        forms.add(f"{value:.{digits}g}")
    return {f for f in forms if sum(c.isdigit() for c in f.lstrip("0.")) >= 3 and not f.endswith(".0")}


def _cells_before_exercise(ex):
    path = next(NOTEBOOKS.glob(f"{ex.notebook}_*.ipynb"))
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells]
    at = next((i for i, s in enumerate(sources) if f'check("{ex.id}"' in s), None)
    assert at is not None, f"{path.name} does not check {ex.id}"
    return path.name, sources[:at]


VALUES = [e for e in ALL if e.kind == "value"]


PAGES = [*sorted(NOTEBOOKS.glob("*.ipynb")), NOTEBOOKS.parent / "README.md"]


@pytest.mark.parametrize("ex", VALUES, ids=lambda e: e.id)
def test_no_value_answer_appears_on_any_page_of_the_course(ex):
    """Not in its own notebook, not in another (01.training_gb's 5.33 was printed in 08), not
    in the README: the notebooks' sources, their code and text (outputs are not committed)."""
    spellings = _spellings(model_answer(ex.id))
    assert spellings, ex.id
    for page in PAGES:
        text = page.read_text()
        if page.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        found = [f for f in spellings if re.search(rf"(?<![\d.,_]){re.escape(f)}(?![\d])", text)]
        assert found == [], f"{page.name} shows the answer of {ex.id}: {found}"


def test_spellings_cover_the_usual_forms():
    assert {"1403653", "1,403,653", "1_403_653"} <= _spellings(1_403_653)
    assert "41.6" in _spellings(41.60648) and "5.33" in _spellings(5.3257)
    assert "0.5" not in _spellings(0.5) and _spellings("with") == set()


# ---------------------------------------------------------------- notebooks 01-04: predictions and the capstone


@pytest.mark.parametrize("nb", ["02", "03", "04"])
def test_notebooks_02_to_04_have_a_predict_then_run_exercise(nb):
    assert any(e.kind == "prediction" and len(e.options) >= 3 for e in exercises(nb))


@pytest.mark.parametrize("ex", [e for e in exercises() if e.notebook in ("01", "02", "03", "04")], ids=lambda e: e.id)
def test_every_exercise_of_01_to_04_is_checked_in_its_notebook(ex):
    path = next(NOTEBOOKS.glob(f"{ex.notebook}_*.ipynb"))
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    assert any(f'check("{ex.id}"' in s for s in sources)


def test_zero_threshold_prediction_is_graded_on_the_shifted_bits(capsys):
    from binedu.course.widgets import threshold_bits

    torch.manual_seed(0)
    w = torch.randn(8, 32) * 0.3
    teacher_bits = quantize(w)
    for rule, truth in (("zero", "about half"), ("mean", "almost all")):
        bits, _ = threshold_bits(w + 1.0, rule)
        run = _seal({"rule": rule, "shift": 1.0},
                       {"agree": (bits == teacher_bits).float().mean().item(), "ones": bits.mean().item()})
        assert get_exercise("02.predict_zero_threshold").outcome(run) == truth
    assert check("02.predict_zero_threshold", "about half", measured=run) is False  # rule "mean": not changed
    assert "still ran with rule='mean'" in capsys.readouterr().out


def test_pm1_scale_prediction_on_a_real_deep_stack():
    from torch import nn

    from binedu import BinaryLinear

    def final_std(weights):
        torch.manual_seed(0)
        stack = nn.Sequential(*[BinaryLinear(64, 64, "relu", normalize=False, weights=weights) for _ in range(16)])
        with torch.no_grad():
            return stack(torch.randn(256, 64)).std().item()

    run = _seal({"weights": "pm1", "normalize": False}, {"std": final_std("pm1"), "std_01": final_std("01")})
    assert check("03.predict_pm1_scale", "large, but far below 0/1", measured=run, verbose=False) is True
    assert check("03.predict_pm1_scale", "about 1", measured=run, verbose=False) is False


@pytest.mark.parametrize(("acc", "truth"), [(0.90, "chw trains worse"), (0.97, "about the same"), (0.999, "chw trains better")])
def test_norm_mode_prediction_bands(acc, truth):
    run = _seal({"norm_mode": "chw"}, {"val_acc": acc, "channels_val_acc": 0.975})
    assert check("04.predict_norm_mode", truth, measured=run, verbose=False) is True


CAPSTONE_LAYER = '''
import torch
import torch.nn.functional as F
from torch import nn
from binedu import normalize, quantize  # imported, as a notebook does: switched off during the check

def my_quantize(p):
    return (p > p.mean()).float()

def my_ste(w):
    return w + (my_quantize(w) - w).detach()

def my_normalize(z):
    return (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5)

class MyBinaryLinear(nn.Module):
    def __init__(self, in_features, out_features, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.activation = activation

    def forward(self, x):
        a = my_normalize(F.linear(x, my_ste(self.weight), BIAS(self.bias)))
        return torch.relu(a) if self.activation == "relu" else a
'''


@pytest.mark.parametrize(("bias", "ok", "message"), [
    ("my_ste", True, ""),
    ("lambda b: b", False, "differ at index"),  # forgot to binarize the bias
    ("quantize", False, "write it yourself"),  # binedu's quantize, imported in the notebook
])
def test_capstone_layer_from_own_parts_matches_binary_linear(bias, ok, message, capsys):
    namespace = {}
    exec(CAPSTONE_LAYER.replace("BIAS(", f"({bias})("), namespace)
    assert check("03.capstone", namespace["MyBinaryLinear"]) is ok
    assert message in capsys.readouterr().out


def test_capstone_refuses_binary_linear_and_its_subclasses(capsys):
    class Mine(binedu.BinaryLinear):
        pass

    for answer in (binedu.BinaryLinear, Mine, lambda i, o, a=None: binedu.BinaryLinear(i, o, a)):
        assert check("03.capstone", answer) is False
        assert "write it yourself" in capsys.readouterr().out


def test_the_package_has_no_answer_key():
    import binedu.course.exercises as package

    assert not hasattr(package, "solution") and not hasattr(core, "solution")
    for ex in ALL:
        assert not hasattr(ex, "solution") and not hasattr(ex, "expected")
        if ex.kind == "value":
            assert ex.reference is None and ex.digest


def test_hints_come_after_a_wrong_attempt_one_level_more_each_time(capsys):
    ex = get_exercise("01.memory_bytes")
    core._WRONG.pop(ex.id, None)
    check(ex.id, ...)
    assert "Hint" not in capsys.readouterr().out
    wrong = lambda n, b: n * b / 8  # noqa: E731 - a fraction of a byte
    for level in range(1, len(ex.hints) + 2):
        check(ex.id, wrong)
        out = capsys.readouterr().out
        shown = min(level, len(ex.hints))
        assert f"Hint {shown}/{len(ex.hints)}" in out and f"Hint {shown + 1}/" not in out
    core._WRONG.pop(ex.id, None)


def test_a_patched_checker_says_so():
    original = core._mismatch
    core._mismatch = lambda *args: None
    try:
        assert check("02.quantize", lambda p: p, verbose=False) is False
    finally:
        core._mismatch = original
    assert check("02.quantize", model_answer("02.quantize"), verbose=False) is True


@pytest.mark.parametrize("how", ["list", "dict", "code object", "closure of a copy"])
def test_binedus_function_hidden_or_copied_does_not_pass(how, capsys):
    import types

    fns, table = [quantize], {"q": quantize}
    copy = types.FunctionType(quantize.__code__, quantize.__globals__)
    answers = {
        "list": lambda p: fns[0](p),
        "dict": lambda p: table["q"](p),
        "code object": copy,
        "closure of a copy": (lambda f: lambda p: f(p))(copy),
    }
    assert check("02.quantize", answers[how]) is False
    assert "write it yourself" in capsys.readouterr().out


@pytest.mark.parametrize(("ex_id", "answer"), [
    ("03.normalize", lambda z: torch.native_layer_norm(z, z.shape[-1:], None, None, 1e-5)[0]),
    ("03.normalize", lambda z: torch.nn.functional.group_norm(z.reshape(-1, 1, z.shape[-1]), 1, eps=1e-5).reshape(z.shape)),
    ("08.bnfcl_parameters", lambda n, u: sum(p.numel() for p in torch.nn.Linear(n, u, device="meta").parameters())),
    ("04.bncvl_parameters", lambda i, o, f: sum(p.numel() for p in torch.nn.Conv1d(i, o * f, f, device="meta").parameters())
     - o * f + o),
])
def test_torch_builtins_that_would_do_the_work_are_switched_off(ex_id, answer, capsys):
    assert check(ex_id, answer) is False
    assert "write it yourself" in capsys.readouterr().out


PREDICTION_NOTEBOOKS = sorted({e.notebook for e in REAL_PREDICTIONS})


@pytest.mark.parametrize("nb", PREDICTION_NOTEBOOKS)
def test_no_measurement_is_printed_before_the_prediction_is_checked(nb):
    """The prediction cell measures with binedu's sealed experiment function and shows nothing
    before check() grades the guess; the first cell of the experiment is that cell."""
    path = next(NOTEBOOKS.glob(f"{nb}_*.ipynb"))
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    for ex in (e for e in REAL_PREDICTIONS if e.notebook == nb):
        at = next(i for i, s in enumerate(sources) if f'check("{ex.id}"' in s)
        cell = sources[at]
        assert "Measured(" not in cell and not re.search(r"\b(print|display)\(\s*result\b", cell), cell
        assert cell.index("prediction = ") < cell.index("result = ") < cell.index("check("), cell
        assert not any(re.search(r"^result = ", s, re.M) for s in sources[:at]), f"{path.name} measures earlier"


def test_a_measurement_shows_its_settings_but_not_its_values():
    run = _seal({"rule": "zero"}, {"agree": 0.5037})
    assert "rule='zero'" in repr(run) and "0.5037" not in repr(run) and "0.504" not in repr(run)
    assert run.sealed and not Measured(run.settings, run.values).sealed
