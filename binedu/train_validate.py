"""A training checkpoint checked as a whole against the run about to resume it.

The checksums of :mod:`binedu.train_checkpoint` catch corruption, not an edited file that
was signed again: its content must still make sense. Before a resumed run changes
anything (its model, its optimizer, a file), every part is checked here:

- ``meta``: only known keys, each of its type and range;
- ``state`` (the progress counters): integers in their ranges, consistent with each other
  and with the plan (``batch`` inside an epoch, ``epoch`` within the planned epochs, the
  step count of the epochs and batches done), and the running ``tally``;
- ``history``: lists of the right types and lengths, aligned with each other, the last
  steps numbered as the progress says;
- the optimizer: one parameter group with exactly the keys of this run's optimizer
  (:func:`~binedu.train_resume.resume_mismatches` compares their values, so e.g.
  ``maximize=true`` is refused), its ``lr`` a finite rate, its ``params`` the model's;
  each parameter's state (``step``, the moments) of the parameter's shape and dtype,
  the second moments non-negative, ``step`` a count no larger than the steps done;
- every tensor: the model's parameters by name, shape and dtype; the bit snapshots
  (``bits/``, ``init_bits/``, Eq. 1) one per binary parameter, uint8 of the parameter's
  shape holding 0 or 1; the random-number states of the right dtype and size, one set
  per process; nothing else.

Each check raises :class:`~binedu.train_checkpoint.TrainingCheckpointError` naming the
field and what is wrong with it.
"""

from __future__ import annotations

import math
import re
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from .history import History
from .train_checkpoint import TrainingCheckpoint, TrainingCheckpointError
from .train_statistics import binary_bits

__all__ = ["check_checkpoint", "META_KEYS", "STATE_KEYS"]

LIMIT = 2**53  # counters stay exact as JSON numbers (float64)
STATE_KEYS = {"step", "epoch", "batch", "tally"}
OPTIONAL_STATE_KEYS = {"step_offset", "epoch_offset"}
META_KEYS: dict[str, Any] = {
    "task": str, "epochs": int, "batch_size": int, "lr": float, "optimizer": str, "weight_decay": float,
    "warmup_steps": int, "decay_steps": int, "min_lr_ratio": float, "seed": int, "pad_id": (int, type(None)),
    "record_every": int, "train_size": int, "world_size": int, "precision": str, "data_id": str,
    "decay_follows_epochs": bool, "schedule_end": int, "restarts": list,
}  # fmt: skip
REQUIRED_META = {"task", "epochs", "record_every"}  # the settings resume compares are required there
# optimizer flags that select an implementation, not the mathematics: an older torch may lack them
IMPLEMENTATION_FLAGS = {"foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay"}
MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, float) or _is_int(value)) and math.isfinite(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(value: Any, name: str, high: int = LIMIT) -> int:
    if not _is_int(value) or not 0 <= value <= high:
        raise TrainingCheckpointError(f"{name} must be an integer in [0, {high}], got {_short(value)}")
    return int(value)


def check_meta(meta: dict[str, Any]) -> None:
    """Only known keys, each of its type (numbers finite, counts >= 0)."""
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise TrainingCheckpointError(f"unknown key(s) in meta: {', '.join(map(repr, unknown[:5]))}")
    missing = sorted(REQUIRED_META - set(meta))
    if missing:
        raise TrainingCheckpointError(f"meta lacks {', '.join(missing)}")
    if meta["task"] not in ("image", "language"):
        raise TrainingCheckpointError(f"meta.task must be 'image' or 'language', got {_short(meta['task'])}")
    for key, value in meta.items():
        kind = META_KEYS[key]
        if kind is float:
            ok = _is_number(value) and value >= 0
        elif kind is int:
            ok = _is_int(value) and 0 <= value <= LIMIT
        elif kind is bool:
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, kind) and not (kind == (int, type(None)) and isinstance(value, bool))
        if not ok:
            raise TrainingCheckpointError(f"meta.{key} has a wrong type or range: {_short(value)}")
    restarts = meta.get("restarts", [])
    if not all(
        isinstance(r, list) and len(r) == 2 and all(_is_int(v) and 0 <= v <= LIMIT for v in r) for r in restarts
    ):
        raise TrainingCheckpointError(
            f"meta.restarts must be a list of [start, decay] step pairs, got {_short(restarts)}"
        )


