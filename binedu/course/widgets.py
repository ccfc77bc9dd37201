"""Interactive ipywidgets for the notebooks, built on binedu's own functions.

Each builder returns a fresh top-level widget (re-running a cell gives a new, working
one) whose controls are attributes with stable ``description`` labels, so tests and a
browser can drive them. Everything heavy (parameter counts, the fixed layer) is computed
once; a change only recomputes a few small tensors and redraws a small PNG.

On a page without a kernel (``BINEDU_STATIC_WIDGETS=1``, set by the documentation site's
build) the builders return static stand-ins instead: pre-rendered frames of the real
widget with a slider (:mod:`binedu.course.standins`).
"""

from __future__ import annotations

import functools
import html
import io
import math
from typing import Any

import ipywidgets as widgets
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..base import BinaryModule
from ..bits import pack_bits
from ..image_model import ImageClassifier
from ..language_model import LanguageModel
from ..linear import BinaryLinear
from ..model import ConfigModel
from ..quantize import quantize
from ..units import PRECISION_BITS, bytes_at_bits, format_bytes
from .standins import StaticFrames, binarization_frames, memory_frames, packed_bytes_frames, static_widgets

__all__ = [
    "PAPER_MODELS",
    "paper_model_parameters",
    "threshold_bits",
    "binarization_widget",
    "memory_widget",
    "packed_bytes_widget",
    "BinarizationWidget",
    "MemoryWidget",
    "PackedBytesWidget",
]

# label in the Model dropdown -> (model class, config name)
PAPER_MODELS: dict[str, tuple[type[ConfigModel], str]] = {
    "paper-3x3": (ImageClassifier, "paper-3x3"),
    "paper-5x5": (ImageClassifier, "paper-5x5"),
    "paper-small": (LanguageModel, "paper-small"),
    "paper-large": (LanguageModel, "paper-large"),
}
CUSTOM = "custom parameter count"

_BIT_COLORS = ("#b0b0b0", "#1f77b4")  # colour of a 0 bit, of a 1 bit


@functools.cache
def paper_model_parameters(name: str) -> int:
    """Parameter count of a paper configuration (Alg. 7, Table 3), built on the meta
    device: no memory is allocated, so even the 333 M-parameter model counts instantly."""
    if name not in PAPER_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(PAPER_MODELS)}")
    cls, config = PAPER_MODELS[name]
    return cls.on_meta(config).num_parameters()


def threshold_bits(p: torch.Tensor, rule: str = "mean") -> tuple[torch.Tensor, float]:
    """Bits of ``p`` and the threshold used: ``"mean"`` is Eq. 1 (``binedu.quantize``),
    ``"zero"`` and ``"median"`` are the alternatives the widget compares it with."""
    if rule == "mean":
        return quantize(p), float(p.detach().double().mean())
    if rule == "zero":
        return (p > 0).to(p.dtype), 0.0
    if rule == "median":
        t = float(p.detach().median())
        return (p > t).to(p.dtype), t
    raise ValueError(f"unknown threshold rule {rule!r}; use 'mean', 'zero' or 'median'")


def _png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes without pyplot (nothing is left open or shown twice)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- (a) binarization


