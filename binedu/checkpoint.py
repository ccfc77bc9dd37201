"""Packed checkpoints: the bits of a binary model in one pickle-free file, 32x smaller.

Other binary-network libraries often save the float latent weights, so the "binary"
file is as large as a float one. :func:`save_packed` writes only what inference needs
(Section 2: after training only Quant(W) is kept): the packed bits of every layer
(:mod:`binedu.packed`), their shapes and the model's structure. Nothing is pickled, and
:func:`load_packed` never unpickles anything: it reads JSON and raw bytes, and builds the
model from an allow-list of module types.

File format: a `safetensors <https://github.com/huggingface/safetensors>`_ file::

    8 bytes   N, the header length (unsigned little-endian 64-bit integer)
    N bytes   JSON header: for every tensor its dtype ("U8"), shape and byte range in
              the data, and "__metadata__", a string -> string table:
                  "format":           "binedu.packed"
                  "version":          "1"
                  "structure":        the module tree (JSON, below)
                  "structure_sha256": SHA-256 of "structure"
                  "tensors_sha256":   JSON list: the first 16 hex digits of the
                                      SHA-256 of each tensor's bytes, tensors in
                                      sorted name order
    the data  the tensors' bytes, one after another

The module tree (compact JSON) is nested nodes
``{"type": name, "args": {...}, "children": {name: node}}`` (no ``children`` when empty).
``type`` is a packed layer (``PackedLinear``, ``PackedConv2d``, ``PackedEmbedding``, whose
tensors are the ``<path>.<tensor>_bits`` entries), a binedu container
(``LanguageModel`` and ``ImageClassifier`` with ``args = {"config": ...}``,
``BinaryTransformerBlock``, ``BinaryMultiheadAttention``), ``Normalize``, or a
parameter-free ``torch.nn`` module (``Sequential``, ``ReLU``, ``MaxPool2d``, ``Flatten``,
``Dropout``, ...; see ``TORCH_MODULES``) with its constructor arguments. A user's own
``nn.Sequential`` of binedu layers therefore round-trips as well as the paper models.

Loading checks everything and raises :class:`CheckpointError` (a ``ValueError``) with a
clear message for a truncated file, flipped bytes (the SHA-256 sums), a foreign file
(no binedu metadata: a random file, a pickle, another program's safetensors file) or a
structure that does not match its tensors, and for anything that is not a regular file.
Loading costs time and memory in proportion to the file: the header is at most
:data:`MAX_HEADER` bytes and the structure at most :data:`MAX_MODULES` modules, every
module argument is checked against an allow-list (:mod:`binedu.stored_args`: no
``AdaptiveAvgPool1d(10**7)`` that would cost gigabytes at the first batch), the
header's shapes must be backed by its bytes (:mod:`binedu.tensor_file`), and the skeleton of the model is built
on the ``meta`` device under a budget of the stored tensors
(:mod:`binedu.build_budget`), so no float weight is ever allocated and a file that
claims a huge model stops before building it; the bits are assigned directly.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from .attention import BinaryMultiheadAttention
from .base import BinaryModule
from .build_budget import BudgetExceeded, BuildBudget
from .config import _tuples
from .image_model import ImageClassifier
from .io import atomic_write
from .language_model import LanguageModel
from .model import ConfigModel
from .normalize import Normalize
from .packed import PACKED_LAYERS, PackedLayer, _normalizes, pack_model
from .stored_args import check_args
from .tensor_file import TensorFile, digest, parse_json
from .transformer import BinaryTransformerBlock

__all__ = [
    "CheckpointError", "save_packed", "load_packed", "FORMAT", "VERSION", "TORCH_MODULES", "MAX_HEADER", "MAX_MODULES",
]  # fmt: skip

FORMAT = "binedu.packed"
VERSION = "1"

MAX_HEADER = 2**20
"""The longest header of a packed checkpoint (1 MiB): paper-large's is about 58 KB
(paper-small's 37 KB), so a model 17 times as deep still fits."""

MAX_MODULES = 10_000
"""The most modules a packed checkpoint's structure may hold (paper-large: 269). Each
costs about 2 KB of Python objects, so the skeleton stays under about 20 MB."""

TORCH_MODULES: dict[str, type[nn.Module]] = {
    name: getattr(nn, name)
    for name in (
        "Identity", "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax",
        "LogSoftmax", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "MaxPool1d",
        "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
        "AdaptiveMaxPool2d",
    )
}  # fmt: skip
"""Parameter-free ``torch.nn`` modules a packed checkpoint may contain."""

_CONTAINERS: dict[str, type[nn.Module]] = {
    "Sequential": nn.Sequential,
    "ModuleList": nn.ModuleList,
    "ModuleDict": nn.ModuleDict,
}
_PACKED: dict[str, type[PackedLayer]] = {cls.__name__: cls for cls in PACKED_LAYERS.values()}
_BINEDU: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (LanguageModel, ImageClassifier, BinaryTransformerBlock, BinaryMultiheadAttention)
}
_MODELS: dict[str, type[ConfigModel]] = {cls.__name__: cls for cls in (LanguageModel, ImageClassifier)}


