"""Training checkpoints: latent floats, optimizer state and the run's progress, pickle-free.

One ``.safetensors`` file holds every tensor (the model's latent float32 parameters,
the optimizer's moment estimates, random-number-generator states, ...) and, in its
metadata, one JSON document with everything else (configuration, step counters,
history, optimizer hyperparameters). Nothing is ever unpickled, and files are written
atomically (:mod:`binedu.io`). This is the *training* format: it keeps the latent floats
so that training can resume bit for bit; the 1-bit deployment format is
``binedu.checkpoint.save_packed``.

Verified like packed files (format version 2): the metadata holds the SHA-256 of the
JSON document (``document_sha256``) and 16 hex digits of the SHA-256 of every tensor
(``tensors_sha256``, a JSON object by tensor name). Reading checks them all, and every
floating-point tensor must be finite: a flipped byte or a NaN latent (which would turn a
whole layer's bits to 0) raises :class:`TrainingCheckpointError` naming the file and the
tensor, instead of training or evaluating a silently different model. Files of version
1 (binedu before checksums) cannot be verified and are refused with a message saying so.
The header is read with :mod:`binedu.tensor_file` (regular files only, shapes backed by
bytes), and :func:`load_trained_model` builds the model on the ``meta`` device within
a budget of the stored tensors and compares every name, shape and dtype before it
assigns the stored tensors: work and memory stay proportional to the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .build_budget import BuildBudget
from .config import ImageConfig, LanguageConfig
from .history import History
from .io import atomic_write
from .tensor_file import TensorFile, digest, parse_json

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
VERSION = 2
WHAT = "a readable safetensors file (binedu training checkpoint)"


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
    digest: str = ""  # of the verified checksums: two readers of one file get the same (binedu.train_resume)

    def model(self, device: str | torch.device = "cpu") -> nn.Module:
        """A model of the stored configuration holding the stored parameters.

        The model is first built on the ``meta`` device within a budget of the stored
        tensors (a configuration that needs more stops at once), then every parameter's
        name, shape and dtype is compared with the stored ones; only then are the stored
        tensors assigned, so nothing is allocated that the file does not back. Raises
        :class:`TrainingCheckpointError` naming what does not fit.
        """
        state = self.model_state
        # building the model creates one tensor per stored parameter, of the same size
        budget = BuildBudget(tensors=2 * len(state) + 16, elements=2 * sum(t.numel() for t in state.values()) + 4096)
        try:
            with budget:
                model = model_from_config(self.config)
        except TrainingCheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 (anything the stored configuration provokes)
            raise TrainingCheckpointError(
                f"stored parameters do not fit the stored configuration, or it cannot be built "
                f"({type(exc).__name__}: {exc})"
            ) from None
        expected = model.state_dict()
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise TrainingCheckpointError(
                f"stored parameters do not fit the stored configuration (missing {missing[:5]}, unexpected {extra[:5]})"
            )
        for name, t in expected.items():
            if state[name].shape != t.shape or state[name].dtype != t.dtype:
                raise TrainingCheckpointError(
                    f"stored parameters do not fit the stored configuration: {name!r} is "
                    f"{state[name].dtype} {list(state[name].shape)}, the configuration needs {t.dtype} {list(t.shape)}"
                )
        model.load_state_dict(state, assign=True)
        return model.to(device)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained :class:`~binedu.ImageClassifier` or :class:`~binedu.LanguageModel`
    for a configuration dict (its ``"kind"`` chooses which)."""
    from .image_model import ImageClassifier
    from .language_model import LanguageModel

    kinds = {ImageConfig.kind: ImageClassifier, LanguageConfig.kind: LanguageModel}
    if not isinstance(config, dict):
        raise TrainingCheckpointError(f"a model configuration is a JSON object, got {type(config).__name__}")
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
    text = json.dumps(document)
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "document": text,
        "document_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "tensors_sha256": json.dumps({k: digest(v) for k, v in sorted(all_tensors.items())}),
    }
    return atomic_write(path, lambda tmp: save_file(all_tensors, str(tmp), metadata=metadata))


