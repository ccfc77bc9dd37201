"""The record of :func:`binedu.fit`: each step's loss and rate, and one record per epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

from .metrics import Tally
from .train_callbacks import Callback, Step

if TYPE_CHECKING:
    from .train_state import TrainRun

__all__ = ["HistoryRecorder", "end_epoch", "format_record"]


def format_record(record: dict[str, Any]) -> str:
    """``epoch 3 step 120: train_loss=0.5123 val_acc=0.9112 ...``."""
    values = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k not in ("epoch", "step", "partial"))
    suffix = " (partial epoch)" if record.get("partial") else ""
    return f"epoch {record['epoch']} step {record['step']}: {values}{suffix}"


def end_epoch(run: TrainRun, val: Dataset | None, eval_batch_size: int) -> dict[str, Any]:
    """The record of the epoch the loop just left (its training metrics and, with
    ``val``, the validation metrics); a finished epoch advances the counters to the
    next one, a stopped one is marked ``"partial": True``."""
    progress = run.progress
    epoch = progress["epoch"]
    with run.amp():
        val_metrics = (
            None if val is None else run.procs.evaluate(run.model, val, eval_batch_size, run.pad_id, run.device)
        )
    record: dict[str, Any] = {"epoch": run.epoch_offset + epoch + 1, "step": run.step_offset + progress["step"]}
    if run.tally.count:
        record |= {f"train_{k}": v for k, v in run.tally.metrics(run.language).items()}
    if val_metrics:
        record |= {f"val_{k}": v for k, v in val_metrics.items()}
    if progress["batch"] >= run.steps_per_epoch:
        progress.update(epoch=epoch + 1, batch=0, tally=Tally().to_dict())
        run.tally = Tally()
    else:
        record["partial"] = True
    return record


class HistoryRecorder(Callback):
    """Writes the :class:`~binedu.History`: every step's number, loss and learning
    rate, and every epoch's record (then passed to ``on_epoch``, if given)."""

    def __init__(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.on_epoch = on_epoch

    def on_step_end(self, run: TrainRun, step: Step) -> None:
        run.history.steps.append(step.number)
        run.history.loss.append(step.loss_value)
        run.history.lr.append(step.rate)

    def on_epoch_end(self, run: TrainRun, record: dict[str, Any]) -> None:
        run.history.epochs.append(record)
        if self.on_epoch is not None:
            self.on_epoch(record)