class CheckpointError(ValueError):
    """A file that is not a valid binedu packed checkpoint (truncated, corrupted or foreign)."""


def _torch_args(module: nn.Module, path: str) -> dict[str, Any]:
    """Constructor arguments of a parameter-free torch module, read from its attributes."""
    args = {}
    for name, param in inspect.signature(type(module).__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if not hasattr(module, name):
            raise ValueError(f"save_packed cannot store {path} ({type(module).__name__}): no attribute {name!r}")
        args[name] = getattr(module, name)
    return args


def _describe(module: nn.Module, path: str) -> tuple[str, dict[str, Any]]:
    """``(type name, constructor arguments)`` of a module as a checkpoint stores it; a
    binary layer is described as the packed layer that holds its bits."""
    kind = type(module)
    if isinstance(module, PackedLayer):
        return kind.__name__, module.args()
    if kind in PACKED_LAYERS and isinstance(module, BinaryModule):  # every key of PACKED_LAYERS is one
        return PACKED_LAYERS[kind].__name__, PACKED_LAYERS[kind].args_of(module)
    if isinstance(module, ConfigModel) and kind in _BINEDU.values():
        return kind.__name__, {"config": module.config.to_dict()}
    if type(module) is BinaryMultiheadAttention:
        return kind.__name__, dict(
            embed_dim=module.embed_dim,
            num_heads=module.num_heads,
            leaky_mask=module.leaky_mask,
            normalize=_normalizes(module.query),
        )
    if type(module) is BinaryTransformerBlock:
        return kind.__name__, dict(
            embed_dim=module.embed_dim,
            num_heads=module.attention.num_heads,
            ff_dim=module.ff_dim,
            leaky_mask=module.attention.leaky_mask,
            normalize=_normalizes(module.ff1),
        )
    if kind is Normalize and not module.affine:
        return "Normalize", dict(num_features=module.num_features, mode=module.mode)
    if kind in _CONTAINERS.values():
        return kind.__name__, {}
    if kind in TORCH_MODULES.values():
        args = _torch_args(module, path)
        try:
            check_args(kind.__name__, {k: _tuples(v) for k, v in _json(args).items()})
        except ValueError as err:
            raise ValueError(f"save_packed cannot store {path}: {err}, or it could not be loaded back") from None
        return kind.__name__, args
    raise ValueError(
        f"save_packed cannot store {path} ({kind.__name__}): a packed checkpoint holds binedu layers, "
        f"binedu models, nn.Sequential/ModuleList/ModuleDict and the parameter-free modules {sorted(TORCH_MODULES)}"
    )


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _structure(module: nn.Module, path: str = "") -> dict[str, Any]:
    kind, args = _describe(module, path or "the model")
    node: dict[str, Any] = {"type": kind, "args": args}
    children = {} if isinstance(module, PackedLayer) else dict(module.named_children())
    if children:
        node["children"] = {
            name: _structure(child, f"{path}.{name}" if path else name) for name, child in children.items()
        }
    return node


_digest = digest  # the per-tensor checksum (binedu.tensor_file.digest): 16 hex digits of SHA-256


def save_packed(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s bits, shapes and structure to ``path`` (format in the module
    docstring), atomically: a failed save leaves any earlier file intact.

    ``model`` is a packed model (:func:`~binedu.pack_model`) or a binary one, which is
    packed first. Returns the path.
    """
    if any(True for _ in model.parameters()):
        model = pack_model(model)
    structure = json.dumps(_structure(model), separators=(",", ":"))  # child order matters: no sort_keys
    tensors = {}
    for name, t in model.state_dict().items():
        if t.dtype != torch.uint8:
            raise ValueError(f"save_packed: tensor {name!r} is {t.dtype}, not packed bits (uint8)")
        tensors[name] = t.detach().cpu().contiguous()
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "structure": structure,
        "structure_sha256": hashlib.sha256(structure.encode()).hexdigest(),
        "tensors_sha256": json.dumps([_digest(tensors[name]) for name in sorted(tensors)], separators=(",", ":")),
    }
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _metadata(file: TensorFile) -> tuple[dict[str, Any], list[str]]:
    """The checked structure tree and tensor checksums from the header's metadata."""
    path, meta = file.path, file.metadata
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a binedu packed checkpoint (no {FORMAT!r} metadata); "
            "write one with binedu.save_packed"
        )
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is a binedu packed checkpoint of version {meta.get('version')!r}; this binedu reads {VERSION!r}"
        )
    structure = meta.get("structure", "")
    if hashlib.sha256(structure.encode("utf-8", "surrogatepass")).hexdigest() != meta.get("structure_sha256"):
        raise CheckpointError(f"{path} is corrupted: its structure does not match its SHA-256 checksum")
    try:
        tree = parse_json(structure)
        sums = parse_json(meta.get("tensors_sha256", ""))
    except ValueError as err:
        raise CheckpointError(f"{path} is corrupted: unreadable metadata ({err})") from None
    if not isinstance(tree, dict) or not isinstance(sums, list) or not all(isinstance(s, str) for s in sums):
        raise CheckpointError(f"{path} is corrupted: malformed structure or checksums")
    return tree, sums


