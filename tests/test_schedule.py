"""The warmup-then-cosine learning-rate schedule of Table 1 (binedu.schedule)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binedu.schedule import learning_rate, schedule_values


def test_paper_schedule_warms_up_linearly_to_max_over_20_steps():
    rates = schedule_values(20, 1e-4, warmup_steps=20, decay_steps=1100)
    assert rates == pytest.approx([1e-4 * (s + 1) / 20 for s in range(20)])
    assert rates[-1] == pytest.approx(1e-4)


def test_paper_schedule_decays_along_half_a_cosine_over_1100_steps():
    assert learning_rate(20, 1e-4, 20, 1100) == pytest.approx(1e-4)
    assert learning_rate(20 + 550, 1e-4, 20, 1100) == pytest.approx(0.5e-4)
    assert learning_rate(20 + 275, 1e-4, 20, 1100) == pytest.approx(1e-4 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert learning_rate(20 + 1100, 1e-4, 20, 1100) == pytest.approx(0.0, abs=1e-20)


def test_rate_stays_at_the_floor_after_the_decay():
    floor = [learning_rate(s, 1e-3, 5, 100, min_ratio=0.1) for s in (105, 200, 10_000)]
    assert floor == pytest.approx([1e-4] * 3)


def test_zero_decay_steps_means_constant_after_warmup():
    assert schedule_values(6, 1e-5, warmup_steps=0, decay_steps=0) == [1e-5] * 6
    assert schedule_values(4, 2.0, warmup_steps=2, decay_steps=0) == [1.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "kwargs",
    [dict(step=-1), dict(max_lr=0.0), dict(warmup_steps=-1), dict(decay_steps=-3), dict(min_ratio=1.5)],
)
def test_bad_arguments_raise_value_error(kwargs):
    args = dict(step=0, max_lr=1e-3, warmup_steps=2, decay_steps=10, min_ratio=0.0) | kwargs
    with pytest.raises(ValueError):
        learning_rate(**args)


@given(
    warmup=st.integers(0, 50),
    decay=st.integers(0, 500),
    ratio=st.one_of(st.just(0.0), st.floats(1e-6, 1.0)),
    max_lr=st.floats(1e-6, 1.0),
)
def test_rate_rises_then_falls_and_stays_within_bounds(warmup, decay, ratio, max_lr):
    rates = schedule_values(warmup + decay + 10, max_lr, warmup, decay, ratio)
    up, down = rates[:warmup], rates[warmup:]
    assert all(a <= b for a, b in zip(up, up[1:], strict=False))
    assert all(a >= b * (1 - 1e-12) for a, b in zip(down, down[1:], strict=False))
    assert all(0 < r <= max_lr * (1 + 1e-12) or (r == 0 and ratio == 0) for r in rates)
    assert down[0] == pytest.approx(max_lr)
    assert min(down) >= ratio * max_lr * (1 - 1e-9)


def test_without_a_floor_the_papers_decay_ends_inside_the_first_food101_epoch():
    steps_per_epoch = math.ceil(75_750 / 64)  # Food-101 train images at the paper's batch 64
    assert steps_per_epoch == 1184 and 20 + 1100 < steps_per_epoch
    assert learning_rate(20 + 1100, 1e-4, 20, 1100, min_ratio=0.0) == 0.0
    assert learning_rate(steps_per_epoch - 1, 1e-4, 20, 1100, min_ratio=0.1) == pytest.approx(1e-5)
