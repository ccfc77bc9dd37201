"""Watch a tiny binary network learn, live: Train / Pause / Reset buttons in JupyterLab.

A two-layer binary MLP (``BinaryLinear`` 64 -> 32 -> 10, Alg. 1 with Eq. 1 and the
straight-through estimator) learns the UCI digits shipped with binedu, in the kernel,
while one picture updates: the loss curve, the per-layer flip rate, the first layer's
kernel bits (each of its 32 units is an 8x8 bitmap over the digit's pixels; the bits that
just flipped are coloured) and the Eq. 1 histogram of its latent weights.

Why it stays responsive, even on Binder's single CPU: training runs as an asyncio task on
the kernel's own event loop, in small chunks (``steps_per_update`` optimizer steps), and
the task yields to the loop after every chunk. The kernel handles the button clicks (and
any other cell) between two chunks; nothing runs in a thread.
"""

from __future__ import annotations

import asyncio
import io

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ..data import image_data
from ..data.images import TensorImageDataset
from ..linear import BinaryLinear
from ..quantize import quantize
from .plots import plot_weight_histogram
from .standins import StaticFrames, live_training_frames, static_widgets

__all__ = ["LiveTrainingWidget", "live_training_widget", "tiny_binary_mlp"]

HIDDEN = 32
TILE = 8  # a digit is 8x8 pixels: one first-layer unit's 64 kernel bits drawn as one tile
TILES_PER_ROW = 8
_ZERO, _ONE = np.array([0.15, 0.15, 0.15]), np.array([1.0, 1.0, 1.0])
_TO_ONE, _TO_ZERO = np.array([0.95, 0.45, 0.05]), np.array([0.15, 0.45, 0.95])  # just flipped: 0->1, 1->0
_SEPARATOR = np.array([0.55, 0.55, 0.55])


def tiny_binary_mlp(in_features: int = TILE * TILE, hidden: int = HIDDEN, classes: int = 10) -> nn.Sequential:
    """Two binary normalized fully connected layers (BNFCL, Alg. 1): ReLU, then linear logits."""
    return nn.Sequential(BinaryLinear(in_features, hidden, "relu"), BinaryLinear(hidden, classes))


def kernel_bits(layer: BinaryLinear) -> torch.Tensor:
    """The Eq. 1 bits of a layer's kernel, as a bool tensor ``(out, in)``."""
    return quantize(layer.weight.detach()).bool()


def kernel_bitmap(bits: torch.Tensor, previous: torch.Tensor | None = None) -> np.ndarray:
    """An RGB picture of a first-layer kernel ``(units, 64)``: one 8x8 tile per unit (the
    unit's weight on each pixel of the digit), white = 1, dark = 0; bits that differ from
    ``previous`` are orange (now 1) or blue (now 0). Tiles are separated by grey lines."""
    units, inputs = bits.shape
    if inputs != TILE * TILE or units % TILES_PER_ROW:
        raise ValueError(f"expected a kernel of shape (a multiple of {TILES_PER_ROW}, {TILE * TILE}), got {tuple(bits.shape)}")
    b = bits.numpy()[..., None]
    rgb = np.where(b, _ONE, _ZERO)
    if previous is not None:
        if previous.shape != bits.shape:
            raise ValueError(f"previous bits have shape {tuple(previous.shape)}, not {tuple(bits.shape)}")
        flipped = (bits != previous).numpy()[..., None]
        rgb = np.where(flipped, np.where(b, _TO_ONE, _TO_ZERO), rgb)
    tiles = np.ones((units, TILE + 1, TILE + 1, 3)) * _SEPARATOR
    tiles[:, :TILE, :TILE] = rgb.reshape(units, TILE, TILE, 3)
    image = rearrange(tiles, "(r c) h w rgb -> (r h) (c w) rgb", c=TILES_PER_ROW)
    return image[:-1, :-1]