def _construct(kind: str, args: dict[str, Any]) -> nn.Module:
    """The module a structure node describes, its arguments checked first
    (:func:`binedu.stored_args.check_args`; a binedu model's configuration checks itself)."""
    if kind not in ("LanguageModel", "ImageClassifier"):
        check_args(kind, args)
    if kind in _PACKED:
        return _PACKED[kind](**args)
    if kind in _MODELS:
        cls = _MODELS[kind]
        if set(args) != {"config"} or not isinstance(args["config"], dict):
            raise ValueError("expected args {'config': {...}}")
        config = cls.config_class.from_dict(args["config"])
        if not getattr(config, "binary", False):  # both models' configs have it; their base _Config does not
            raise ValueError("a packed model must be binary (binary=True)")
        return cls(config)
    if kind in _BINEDU:
        return _BINEDU[kind](**args)
    if kind == "Normalize":
        if not set(args) <= {"num_features", "mode"}:
            raise ValueError("a packed Normalize takes num_features and mode only (no learnable affine=True)")
        return Normalize(**args)
    if kind in _CONTAINERS:
        if args:
            raise ValueError(f"{kind} takes no arguments")
        return _CONTAINERS[kind]()
    if kind in TORCH_MODULES:
        return TORCH_MODULES[kind](**args)
    raise ValueError(f"unknown module type {kind!r}")


def _count_nodes(tree: Any, file: Path) -> None:
    """Refuse a structure of more than :data:`MAX_MODULES` nodes before building any."""
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_MODULES:
            raise CheckpointError(f"{file}: its structure holds more than {MAX_MODULES:,} modules")
        children = node.get("children") if isinstance(node, dict) else None
        if isinstance(children, dict):
            stack.extend(children.values())


def _build(node: Any, path: str, reference: nn.Module | None, file: Path) -> nn.Module:
    """Build one node of the tree on the meta device. ``reference`` is what the parent's
    own constructor made at this place (a binedu model builds its layers itself): the
    stored node must describe the same module, binary layers standing for packed ones."""
    where = path or "the model"
    if not isinstance(node, dict) or not isinstance(node.get("type"), str) or not isinstance(node.get("args"), dict):
        raise CheckpointError(f"{file} is corrupted: malformed structure node at {where}")
    kind, args = node["type"], node["args"]
    try:
        module = _construct(kind, {k: _tuples(v) for k, v in args.items()})
    except BudgetExceeded as err:
        raise CheckpointError(f"{file}: {where} ({kind}) does not fit the file: {err}") from None
    except Exception as err:  # noqa: BLE001 (any constructor's complaint about the stored arguments)
        raise CheckpointError(f"{file}: cannot build {where} as {kind}: {type(err).__name__}: {err}") from None
    if reference is not None and _json(_describe(reference, where)) != [kind, args]:
        expected = _describe(reference, where)
        raise CheckpointError(
            f"{file}: {where} is stored as {kind}({args}) but the model expects {expected[0]}({expected[1]})"
        )
    if isinstance(module, PackedLayer):  # built whole from its arguments
        if "children" in node:
            raise CheckpointError(f"{file} is corrupted: packed layer {where} has children")
        return module
    children = node.get("children", {})
    if not isinstance(children, dict) or (children and kind not in _BINEDU and kind not in _CONTAINERS):
        raise CheckpointError(f"{file} is corrupted: malformed children at {where}")
    # a binedu model builds its own layers: the stored ones must be the same, packed
    refs = dict(module.named_children()) if kind in _BINEDU else None
    if refs is None and reference is not None:
        refs = dict(reference.named_children())
    if refs is not None and list(children) != list(refs):
        raise CheckpointError(f"{file}: {where} ({kind}) has children {list(children)}, expected {list(refs)}")
    for name, child in children.items():
        module._modules[name] = _build(child, f"{path}.{name}" if path else name, refs[name] if refs else None, file)
    return module