class BinarizationWidget(widgets.VBox):
    """Eq. 1 on a small BinaryLinear layer: change the latent weights and the threshold
    rule and watch the bits and the layer's output change.

    Controls: ``distribution`` ("Distribution:"), ``scale`` ("Scale:"), ``shift``
    ("Shift:"), ``seed`` ("Seed:"), ``threshold`` ("Threshold:"). Displays: ``bits_html``
    (the bit matrix), ``output_html`` (``z = W_b x + b_b`` and ``Normalize(z)``),
    ``plot`` (PNG). ``state`` holds the current tensors.
    """

    IN_FEATURES = 8
    OUT_FEATURES = 4

    def __init__(self) -> None:
        style = {"description_width": "90px"}
        self.distribution = widgets.Dropdown(
            options=["normal", "uniform", "skewed"], value="normal", description="Distribution:", style=style
        )
        self.scale = widgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1, description="Scale:", style=style)
        self.shift = widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.1, description="Shift:", style=style)
        self.seed = widgets.IntSlider(value=0, min=0, max=20, description="Seed:", style=style)
        self.threshold = widgets.Dropdown(
            options=[("mean (Eq. 1)", "mean"), ("zero", "zero"), ("median", "median")],
            value="mean",
            description="Threshold:",
            style=style,
        )
        self.bits_html = widgets.HTML()
        self.output_html = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="720px"))  # 9 in x 80 dpi: no blur
        # the fixed parts: a BNFCL with linear activation (Alg. 2) and one input
        g = torch.Generator().manual_seed(1234)
        self.layer = BinaryLinear(self.IN_FEATURES, self.OUT_FEATURES)
        self.x = torch.randn(1, self.IN_FEATURES, generator=g)
        self.state: dict[str, Any] = {}  # tensors, thresholds and the rule, by name (see update)
        self._make_figure()
        controls = widgets.VBox([self.distribution, self.scale, self.shift, self.seed, self.threshold])
        numbers = widgets.VBox([self.bits_html, self.output_html])
        super().__init__([widgets.HBox([controls, numbers]), self.plot])
        for control in (self.distribution, self.scale, self.shift, self.seed, self.threshold):
            control.observe(self._update, names="value")
        self._update()

    def _base(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscaled draws for the kernel and the bias (fixed by seed and distribution)."""
        g = torch.Generator().manual_seed(int(self.seed.value))
        n = self.OUT_FEATURES * (self.IN_FEATURES + 1)
        kind = self.distribution.value
        if kind == "normal":
            v = torch.randn(n, generator=g)
        elif kind == "uniform":
            v = torch.rand(n, generator=g) * 2 - 1
        else:  # skewed: mean and median differ, so the two rules give different bits
            v = torch.empty(n).exponential_(1.0, generator=g) - 1.0
        return v[: -self.OUT_FEATURES].reshape(self.OUT_FEATURES, self.IN_FEATURES), v[-self.OUT_FEATURES :]

    def _update(self, change: object = None) -> None:
        base_w, base_b = self._base()
        w = base_w * self.scale.value + self.shift.value
        b = base_b * self.scale.value + self.shift.value
        rule = self.threshold.value
        w_bits, w_t = threshold_bits(w, rule)
        b_bits, b_t = threshold_bits(b, rule)
        with torch.no_grad():
            z = F.linear(self.x, w_bits, b_bits)[0]
            out = self.layer.finish(z.unsqueeze(0))[0]  # Normalize -> linear activation (Alg. 2)
        self.state = dict(
            rule=rule, weight=w, bias=b, weight_threshold=w_t, bias_threshold=b_t,
            weight_bits=w_bits, bias_bits=b_bits, z=z, output=out,
        )  # fmt: skip
        self.bits_html.value = self._bits_table()
        self.output_html.value = self._output_table()
        self.plot.value = self._draw()

    def _bits_table(self) -> str:
        s = self.state
        rows = "".join(
            "<tr>" + "".join(f"<td>{int(v)}</td>" for v in row) + f"<td>&nbsp;|&nbsp;{int(bb)}</td></tr>"
            for row, bb in zip(s["weight_bits"].tolist(), s["bias_bits"].tolist(), strict=True)
        )
        ones = int(s["weight_bits"].sum())
        return (
            f"<b>Bits W<sub>b</sub> | b<sub>b</sub></b> ({ones} of {s['weight_bits'].numel()} kernel bits are 1; "
            f"kernel threshold {s['weight_threshold']:.3f}, bias threshold {s['bias_threshold']:.3f})"
            f"<table style='font-family:monospace'>{rows}</table>"
        )

    def _output_table(self) -> str:
        s = self.state
        rows = "".join(
            f"<tr><td>{i}</td><td>{z:.3f}</td><td>{a:.3f}</td></tr>"
            for i, (z, a) in enumerate(zip(s["z"].tolist(), s["output"].tolist(), strict=True))
        )
        return (
            "<b>Layer output</b> on a fixed input x"
            "<table style='font-family:monospace'><tr><th>unit</th><th>z = W<sub>b</sub>x + b<sub>b</sub></th>"
            f"<th>Normalize(z)</th></tr>{rows}</table>"
        )

    def _make_figure(self) -> None:
        """The figure is built once; each update only moves its artists (fast redraws)."""
        n_w, n = self.OUT_FEATURES * self.IN_FEATURES, self.OUT_FEATURES * (self.IN_FEATURES + 1)
        self._fig = Figure(figsize=(9, 3), dpi=80)
        self._fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.22)
        ax_w, ax_z = self._fig.subplots(1, 2, width_ratios=(3, 2))
        self._dots = [ax_w.scatter([], [], color=_BIT_COLORS[bit], label=f"bit {bit}", s=25) for bit in (0, 1)]
        (self._w_line,) = ax_w.plot([-0.5, n_w - 0.5], [0, 0], color="red", label="threshold")
        (self._b_line,) = ax_w.plot([n_w - 0.5, n - 0.5], [0, 0], color="red", linestyle=":")
        ax_w.axvline(n_w - 0.5, color="black", linewidth=0.5)
        ax_w.set(xlabel="parameter index (kernel, then bias after the line)", ylabel="latent value",
                 title="Latent weights and their bits (Eq. 1)", xlim=(-1, n))  # fmt: skip
        self._legend = ax_w.legend(loc="upper left", fontsize=8)
        units = list(range(self.OUT_FEATURES))
        self._z_bars = ax_z.bar([u - 0.2 for u in units], [0] * len(units), width=0.4, label="z = W_b x + b_b")
        self._a_bars = ax_z.bar([u + 0.2 for u in units], [0] * len(units), width=0.4, label="Normalize(z)")
        ax_z.axhline(0, color="black", linewidth=0.5)
        ax_z.set(xlabel="output unit", ylabel="value", title="BinaryLinear output", xticks=units)
        ax_z.legend(fontsize=8, loc="upper right")
        self._axes = (ax_w, ax_z)

    def _draw(self) -> bytes:
        s = self.state
        ax_w, ax_z = self._axes
        latent = torch.cat([s["weight"].flatten(), s["bias"]])
        bits = torch.cat([s["weight_bits"].flatten(), s["bias_bits"]])
        idx = torch.arange(latent.numel(), dtype=latent.dtype)
        for bit, dots in enumerate(self._dots):
            m = bits == bit
            dots.set_offsets(torch.stack([idx[m], latent[m]], dim=1).numpy())
        self._w_line.set_ydata([s["weight_threshold"]] * 2)
        self._b_line.set_ydata([s["bias_threshold"]] * 2)
        self._legend.get_texts()[-1].set_text(f"threshold ({s['rule']})")
        ax_w.set_ylim(*_limits(latent.tolist()))
        for bars, values in ((self._z_bars, s["z"]), (self._a_bars, s["output"])):
            for bar, v in zip(bars, values.tolist(), strict=True):
                bar.set_height(v)
        ax_z.set_ylim(*_limits(s["z"].tolist() + s["output"].tolist() + [0.0]))
        return _png(self._fig)


def _limits(values: list[float], margin: float = 0.12) -> tuple[float, float]:
    """y-limits that show all ``values`` with a margin (also for a constant list)."""
    lo, hi = min(values), max(values)
    pad = margin * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + 2 * pad  # extra room on top for the legend


def binarization_widget() -> BinarizationWidget | StaticFrames:
    """A new :class:`BinarizationWidget` (notebook 02), or its static stand-in."""
    if static_widgets():
        return binarization_frames(BinarizationWidget())
    return BinarizationWidget()


# ---------------------------------------------------------------- (b) memory


class MemoryWidget(widgets.VBox):
    """Memory of a model at a chosen precision: bytes, the ratio to float32, a bar chart.

    Controls: ``model`` ("Model:", a paper configuration or "custom parameter count"),
    ``params`` ("Parameters:", log slider up to 10^11; moving it selects "custom"),
    ``precision`` ("Precision:"). ``summary`` is an HTML widget whose text holds the
    exact byte count; ``num_params``, ``num_bytes`` and ``ratio`` read the numbers.
    """

    def __init__(self, model: str = "paper-3x3", precision: str = "1 bit") -> None:
        style = {"description_width": "90px"}
        self.model = widgets.Dropdown(
            options=[*PAPER_MODELS, CUSTOM], value=model, description="Model:", style=style
        )
        self.params = widgets.FloatLogSlider(
            value=7e9, base=10, min=3, max=11, step=0.01, description="Parameters:", readout_format=".3g", style=style
        )
        self.precision = widgets.Dropdown(
            options=list(PRECISION_BITS), value=precision, description="Precision:", style=style
        )
        self.summary = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="480px"))  # 6 in x 80 dpi: no blur
        self._syncing = False
        self._make_figure()
        super().__init__([widgets.HBox([self.model, self.precision]), self.params, self.summary, self.plot])
        self.model.observe(self._on_model, names="value")
        self.params.observe(self._on_params, names="value")
        self.precision.observe(self._update, names="value")
        self._on_model()

    @property
    def num_params(self) -> int:
        if self.model.value == CUSTOM:
            return round(self.params.value)
        return paper_model_parameters(self.model.value)

    @property
    def num_bytes(self) -> int:
        return bytes_at_bits(self.num_params, PRECISION_BITS[self.precision.value])

    @property
    def ratio(self) -> float:
        """How many times smaller than float32."""
        return bytes_at_bits(self.num_params, 32) / max(self.num_bytes, 1)

    def _on_model(self, change: object = None) -> None:
        if self.model.value != CUSTOM:
            self._syncing = True  # show the model's count on the slider without selecting "custom"
            self.params.value = self.num_params
            self._syncing = False
        self._update()

    def _on_params(self, change: object = None) -> None:
        if self._syncing:
            return
        if self.model.value != CUSTOM:
            # the browser's log slider snaps the value to its step and echoes it back:
            # that echo is not a user's move and must not switch the model to "custom"
            shown = math.log10(max(float(self.params.value), 1.0))
            if abs(shown - math.log10(self.num_params)) <= self.params.step / 2 + 1e-9:
                return
            self.model.value = CUSTOM  # triggers _on_model -> _update
        else:
            self._update()

    def _update(self, change: object = None) -> None:
        n, prec = self.num_params, self.precision.value
        name = "a model" if self.model.value == CUSTOM else html.escape(self.model.value)
        self.summary.value = (
            f"<b>{name}</b>: {n:,} parameters &times; {PRECISION_BITS[prec]} bit(s) = "
            f"<b>{format_bytes(self.num_bytes)}</b> ({self.num_bytes:,} bytes), "
            f"<b>{self.ratio:.1f}&times;</b> smaller than float32 ({format_bytes(bytes_at_bits(n, 32))})"
        )
        self.plot.value = self._draw()

    def _make_figure(self) -> None:
        self._fig = Figure(figsize=(6, 2.8), dpi=80)
        self._fig.subplots_adjust(left=0.12, right=0.98, bottom=0.17, top=0.88)
        self._ax = self._fig.subplots()
        self._bars = self._ax.bar(list(PRECISION_BITS), [0] * len(PRECISION_BITS))
        self._labels: list = []
        self._ax.set_xlabel("precision (bits per parameter)")

    def _draw(self) -> bytes:
        n = self.num_params
        sizes = [bytes_at_bits(n, bits) for bits in PRECISION_BITS.values()]
        unit, scale = next(((u, s) for u, s in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))
                            if sizes[0] >= s), ("B", 1))  # fmt: skip
        for bar, precision, size in zip(self._bars, PRECISION_BITS, sizes, strict=True):
            bar.set_height(size / scale)
            bar.set_color("#1f77b4" if precision == self.precision.value else "#b0b0b0")
        for label in self._labels:
            label.remove()
        self._labels = self._ax.bar_label(self._bars, labels=[format_bytes(v) for v in sizes], fontsize=8)
        self._ax.set_ylim(0, 1.15 * sizes[0] / scale)
        self._ax.set_ylabel(f"memory ({unit})")
        self._ax.set_title(f"{n:,} parameters at each precision")
        return _png(self._fig)


def memory_widget(model: str = "paper-3x3", precision: str = "1 bit") -> MemoryWidget | StaticFrames:
    """A new :class:`MemoryWidget` (notebook 01), or its static stand-in."""
    if static_widgets():
        return memory_frames(MemoryWidget(model, precision))
    return MemoryWidget(model, precision)


# ---------------------------------------------------------------- (c) packed bytes


class PackedBytesWidget(widgets.VBox):
    """The packed bytes of a binary model's layer: pick a parameter tensor and a row, see
    its bits (Eq. 1), the ``uint8`` bytes that :func:`binedu.bits.pack_bits` makes of them
    (8 bits per byte, the first value in the least significant bit) and their hex.

    Controls: ``layer`` ("Layer:", a parameter name such as ``layers.0.weight``),
    ``row`` ("Row:", along the first axis), ``offset`` ("Byte offset:", which 8 bytes of
    the row are shown). ``table`` (HTML) shows them, ``summary`` (HTML) the tensor's size
    as float32 and packed. All bytes are packed once, when the widget is built.
    """

    BYTES_SHOWN = 8

    def __init__(self, model: torch.nn.Module) -> None:
        self.bits: dict[str, torch.Tensor] = {}
        self.packed: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for prefix, module in model.named_modules():
            if isinstance(module, BinaryModule) and module.binary:
                for name, bits in module.binary_parameters().items():
                    key = f"{prefix}.{name}" if prefix else name
                    rows = bits.reshape(bits.shape[0], -1) if bits.ndim > 1 else bits.reshape(1, -1)
                    self.shapes[key] = tuple(bits.shape)
                    self.bits[key] = rows.to(torch.uint8)
                    self.packed[key] = pack_bits(rows, dim=1)
        if not self.bits:
            raise ValueError(f"{type(model).__name__} has no binary layers (binary=True BinaryModules) to inspect")
        style = {"description_width": "90px"}
        self.layer = widgets.Dropdown(options=list(self.bits), description="Layer:", style=style)
        self.row = widgets.IntSlider(value=0, min=0, max=0, description="Row:", style=style)
        self.offset = widgets.IntSlider(value=0, min=0, max=0, description="Byte offset:", style=style)
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.state: dict[str, object] = {}
        super().__init__([widgets.HBox([self.layer, self.row, self.offset]), self.summary, self.table])
        self.layer.observe(self._on_layer, names="value")
        self.row.observe(self._update, names="value")
        self.offset.observe(self._update, names="value")
        self._on_layer()

    def _on_layer(self, change: object = None) -> None:
        packed = self.packed[self.layer.value]
        with self.hold_trait_notifications():
            self.row.value, self.offset.value = 0, 0
            self.row.max = packed.shape[0] - 1
            self.offset.max = max(packed.shape[1] - self.BYTES_SHOWN, 0)
        self._update()

    def _update(self, change: object = None) -> None:
        key, r, start = self.layer.value, self.row.value, self.offset.value
        bits, packed = self.bits[key], self.packed[key]
        stop = min(start + self.BYTES_SHOWN, packed.shape[1])
        row_bytes = packed[r, start:stop].tolist()
        row_bits = bits[r, 8 * start : 8 * stop].tolist()
        self.state = dict(layer=key, row=r, offset=start, bits=row_bits, bytes=row_bytes)
        n = bits.numel()
        self.summary.value = (
            f"<b>{html.escape(key)}</b>, shape {self.shapes[key]}: {n:,} parameters in {bits.shape[0]} rows of "
            f"{bits.shape[1]} bits; "
            f"float32 {format_bytes(4 * n)} ({4 * n:,} bytes) &rarr; packed {format_bytes(packed.numel())} "
            f"({packed.numel():,} bytes, each row padded to whole bytes)"
        )
        lines = []
        for i, value in enumerate(row_bytes):
            chunk = row_bits[8 * i : 8 * i + 8]
            lines.append(
                f"<tr><td>{start + i}</td><td>{' '.join(map(str, chunk))}</td>"
                f"<td>0b{value:08b}</td><td>{value}</td><td>0x{value:02X}</td></tr>"
            )
        self.table.value = (
            "<table style='font-family:monospace'><tr><th>byte</th><th>bits in value order</th>"
            "<th>binary (msb first)</th><th>uint8</th><th>hex</th></tr>" + "".join(lines) + "</table>"
            f"hex of these bytes: <code>{bytes(row_bytes).hex(' ').upper()}</code>"
        )


def packed_bytes_widget(model: torch.nn.Module) -> PackedBytesWidget | StaticFrames:
    """A new :class:`PackedBytesWidget` for ``model`` (notebook 06), or its static stand-in."""
    if static_widgets():
        return packed_bytes_frames(PackedBytesWidget(model))
    return PackedBytesWidget(model)