def check_state(state: Any, epochs: int, steps_per_epoch: int, language: bool) -> dict[str, Any]:
    """The progress counters: their keys, types and ranges, consistent with the plan of
    ``epochs`` epochs of ``steps_per_epoch`` batches (a language model skips batches of
    padding only, so its step count may be lower)."""
    if not isinstance(state, dict) or not STATE_KEYS <= set(state) <= STATE_KEYS | OPTIONAL_STATE_KEYS:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise TrainingCheckpointError(f"the checkpoint's progress section is corrupt: keys {keys}")
    try:
        epoch = _count(state["epoch"], "state.epoch", epochs)
        batch = _count(state["batch"], "state.batch", steps_per_epoch - 1)
        step = _count(state["step"], "state.step")
        for key in OPTIONAL_STATE_KEYS & set(state):
            _count(state[key], f"state.{key}")
    except TrainingCheckpointError as exc:
        raise TrainingCheckpointError(f"the checkpoint's progress section is corrupt: {exc}") from None
    done = epoch * steps_per_epoch + batch
    if epoch == epochs and batch:
        raise TrainingCheckpointError(f"state.batch={batch} lies after the last of the checkpoint's {epochs} epochs")
    if step > done or (not language and step != done):
        raise TrainingCheckpointError(
            f"state.step={step} does not fit state.epoch={epoch} and state.batch={batch} "
            f"({steps_per_epoch} batches an epoch: {done} batches done)"
        )
    check_tally(state["tally"])
    return state


def check_tally(tally: Any) -> None:
    """The running sums of the epoch in progress (:class:`~binedu.metrics.Tally`)."""
    ok = isinstance(tally, dict) and set(tally) == {"nll", "correct", "count"}
    ok = ok and _is_number(tally["nll"]) and tally["nll"] >= 0
    ok = (
        ok
        and _is_int(tally["correct"])
        and _is_int(tally["count"])
        and 0 <= tally["correct"] <= tally["count"] <= LIMIT
    )
    if not ok:
        raise TrainingCheckpointError(f"the checkpoint's progress section is corrupt: state.tally={_short(tally)}")


def _numbers(values: Any, name: str, low: float | None = None) -> list[float]:
    if not isinstance(values, list) or not all(_is_number(v) and (low is None or v >= low) for v in values):
        raise TrainingCheckpointError(
            f"history.{name} must be a list of finite numbers{'' if low is None else ' >= 0'}"
        )
    return values


def _steps(values: Any, name: str) -> list[int]:
    if not isinstance(values, list) or not all(_is_int(v) and 0 <= v <= LIMIT for v in values):
        raise TrainingCheckpointError(f"history.{name} must be a list of step numbers")
    if any(b <= a for a, b in pairwise(values)):
        raise TrainingCheckpointError(f"history.{name} must be increasing")
    return values


def _aligned(table: Any, name: str, length: int, exact: bool = True) -> None:
    if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
        raise TrainingCheckpointError(f"history.{name} must map layer names to lists")
    for key, values in table.items():
        _numbers(values, f"{name}[{key!r}]", 0.0)
        if len(values) > length or (exact and len(values) != length):
            raise TrainingCheckpointError(f"history.{name}[{key!r}] holds {len(values)} values for {length} records")


