"""Packed checkpoints: round trips, and CheckpointError for anything that is not one."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from file_probes import measure, no_hang, read_raw, write_raw
from helpers import randomize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import binedu.checkpoint as checkpoint_module
from binedu import (
    BinaryConv2d,
    BinaryEmbedding,
    BinaryLinear,
    BinaryTransformerBlock,
    CheckpointError,
    ImageClassifier,
    LanguageModel,
    load_packed,
    pack_model,
    save_packed,
)
from binedu.normalize import Normalize
from binedu.packed import PackedLinear


def assert_same_model(a: nn.Module, b: nn.Module) -> None:
    """Same class, same structure, bit-identical buffers."""
    assert type(a) is type(b)
    assert [(n, type(m)) for n, m in a.named_modules()] == [(n, type(m)) for n, m in b.named_modules()]
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def user_models() -> list[tuple[nn.Module, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    conv = nn.Sequential(
        BinaryConv2d(2, 8, 3, "relu"),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        BinaryLinear(8 * 3 * 3, 12, "gelu"),
        nn.GELU(approximate="tanh"),
        BinaryLinear(12, 4),
        nn.Softmax(dim=-1),
    )
    text = nn.Sequential(
        BinaryEmbedding(50, 16, 10, "gelu"), BinaryTransformerBlock(16, 4), nn.Sequential(BinaryLinear(16, 50))
    )
    return [
        (randomize(LanguageModel.from_config("tiny")), torch.randint(0, 256, (2, 12), generator=g)),
        (randomize(ImageClassifier.from_config("tiny", norm_mode="chw")), torch.randn(3, 1, 8, 8, generator=g)),
        (randomize(conv), torch.randn(3, 2, 7, 7, generator=g)),
        (randomize(text), torch.randint(0, 50, (2, 10), generator=g)),
    ]


@pytest.mark.parametrize("index", range(4), ids=["language", "image", "user-conv", "user-text"])
def test_round_trip(tmp_path, index):
    model, x = user_models()[index]
    packed = pack_model(model)
    path = save_packed(packed, tmp_path / "model.safetensors")
    loaded = load_packed(path)
    assert_same_model(packed, loaded)
    assert not loaded.training
    assert not list(loaded.parameters())
    assert all(b.dtype == torch.uint8 and b.device.type == "cpu" for b in loaded.buffers())
    with torch.no_grad():
        assert torch.equal(loaded(x), packed(x))
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-4, atol=1e-4)
    if hasattr(model, "config"):
        assert loaded.config == model.config


def test_binary_model_is_packed_on_save(tmp_path):
    model = randomize(LanguageModel.from_config("tiny"))
    save_packed(model, tmp_path / "m.safetensors")
    assert_same_model(load_packed(tmp_path / "m.safetensors"), pack_model(model))


def test_file_is_plain_safetensors_with_documented_metadata(tmp_path):
    packed = pack_model(randomize(ImageClassifier.from_config("tiny")))
    path = save_packed(packed, tmp_path / "m.safetensors")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        names = set(f.keys())
        assert all(f.get_tensor(n).dtype == torch.uint8 for n in names)
    assert meta["format"] == "binedu.packed" and meta["version"] == "1"
    assert names == set(packed.state_dict())
    tree = json.loads(meta["structure"])
    assert tree["type"] == "ImageClassifier" and tree["args"]["config"]["kind"] == "image"
    assert hashlib.sha256(meta["structure"].encode()).hexdigest() == meta["structure_sha256"]
    # about 1 bit per parameter: the file is the bits plus a small header
    bits = sum(b.numel() for b in packed.buffers())
    assert bits < path.stat().st_size < bits + 40_000


def saved_bytes(tmp_path: Path) -> bytes:
    path = save_packed(pack_model(randomize(LanguageModel.from_config("tiny"))), tmp_path / "ok.safetensors")
    return path.read_bytes()


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> bytes:
    return saved_bytes(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("keep", [0, 3, 8, 9, 100, 0.5, -1])
def test_truncated_file_raises(tmp_path, good_file, keep):
    n = int(len(good_file) * keep) if isinstance(keep, float) else keep % len(good_file)
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good_file[:n])
    with pytest.raises(CheckpointError):
        load_packed(path)


def test_extended_file_raises(tmp_path, good_file):
    path = tmp_path / "long.safetensors"
    path.write_bytes(good_file + b"\0")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_packed(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(0, 1, exclude_max=True), st.integers(1, 255))
def test_a_flipped_byte_never_gives_wrong_bits(tmp_path, good_file, where, mask):
    """Any single corrupted byte (header, metadata or data) raises CheckpointError, unless
    it left the file meaning the same thing (e.g. JSON whitespace), in which case the
    loaded model is the saved one, bit for bit."""
    data = bytearray(good_file)
    i = int(where * len(data))
    data[i] ^= mask
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(data))
    try:
        loaded = load_packed(path)
    except CheckpointError:
        return
    original = tmp_path / "original.safetensors"
    original.write_bytes(good_file)
    assert_same_model(loaded, load_packed(original))


def test_flipped_data_byte_is_reported_by_tensor(tmp_path, good_file):
    data = bytearray(good_file)
    data[-10] ^= 0x01  # the last tensor's bytes
    path = tmp_path / "bad.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its SHA-256 checksum"):
        load_packed(path)


class Boom:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def foreign_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    marker = tmp_path / "UNPICKLED"

    def put(name: str, data: bytes) -> None:
        files[name] = tmp_path / name
        files[name].write_bytes(data)

    put("empty", b"")
    put("random", bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).to(torch.uint8)))
    put("pickle", pickle.dumps({"weight": Boom(str(marker))}))
    put("json", json.dumps({"format": "binedu.packed"}).encode())
    torch.save({"w": torch.ones(3)}, tmp_path / "torch.pt")
    files["torch.save"] = tmp_path / "torch.pt"
    save_file({"weight": torch.randn(4, 4)}, tmp_path / "other.safetensors")
    files["other safetensors"] = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2, dtype=torch.uint8)}, tmp_path / "meta.safetensors", metadata={"format": "pt"})
    files["other metadata"] = tmp_path / "meta.safetensors"
    float_state = {k: v.contiguous() for k, v in LanguageModel.from_config("tiny").state_dict().items()}
    save_file(float_state, tmp_path / "float.safetensors")
    files["float latents"] = tmp_path / "float.safetensors"
    return files


def test_foreign_files_raise_and_nothing_is_unpickled(tmp_path, monkeypatch):
    files = foreign_files(tmp_path)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load_packed tried to unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    for name, path in files.items():
        with pytest.raises(CheckpointError) as err:
            load_packed(path)
        assert str(path) in str(err.value), name
    assert not (tmp_path / "UNPICKLED").exists()


@pytest.mark.parametrize("name", ["other safetensors", "other metadata", "float latents"])
def test_foreign_safetensors_file_says_so(tmp_path, name):
    with pytest.raises(CheckpointError, match="not a binedu packed checkpoint"):
        load_packed(foreign_files(tmp_path)[name])


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_packed(tmp_path / "nope.safetensors")


def rewrite(src: Path, dst: Path, edit_tree=None, edit_meta=None, edit_tensors=None, rehash: bool = True) -> Path:
    """Copy a packed file with its structure, metadata or tensors edited (checksums
    recomputed unless ``rehash=False``): a well-formed file that lies."""
    with safe_open(src, framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_tree:
        tree = json.loads(meta["structure"])
        edit_tree(tree)
        meta["structure"] = json.dumps(tree)
    if edit_tensors:
        edit_tensors(tensors)
    if rehash:
        meta["structure_sha256"] = hashlib.sha256(meta["structure"].encode()).hexdigest()
        meta["tensors_sha256"] = json.dumps([checkpoint_module._digest(tensors[k]) for k in sorted(tensors)])
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, dst, metadata=meta)
    return dst


def _set(path: list[str], value):
    def edit(tree):
        node = tree
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (dict(edit_meta=_set(["version"], "2")), "version '2'"),
        (dict(edit_meta=_set(["format"], "other")), "not a binedu packed checkpoint"),
        (dict(edit_tree=_set(["args", "config", "embed_dim"], 32)), "tensors do not match|expects|cannot build"),
        (dict(edit_tree=_set(["children", "head", "children", "0", "args", "out_features"], 100)), "expects"),
        (dict(edit_tree=_set(["children", "head", "children", "0", "type"], "Linear")), "unknown module type"),
        (dict(edit_tree=_set(["children", "norm", "type"], "os.system")), "unknown module type"),
        (dict(edit_tree=_set(["args", "config", "binary"], False)), "must be binary"),
        (dict(edit_tree=_set(["children", "extra"], {"type": "ReLU", "args": {}})), "has children"),
        (dict(edit_tensors=lambda t: t.pop("head.0.bias_bits")), "missing \\['head.0.bias_bits'\\]"),
        (dict(edit_tensors=lambda t: t.update({"head.0.bias_bits": torch.zeros(3, dtype=torch.uint8)})), "expected U8"),
        (dict(edit_tensors=lambda t: t.update({"head.0.bias_bits": torch.zeros(16)})), "expected U8"),
        (dict(edit_tree=_set(["args", "config", "vocab_size"], 1), rehash=False), "structure does not match"),
        (dict(edit_meta=_set(["tensors_sha256"], "{"), rehash=False), "unreadable metadata"),
    ],
)
def test_well_formed_but_inconsistent_files_raise(tmp_path, good_file, edit, message):
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    path = rewrite(src, tmp_path / "edited.safetensors", **edit)
    with pytest.raises(CheckpointError, match=message):
        load_packed(path)


def test_failed_save_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    model = pack_model(randomize(ImageClassifier.from_config("tiny")))
    save_packed(model, path)
    before = path.read_bytes()

    def half_written(tensors, tmp, metadata):
        Path(tmp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_packed(model, path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="binary=False"):
        save_packed(ImageClassifier.from_config("tiny", binary=False), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left behind
    assert_same_model(load_packed(path), model)


def test_unsupported_modules_are_refused_on_save(tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="cannot store 1 \\(Custom\\)"):
        save_packed(nn.Sequential(BinaryLinear(4, 4), Custom()), tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_loaded_linear_layers_use_auto_method(tmp_path):
    model = pack_model(nn.Sequential(BinaryLinear(8, 3)), method="lut")
    assert model[0].method == "lut"
    loaded = load_packed(save_packed(model, tmp_path / "m.safetensors"))
    assert isinstance(loaded[0], PackedLinear) and loaded[0].method == "auto"


# --- bounded work and nothing but CheckpointError (issue 13, items 5 and 6) -----------


def test_a_huge_config_stops_before_building_it(tmp_path, good_file, monkeypatch):
    """A 20 KB file that claims 10,000 transformer blocks used to build all of them
    (16,000 blocks took 53 s) before comparing anything: now building stops after a few."""
    built = []
    original = BinaryTransformerBlock.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BinaryTransformerBlock, "__init__", counting)
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    path = rewrite(src, tmp_path / "huge.safetensors", edit_tree=_set(["args", "config", "num_blocks"], 10_000))
    with pytest.raises(CheckpointError, match="more than the file holds"):
        load_packed(path)
    assert 0 < len(built) < 50


def test_a_huge_packed_layer_allocates_nothing(tmp_path):
    """2**64 weights in one layer: a storage-size overflow (RuntimeError) before; now the
    stored shape does not match, or the budget stops it, as a CheckpointError."""
    path = save_packed(nn.Sequential(BinaryLinear(8, 4)), tmp_path / "m.safetensors")
    for in_features in (2**64, 2**40, -8):
        edited = rewrite(
            path, tmp_path / "e.safetensors", edit_tree=_set(["children", "0", "args", "in_features"], in_features)
        )
        with measure() as used, pytest.raises(CheckpointError):
            load_packed(edited)
        assert used["tensors"] < 1000


def _nested(depth: int) -> dict:
    node: dict = {"type": "ReLU", "args": {}}
    for _ in range(depth):
        node = {"type": "Sequential", "args": {}, "children": {"0": node}}
    return node


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_set(["args", "config", "mlp_units"], [-5]), id="negative mlp_units"),
        pytest.param(_set(["args", "config", "ff_dim"], -4), id="negative ff_dim"),
        pytest.param(_set(["args", "config", "num_blocks"], 10**18), id="10**18 blocks"),
        pytest.param(_set(["args", "config", "vocab_size"], "many"), id="string vocab_size"),
        pytest.param(_set(["children", "norm", "args", "affine"], True), id="Normalize(affine=True)"),
        pytest.param(_set(["children", "head"], _nested(100)), id="100 levels"),
    ],
)
def test_malformed_structures_raise_only_checkpoint_error(tmp_path, good_file, edit):
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    with pytest.raises(CheckpointError):
        load_packed(rewrite(src, tmp_path / "edited.safetensors", edit_tree=edit))


@pytest.mark.parametrize("depth", [990, 100_000])
def test_a_deeply_nested_structure_raises_checkpoint_error(tmp_path, good_file, depth):
    """990 nested Sequentials used to raise RecursionError."""
    structure = '{"type":"Sequential","args":{},"children":{"0":' * depth + '{"type":"ReLU","args":{}}' + "}}" * depth

    def edit(meta):
        meta["structure"] = structure
        meta["structure_sha256"] = hashlib.sha256(structure.encode()).hexdigest()

    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    with pytest.raises(CheckpointError, match="nested"):
        load_packed(rewrite(src, tmp_path / "deep.safetensors", edit_meta=edit))


def test_normalize_with_affine_parameters_is_refused_in_a_user_model(tmp_path):
    """With its scale and shift stored as bytes, this used to escape as a RuntimeError
    from load_state_dict."""
    path = save_packed(nn.Sequential(BinaryLinear(8, 4), Normalize(4)), tmp_path / "m.safetensors")
    affine = {"1.scale": torch.ones(4, dtype=torch.uint8), "1.shift": torch.zeros(4, dtype=torch.uint8)}
    for extra in ({}, affine):
        edited = rewrite(
            path,
            tmp_path / "e.safetensors",
            edit_tree=_set(["children", "1", "args", "affine"], True),
            edit_tensors=lambda t, extra=extra: t.update(extra),
        )
        with pytest.raises(CheckpointError, match="affine"):
            load_packed(edited)


@pytest.mark.parametrize(
    "field, value",
    [
        ("structure", 5),
        ("structure", ["a"]),
        ("tensors_sha256", ["0" * 16]),
        ("tensors_sha256", None),
        ("version", 1),
    ],
)
def test_non_string_metadata_raises_checkpoint_error(tmp_path, good_file, field, value):
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    header, data = read_raw(src)
    header["__metadata__"][field] = value
    with pytest.raises(CheckpointError, match="metadata is not a table of strings"):
        load_packed(write_raw(tmp_path / "bad.safetensors", header, data))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tensors_sha256", "[1, 2]", "malformed structure or checksums"),
        ("tensors_sha256", "[" * 5000 + "]" * 5000, "unreadable metadata"),
        ("structure", "[" * 5000 + "]" * 5000, "unreadable metadata|does not match"),
    ],
)
def test_malformed_metadata_json_raises_checkpoint_error(tmp_path, good_file, field, value, message):
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    path = rewrite(src, tmp_path / "e.safetensors", edit_meta=_set([field], value))
    if field == "structure":  # a deeply nested structure with a correct checksum
        path = rewrite(
            path,
            tmp_path / "e2.safetensors",
            rehash=False,
            edit_meta=_set(["structure_sha256"], hashlib.sha256(value.encode()).hexdigest()),
        )
    with pytest.raises(CheckpointError, match=message):
        load_packed(path)


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]},
        {"dtype": "U8", "shape": [2**32, 2**32], "data_offsets": [0, 1]},
        {"dtype": "U8", "shape": [1], "data_offsets": [0]},
        {"dtype": "U8", "shape": ["1"], "data_offsets": [0, 1]},
        {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]},
        {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]},
        {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]},
        [1, 2, 3],
    ],
)
def test_malformed_tensor_entries_raise_checkpoint_error(tmp_path, good_file, entry):
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    header, data = read_raw(src)
    header["head.0.bias_bits"] = entry
    with pytest.raises(CheckpointError, match="is not a binedu packed checkpoint"):
        load_packed(write_raw(tmp_path / "bad.safetensors", header, data))


def test_fifo_and_folder_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with no_hang(10), pytest.raises(CheckpointError, match="not a regular file"):
        load_packed(fifo)
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_packed(tmp_path)


# ---------------------------------------------------------------- issue 22: what loads can be used


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(["args", "config", "leaky_mask"], "false"), "leaky_mask must be true or false"),
        (_set(["args", "config", "mlp_units"], [0]), "mlp_units must be a list of positive integers"),
        (_set(["args", "config", "ff_dim"], 0), "ff_dim must be a positive integer"),
        (_set(["children", "head", "children", "0", "args", "normalize"], "false"), "normalize must be true or false"),
        (_set(["children", "head", "children", "0", "args", "activation"], "os.system"), "activation must be"),
        (_set(["children", "norm", "args", "mode"], 7), "mode must be one of"),
    ],
)
def test_configurations_and_arguments_that_fail_when_used_are_refused_at_load(tmp_path, good_file, edit, message):
    """Zero widths, string booleans and unknown names loaded and then crashed (issue 22, item 10)."""
    src = tmp_path / "good.safetensors"
    src.write_bytes(good_file)
    with pytest.raises(CheckpointError, match=message):
        load_packed(rewrite(src, tmp_path / "edited.safetensors", edit_tree=edit))


def user_file(tmp_path: Path) -> Path:
    model = nn.Sequential(PackedLinear(4, 3), nn.Dropout(0.1), nn.ReLU(), nn.Flatten(), nn.Softmax(dim=-1))
    return save_packed(model, tmp_path / "user.safetensors")


@pytest.mark.parametrize(
    "child, args, message",
    [
        ("4", {"dim": 7}, "dim must be None or an integer in \\[-4, 3\\]"),
        ("2", {"inplace": "false"}, "inplace must be true or false"),
        ("1", {"p": 2.0}, "p must be a number in \\[0, 1\\]"),
        ("1", {"p": 0.1, "colour": 1}, "no argument 'colour'"),
        ("3", {"start_dim": 1, "end_dim": 99}, "end_dim must be"),
    ],
)
def test_torch_module_arguments_are_checked_at_load(tmp_path, child, args, message):
    path = user_file(tmp_path)
    assert load_packed(path)[4].dim == -1
    edited = rewrite(path, tmp_path / "edited.safetensors", edit_tree=_set(["children", child, "args"], args))
    with pytest.raises(CheckpointError, match=message):
        load_packed(edited)


@pytest.mark.parametrize(
    "module", [nn.Softmax(dim=7), nn.AdaptiveAvgPool1d(10**7), nn.MaxPool2d(2, return_indices=True)], ids=repr
)
def test_a_module_that_could_not_be_loaded_back_is_refused_on_save(tmp_path, module):
    with pytest.raises(ValueError, match="could not be loaded back"):
        save_packed(nn.Sequential(PackedLinear(4, 3), module), tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


EXAMPLE_ARGS = {
    "AdaptiveAvgPool1d": {"output_size": 1}, "AdaptiveAvgPool2d": {"output_size": 1},
    "AdaptiveMaxPool2d": {"output_size": 1}, "MaxPool1d": {"kernel_size": 2}, "MaxPool2d": {"kernel_size": 2},
    "AvgPool1d": {"kernel_size": 2}, "AvgPool2d": {"kernel_size": 2}, "Unflatten": {"dim": 1, "unflattened_size": (2, 2)},
}  # fmt: skip


def test_every_allowed_torch_module_has_a_rule_for_each_argument():
    """The allow-list covers exactly the constructor arguments (a new torch argument is not let through unchecked)."""
    import inspect

    from binedu.stored_args import ARG_RULES

    for name, cls in checkpoint_module.TORCH_MODULES.items():
        params = inspect.signature(cls.__init__).parameters.items()
        names = {k for k, p in params if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        assert names == set(ARG_RULES[name]), name
        example = cls(**EXAMPLE_ARGS.get(name, {}))
        assert checkpoint_module._describe(example, name)[0] == name  # its stored arguments pass the rules


def test_a_zero_width_configuration_cannot_be_made():
    """So no training checkpoint or packed file can hold one (issue 22, item 10)."""
    with pytest.raises(ValueError, match="widths must hold positive integers"):
        ImageClassifier.from_config("tiny", widths=((16, 0), (32,)))
    with pytest.raises(ValueError, match="dense_units"):
        ImageClassifier.from_config("tiny", dense_units=(0,))
    with pytest.raises(ValueError, match="binary must be true or false"):
        LanguageModel.from_config("tiny", binary="false")


@pytest.mark.parametrize(
    "name, data, kind",
    [
        ("png", None, "a PNG image"),
        ("torch.save", None, "a zip archive"),
        ("pickle", pickle.dumps({"a": 1}, protocol=4), "a Python pickle"),
        ("text", b"hello, this is a text file\n" * 4, "a text file"),
    ],
)
def test_a_file_of_another_kind_is_named(tmp_path, name, data, kind):
    """A PNG or a torch.save file was called "truncated or corrupted" (issue 22)."""
    path = tmp_path / name
    if name == "png":
        from PIL import Image

        Image.new("RGB", (8, 8)).save(path, format="PNG")
    elif name == "torch.save":
        torch.save({"w": torch.ones(3)}, path)
    else:
        path.write_bytes(data)
    with pytest.raises(CheckpointError, match=f"is not a binedu packed checkpoint: it is {kind}"):
        load_packed(path)


def test_a_training_checkpoint_whose_configuration_has_a_zero_width_is_refused(tmp_path):
    """It evaluated (and packed into a file that crashed) on the second edition (issue 22, item 10)."""
    from binedu.config import ImageConfig
    from binedu.train_checkpoint import TrainingCheckpointError, load_trained_model, save_training_checkpoint

    config = ImageConfig(
        in_channels=1, num_classes=3, image_size=4, widths=((4,), (4,)), dense_units=(8,), dropout=(0.1,)
    )
    path = save_training_checkpoint(tmp_path / "t.safetensors", ImageClassifier(config))
    header, data = read_raw(path)
    document = json.loads(header["__metadata__"]["document"])
    document["config"]["widths"] = [[0], [4]]
    text = json.dumps(document)
    header["__metadata__"] |= {"document": text, "document_sha256": hashlib.sha256(text.encode()).hexdigest()}
    with pytest.raises(TrainingCheckpointError, match="widths must hold positive integers"):
        load_trained_model(write_raw(tmp_path / "zero.safetensors", header, data))


ARG_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-6, 300)
    | st.sampled_from([0.0, 0.5, 1.0, 2.0, float("nan"), "none", "tanh", "false", 10**7])
    | st.tuples(st.integers(-1, 300), st.integers(-1, 300))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_what_the_rules_accept_builds_saves_and_loads_back_the_same(tmp_path, data):
    """The law of the allow-list: any arguments it accepts construct the module, and a
    file holding it loads back to the same description; whatever it refuses is a ValueError."""
    import inspect

    from binedu.stored_args import ARG_RULES, check_args

    kind = data.draw(st.sampled_from(sorted(checkpoint_module.TORCH_MODULES)), label="kind")
    parameters = inspect.signature(checkpoint_module.TORCH_MODULES[kind].__init__).parameters.values()
    required = {p.name for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
    names = required | set(data.draw(st.lists(st.sampled_from(sorted(ARG_RULES[kind]) or ["x"]), max_size=4)))
    args = {name: data.draw(ARG_VALUES, label=name) for name in names}
    try:
        check_args(kind, args)
    except ValueError:
        return
    module = checkpoint_module.TORCH_MODULES[kind](**args)
    path = save_packed(nn.Sequential(PackedLinear(4, 3), module), tmp_path / "m.safetensors")
    loaded = load_packed(path)
    assert checkpoint_module._describe(loaded[1], "1") == checkpoint_module._describe(module, "1")


def test_lists_for_tuple_fields_still_make_a_configuration():
    """The stricter checks accept what Python code has always passed (lists), as tuples."""
    from binedu.config import ImageConfig, LanguageConfig

    config = ImageConfig(widths=[[16, 16], [32]], dense_units=[8], dropout=[0.1])
    assert config == ImageConfig(widths=((16, 16), (32,)), dense_units=(8,), dropout=(0.1,))
    assert LanguageConfig(mlp_units=[8]).mlp_units == (8,)
