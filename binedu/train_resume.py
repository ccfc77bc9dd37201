"""The resume step of :func:`binedu.fit`: a training checkpoint checked against the run
that is about to continue it, then loaded.

Every check runs before anything is trained or written: the caller's ``on_start`` (the
command line writes its run folder there) comes after :func:`resume`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .metrics import Tally
from .rng_state import set_rng
from .train_checkpoint import TrainingCheckpoint, TrainingCheckpointError, read_training_checkpoint
from .train_schedule import extend, follows_epochs
from .train_state import TrainRun, model_config
from .train_validate import IMPLEMENTATION_FLAGS, check_checkpoint

__all__ = ["RESUME_SETTINGS", "resume_mismatches", "check_progress", "resume", "resume_on_every_rank"]

# What a resumed run must share with the checkpoint: the data order, the optimizer and
# its schedule (the model configuration is compared as a whole).
RESUME_SETTINGS = (
    "batch_size", "seed", "train_size", "pad_id", "optimizer", "lr", "weight_decay", "warmup_steps", "decay_steps",
    "min_lr_ratio",
)  # fmt: skip
# the precision, and the digest of the training data (binedu.data_identity): another data
# set of the same size, or a precision change, must not continue a run
RECORDED_SETTINGS = ("precision", "data_id")
NOT_COMPARED = ("lr", "params")  # the rate is set at every step; params are checked by train_validate


def _plain(value: Any) -> Any:
    """JSON round trip, so tuples compare equal to the lists a checkpoint stores."""
    return json.loads(json.dumps(value))


def resume_mismatches(
    saved: TrainingCheckpoint, model: nn.Module, settings: dict[str, Any], optimizer: torch.optim.Optimizer
) -> list[str]:
    """``"name=<checkpoint's> (now <this run's>)"`` for each model-configuration field,
    training setting and optimizer hyperparameter that differs between a checkpoint
    and the run about to resume it; empty when they agree."""
    diffs = []
    config = model_config(model)
    if config is not None:
        old, new = _plain(saved.config), _plain(config)
        if not isinstance(old, dict):
            raise TrainingCheckpointError(f"the checkpoint's model configuration is not a dict: {old!r}")
        diffs += [
            f"model.{k}={old.get(k)!r} (now {new.get(k)!r})" for k in sorted(old | new) if old.get(k) != new.get(k)
        ]
    meta = saved.meta if isinstance(saved.meta, dict) else {}
    for key in RESUME_SETTINGS:
        if key == "decay_steps" and settings.get("decay_follows_epochs") and follows_epochs(meta):
            continue  # the checkpoint's schedule, extended if this run plans more epochs (train_schedule)
        if key == "decay_steps" and settings.get("decay_follows_epochs"):
            diffs.append(f"decay_steps={meta.get(key)!r} (now None: the rest of the run)")
            continue
        if meta.get(key) != settings[key]:
            diffs.append(f"{key}={meta.get(key)!r} (now {settings[key]!r})")
    for key in RECORDED_SETTINGS:  # an older checkpoint without them is not compared
        if key in meta and key in settings and meta[key] != settings[key]:
            diffs.append(f"{key}={meta[key]!r} (now {settings[key]!r})")
    if saved.optimizer_state is not None:
        try:
            (old_group,) = saved.optimizer_state["param_groups"]
            (new_group,) = optimizer.state_dict()["param_groups"]
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingCheckpointError(f"the checkpoint's optimizer section is corrupt ({exc!r})") from exc
        if not isinstance(old_group, dict):
            raise TrainingCheckpointError(
                f"the checkpoint's optimizer section is corrupt (a group is {old_group!r:.60})"
            )
        for key in sorted(set(old_group) | set(new_group)):
            if key in NOT_COMPARED or (key not in old_group and key in IMPLEMENTATION_FLAGS):
                continue
            if _plain(old_group.get(key)) != _plain(new_group.get(key)):
                diffs.append(f"optimizer.{key}={old_group.get(key)!r} (now {new_group.get(key)!r})")
    return diffs


def check_progress(state: Any) -> dict[str, Any]:
    """The checkpoint's progress counters, or a TrainingCheckpointError naming what is wrong."""
    ok = isinstance(state, dict) and all(
        isinstance(state.get(k), int) and state[k] >= 0 for k in ("step", "epoch", "batch")
    )
    if ok:
        try:
            Tally(**state["tally"])
        except TypeError:  # not a mapping, or other keys
            ok = False
    if not ok:
        raise TrainingCheckpointError(f"the checkpoint's progress section is corrupt: {str(state)[:200]}")
    return state