def check_history(history: History, state: dict[str, Any]) -> None:
    """Every list of the history of its type, the aligned ones of equal length, and
    this run's last ``state.step`` steps numbered from ``state.step_offset``."""
    steps = _steps(history.steps, "steps")
    if len(_numbers(history.loss, "loss")) != len(steps) or len(_numbers(history.lr, "lr", 0.0)) != len(steps):
        raise TrainingCheckpointError("history.steps, history.loss and history.lr differ in length")
    done, offset = state["step"], state.get("step_offset", 0)
    if done and steps[-done:] != list(range(offset, offset + done)):
        raise TrainingCheckpointError(f"history.steps does not end with the {done} steps the progress section counts")
    flips = _steps(history.flip_steps, "flip_steps")
    for name in ("flip_ratio", "changed_since_init"):
        if len(_numbers(getattr(history, name), name, 0.0)) != len(flips):
            raise TrainingCheckpointError(f"history.{name} and history.flip_steps differ in length")
    _aligned(history.layer_flips, "layer_flips", len(flips))
    _aligned(history.grad_norms, "grad_norms", len(_steps(history.grad_steps, "grad_steps")), exact=False)
    if not isinstance(history.epochs, list) or not isinstance(history.meta, dict):
        raise TrainingCheckpointError("history.epochs must be a list and history.meta an object")
    for record in history.epochs:
        ok = isinstance(record, dict) and _is_int(record.get("epoch")) and _is_int(record.get("step"))
        ok = ok and record.get("partial", True) is True
        # a metric may be infinite (a perplexity that overflows), never NaN
        metrics = [v for k, v in record.items() if k not in ("epoch", "step", "partial")]
        ok = ok and all((isinstance(v, float) or _is_int(v)) and not math.isnan(v) for v in metrics)
        if not ok:
            raise TrainingCheckpointError(f"history.epochs holds a malformed record: {_short(record)}")


def check_optimizer(
    saved: dict[str, Any] | None, optimizer: torch.optim.Optimizer, model: nn.Module, steps: int
) -> None:
    """The optimizer section's group (keys, ``lr``, ``params``) and every parameter's
    state; the values of the group's hyperparameters are compared by
    :func:`~binedu.train_resume.resume_mismatches`."""
    if saved is None:
        raise TrainingCheckpointError("it has no optimizer section (a training checkpoint written by fit has one)")
    (group,) = saved["param_groups"]  # one group: resume_mismatches checked it
    (fresh,) = optimizer.state_dict()["param_groups"]
    unknown = sorted(set(group) - set(fresh))
    missing = sorted(set(fresh) - set(group) - IMPLEMENTATION_FLAGS)
    if unknown or missing:
        raise TrainingCheckpointError(f"the optimizer group has unknown keys {unknown} or lacks {missing}")
    if not _is_number(group["lr"]) or group["lr"] < 0:
        raise TrainingCheckpointError(f"optimizer lr must be a finite number >= 0, got {_short(group['lr'])}")
    params = list(model.parameters())
    if group["params"] != list(range(len(params))):
        raise TrainingCheckpointError(f"optimizer params must be 0..{len(params) - 1}, got {_short(group['params'])}")
    moments = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if fresh.get("amsgrad") else set())
    state = saved["state"]
    if not isinstance(state, dict) or not all(_is_int(i) and 0 <= i < len(params) for i in state):
        raise TrainingCheckpointError("the optimizer state must be indexed by parameter numbers")
    for index, entries in state.items():
        where = f"optimizer state of parameter {index}"
        if not isinstance(entries, dict) or set(entries) != moments | {"step"}:
            keys = sorted(entries) if isinstance(entries, dict) else type(entries).__name__
            raise TrainingCheckpointError(f"{where} holds {keys}, expected {sorted(moments | {'step'})}")
        step = entries["step"]
        if isinstance(step, torch.Tensor):
            if step.shape != () or not step.is_floating_point():
                raise TrainingCheckpointError(
                    f"{where}: step must be a float scalar tensor, got {step.dtype} {list(step.shape)}"
                )
            step = float(step)
        if not _is_number(step) or not 0 <= step <= steps or step != int(step):
            raise TrainingCheckpointError(
                f"{where}: step must count at most the {steps} steps done, got {_short(step)}"
            )
        param = params[index]
        for key in sorted(moments):
            value = entries[key]
            if not isinstance(value, torch.Tensor) or value.shape != param.shape or value.dtype != param.dtype:
                got = f"{value.dtype} {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise TrainingCheckpointError(
                    f"{where}: {key} is {got}, the parameter is {param.dtype} {list(param.shape)}"
                )
            if key != "exp_avg" and bool((value < 0).any()):
                raise TrainingCheckpointError(f"{where}: {key} holds negative values (a second moment is >= 0)")


