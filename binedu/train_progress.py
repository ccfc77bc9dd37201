"""The progress bar of :func:`binedu.fit` (``tqdm.auto``: a terminal or JupyterLab)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from .train_callbacks import Callback, Step
from .train_record import format_record

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """One bar over the run's steps with the loss, the rate and the throughput (images/s
    or real tokens/s); with ``write_epochs`` each epoch's record as a line under it."""

    def __init__(self, enabled: bool, write_epochs: bool) -> None:
        # TQDM_DISABLE (tqdm's own switch) turns the bar off everywhere, e.g. for the docs
        # site, where a notebook's bar would be a widget with no kernel behind it
        off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
        self.enabled, self.write_epochs, self.requested = enabled and not off, write_epochs, enabled
        self.bar: Any = None
        self.clock, self.counted = 0.0, 0

    def on_train_start(self, run: TrainRun) -> None:
        self.bar = tqdm(
            total=run.total, initial=run.progress["step"], disable=not self.enabled, unit="step", dynamic_ncols=True
        )

    def on_epoch_start(self, run: TrainRun, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch + 1}/{run.epochs}")
        self.clock, self.counted = time.perf_counter(), run.tally.count

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        self.bar.update(1)
        speed = (run.tally.count - self.counted) / max(time.perf_counter() - self.clock, 1e-9)
        unit = "tok/s" if run.language else "img/s"
        postfix = {"loss": f"{step.loss_value:.4f}", "lr": f"{step.rate:.2e}", unit: f"{speed:,.0f}"}
        self.bar.set_postfix(postfix, refresh=False)

    def on_epoch_end(self, run: TrainRun, record: dict[str, Any]) -> None:
        if self.write_epochs and self.enabled:
            self.bar.write(format_record(record))
        elif self.write_epochs and self.requested:  # the bar is off (TQDM_DISABLE): the records stay
            print(format_record(record), flush=True)

    def on_train_end(self, run: TrainRun) -> None:
        if self.bar is not None:
            self.bar.close()