def read_training_checkpoint(path: str | Path) -> TrainingCheckpoint:
    """Read a file written by :func:`save_training_checkpoint`.

    Raises :class:`TrainingCheckpointError` (a ``ValueError``) naming the problem when the
    file is missing, not a regular file, truncated, corrupt (a checksum or a non-finite
    value, naming the tensor), of an older version or of another format.
    """
    path = Path(path)
    try:
        with TensorFile(path, TrainingCheckpointError, WHAT) as file:
            document = _check_metadata(file)
            tensors = _read_tensors(file)
            sums = f"{file.metadata.get('document_sha256')} {file.metadata.get('tensors_sha256')}"
    except FileNotFoundError:
        raise TrainingCheckpointError(f"no training checkpoint at {path}") from None
    except OSError as exc:
        raise TrainingCheckpointError(f"cannot read the training checkpoint {path}: {exc.strerror or exc}") from None
    try:
        history = History.from_dict(document["history"])
        config, state, meta = document["config"], document.get("state", {}), document.get("meta", {})
        if not isinstance(config, dict) or not isinstance(state, dict) or not isinstance(meta, dict):
            raise TypeError("config, state and meta must be JSON objects")
        optim = {k: v for k, v in tensors.items() if k.startswith("optim/")}
        optimizer_state = None if document.get("optimizer") is None else _join_optimizer(optim, document["optimizer"])
    except Exception as exc:  # noqa: BLE001 (any malformed part of the document)
        raise TrainingCheckpointError(f"{path} has a corrupt checkpoint document ({type(exc).__name__}: {exc})") from None
    return TrainingCheckpoint(
        config=config,
        model_state={k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")},
        optimizer_state=optimizer_state,
        state=state,
        history=history,
        tensors={k: v for k, v in tensors.items() if not k.startswith(("model/", "optim/"))},
        meta=meta,
        digest=hashlib.sha256(sums.encode()).hexdigest()[:32],
    )


def _check_metadata(file: TensorFile) -> dict[str, Any]:
    """The verified JSON document of a training checkpoint."""
    path, metadata = file.path, file.metadata
    if metadata.get("format") != FORMAT:
        raise TrainingCheckpointError(f"{path} is not a binedu training checkpoint (format {metadata.get('format')!r})")
    version = metadata.get("version")
    if version == "1":
        raise TrainingCheckpointError(
            f"{path} is a version 1 training checkpoint, written by a binedu without checksums: it cannot be "
            "verified, so it is refused; train again (or pack it with the binedu that wrote it)"
        )
    if version != str(VERSION):
        raise TrainingCheckpointError(f"{path} has unsupported checkpoint version {version!r}; this binedu reads {VERSION}")
    text = metadata.get("document", "")
    if hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() != metadata.get("document_sha256"):
        raise TrainingCheckpointError(f"{path} is corrupted: its document does not match its SHA-256 checksum")
    try:
        document = parse_json(text)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise TrainingCheckpointError(f"{path} has a corrupt checkpoint document ({exc})") from None
    return document


def _read_tensors(file: TensorFile) -> dict[str, torch.Tensor]:
    """Every tensor, each checked against its checksum; floating-point ones must be finite."""
    path = file.path
    try:
        sums = parse_json(file.metadata.get("tensors_sha256", ""))
    except ValueError as exc:
        raise TrainingCheckpointError(f"{path} is corrupted: unreadable tensor checksums ({exc})") from None
    if not isinstance(sums, dict) or set(sums) != set(file.entries):
        raise TrainingCheckpointError(f"{path} is corrupted: its tensor checksums do not list its tensors")
    tensors = {}
    for name in sorted(file.entries):
        data = file.read_bytes(name)
        if digest(data) != sums[name]:
            raise TrainingCheckpointError(f"{path} is corrupted: tensor {name!r} does not match its SHA-256 checksum")
        t = file.read(name, data)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise TrainingCheckpointError(
                f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or infinity); a NaN latent would "
                "turn its layer's bits to 0, so the checkpoint is refused"
            )
        tensors[name] = t
    return tensors


def is_training_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a regular file whose header says it was written by
    :func:`save_training_checkpoint` (reads only the header: cheap even for large
    checkpoints; the file is verified when it is read)."""
    try:
        with TensorFile(path, TrainingCheckpointError, WHAT) as file:
            return file.metadata.get("format") == FORMAT
    except (OSError, ValueError):  # missing, not a regular file, not a safetensors file
        return False


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model stored in a training checkpoint, ready for evaluation or packing."""
    checkpoint = read_training_checkpoint(path)
    try:
        return checkpoint.model(device)
    except TrainingCheckpointError as exc:
        raise TrainingCheckpointError(f"{path}: {exc}") from None
