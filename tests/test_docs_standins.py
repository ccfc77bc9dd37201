"""The widgets' static stand-ins (binedu.course.standins), which the documentation site
shows instead of live widgets: switched by ``BINEDU_STATIC_WIDGETS``, one frame per key
state of the real widget, every frame different, and a slider over them."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binedu import ImageClassifier
from binedu.course import live_training, widgets
from binedu.course.standins import ENVIRONMENT_VARIABLE, Frame, StaticFrames, static_widgets


@pytest.fixture
def static(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "1")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("0", False), ("", False), (" 0 ", False)])
def test_static_widgets_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, value)
    assert static_widgets() is expected


def test_without_the_variable_the_builders_return_live_widgets(monkeypatch):
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    assert isinstance(widgets.memory_widget(), widgets.MemoryWidget)
    assert isinstance(widgets.binarization_widget(), widgets.BinarizationWidget)


def frames_differ(stand_in: StaticFrames) -> None:
    contents = [(frame.html, frame.images) for frame in stand_in.frames]
    assert len(stand_in.frames) >= 2
    assert len(set(contents)) == len(contents), "two frames show the same thing"
    assert len({frame.label for frame in stand_in.frames}) == len(stand_in.frames), "two frames share a label"


def test_memory_stand_in_starts_at_the_requested_state(static):
    stand_in = widgets.memory_widget("paper-small", "int8")
    assert isinstance(stand_in, StaticFrames)
    frames_differ(stand_in)
    assert stand_in.frames[stand_in.start].label == "paper-small at int8"
    assert "154,406,714" in stand_in.frames[stand_in.start].html  # Table 3's count, in the widget's summary
    assert all(frame.images and frame.images[0].startswith(b"\x89PNG") for frame in stand_in.frames)


def test_binarization_stand_in_shows_each_threshold_rule(static):
    stand_in = widgets.binarization_widget()
    frames_differ(stand_in)
    labels = " ".join(frame.label for frame in stand_in.frames)
    for rule in ("mean", "zero", "median"):
        assert f"{rule} threshold" in labels


def test_packed_bytes_stand_in_shows_the_model_layers(static):
    model = ImageClassifier.from_config("tiny")
    stand_in = widgets.packed_bytes_widget(model)
    frames_differ(stand_in)
    assert stand_in.frames[0].label.startswith("layers.0.weight")
    assert "hex of these bytes" in stand_in.frames[0].html


def test_live_training_stand_in_trains_between_frames(static):
    stand_in = live_training.live_training_widget(max_steps=60)
    frames_differ(stand_in)
    steps = [int(re.search(r"after (\d+) optimizer steps", frame.label).group(1)) for frame in stand_in.frames]
    assert steps[0] == 0 and steps[-1] == 60 and steps == sorted(steps)
    assert all(len(frame.images) == 2 for frame in stand_in.frames)  # the curves and the kernel bitmap


def test_the_html_has_a_slider_over_every_frame(static):
    stand_in = StaticFrames("T", "Control", [Frame("a", "<i>one</i>"), Frame("b", "<i>two</i>"), Frame("c")], start=1)
    page = stand_in._repr_html_()
    assert 'type="range" min="0" max="2"' in page and 'value="1"' in page
    assert page.count('class="binedu-standin-frame"') == 3
    assert page.count(" hidden>") == 2, "only the start frame is shown"
    assert '<div class="binedu-standin-frame" data-label="b">' in page


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6))
def test_labels_are_escaped(labels):
    page = StaticFrames("<t>", "c", [Frame(label) for label in labels])._repr_html_()
    assert "<t>" not in page
    for label in labels:
        assert f'data-label="{html.escape(label)}"' in page


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="at least one frame"):
        StaticFrames("t", "c", [])
    with pytest.raises(ValueError, match="start frame 3"):
        StaticFrames("t", "c", [Frame("a")], start=3)
