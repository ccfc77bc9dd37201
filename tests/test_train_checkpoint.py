"""Training checkpoints are verified like packed files (issue 13, items 1, 5 and 6):
checksums, finite latents, bounded loading, and only TrainingCheckpointError."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from file_probes import measure, no_hang, read_raw, write_raw
from helpers import same_weights
from train_fixtures import image_model, language_model

from binedu.train_checkpoint import (
    TrainingCheckpointError,
    is_training_checkpoint,
    load_trained_model,
    read_training_checkpoint,
    save_training_checkpoint,
)


@pytest.fixture
def saved(tmp_path):
    model = image_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    path = save_training_checkpoint(tmp_path / "c.safetensors", model, opt, state={"step": 1}, meta={"seed": 0})
    return path, model


def test_round_trip_keeps_everything(saved):
    path, model = saved
    ckpt = read_training_checkpoint(path)
    assert same_weights(load_trained_model(path), model)
    assert ckpt.state == {"step": 1} and ckpt.meta == {"seed": 0}
    assert set(ckpt.optimizer_state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    loaded = load_trained_model(path)
    assert all(p.requires_grad and not p.is_meta for p in loaded.parameters())
    meta = read_raw(path)[0]["__metadata__"]
    assert meta["version"] == "2"
    assert meta["document_sha256"] == hashlib.sha256(meta["document"].encode()).hexdigest()
    assert set(json.loads(meta["tensors_sha256"])) == set(read_raw(path)[0]) - {"__metadata__"}


def test_a_flipped_payload_byte_names_the_tensor(saved):
    """One flipped latent byte used to load without complaint."""
    path, _ = saved
    header, data = read_raw(path)
    name = "model/layers.9.weight"
    begin = header[name]["data_offsets"][0]
    raw = bytearray(path.read_bytes())
    raw[len(raw) - len(data) + begin + 5] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(TrainingCheckpointError, match=f"tensor '{name}' does not match its SHA-256"):
        read_training_checkpoint(path)


def test_an_edited_document_is_refused(saved):
    path, _ = saved
    header, data = read_raw(path)
    header["__metadata__"]["document"] = header["__metadata__"]["document"].replace('"step": 1', '"step": 7')
    with pytest.raises(TrainingCheckpointError, match="document does not match its SHA-256"):
        read_training_checkpoint(write_raw(path, header, data))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_latent_is_refused(tmp_path, value):
    """One NaN latent turned a whole layer's bits to 0 (accuracy 0.844 -> 0.100), silently."""
    model = image_model()
    with torch.no_grad():
        model.layers[9].weight[0, 0] = value
    path = save_training_checkpoint(tmp_path / "c.safetensors", model)
    with pytest.raises(TrainingCheckpointError, match="tensor 'model/layers.9.weight' holds 1 non-finite"):
        load_trained_model(path)


def test_version_1_files_without_checksums_are_refused_with_a_reason(saved):
    path, _ = saved
    header, data = read_raw(path)
    meta = header["__metadata__"]
    header["__metadata__"] = {"format": meta["format"], "version": "1", "document": meta["document"]}
    with pytest.raises(TrainingCheckpointError, match="version 1 .* without checksums"):
        read_training_checkpoint(write_raw(path, header, data))


def test_a_huge_configuration_allocates_nothing_it_does_not_hold(tmp_path):
    """A 160 KB checkpoint claiming 4,000,000 classes used to allocate 1.2 GB before
    comparing; now the model is built on meta within the file's budget and refused."""
    model = image_model()
    model.config = model.config.replace(num_classes=4_000_000)
    path = save_training_checkpoint(tmp_path / "c.safetensors", model)
    size = path.stat().st_size
    with measure() as used, pytest.raises(TrainingCheckpointError, match="do not fit"):
        load_trained_model(path)
    assert used["tensors"] < 4 * size
    assert used["python"] < 4 * size + 2**20


def test_a_language_model_with_a_million_blocks_stops_at_once(tmp_path):
    model = language_model()
    model.config = model.config.replace(num_blocks=10**6)
    path = save_training_checkpoint(tmp_path / "c.safetensors", model)
    with pytest.raises(TrainingCheckpointError, match="more than the file holds"):
        load_trained_model(path)


@pytest.mark.parametrize(
    "config",
    [
        {"kind": "language", "mlp_units": [-5]},
        {"kind": "language", "ff_dim": -4},
        {"kind": "image", "num_classes": "ten"},
        {"kind": "image", "extra": 1},
        ["image"],
        {"kind": "pydoc"},
    ],
)
def test_malformed_configurations_raise_only_training_checkpoint_error(tmp_path, config):
    path = save_training_checkpoint(tmp_path / "c.safetensors", language_model())
    header, data = read_raw(path)
    document = json.loads(header["__metadata__"]["document"])
    document["config"] = config if isinstance(config, list) else document["config"] | config
    text = json.dumps(document)
    header["__metadata__"] |= {"document": text, "document_sha256": hashlib.sha256(text.encode()).hexdigest()}
    with pytest.raises(TrainingCheckpointError):
        load_trained_model(write_raw(path, header, data))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(optimizer={"param_groups": []}),  # KeyError: 'scalars' before
        lambda d: d.update(optimizer={"param_groups": 5, "scalars": {}}),
        lambda d: d.update(history=[1]),
        lambda d: d.update(state=[]),
        lambda d: d.pop("config"),
    ],
)
def test_malformed_documents_raise_only_training_checkpoint_error(saved, edit):
    path, _ = saved
    header, data = read_raw(path)
    document = json.loads(header["__metadata__"]["document"])
    edit(document)
    text = json.dumps(document)
    header["__metadata__"] |= {"document": text, "document_sha256": hashlib.sha256(text.encode()).hexdigest()}
    with pytest.raises(TrainingCheckpointError, match="corrupt checkpoint document"):
        read_training_checkpoint(write_raw(path, header, data))


def test_fifo_and_folder_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "c.safetensors"
    os.mkfifo(fifo)
    with no_hang(10):
        assert not is_training_checkpoint(fifo)
        with pytest.raises(TrainingCheckpointError, match="not a regular file"):
            read_training_checkpoint(fifo)
    with pytest.raises(TrainingCheckpointError, match="not a regular file"):
        load_trained_model(tmp_path)
