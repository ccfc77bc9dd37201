"""Static stand-ins for the course's widgets, for pages that have no kernel (the documentation site).

A live widget needs a running kernel: on a static page its controls would do nothing.
With the environment variable ``BINEDU_STATIC_WIDGETS=1`` (the site's build sets it) each
widget builder of :mod:`binedu.course.widgets` and :mod:`binedu.course.live_training`
returns a :class:`StaticFrames` instead: the real widget is built and driven through its
key states, each state's display (its PNG plot and its HTML tables) becomes one frame,
and a slider shows one frame at a time. Plain HTML and a few lines of JavaScript: no
kernel, no widget library, nothing loaded from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .live_training import LiveTrainingWidget
    from .widgets import BinarizationWidget, MemoryWidget, PackedBytesWidget

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "static_widgets",
    "Frame",
    "StaticFrames",
    "memory_frames",
    "binarization_frames",
    "packed_bytes_frames",
    "live_training_frames",
]

ENVIRONMENT_VARIABLE = "BINEDU_STATIC_WIDGETS"
LIVE_TRAINING_STEPS = (0, 25, 50, 100, 200, 400, 800, 1500)  # the frames of the live-training stand-in
PACKED_LAYERS_SHOWN = 12


def static_widgets() -> bool:
    """Whether widget builders return static stand-ins (``BINEDU_STATIC_WIDGETS`` set, not ``0``)."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip() not in ("", "0")


@dataclass(frozen=True)
class Frame:
    """One pre-rendered state of a widget: a label for the slider, HTML, and PNG images."""

    label: str
    html: str = ""
    images: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:  # a widget's Image holds a memoryview: keep a copy of the bytes
        object.__setattr__(self, "images", tuple(bytes(image) for image in self.images))


class StaticFrames:
    """Pre-rendered frames of a widget with a slider that picks the frame shown.

    Displayed in a notebook through ``_repr_html_``; ``frames`` and ``start`` (the frame
    shown first) are there to be inspected.
    """

    def __init__(self, title: str, control: str, frames: Iterable[Frame], start: int = 0) -> None:
        self.title, self.control, self.frames = title, control, list(frames)
        if not self.frames:
            raise ValueError("a static stand-in needs at least one frame")
        if not 0 <= start < len(self.frames):
            raise ValueError(f"start frame {start} is not one of the {len(self.frames)} frames")
        self.start = start

    def __repr__(self) -> str:
        return f"<{self.title}: {len(self.frames)} pre-rendered frames ({self.control})>"

    def _repr_html_(self) -> str:
        digest = hashlib.sha1()
        for frame in self.frames:
            digest.update(frame.label.encode() + frame.html.encode() + b"".join(frame.images))
        uid = f"binedu-standin-{digest.hexdigest()[:12]}"
        frames = "".join(
            f'<div class="binedu-standin-frame" data-label="{html.escape(frame.label)}"'
            f"{'' if i == self.start else ' hidden'}>{frame.html}"
            + "".join(
                f'<img alt="{html.escape(self.title)}: {html.escape(frame.label)}" '
                f'src="data:image/png;base64,{base64.b64encode(image).decode()}">'
                for image in frame.images
            )
            + "</div>"
            for i, frame in enumerate(self.frames)
        )
        return (
            f'<div class="binedu-standin" id="{uid}">'
            f'<p class="binedu-standin-title"><b>{html.escape(self.title)}</b>: pre-rendered frames; '
            "open the notebook in JupyterLab to use the live widget.</p>"
            f'<label>{html.escape(self.control)}: <input type="range" min="0" max="{len(self.frames) - 1}" '
            f'step="1" value="{self.start}" class="binedu-standin-slider"> '
            f'<span class="binedu-standin-label">{html.escape(self.frames[self.start].label)}</span></label>'
            f"{frames}"
            "<script>(function () {"
            f'var root = document.getElementById("{uid}");'
            'var slider = root.querySelector(".binedu-standin-slider");'
            'var label = root.querySelector(".binedu-standin-label");'
            'var frames = root.querySelectorAll(".binedu-standin-frame");'
            'slider.addEventListener("input", function () {'
            "var shown = Number(slider.value);"
            "frames.forEach(function (frame, i) { frame.hidden = i !== shown; });"
            "label.textContent = frames[shown].dataset.label;"
            "});"
            "})();</script></div>"
        )


def _drive(widget: Any, states: Iterable[tuple[str, Mapping[str, object]]], capture: Callable[[], Frame]) -> list[Frame]:
    """Set each state's controls (attribute name -> value) on ``widget``; capture a frame after each."""
    frames = []
    for label, values in states:
        for control, value in values.items():
            getattr(widget, control).value = value
        frame = capture()
        frames.append(Frame(label, frame.html, frame.images))
    return frames


def memory_frames(widget: MemoryWidget) -> StaticFrames:
    """Every paper model at every precision; the frame shown first is the widget's own state."""
    from ..units import PRECISION_BITS
    from .widgets import PAPER_MODELS

    first = (widget.model.value, widget.precision.value)
    pairs = [(model, precision) for model in PAPER_MODELS for precision in PRECISION_BITS]
    states = [(f"{model} at {precision}", {"model": model, "precision": precision}) for model, precision in pairs]
    frames = _drive(widget, states, lambda: Frame("", widget.summary.value, (widget.plot.value,)))
    start = pairs.index(first) if first in pairs else 0
    return StaticFrames("Memory of a model at each precision", "Model and precision", frames, start)


def binarization_frames(widget: BinarizationWidget) -> StaticFrames:
    """Eq. 1 as the latent weights shift, then a skewed draw under each threshold rule."""
    states: list[tuple[str, dict[str, object]]] = [
        (f"normal weights shifted by {shift:+.1f}, mean threshold (Eq. 1)",
         {"distribution": "normal", "threshold": "mean", "shift": shift})
        for shift in (0.0, 0.5, 1.0, -0.5, -1.0)
    ]  # fmt: skip
    states += [
        (f"skewed weights, {rule} threshold", {"distribution": "skewed", "shift": 0.0, "threshold": rule})
        for rule in ("mean", "zero", "median")
    ]

    def capture() -> Frame:
        tables = f'<div class="binedu-standin-row">{widget.bits_html.value}{widget.output_html.value}</div>'
        return Frame("", tables, (widget.plot.value,))

    return StaticFrames("Eq. 1 interactively", "Latent weights and threshold", _drive(widget, states, capture))


def packed_bytes_frames(widget: PackedBytesWidget) -> StaticFrames:
    """The first bytes of row 0 of each binary parameter tensor (the first 12)."""
    layers = list(widget.bits)[:PACKED_LAYERS_SHOWN]
    states = [(f"{layer}, row 0", {"layer": layer}) for layer in layers]
    frames = _drive(widget, states, lambda: Frame("", widget.summary.value + widget.table.value))
    return StaticFrames("Packed bytes of a layer", "Parameter tensor", frames)


def live_training_frames(widget: LiveTrainingWidget, steps: Iterable[int] = LIVE_TRAINING_STEPS) -> StaticFrames:
    """The widget's training, captured at the given optimizer steps (capped at its
    ``max_steps``, which is always the last frame)."""
    frames = []
    for target in sorted({min(step, widget.max_steps) for step in steps} | {widget.max_steps}):
        if target > widget.step:
            widget.steps_per_update = target - widget.step
            widget.run_chunk()
        frames.append(Frame(f"after {widget.step} optimizer steps", widget.status.value,
                            (widget.curves.value, widget.bitmap.value)))  # fmt: skip
    return StaticFrames("A binary network learning", "Training step", frames)
