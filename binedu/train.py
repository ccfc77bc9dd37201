"""Training loop for both paper models: ``fit(model, train, val)``.

The loop is the paper's (Tables 1 and 4): cross-entropy, Adam or AdamW, a warmup-then-
decay learning rate (:mod:`binedu.schedule`). The optimizer updates the float32 latent
parameters; every forward pass uses their bits (Eq. 1, Alg. 1). Next to the usual
losses the :class:`~binedu.History` records what the notebooks plot about binary
training: how many bits flip between records and the gradient norm of each layer.

Runs are reproducible: the same seed gives the same history, and a run stopped and
resumed from its checkpoint gives bit-identical parameters and history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from .data.workers import die_with_parent
from .distributed import EpochBatches, local_device, setup
from .history import History
from .metrics import dataset_len, split_batch, task_of
from .precision import autocast
from .train_callbacks import Callback, Callbacks, Step
from .train_guard import DivergenceGuard, TrainingDiverged
from .train_progress import ProgressBar
from .train_record import HistoryRecorder, end_epoch, format_record
from .train_resume import resume_mismatches, resume_on_every_rank
from .train_schedule import Schedule
from .train_state import TrainRun, model_config
from .train_statistics import LayerStatistics, binary_bits, flip_ratio, layer_flip_ratios, layer_grad_norms
from .train_writer import CheckpointWriter

__all__ = [
    "fit",
    "format_record",
    "RECIPES",
    "recipe",
    "MAX_SEED",
    "resolve_device",
    "make_optimizer",
    "binary_bits",
    "flip_ratio",
    "layer_flip_ratios",
    "layer_grad_norms",
    "TrainingDiverged",
    "check_hyperparameters",
    "resume_mismatches",
    "Callback",
    "Step",
    "TrainRun",
]

# Training hyperparameters per (model kind, config name). The paper's presets follow
# Tables 1 and 4; "tiny" ones are tuned for the offline data on a CPU (the recipes of
# bench/bench_results.py). ``min_lr_ratio`` keeps the paper presets learning after the
# 1100 decay steps (see binedu.schedule).
RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("image", "paper-3x3"): dict(
        optimizer="adam", lr=1e-4, batch_size=64, epochs=1000, warmup_steps=20, decay_steps=1100, min_lr_ratio=0.1
    ),
    ("image", "paper-5x5"): dict(
        optimizer="adam", lr=1e-4, batch_size=64, epochs=1000, warmup_steps=20, decay_steps=1100, min_lr_ratio=0.1
    ),
    ("image", "paper-3x3-as-printed"): dict(
        optimizer="adam", lr=1e-4, batch_size=64, epochs=1000, warmup_steps=20, decay_steps=1100, min_lr_ratio=0.1
    ),
    ("image", "paper-5x5-as-printed"): dict(
        optimizer="adam", lr=1e-4, batch_size=64, epochs=1000, warmup_steps=20, decay_steps=1100, min_lr_ratio=0.1
    ),
    ("image", "tiny"): dict(optimizer="adam", lr=3e-3, batch_size=32, epochs=15, warmup_steps=20, decay_steps=None),
    ("language", "paper-small"): dict(
        optimizer="adamw", lr=1e-5, batch_size=32, epochs=100, warmup_steps=0, decay_steps=0, weight_decay=0.01
    ),
    ("language", "paper-large"): dict(
        optimizer="adamw", lr=1e-5, batch_size=32, epochs=100, warmup_steps=0, decay_steps=0, weight_decay=0.01
    ),
    ("language", "tiny"): dict(optimizer="adamw", lr=1e-2, batch_size=32, epochs=1, warmup_steps=20, decay_steps=None),
}


# Seeds of the data order, the initialization and dropout: the per-epoch order seeds a
# generator with seed * 1_000_003 + epoch and torchrun rank r uses seed + 1_000_003 * r,
# which must stay below 2**64; 2**32 - 1 (NumPy's classic bound) leaves room for both.
MAX_SEED = 2**32 - 1


def recipe(kind: str, config: str) -> dict[str, Any]:
    """The training hyperparameters of a named configuration (a copy of ``RECIPES``);
    unknown names get the tiny recipe of their kind."""
    return dict(RECIPES.get((kind, config), RECIPES[(kind, "tiny")]))


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}") from exc
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {str(device)!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for but Metal is not available")
    return device


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (Table 1, image model) or AdamW (Table 4, language model) over the latent
    parameters."""
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; use one of {sorted(optimizers)}")
    params = list(model.parameters())
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (a packed model cannot be trained)")
    return optimizers[name](params, lr=lr, weight_decay=weight_decay)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a function of (seed, epoch) only, so a resumed run
    sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def check_hyperparameters(
    lr: float,
    weight_decay: float = 0.0,
    min_lr_ratio: float = 0.0,
    warmup_steps: int = 0,
    decay_steps: int | None = None,
    checkpoint_every: int | None = None,
) -> None:
    """Raise a ``ValueError`` naming each training hyperparameter that is not a finite
    number in its range, before anything is trained or written (``lr=inf`` would turn
    every latent into NaN without any other error)."""
    problems = []
    for name, value, low, high in (
        # lr <= 1e6: far above any useful rate, and Adam's step (lr / bias correction) overflows float32 near 1e37
        ("lr", lr, 0.0, 1e6), ("weight_decay", weight_decay, 0.0, None), ("min_lr_ratio", min_lr_ratio, 0.0, 1.0),
    ):  # fmt: skip
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < low or (high and value > high):
            bounds = f"in [{low:g}, {high:g}]" if high else f">= {low:g}"
            problems.append(f"{name} must be a finite number {bounds}, got {value!r}")
    if lr == 0:
        problems.append("lr must be > 0, got 0")
    for name, steps in (
        ("warmup_steps", warmup_steps),
        ("decay_steps", decay_steps),
        ("checkpoint_every", checkpoint_every),
    ):
        if steps is not None and (not isinstance(steps, int) or steps < 0):
            problems.append(f"{name} must be an integer >= 0, got {steps!r}")
    if problems:
        raise ValueError("; ".join(problems))