def load_packed(path: str | Path) -> nn.Module:
    """Read a file written by :func:`save_packed` and return the packed model (eval mode).

    Raises :class:`CheckpointError` for anything but a valid packed checkpoint (a
    truncated, corrupted, foreign or inconsistent file, a folder, a FIFO or a device) and
    ``FileNotFoundError`` if there is no file. Nothing is unpickled.

    Work and memory are bounded by the file's size: the header is checked first
    (:mod:`binedu.tensor_file`: every shape must be backed by stored bytes), then the
    skeleton is built on the ``meta`` device under a :class:`~binedu.build_budget.BuildBudget`
    of the stored tensors (a configuration that asks for more stops at once), compared
    with the stored names and shapes, and only then are the bits read and checked.
    """
    with TensorFile(path, CheckpointError, "a binedu packed checkpoint", max_header=MAX_HEADER) as file:
        return _load(file)


def _load(file: TensorFile) -> nn.Module:
    path = file.path
    tree, sums = _metadata(file)
    _count_nodes(tree, path)
    stored = file.entries
    wrong = sorted(name for name, entry in stored.items() if entry.dtype != torch.uint8)
    if wrong:
        raise CheckpointError(f"{path}: tensor {wrong[0]!r} is {stored[wrong[0]].dtype}, expected U8 (packed bits)")
    data_bytes = sum(entry.numel for entry in stored.values())
    # each binedu container (model -> transformer block -> attention: three levels at most)
    # builds its binary layers (one tensor per stored tensor, one latent per stored bit)
    # before its stored children replace them; then come the packed layers (one byte per
    # stored byte): at most 4 tensors per stored tensor and 25 elements per stored byte
    budget = BuildBudget(tensors=4 * len(stored) + 16, elements=32 * data_bytes + 4096)
    try:
        with budget:
            model = _build(tree, "", None, path)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 (whatever the stored tree provokes is the file's fault)
        raise CheckpointError(f"{path}: cannot build its structure ({type(err).__name__}: {err})") from None
    if any(True for _ in model.parameters()):
        names = [name for name, _ in model.named_parameters()][:5]
        raise CheckpointError(f"{path}: its structure holds learnable float parameters {names}, not packed bits")
    expected = model.state_dict()
    if set(stored) != set(expected):
        missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        raise CheckpointError(f"{path}: tensors do not match the structure (missing {missing}, unexpected {extra})")
    if len(sums) != len(expected):
        raise CheckpointError(f"{path} is corrupted: {len(sums)} checksums for {len(expected)} tensors")
    for name, t in expected.items():
        if stored[name].shape != tuple(t.shape) or t.dtype != torch.uint8:
            raise CheckpointError(
                f"{path}: tensor {name!r} is U8 {list(stored[name].shape)}, expected U8 {list(t.shape)}"
            )
    tensors = {}
    for name, checksum in zip(sorted(expected), sums, strict=True):
        data = file.read_bytes(name)
        if _digest(data) != checksum:
            raise CheckpointError(f"{path} is corrupted: tensor {name!r} does not match its SHA-256 checksum")
        tensors[name] = file.read(name, data)
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except Exception as err:  # noqa: BLE001 (the checks above should leave nothing to fail here)
        raise CheckpointError(f"{path}: its tensors do not fit its structure ({err})") from None
    return model.eval()