_RNG = re.compile(r"(?:rank(\d+)/)?rng/(cpu|cuda/(\d+))")


def check_tensors(saved: TrainingCheckpoint, model: nn.Module, world_size: int) -> None:
    """The model's parameters by name, shape and dtype; the bit snapshots; the random-
    number states of every process; no other tensor."""
    expected = model.state_dict()
    state = saved.model_state
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise TrainingCheckpointError(f"it holds another model (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, t in expected.items():
        if state[name].shape != t.shape or state[name].dtype != t.dtype:
            raise TrainingCheckpointError(
                f"it holds another model: {name!r} is {state[name].dtype} {list(state[name].shape)}, "
                f"this model's is {t.dtype} {list(t.shape)}"
            )
    bits = {k: v.shape for k, v in binary_bits(model).items()}
    cpu_size = torch.get_rng_state().shape
    snapshots: dict[str, set[str]] = {"bits/": set(), "init_bits/": set()}
    ranks: set[int] = set()
    for name, t in saved.tensors.items():
        prefix = next((p for p in snapshots if name.startswith(p)), None)
        if prefix is not None:
            key = name[len(prefix) :]
            if key not in bits:
                raise TrainingCheckpointError(
                    f"tensor {name!r} is not a bit snapshot of this model's binary parameters"
                )
            if t.dtype != torch.uint8 or t.shape != bits[key] or bool((t > 1).any()):
                raise TrainingCheckpointError(
                    f"tensor {name!r} must hold the 0/1 bits of {key} as uint8 {list(bits[key])}, got {t.dtype} {list(t.shape)}"
                )
            snapshots[prefix].add(key)
            continue
        match = _RNG.fullmatch(name)
        rank = int(match.group(1) or 0) if match else -1
        if match is None or not 0 <= rank < world_size or (match.group(1) is not None and rank == 0):
            raise TrainingCheckpointError(f"unexpected tensor {name!r}")
        size_ok = t.shape == cpu_size if match.group(2) == "cpu" else (t.dim() == 1 and 0 < t.numel() <= 64)
        if t.dtype != torch.uint8 or not size_ok:
            raise TrainingCheckpointError(f"tensor {name!r} is not a random-number state ({t.dtype} {list(t.shape)})")
        if match.group(2) == "cpu":
            ranks.add(rank)
    if snapshots["bits/"] != set(bits) or snapshots["init_bits/"] not in (set(), set(bits)):
        absent = sorted(set(bits) - snapshots["bits/"])[:3]
        raise TrainingCheckpointError(
            f"the bit snapshots do not cover this model's binary parameters (missing {absent})"
        )
    if ranks != set(range(world_size)):
        raise TrainingCheckpointError(f"random-number states of {world_size} process(es) expected, found {len(ranks)}")


def check_checkpoint(
    saved: TrainingCheckpoint, model: nn.Module, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
    world_size: int,
) -> dict[str, Any]:  # fmt: skip
    """Every check of this module; returns the progress counters."""
    check_meta(saved.meta)
    language = saved.meta.get("task") == "language"
    state = check_state(saved.state, int(saved.meta.get("epochs", 0)), steps_per_epoch, language)
    check_history(saved.history, state)
    check_optimizer(saved.optimizer_state, optimizer, model, state["step"])
    check_tensors(saved, model, world_size)
    return state