def fit(
    model: nn.Module,
    train: Dataset,
    val: Dataset | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    warmup_steps: int = 20,
    decay_steps: int | None = None,
    min_lr_ratio: float = 0.0,
    seed: int = 0,
    max_steps: int | None = None,
    pad_id: int | None = 0,
    record_every: int = 10,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    history: History | None = None,
    eval_batch_size: int | None = None,
    num_workers: int = 0,
    precision: str = "fp32",
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[], None] | None = None,
    callbacks: Sequence[Callback] = (),
    data_id: str | None = None,
) -> History:
    """Train ``model`` on ``train`` and return its :class:`~binedu.History`.

    The task comes from the model: a language model (``config.kind == "language"``)
    learns next-token prediction on items that are ``(max_len + 1,)`` id tensors padded
    with ``pad_id`` (padding never counts, see :mod:`binedu.metrics`); any other model
    classifies ``(input, label)`` items.

    - ``optimizer``: ``"adam"`` (Table 1) or ``"adamw"`` (Table 4), peak rate ``lr``.
    - Schedule (:func:`binedu.schedule.learning_rate`): linear warmup over
      ``warmup_steps``, cosine decay to ``min_lr_ratio * lr`` over ``decay_steps``
      (``None``: the rest of the ``epochs``; ``0``: no decay).
    - ``max_steps`` stops after that many optimizer steps in all (the schedule still
      follows ``epochs``, so a stopped run resumes exactly); a stopped epoch is recorded
      with ``"partial": True``.
    - Every ``record_every`` steps the history gets the fraction of bits flipped since
      the previous record (binary models) and each layer's gradient norm.
    - ``checkpoint``: a file saved after every epoch, every ``checkpoint_every`` steps
      if given, and at the end (latent floats, optimizer, RNG and progress; see
      :mod:`binedu.train_checkpoint`); with
      ``resume=True`` an existing one is loaded first and training continues where it
      stopped, giving the same result as an uninterrupted run (same arguments needed).
    - ``device``: ``None``/``"auto"`` picks CUDA when available.
    - ``seed`` fixes the data order and dropout: the same seed gives the same history.
    - ``progress`` shows a ``tqdm.auto`` bar (terminal or JupyterLab) with one line per
      epoch under it, and the throughput (images/s or real tokens/s); ``on_epoch``, if
      given, receives each epoch record instead.
    - ``num_workers`` data-loading processes (persistent across epochs; memory pinned
      for a GPU). ``precision="bf16"``: float activations in bfloat16 under autocast, the
      latent weights and the bits unchanged (:mod:`binedu.precision`).
    - Under ``torchrun`` (see :mod:`binedu.distributed`) each process trains on its slice
      of every global batch with DistributedDataParallel: ``batch_size`` is per process,
      the effective batch is ``batch_size x world_size``; metrics are all-reduced and only
      rank 0 writes the checkpoint, shows progress and calls ``on_epoch``.
    - ``on_start`` is called once every check has passed (arguments, and with
      ``resume`` the checkpoint), before the first step: the command line writes its
      run folder there, so a refused run changes nothing on disk. A resumed run that
      has nothing left to do (its epochs, or ``max_steps``, are done) returns the
      checkpoint's history at once, without calling it.
    - Training longer: resuming with more ``epochs`` than the checkpoint planned
      works; when the decay follows the epochs (``decay_steps=None``) the extra steps
      get a warm restart of the cosine (:mod:`binedu.train_schedule`).
    - ``data_id``: the identity of the training data (:func:`binedu.data_identity.data_id`);
      stored in the checkpoint with ``precision``, and compared with both on resume.
    - ``callbacks``: further parts of the loop (:class:`~binedu.train_callbacks.Callback`:
      a per-step hook, an extra loss term, ...), called before the built-in ones at
      every hook.

    The loop is short; its parts are named callbacks (:mod:`binedu.train_callbacks`):
    the resume step (:mod:`binedu.train_resume`), the divergence guard
    (:mod:`binedu.train_guard`), the history recorder (:mod:`binedu.train_record`),
    the per-layer statistics (:mod:`binedu.train_statistics`), the progress bar
    (:mod:`binedu.train_progress`) and the checkpoint writer
    (:mod:`binedu.train_writer`).

    Resuming compares the whole model configuration, the data (its order: batch size,
    seed, training-set size; its identity, ``data_id``), the precision and the optimizer
    with its schedule against what the checkpoint recorded (a checkpoint of an older
    binedu without a data identity or a precision is not compared on them), checks its
    whole document and every tensor (:mod:`binedu.train_validate`), and refuses with a ``ValueError`` that names every field that differs.
    Non-finite hyperparameters are refused up front; a step whose loss or latent
    parameters are not finite stops the run with :class:`TrainingDiverged` naming the
    step, before anything is saved.
    """
    _check_arguments(epochs, batch_size, record_every, max_steps, dataset_len(train), resume, checkpoint, seed)
    check_hyperparameters(lr, weight_decay, min_lr_ratio, warmup_steps, decay_steps, checkpoint_every)
    plan = dict(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
                warmup_steps=warmup_steps, decay_steps=decay_steps, min_lr_ratio=min_lr_ratio, seed=seed,
                pad_id=pad_id, record_every=record_every, max_steps=max_steps)  # fmt: skip
    plan |= {"precision": precision} | ({} if data_id is None else {"data_id": data_id})
    run = start_run(model, dataset_len(train), plan, device, precision, history)
    if not run.procs.is_main:  # rank 0 alone shows progress and reports
        progress, on_epoch, on_start = False, None, None
    resumed = resume_on_every_rank(run, Path(checkpoint)) if resume and checkpoint is not None else None
    if resumed is not None:
        bits, init_bits, _ = resumed
        if not run.unfinished():
            return run.history  # nothing left to do: nothing is called, trained or written
    else:
        bits, init_bits = start_fresh(run, seed)
    run.history.meta.update(run.settings, config=model_config(model))
    hooks = Callbacks(
        [*callbacks, DivergenceGuard(), HistoryRecorder(on_epoch), LayerStatistics(bits, init_bits),
         ProgressBar(progress, write_epochs=on_epoch is None)]
    )  # fmt: skip
    if checkpoint is not None:
        hooks.parts.append(CheckpointWriter(Path(checkpoint), checkpoint_every, hooks.checkpoint_tensors))
    if on_start is not None:
        on_start()

    batches = EpochBatches(dataset_len(train), batch_size, seed, _epoch_order, run.procs.rank, run.procs.world_size)
    loader = DataLoader(
        train, batch_sampler=batches, collate_fn=default_collate, num_workers=num_workers,
        pin_memory=run.device.type == "cuda", persistent_workers=num_workers > 0, generator=torch.Generator(),
        worker_init_fn=die_with_parent,  # no orphaned workers when the trainer is killed
    )  # fmt: skip
    hooks.on_train_start(run)
    try:
        while run.unfinished():
            batches.set_epoch(run.progress["epoch"], start=run.progress["batch"])
            hooks.on_epoch_start(run, run.progress["epoch"])
            for batch in loader:
                if run.progress["step"] >= run.total:
                    break
                train_step(run, batches, batch, hooks, record_every)
            hooks.on_epoch_end(run, end_epoch(run, val, eval_batch_size or batch_size))
    finally:
        hooks.on_train_end(run)
    return run.history


