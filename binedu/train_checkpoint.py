"""Training checkpoints: latent floats, optimizer state and the run's progress, pickle-free.

One ``.safetensors`` file holds every tensor (the model's latent float32 parameters,
the optimizer's moment estimates, random-number-generator states, ...) and, in its
metadata, one JSON document with everything else (configuration, step counters,
history, optimizer hyperparameters). Nothing is ever unpickled, and files are written
atomically (:mod:`binedu.io`). This is the *training* format: it keeps the latent floats
so that training can resume bit for bit; the 1-bit deployment format is
``binedu.checkpoint.save_packed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .config import ImageConfig, LanguageConfig
from .history import History
from .io import atomic_write

__all__ = [
    "FORMAT",
    "TrainingCheckpointError",
    "TrainingCheckpoint",
    "save_training_checkpoint",
    "read_training_checkpoint",
    "is_training_checkpoint",
    "model_from_config",
    "load_trained_model",
]

FORMAT = "binedu-training-checkpoint"
VERSION = 1


class TrainingCheckpointError(ValueError):
    """A training checkpoint that cannot be read (missing, corrupt or not binedu's)."""


@dataclass
class TrainingCheckpoint:
    """What :func:`read_training_checkpoint` returns."""

    config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """A fresh model of the stored configuration holding the stored parameters."""
        model = model_from_config(self.config)
        model.load_state_dict(self.model_state)
        return model.to(device)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained :class:`~binedu.ImageClassifier` or :class:`~binedu.LanguageModel`
    for a configuration dict (its ``"kind"`` chooses which)."""
    from .image_model import ImageClassifier
    from .language_model import LanguageModel

    kinds = {ImageConfig.kind: ImageClassifier, LanguageConfig.kind: LanguageModel}
    kind = config.get("kind")
    if kind not in kinds:
        raise TrainingCheckpointError(f"unknown model kind {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind](config)


def _split_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer ``state_dict`` -> (tensors by ``optim/<param>/<key>``, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`_split_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entries in rest["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in rest["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_training_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    state: dict[str, Any] | None = None,
    history: History | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (its latent parameters), ``optimizer`` and the run's progress to
    one safetensors file, atomically. ``state`` and ``meta`` must be JSON-able;
    ``tensors`` holds any further tensors (names must not start with ``model/`` or
    ``optim/``)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise ValueError(f"{type(model).__name__} has no binedu configuration to save")
    extra = dict(tensors or {})
    clash = [k for k in extra if k.startswith(("model/", "optim/"))]
    if clash:
        raise ValueError(f"extra tensor names may not start with 'model/' or 'optim/': {clash}")
    all_tensors = {f"model/{k}": v for k, v in model.state_dict().items()} | extra
    document: dict[str, Any] = {
        "config": config.to_dict(),
        "state": state or {},
        "history": (history or History()).to_dict(),
        "meta": meta or {},
        "optimizer": None,
    }
    if optimizer is not None:
        opt_tensors, document["optimizer"] = _split_optimizer(optimizer.state_dict())
        all_tensors |= opt_tensors
    all_tensors = {k: v.detach().cpu().contiguous() for k, v in all_tensors.items()}
    metadata = {"format": FORMAT, "version": str(VERSION), "document": json.dumps(document)}
    return atomic_write(path, lambda tmp: save_file(all_tensors, str(tmp), metadata=metadata))


def read_training_checkpoint(path: str | Path) -> TrainingCheckpoint:
    """Read a file written by :func:`save_training_checkpoint`.

    Raises :class:`TrainingCheckpointError` (a ``ValueError``) naming the problem when the
    file is missing, truncated, corrupt or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingCheckpointError(f"no training checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except Exception as exc:  # safetensors raises its own error types for bad headers/data
        raise TrainingCheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise TrainingCheckpointError(f"{path} is not a binedu training checkpoint (format {metadata.get('format')!r})")
    if metadata.get("version") != str(VERSION):
        raise TrainingCheckpointError(f"{path} has unsupported checkpoint version {metadata.get('version')!r}")
    try:
        document = json.loads(metadata["document"])
        history = History.from_dict(document["history"])
        config = document["config"]
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingCheckpointError(f"{path} has a corrupt checkpoint document ({exc})") from exc
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optim/")}
    extra = {k: v for k, v in tensors.items() if not k.startswith(("model/", "optim/"))}
    optimizer_state = None if document.get("optimizer") is None else _join_optimizer(optim, document["optimizer"])
    return TrainingCheckpoint(
        config=config,
        model_state=model_state,
        optimizer_state=optimizer_state,
        state=document.get("state", {}),
        history=history,
        tensors=extra,
        meta=document.get("meta", {}),
    )


def is_training_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a file written by :func:`save_training_checkpoint` (reads only
    the header: cheap even for large checkpoints)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except Exception:  # not a safetensors file at all
        return False


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model stored in a training checkpoint, ready for evaluation or packing."""
    checkpoint = read_training_checkpoint(path)
    try:
        return checkpoint.model(device)
    except (RuntimeError, ValueError) as exc:
        raise TrainingCheckpointError(f"{path}: stored parameters do not fit the stored configuration ({exc})") from exc
