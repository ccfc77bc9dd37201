"""The live-training widget of notebook 02, driven without a browser: the buttons start,
pause and reset an asyncio task that trains in chunks and yields between them."""

from __future__ import annotations

import asyncio

import pytest
import torch

from binedu.course.live_training import LiveTrainingWidget, kernel_bitmap, kernel_bits


@pytest.fixture
def widget() -> LiveTrainingWidget:
    return LiveTrainingWidget(steps_per_update=3, max_steps=12, seed=0)


async def _until(condition, limit: int = 100_000) -> None:
    """Yield to the event loop until ``condition()`` holds (what a browser waiting does)."""
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def test_train_pause_reset_through_the_buttons(widget: LiveTrainingWidget) -> None:
    start_bits = kernel_bits(widget.model[0])
    start_picture = (bytes(widget.curves.value), bytes(widget.bitmap.value))
    assert widget.step == 0 and widget.losses == [] and not widget.running
    assert all(png.startswith(b"\x89PNG") for png in start_picture)

    async def session() -> None:
        widget.train_button.click()
        assert widget.running and "training" in widget.status.value
        await _until(lambda: widget.step >= 6)  # a few chunks, while the loop keeps turning
        widget.pause_button.click()
        assert not widget.running
        paused_at = widget.step
        await asyncio.sleep(0.05)
        assert widget.step == paused_at, "training went on after Pause"
        assert paused_at % widget.steps_per_update == 0, "Pause cut a chunk in half"

    asyncio.run(session())
    assert len(widget.losses) == widget.step and all(loss > 0 for loss in widget.losses)
    assert set(widget.flip_rates) == {"layer 1", "layer 2"}
    assert all(len(rates) == widget.step for rates in widget.flip_rates.values())
    assert not torch.equal(kernel_bits(widget.model[0]), start_bits), "no kernel bit flipped"
    assert widget.bits_changed() > 0 and f"changed since initialisation: {widget.bits_changed()} " in widget.status.value
    curves, bitmap = bytes(widget.curves.value), bytes(widget.bitmap.value)
    assert curves != start_picture[0] and bitmap != start_picture[1] and "paused" in widget.status.value

    widget.reset_button.click()
    assert widget.step == 0 and widget.losses == [] and widget.bits_changed() == 0
    assert torch.equal(kernel_bits(widget.model[0]), start_bits), "Reset does not restore the initial model"
    assert (bytes(widget.curves.value), bytes(widget.bitmap.value)) == start_picture


def test_the_loop_stays_responsive_while_training(widget: LiveTrainingWidget) -> None:
    """Another coroutine (the kernel handling a click) runs between every two chunks."""
    ticks_at_step: list[int] = []

    async def session() -> None:
        widget.start()
        while widget.running:
            ticks_at_step.append(widget.step)
            await asyncio.sleep(0)

    asyncio.run(session())
    assert widget.step == widget.max_steps and "finished" in widget.status.value
    chunks_seen = sorted(set(ticks_at_step))
    assert chunks_seen == list(range(0, widget.max_steps + 1, widget.steps_per_update)), chunks_seen
    widget.start()  # at max_steps, Train says to reset instead of training
    assert not widget.running and "Reset" in widget.status.value


def test_run_chunk_learns_the_digits() -> None:
    widget = LiveTrainingWidget(steps_per_update=100, max_steps=100, seed=1)
    before = widget.val_accuracy
    widget.run_chunk()
    assert widget.step == 100
    assert widget.val_accuracy > max(0.5, before), (before, widget.val_accuracy)
    assert sum(widget.losses[-10:]) < sum(widget.losses[:10])


def test_kernel_bitmap_colours_the_flipped_bits() -> None:
    bits = torch.zeros(8, 64, dtype=torch.bool)
    bits[0, 0] = True  # unit 0, pixel (0, 0)
    previous = bits.clone()
    previous[1, 9] = True  # unit 1, pixel (1, 1): flips 1 -> 0
    image = kernel_bitmap(bits, previous)
    assert image.shape == (8, 8 * 9 - 1, 3)
    white, dark = image[0, 0], image[0, 1]
    assert white.tolist() == [1.0, 1.0, 1.0] and dark.mean() < 0.3
    blue = image[1, 9 + 1]  # tile 1 starts at column 9
    assert blue[2] > blue[0], "a 1 -> 0 flip is blue"
    assert (image[:, 8] != white).any(axis=-1).all(), "a grey line separates the tiles"
    with pytest.raises(ValueError, match="shape"):
        kernel_bitmap(torch.zeros(8, 63, dtype=torch.bool))


@pytest.mark.parametrize("kwargs", [{"steps_per_update": 0}, {"max_steps": 0}, {"lr": 0.0}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="positive"):
        LiveTrainingWidget(**kwargs)


def test_what_notebook_02_says_about_the_flip_rate() -> None:
    """Notebook 02, section 7, tells the student what the widget shows: with its constant
    learning rate the flip rate does not settle; it levels off at about 1 % of layer 1's
    kernel bits and about 2 % of layer 2's per step, higher than in the first steps."""
    widget = LiveTrainingWidget(steps_per_update=400, max_steps=400, seed=0)
    widget.run_chunk()
    for name, low, high in (("layer 1", 0.005, 0.02), ("layer 2", 0.01, 0.04)):
        rates = widget.flip_rates[name]
        first, late = sum(rates[:50]) / 50, sum(rates[200:]) / 200
        assert late >= first, f"{name}: the flip rate fell ({first:.2%} -> {late:.2%}); notebook 02 says it does not"
        assert low <= late <= high, f"{name}: {late:.2%} of the bits flip per step late in the run"
    assert sum(widget.flip_rates["layer 2"][200:]) > sum(widget.flip_rates["layer 1"][200:])