def _check_arguments(
    epochs: int, batch_size: int, record_every: int, max_steps: int | None, size: int, resume: bool, checkpoint: Any,
    seed: int,
) -> None:  # fmt: skip
    if epochs < 1 or batch_size < 1 or record_every < 1:
        raise ValueError(
            f"epochs, batch_size and record_every must be >= 1, got {epochs}, {batch_size}, {record_every}"
        )
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if size == 0:
        raise ValueError("the training set is empty")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")


def start_run(
    model: nn.Module, train_size: int, plan: dict[str, Any], device: str | torch.device | None, precision: str,
    history: History | None,
) -> TrainRun:  # fmt: skip
    """The :class:`~binedu.train_state.TrainRun` of ``fit``'s arguments (``plan``): the
    device and the torchrun process group, the model on it (in DistributedDataParallel
    under torchrun), its optimizer, the schedule and the settings the checkpoint
    records."""
    device = resolve_device(device)
    procs = setup(device)  # torchrun's process group; one process: nothing to do
    device = local_device(device, procs)
    amp = autocast(precision, device)
    model.to(device)
    net = procs.wrap(model, device)  # DistributedDataParallel under torchrun, else the model
    opt = make_optimizer(model, plan["optimizer"], plan["lr"], plan["weight_decay"])
    steps_per_epoch = math.ceil(train_size / (plan["batch_size"] * procs.world_size))
    planned = plan["epochs"] * steps_per_epoch
    warmup, decay = plan["warmup_steps"], plan["decay_steps"]
    decay = max(planned - warmup, 0) if decay is None else decay
    task = task_of(model)
    settings = {"task": task} | {k: v for k, v in plan.items() if k != "max_steps"}
    settings |= dict(decay_steps=decay, train_size=train_size, decay_follows_epochs=plan["decay_steps"] is None)
    settings |= dict(schedule_end=planned, restarts=[])
    if procs.active:
        settings["world_size"] = procs.world_size
    max_steps = plan["max_steps"]
    return TrainRun(
        model, net, opt, procs, device, amp, task, plan["pad_id"], settings,
        Schedule(plan["lr"], warmup, decay, plan["min_lr_ratio"]), plan["epochs"],
        planned if max_steps is None else min(planned, max_steps), steps_per_epoch,
        history=history if history is not None else History(),
    )  # fmt: skip


