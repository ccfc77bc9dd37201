"""The self-check exercises: references pass, wrong or unfinished answers fail with a
useful message and never raise."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from binedu.course.exercises import Exercise, check, exercises, get_exercise, register
from binedu.quantize import quantize
from binedu.units import bytes_at_bits

ALL = exercises()


def reference_answer(ex: Exercise):
    return ex.reference if ex.kind == "function" else ex.expected()


def test_notebooks_01_to_03_have_two_to_four_exercises():
    for nb in ("01", "02", "03"):
        assert 2 <= len(exercises(nb)) <= 4, nb
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
    assert "❌ Not yet" in out and "placeholder" in out and ex.hint in out


@pytest.mark.parametrize("ex", [e for e in ALL if e.kind == "function"], ids=lambda e: e.id)
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
    assert "expected 175457, got 175456.625" in out
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
    assert check("01.fits_in_16gb", 64) is False
    out = capsys.readouterr().out
    assert "64" in out and "128" not in out.split("Hint")[0]
    assert check("03.which_trains", " WITH ", verbose=False) is True
    assert check("03.which_trains", "without", verbose=False) is False


def test_value_exercise_accepts_tolerance_and_tensor_scalars():
    expected = get_exercise("01.training_gb").expected()
    assert expected == pytest.approx(332_855_098 * 16 / 1e9)
    assert check("01.training_gb", expected * (1 + 5e-4), verbose=False)
    assert not check("01.training_gb", expected * 1.01, verbose=False)
    assert not check("01.training_gb", 332_855_098 / 8 / 1e9, verbose=False)  # the 1-bit size is not it
    assert check("01.fits_in_16gb", torch.tensor(128.0), verbose=False)
    assert not check("01.fits_in_16gb", "128 billion", verbose=False)


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
        register(Exercise(id="quantize", title="t", reference=quantize, hint="h"))
    with pytest.raises(ValueError, match="unknown exercise 'nope'"):
        check("nope", 1)
    with pytest.raises(ValueError, match="asks for a function"):
        ex.expected()


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
