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

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm.auto import tqdm

from .base import BinaryModule
from .distributed import EpochBatches, local_device, setup
from .history import History
from .metrics import Tally, dataset_len, split_batch, task_of
from .precision import autocast
from .schedule import learning_rate
from .train_checkpoint import (
    TrainingCheckpoint,
    TrainingCheckpointError,
    read_training_checkpoint,
    save_training_checkpoint,
)

__all__ = [
    "fit",
    "format_record",
    "RECIPES",
    "recipe",
    "resolve_device",
    "make_optimizer",
    "binary_bits",
    "flip_ratio",
    "layer_flip_ratios",
    "layer_grad_norms",
    "TrainingDiverged",
    "check_hyperparameters",
    "resume_mismatches",
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


def binary_layers(model: nn.Module) -> dict[str, BinaryModule]:
    """The binedu layers of ``model`` by module name (``"layers.0"``, ``"blocks.1.ff1"``)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, BinaryModule)}


def binary_bits(model: nn.Module) -> dict[str, torch.Tensor]:
    """The Eq. 1 bits of every latent parameter of every binary layer, as bool tensors
    keyed ``"<layer>.<parameter>"``; empty for a float model."""
    return {
        f"{layer}.{pname}": bits.bool()
        for layer, m in binary_layers(model).items()
        if m.binary
        for pname, bits in m.binary_parameters().items()
    }


def flip_ratio(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Fraction of all bits that differ between two :func:`binary_bits` snapshots."""
    if before.keys() != after.keys():
        raise ValueError("the two bit snapshots come from different models")
    total = sum(b.numel() for b in before.values())
    if total == 0:
        return 0.0
    changed = torch.stack([(before[k] != after[k]).sum() for k in before]).sum()
    return float(changed) / total


def layer_flip_ratios(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per binary layer, the fraction of its bits (all its parameters together) that
    differ between two :func:`binary_bits` snapshots; keys are the layer names."""
    if before.keys() != after.keys():
        raise ValueError("the two bit snapshots come from different models")
    changed: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}
    for key in before:
        layer = key.rsplit(".", 1)[0]
        changed.setdefault(layer, []).append((before[key] != after[key]).sum())
        sizes[layer] = sizes.get(layer, 0) + before[key].numel()
    counts = {layer: torch.stack(c).sum() for layer, c in changed.items()}
    return {layer: float(n) / max(sizes[layer], 1) for layer, n in counts.items()}


def layer_grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradients of each binedu layer's parameters (its normalization's
    scale and shift included), by layer name; layers without gradients are left out."""
    names, norms = [], []
    for name, layer in binary_layers(model).items():
        grads = [p.grad for p in layer.parameters() if p.grad is not None]
        if grads:
            names.append(name)
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    return dict(zip(names, torch.stack(norms).tolist(), strict=True)) if norms else {}


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a function of (seed, epoch) only, so a resumed run
    sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def _rng_tensors() -> dict[str, torch.Tensor]:
    states = {"rng/cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return states


def _set_rng(tensors: dict[str, torch.Tensor]) -> None:
    if "rng/cpu" in tensors:
        torch.set_rng_state(tensors["rng/cpu"])
    cuda = [tensors[f"rng/cuda/{i}"] for i in range(torch.cuda.device_count()) if f"rng/cuda/{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)


class TrainingDiverged(ValueError):
    """The loss or a latent parameter stopped being a finite number (too high a learning
    rate, or a model without normalization); the checkpoint written before it is kept."""


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
    for name, steps in (("warmup_steps", warmup_steps), ("decay_steps", decay_steps), ("checkpoint_every", checkpoint_every)):
        if steps is not None and (not isinstance(steps, int) or steps < 0):
            problems.append(f"{name} must be an integer >= 0, got {steps!r}")
    if problems:
        raise ValueError("; ".join(problems))


# What a resumed run must share with the checkpoint: the data order, the optimizer and
# its schedule (the model configuration is compared as a whole).
RESUME_SETTINGS = (
    "batch_size", "seed", "train_size", "pad_id", "optimizer", "lr", "weight_decay", "warmup_steps", "decay_steps",
    "min_lr_ratio",
)  # fmt: skip
OPTIMIZER_HYPERPARAMETERS = ("betas", "eps", "weight_decay", "amsgrad")


def _config_dict(model: nn.Module) -> dict[str, Any] | None:
    """The model's configuration as a dict (a binedu model's ``config.to_dict()``), or
    ``None`` for a model without one."""
    config: Any = getattr(model, "config", None)
    return None if config is None else config.to_dict()


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
    config = _config_dict(model)
    if config is not None:
        old, new = _plain(saved.config), _plain(config)
        if not isinstance(old, dict):
            raise TrainingCheckpointError(f"the checkpoint's model configuration is not a dict: {old!r}")
        diffs += [f"model.{k}={old.get(k)!r} (now {new.get(k)!r})" for k in sorted(old | new) if old.get(k) != new.get(k)]
    meta = saved.meta if isinstance(saved.meta, dict) else {}
    for key in RESUME_SETTINGS:
        if meta.get(key) != settings[key]:
            hint = " (decay_steps=None follows epochs: pass the checkpoint's value)" if key == "decay_steps" else ""
            diffs.append(f"{key}={meta.get(key)!r} (now {settings[key]!r}){hint}")
    if saved.optimizer_state is not None:
        try:
            (old_group,) = saved.optimizer_state["param_groups"]
            (new_group,) = optimizer.state_dict()["param_groups"]
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingCheckpointError(f"the checkpoint's optimizer section is corrupt ({exc!r})") from exc
        for key in OPTIMIZER_HYPERPARAMETERS:
            if _plain(old_group.get(key)) != _plain(new_group.get(key)):
                diffs.append(f"optimizer.{key}={old_group.get(key)!r} (now {new_group.get(key)!r})")
    return diffs


def _check_progress(state: Any) -> dict[str, Any]:
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


def _check_finite(model: nn.Module, loss: float, step: int, saved_step: int | None) -> None:
    """Raise :class:`TrainingDiverged` naming ``step`` if the loss or a latent parameter is
    not finite (then nothing is saved: the last checkpoint stays the good one)."""
    problem = None
    if not math.isfinite(loss):
        problem = f"the loss is {loss}"
    elif not bool(torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()):
        bad = [n for n, p in model.named_parameters() if not bool(p.detach().isfinite().all())]
        problem = f"latent parameters are NaN or infinite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})"
    if problem is not None:
        kept = "no checkpoint was written yet" if saved_step is None else f"the checkpoint of step {saved_step} is kept"
        raise TrainingDiverged(f"training diverged at step {step}: {problem}; {kept}. Try a lower learning rate")


def _epoch_record(epoch: int, step: int, tally: Tally, val_metrics: dict[str, float] | None, language: bool) -> dict:
    record: dict[str, Any] = {"epoch": epoch, "step": step}
    if tally.count:
        record |= {f"train_{k}": v for k, v in tally.metrics(language).items()}
    if val_metrics:
        record |= {f"val_{k}": v for k, v in val_metrics.items()}
    return record


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
      run folder there, so a refused run changes nothing on disk.

    Resuming compares the whole model configuration, the data order (batch size, seed,
    training-set size) and the optimizer with its schedule against what the checkpoint
    recorded, and refuses with a ``ValueError`` that names every field that differs.
    Non-finite hyperparameters are refused up front; a step whose loss or latent
    parameters are not finite stops the run with :class:`TrainingDiverged` naming the
    step, before anything is saved.
    """
    if epochs < 1 or batch_size < 1 or record_every < 1:
        raise ValueError(f"epochs, batch_size and record_every must be >= 1, got {epochs}, {batch_size}, {record_every}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if dataset_len(train) == 0:
        raise ValueError("the training set is empty")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    check_hyperparameters(lr, weight_decay, min_lr_ratio, warmup_steps, decay_steps, checkpoint_every)
    task = task_of(model)
    language = task == "language"
    loss_pad = pad_id if language else None
    device = resolve_device(device)
    procs = setup(device)  # torchrun's process group; one process: nothing to do
    device = local_device(device, procs)
    amp = autocast(precision, device)
    model.to(device)
    net = procs.wrap(model, device)  # DistributedDataParallel under torchrun, else the model
    opt = make_optimizer(model, optimizer, lr, weight_decay)
    if not procs.is_main:  # rank 0 alone shows progress and reports
        progress, on_epoch, on_start = False, None, None

    steps_per_epoch = math.ceil(dataset_len(train) / (batch_size * procs.world_size))
    planned = epochs * steps_per_epoch
    total = planned if max_steps is None else min(planned, max_steps)
    decay = max(planned - warmup_steps, 0) if decay_steps is None else decay_steps
    settings = dict(
        task=task, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
        warmup_steps=warmup_steps, decay_steps=decay, min_lr_ratio=min_lr_ratio, seed=seed, pad_id=pad_id,
        record_every=record_every, train_size=dataset_len(train),
    )  # fmt: skip
    if procs.active:
        settings["world_size"] = procs.world_size

    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "tally": Tally().to_dict()}
    bits = binary_bits(model)
    init_bits = bits  # History.changed_since_init compares with these
    history = history if history is not None else History()
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        try:
            saved = read_training_checkpoint(checkpoint)
            diffs = resume_mismatches(saved, model, settings, opt)
            if diffs:
                raise ValueError(f"cannot resume {checkpoint}: this run differs from it in " + "; ".join(diffs))
            state = _check_progress(saved.state)
        except (KeyError, TypeError, AttributeError, IndexError, TrainingCheckpointError) as exc:
            # read_training_checkpoint lets some malformed documents through (e.g. no "scalars")
            raise TrainingCheckpointError(f"cannot resume {checkpoint}: {exc}") from exc
        try:
            model.load_state_dict(saved.model_state)
        except RuntimeError as exc:
            raise ValueError(f"cannot resume {checkpoint}: it holds another model ({exc})") from exc
        if saved.optimizer_state is not None:
            try:
                opt.load_state_dict(saved.optimizer_state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                raise TrainingCheckpointError(f"cannot resume {checkpoint}: corrupt optimizer section ({exc!r})") from exc
        history = saved.history
        if history.epochs and history.epochs[-1].get("partial") and state["step"] < total:
            history.epochs.pop()  # the stopped epoch continues now
        bits = {k[len("bits/") :]: v.to(device).bool() for k, v in saved.tensors.items() if k.startswith("bits/")}
        init = {k[len("init_bits/") :]: v.to(device).bool() for k, v in saved.tensors.items() if k.startswith("init_bits/")}
        init_bits = init or bits  # an older checkpoint without them: count from the resumed bits
        if saved.meta.get("world_size", 1) != procs.world_size:
            raise ValueError(
                f"cannot resume {checkpoint}: it ran on {saved.meta.get('world_size', 1)} processes, not {procs.world_size}"
            )
        _set_rng(procs.own_rng(saved.tensors))
    else:
        torch.manual_seed(procs.seed(seed))
        # appending to an earlier run's history: number steps and epochs after its own
        state["step_offset"] = history.steps[-1] + 1 if history.steps else 0
        state["epoch_offset"] = sum(1 for e in history.epochs if not e.get("partial"))
    history.meta.update(settings, config=_config_dict(model))

    saved_step = state["step"] if resume and checkpoint is not None and Path(checkpoint).is_file() else None

    def save() -> None:
        nonlocal saved_step
        if checkpoint is not None:
            extra = {f"bits/{k}": v.to(torch.uint8) for k, v in bits.items()} | procs.gather_rng(_rng_tensors())
            extra |= {f"init_bits/{k}": v.to(torch.uint8) for k, v in init_bits.items()}
            if procs.is_main:
                save_training_checkpoint(checkpoint, model, opt, state=state, history=history, tensors=extra, meta=settings)
            procs.barrier()  # no rank runs ahead of a checkpoint that is not on disk yet
            saved_step = state["step"]

    if on_start is not None:
        on_start()

    tally = Tally(**state["tally"])
    step_offset, epoch_offset = state.get("step_offset", 0), state.get("epoch_offset", 0)
    bar = tqdm(total=total, initial=state["step"], disable=not progress, unit="step", dynamic_ncols=True)
    batches = EpochBatches(dataset_len(train), batch_size, seed, _epoch_order, procs.rank, procs.world_size)
    loader = DataLoader(
        train, batch_sampler=batches, collate_fn=default_collate, num_workers=num_workers,
        pin_memory=device.type == "cuda", persistent_workers=num_workers > 0, generator=torch.Generator(),
    )  # fmt: skip
    unit = "tok/s" if language else "img/s"
    try:
        while state["epoch"] < epochs and state["step"] < total:
            epoch = state["epoch"]
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            batches.set_epoch(epoch, start=state["batch"])
            clock, counted = time.perf_counter(), tally.count
            for batch in loader:
                if state["step"] >= total:
                    break
                x, y = (t.to(device, non_blocking=True) for t in split_batch(batch, task))
                state["batch"] += 1
                borrowed = batches.borrowed(state["batch"] - 1)  # under torchrun, a stand-in batch
                if language and pad_id is not None and not procs.has_targets(y, pad_id, borrowed):
                    continue  # a batch of padding only: nothing to learn
                step = state["step"]
                model.train()
                with amp():
                    logits = net(x)
                    loss, loss_value = procs.loss(logits, y, loss_pad, tally, borrowed)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                rate = learning_rate(step, lr, warmup_steps, decay, min_lr_ratio)
                for group in opt.param_groups:
                    group["lr"] = rate
                record = (step + 1) % record_every == 0
                if record:
                    norms = layer_grad_norms(model)
                opt.step()
                _check_finite(model, loss_value, step_offset + step + 1, saved_step)
                history.steps.append(step_offset + step)
                history.loss.append(loss_value)
                history.lr.append(rate)
                if record:
                    history.grad_steps.append(step_offset + step)
                    for name, value in norms.items():
                        history.grad_norms.setdefault(name, []).append(value)
                    if bits:
                        now = binary_bits(model)
                        history.flip_steps.append(step_offset + step)
                        history.flip_ratio.append(flip_ratio(bits, now))
                        for layer, ratio in layer_flip_ratios(bits, now).items():
                            history.layer_flips.setdefault(layer, []).append(ratio)
                        history.changed_since_init.append(flip_ratio(init_bits, now))
                        bits = now
                state["step"] = step + 1
                state["tally"] = tally.to_dict()
                bar.update(1)
                speed = (tally.count - counted) / max(time.perf_counter() - clock, 1e-9)
                bar.set_postfix({"loss": f"{loss_value:.4f}", "lr": f"{rate:.2e}", unit: f"{speed:,.0f}"}, refresh=False)
                if checkpoint_every and state["step"] % checkpoint_every == 0 and state["batch"] < len(batches):
                    save()  # mid-epoch; epoch ends save below
            finished = state["batch"] >= len(batches)
            with amp():
                val_metrics = None if val is None else procs.evaluate(model, val, eval_batch_size or batch_size, pad_id, device)
            record = _epoch_record(epoch_offset + epoch + 1, step_offset + state["step"], tally, val_metrics, language)
            if finished:
                state.update(epoch=epoch + 1, batch=0, tally=Tally().to_dict())
                tally = Tally()
            else:
                record["partial"] = True
            history.epochs.append(record)
            if on_epoch is not None:
                on_epoch(record)
            elif progress:
                bar.write(format_record(record))
            save()
    finally:
        bar.close()
    return history


def format_record(record: dict[str, Any]) -> str:
    """``epoch 3 step 120: train_loss=0.5123 val_acc=0.9112 ...``."""
    values = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k not in ("epoch", "step", "partial"))
    suffix = " (partial epoch)" if record.get("partial") else ""
    return f"epoch {record['epoch']} step {record['step']}: {values}{suffix}"