def start_fresh(run: TrainRun, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A run that does not resume: seed this process's random numbers (dropout), number
    the steps after those of the history it appends to; returns the bits at
    initialisation (the previous record's and the initial snapshot, the same)."""
    torch.manual_seed(run.procs.seed(seed))
    history = run.history
    run.progress["step_offset"] = history.steps[-1] + 1 if history.steps else 0
    run.progress["epoch_offset"] = sum(1 for e in history.epochs if not e.get("partial"))
    bits = binary_bits(run.model)
    return bits, bits


def train_step(run: TrainRun, batches: EpochBatches, batch: Any, hooks: Callback, record_every: int) -> Step | None:
    """One optimizer step on one batch (``None``: a batch of padding only, skipped):
    forward, loss (the task's cross-entropy plus any ``extra_loss`` of the hooks),
    backward, the warmup-then-decay rate (:mod:`binedu.schedule`), the optimizer's
    update of the latent parameters; the hooks around it (:mod:`binedu.train_callbacks`)."""
    progress = run.progress
    x, y = (t.to(run.device, non_blocking=True) for t in split_batch(batch, run.task))
    progress["batch"] += 1
    borrowed = batches.borrowed(progress["batch"] - 1)  # under torchrun, a stand-in batch
    if run.language and run.pad_id is not None and not run.procs.has_targets(y, run.pad_id, borrowed):
        return None  # nothing to learn
    index = progress["step"]
    step = Step(index, run.step_offset + index, x, y, run.schedule.rate(index), (index + 1) % record_every == 0)
    run.model.train()
    with run.amp():
        step.logits = run.net(x)
        step.loss, step.loss_value = run.procs.loss(
            step.logits, y, run.pad_id if run.language else None, run.tally, borrowed
        )
        extra = hooks.extra_loss(run, step)
    run.optimizer.zero_grad(set_to_none=True)
    (step.loss if extra is None else step.loss + extra).backward()
    hooks.on_after_backward(run, step)
    for group in run.optimizer.param_groups:
        group["lr"] = step.rate
    run.optimizer.step()
    progress.update(step=index + 1, tally=run.tally.to_dict())
    hooks.on_step_end(run, step)
    return step