class LiveTrainingWidget(widgets.VBox):
    """Train / Pause / Reset a tiny binary MLP on the digits and watch its bits flip.

    Controls: ``train_button`` ("Train"), ``pause_button`` ("Pause"), ``reset_button``
    ("Reset"). Displays, redrawn after every chunk: ``status`` (HTML: step, loss,
    validation accuracy, bits changed since initialisation), ``curves`` (PNG: loss and
    flip rate per layer) and ``bitmap`` (PNG: the first layer's kernel bits and the Eq. 1
    histogram of its latent weights).

    State for tests and for the curious: ``step``, ``losses`` (one per optimizer step),
    ``flip_rates`` (layer -> fraction of its kernel bits that flipped, one per step),
    ``model``, ``initial_bits``. Driving it without the buttons: :meth:`run_chunk` trains
    one chunk synchronously; :meth:`start` / :meth:`pause` / :meth:`reset` are what the
    buttons call; ``task`` is the running asyncio task (``None`` when paused).
    """

    def __init__(
        self,
        steps_per_update: int = 10,
        max_steps: int = 1500,
        batch_size: int = 64,
        lr: float = 0.01,
        seed: int = 0,
    ) -> None:
        if steps_per_update < 1 or max_steps < 1 or batch_size < 1:
            raise ValueError(
                f"steps_per_update, max_steps and batch_size must be positive, got "
                f"{steps_per_update}, {max_steps}, {batch_size}"
            )
        if lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {lr}")
        self.steps_per_update, self.max_steps, self.batch_size, self.lr, self.seed = (
            steps_per_update,
            max_steps,
            batch_size,
            lr,
            seed,
        )
        data = image_data("digits", seed=seed)
        train, val = data.train, data.val
        if not isinstance(train, TensorImageDataset) or not isinstance(val, TensorImageDataset):
            raise TypeError("the digits must come as TensorImageDataset (images held in memory)")
        self.x_train = rearrange(train.images, "n 1 h w -> n (h w)")
        self.y_train = train.labels
        self.x_val = rearrange(val.images, "n 1 h w -> n (h w)")
        self.y_val = val.labels
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.pause_button = widgets.Button(description="Pause", icon="pause")
        self.reset_button = widgets.Button(description="Reset", button_style="warning", icon="refresh")
        self.status = widgets.HTML()
        self.curves = widgets.Image(format="png", layout=widgets.Layout(width="960px"))  # 12 in x 80 dpi
        self.bitmap = widgets.Image(format="png", layout=widgets.Layout(width="960px"))
        self.train_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.reset_button.on_click(lambda _: self.reset())
        self.task: asyncio.Task | None = None
        super().__init__(
            [widgets.HBox([self.train_button, self.pause_button, self.reset_button]), self.status, self.curves, self.bitmap]
        )
        self.reset()

    # ------------------------------------------------------------ training

    @property
    def layers(self) -> dict[str, BinaryLinear]:
        return {f"layer {i + 1}": m for i, m in enumerate(self.model) if isinstance(m, BinaryLinear)}  # all are

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def reset(self) -> None:
        """Stop training and start again from a freshly initialised model (same seed)."""
        self.pause()
        torch.manual_seed(self.seed)
        self.model = tiny_binary_mlp()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.step = 0
        self.losses: list[float] = []
        self.flip_rates: dict[str, list[float]] = {name: [] for name in self.layers}
        self.initial_bits = kernel_bits(self.layers["layer 1"])
        self.shown_bits = self.initial_bits  # the bits of the last picture: what "just flipped" compares with
        self.val_accuracy = self._accuracy()
        self._draw()

    def run_chunk(self) -> None:
        """Train ``steps_per_update`` optimizer steps (fewer at ``max_steps``), then redraw."""
        self.model.train()
        for _ in range(min(self.steps_per_update, self.max_steps - self.step)):
            before = {name: kernel_bits(layer) for name, layer in self.layers.items()}
            batch = torch.randint(len(self.y_train), (self.batch_size,), generator=self.generator)
            loss = F.cross_entropy(self.model(self.x_train[batch]), self.y_train[batch])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.losses.append(loss.item())
            for name, layer in self.layers.items():
                self.flip_rates[name].append((kernel_bits(layer) != before[name]).float().mean().item())
            self.step += 1
        self.val_accuracy = self._accuracy()
        self._draw()

    async def _train(self) -> None:
        while self.step < self.max_steps:
            self.run_chunk()
            await asyncio.sleep(0.01)  # give the kernel's loop a turn: button clicks are handled here
        self.task = None
        self._draw_status()

    def start(self) -> None:
        """Train in the background on the running event loop (the kernel's), chunk by chunk."""
        if self.running:
            return
        if self.step >= self.max_steps:
            self.status.value += f" <b>(reached {self.max_steps} steps: press Reset)</b>"
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        self.task = loop.create_task(self._train())
        self._draw_status()

    def pause(self) -> None:
        """Stop after the chunk in progress (a chunk is never cut in half)."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if hasattr(self, "losses"):
            self._draw_status()

    @torch.no_grad()
    def _accuracy(self) -> float:
        self.model.eval()
        return (self.model(self.x_val).argmax(-1) == self.y_val).float().mean().item()

    # ------------------------------------------------------------ display

    def bits_changed(self) -> int:
        """First-layer kernel bits that differ from their value at initialisation."""
        return int((kernel_bits(self.layers["layer 1"]) != self.initial_bits).sum())

    def _draw_status(self) -> None:
        state = "training" if self.running else ("finished" if self.step >= self.max_steps else "paused")
        loss = f"{self.losses[-1]:.3f}" if self.losses else "–"
        self.status.value = (
            f"<b>{state}</b> · step {self.step} of {self.max_steps} · loss {loss} · "
            f"validation accuracy {self.val_accuracy:.1%} · layer 1 kernel bits changed since "
            f"initialisation: {self.bits_changed()} of {self.initial_bits.numel()}"
        )

    def _draw(self) -> None:
        self._draw_status()
        self.curves.value = self.render_curves()
        self.bitmap.value = self.render_bits()

    def render_curves(self) -> bytes:
        """The loss and the flip rate per layer, as PNG bytes."""
        fig = Figure(figsize=(12, 3.2), dpi=80)
        ax_loss, ax_flip = fig.subplots(1, 2)
        steps = np.arange(1, self.step + 1)
        ax_loss.plot(steps, self.losses, color="#1f77b4", linewidth=1)
        ax_loss.set(xlabel="optimizer step", ylabel="cross-entropy (batch)", title="Training loss")
        ax_loss.set_xlim(0, max(50, self.step))
        for name, rates in self.flip_rates.items():
            ax_flip.plot(steps, [100 * r for r in rates], linewidth=1, label=name)
        ax_flip.set(xlabel="optimizer step", ylabel="kernel bits flipped (%)", title="Flip rate per layer, per step")
        ax_flip.set_xlim(0, max(50, self.step))
        ax_flip.legend(fontsize="small", loc="upper right")
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.9, wspace=0.18)  # tight_layout: 2x slower
        return _png(fig)

    def render_bits(self) -> bytes:
        """The first layer's kernel bits (just-flipped ones coloured) and its Eq. 1 histogram,
        as PNG bytes; the bits drawn become the reference for the next "just flipped"."""
        fig = Figure(figsize=(12, 3.4), dpi=80)
        ax_bits, ax_hist = fig.subplots(1, 2)
        bits = kernel_bits(self.layers["layer 1"])
        ax_bits.imshow(kernel_bitmap(bits, self.shown_bits), interpolation="nearest")
        flipped = int((bits != self.shown_bits).sum())
        ax_bits.set_title(
            f"Layer 1 kernel: one 8x8 tile per unit, white = 1\n{flipped} bits just flipped "
            "(orange: 0 → 1, blue: 1 → 0)",
            fontsize="medium",
        )
        ax_bits.set_axis_off()
        self.shown_bits = bits
        plot_weight_histogram(self.layers["layer 1"].weight.detach(), name="layer 1 kernel", ax=ax_hist)
        ax_hist.set_title("Layer 1 latent weights and their bits (Eq. 1)")
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.16, top=0.86, wspace=0.12)
        return _png(fig)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def live_training_widget(**kwargs) -> LiveTrainingWidget | StaticFrames:
    """A fresh :class:`LiveTrainingWidget` (keyword arguments as in its constructor), or its
    static stand-in (:mod:`binedu.course.standins`)."""
    if static_widgets():
        return live_training_frames(LiveTrainingWidget(**kwargs))
    return LiveTrainingWidget(**kwargs)