Resumed = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]


def resume(run: TrainRun, path: Path) -> Resumed:
    """Check the checkpoint at ``path`` against ``run``, then load it into ``run`` (the
    model's latents, the optimizer, the progress counters, the history and this rank's
    random-number states). Returns the bit snapshots of the checkpoint (the previous
    record's, the initial ones) for :class:`~binedu.train_statistics.LayerStatistics`,
    and the checkpoint's digest.

    Every check (:func:`resume_mismatches`, then the whole document and every tensor,
    :mod:`binedu.train_validate`) runs before anything is loaded. Raises a ``ValueError``
    naming every field that differs, or a
    :class:`~binedu.train_checkpoint.TrainingCheckpointError` naming what is corrupt.
    """
    try:
        saved = read_training_checkpoint(path)
        processes = saved.meta.get("world_size", 1)
        if processes != run.procs.world_size:
            raise ValueError(f"cannot resume {path}: it ran on {processes!r} processes, not {run.procs.world_size}")
        diffs = resume_mismatches(saved, run.model, run.settings, run.optimizer)
        if diffs:
            raise ValueError(f"cannot resume {path}: this run differs from it in " + "; ".join(diffs))
        state = check_checkpoint(saved, run.model, run.optimizer, run.steps_per_epoch, run.procs.world_size)
    except (KeyError, TypeError, AttributeError, IndexError, TrainingCheckpointError) as exc:
        raise TrainingCheckpointError(f"cannot resume {path}: {exc}") from exc
    if run.settings.get("decay_follows_epochs"):
        run.settings |= extend(saved.meta, run.settings, run.steps_per_epoch)
        restarts = tuple((start, decay) for start, decay in run.settings["restarts"])
        run.schedule = replace(run.schedule, decay_steps=run.settings["decay_steps"], restarts=restarts)
    run.model.load_state_dict(saved.model_state)
    try:
        run.optimizer.load_state_dict(saved.optimizer_state)  # type: ignore[arg-type]  # validated by train_validate
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise TrainingCheckpointError(f"cannot resume {path}: corrupt optimizer section ({exc!r})") from exc
    history = saved.history
    if history.epochs and history.epochs[-1].get("partial") and state["step"] < run.total:
        history.epochs.pop()  # the stopped epoch continues now
    device = run.device
    bits = {k[len("bits/") :]: v.to(device).bool() for k, v in saved.tensors.items() if k.startswith("bits/")}
    init = {k[len("init_bits/") :]: v.to(device).bool() for k, v in saved.tensors.items() if k.startswith("init_bits/")}
    set_rng(run.procs.own_rng(saved.tensors))
    run.progress, run.history, run.saved_step = state, history, state["step"]
    run.tally = Tally(**state["tally"])
    return bits, init or bits, saved.digest  # an older checkpoint without initial bits: count from the resumed ones


def _view(found: bool, outcome: Resumed | None, refused: bool, step: int) -> dict[str, Any]:
    return {"found": found, "refused": refused, "step": step if outcome else None, "digest": outcome and outcome[2]}


def _describe(view: dict[str, Any]) -> str:
    if not view["found"]:
        return "no checkpoint"
    if view["refused"]:
        return "a checkpoint it refuses"
    return f"the checkpoint of step {view['step']} (digest {str(view['digest'])[:12]})"


def resume_on_every_rank(run: TrainRun, path: Path) -> Resumed | None:
    """:func:`resume` where ``path`` exists (``None``: start fresh), the same on every
    process. Under torchrun each rank reads its own ``path``; rank 0's outcome (no file,
    refused, or the step and digest of the checkpoint) is broadcast and compared, and
    on any difference every rank stops with the same error: a run folder that is not
    shared (rank 0 resumes, rank 1 starts fresh) would otherwise leave the processes
    waiting for each other's collectives for hours."""
    found, outcome, error = path.is_file(), None, None
    if found:
        try:
            outcome = resume(run, path)
        except Exception as exc:  # noqa: BLE001 (re-raised below, once every rank has said how it went)
            error = exc
    view = _view(found, outcome, error is not None, run.progress["step"])
    main = run.procs.disagreement(view)
    if main is not None:
        other = "another process does not" if main == view else f"rank {run.procs.rank} sees {_describe(view)}"
        raise ValueError(
            f"cannot resume {path}: the {run.procs.world_size} processes do not see the same checkpoint (rank 0 "
            f"sees {_describe(main)}, {other}); under torchrun the run folder must be one folder shared by all"
        )
    if error is not None:
        raise error
    return outcome
