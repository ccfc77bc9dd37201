"""Training checkpoints: pickle-free, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
import torch
from helpers import same_weights
from hypothesis import given
from hypothesis import strategies as st
from train_fixtures import Crashing, counting_sequences, image_model, image_set, language_model

from binedu.train import fit
from binedu.train_checkpoint import (
    TrainingCheckpointError,
    load_trained_model,
    read_training_checkpoint,
    save_training_checkpoint,
)


@pytest.mark.parametrize(
    ("make", "data", "kwargs", "stop"),
    [
        # binary image model, Adam, stopped mid-epoch (epochs have 5 batches)
        (image_model, lambda: image_set(40), dict(optimizer="adam"), 7),
        # float32 image model with dropout (random numbers must resume too), stopped at an epoch end
        (lambda: image_model(binary=False), lambda: image_set(40), dict(optimizer="adam"), 5),
        # binary language model, AdamW with weight decay, padding in the data
        (language_model, lambda: counting_sequences(40), dict(optimizer="adamw", weight_decay=0.01), 3),
    ],
)
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, make, data, kwargs, stop):
    common = dict(epochs=3, batch_size=8, lr=5e-3, warmup_steps=3, record_every=2, seed=7, progress=False) | kwargs
    val = data()
    full_model = make()
    full = fit(full_model, data(), val, max_steps=13, **common)

    path = tmp_path / "run.safetensors"
    first = fit(make(), data(), val, max_steps=stop, checkpoint=path, **common)
    assert len(first.steps) == stop
    torch.manual_seed(12345)  # whatever happened to the global RNG in between must not matter
    resumed_model = make()  # fresh objects: everything comes from the file
    resumed = fit(resumed_model, data(), val, max_steps=13, checkpoint=path, resume=True, **common)

    assert same_weights(full_model, resumed_model)
    assert resumed.to_dict() == full.to_dict()
    assert read_training_checkpoint(path).state["step"] == 13



def test_a_run_killed_mid_epoch_resumes_from_its_last_periodic_checkpoint(tmp_path):
    common = dict(epochs=2, batch_size=8, lr=5e-3, warmup_steps=2, record_every=2, seed=1, progress=False)
    full_model = image_model()
    full = fit(full_model, image_set(40), image_set(8, 1), **common)

    path = tmp_path / "run.safetensors"
    with pytest.raises(RuntimeError, match="killed"):  # dies while reading the 8th batch (step 7)
        fit(image_model(), Crashing(image_set(40), 8 * 7 + 3), image_set(8, 1), checkpoint=path, checkpoint_every=3, **common)
    assert read_training_checkpoint(path).state["step"] == 6  # the last periodic save, mid-epoch 2
    resumed_model = image_model(seed=5)
    resumed = fit(resumed_model, image_set(40), image_set(8, 1), checkpoint=path, resume=True, **common)
    assert same_weights(full_model, resumed_model)
    assert resumed.to_dict() == full.to_dict()


def test_resume_without_a_file_starts_fresh(tmp_path):
    path = tmp_path / "new.safetensors"
    a = fit(image_model(), image_set(20), epochs=1, batch_size=10, checkpoint=path, resume=True, progress=False)
    b = fit(image_model(), image_set(20), epochs=1, batch_size=10, progress=False)
    assert a.to_dict() == b.to_dict() and path.is_file()


def test_resume_refuses_a_different_batch_size(tmp_path):
    path = tmp_path / "run.safetensors"
    fit(image_model(), image_set(20), epochs=1, batch_size=10, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="batch_size=10"):
        fit(image_model(), image_set(20), epochs=2, batch_size=5, checkpoint=path, resume=True, progress=False)


def test_checkpoint_round_trips_model_optimizer_and_document(tmp_path):
    model = language_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randint(0, 12, (2, 8))).sum().backward()
    opt.step()
    path = save_training_checkpoint(
        tmp_path / "c.safetensors", model, opt, state={"step": 1}, meta={"note": "x"}, tensors={"extra/a": torch.ones(2)}
    )
    ckpt = read_training_checkpoint(path)
    assert type(model.config).from_dict(ckpt.config) == model.config and ckpt.state == {"step": 1} and ckpt.meta == {"note": "x"}
    assert torch.equal(ckpt.tensors["extra/a"], torch.ones(2))
    assert same_weights(load_trained_model(path), model)
    fresh = torch.optim.AdamW(language_model(seed=1).parameters(), lr=1e-3)
    fresh.load_state_dict(ckpt.optimizer_state)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert all(torch.equal(a["state"][i][k], b["state"][i][k]) for i in a["state"] for k in a["state"][i])


def test_checkpoint_is_plain_safetensors_with_a_json_document(tmp_path):
    path = save_training_checkpoint(tmp_path / "c.safetensors", image_model())
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    assert header["__metadata__"]["format"] == "binedu-training-checkpoint"
    assert json.loads(header["__metadata__"]["document"])["config"]["kind"] == "image"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[: len(raw) // 2], "not a readable safetensors"),
        (lambda raw: b"\x00" * 5, "not a readable safetensors"),
        (lambda raw: b"garbage" * 100, "not a readable safetensors"),
    ],
)
def test_corrupt_checkpoints_raise_a_clear_value_error(tmp_path, damage, message):
    path = save_training_checkpoint(tmp_path / "c.safetensors", image_model())
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message):
        read_training_checkpoint(path)


def test_other_files_are_refused(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(TrainingCheckpointError, match="not a binedu training checkpoint"):
        read_training_checkpoint(other)
    with pytest.raises(TrainingCheckpointError, match="no training checkpoint"):
        read_training_checkpoint(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    doc_sum = hashlib.sha256(b"{").hexdigest()  # the document's checksum is right, the document is not
    meta = {"format": "binedu-training-checkpoint", "version": "2", "document": "{", "document_sha256": doc_sum}
    save_file({"w": torch.zeros(2)}, str(bad), metadata=meta)
    with pytest.raises(TrainingCheckpointError, match="corrupt checkpoint document"):
        read_training_checkpoint(bad)


def test_parameters_that_do_not_fit_the_config_are_reported(tmp_path):
    model = image_model()
    model.config = image_model(widths=((4,), (4,), (4,))).config  # a configuration that lies about the weights
    path = save_training_checkpoint(tmp_path / "c.safetensors", model)
    with pytest.raises(TrainingCheckpointError, match="do not fit"):
        load_trained_model(path)


def train_then_resume(tmp_path, first: dict, then: dict, make_first=image_model, make_then=image_model):
    """Train 2 steps with ``first``, then resume with ``then``; returns the checkpoint's bytes before and after."""
    common = dict(epochs=2, batch_size=10, lr=5e-3, warmup_steps=2, progress=False)
    path = tmp_path / "c.safetensors"
    fit(make_first(), image_set(40), max_steps=2, checkpoint=path, **(common | first))
    before = path.read_bytes()
    started = []
    with pytest.raises(ValueError) as refused:
        fit(make_then(), image_set(40), max_steps=4, checkpoint=path, resume=True, on_start=lambda: started.append(1),
            **(common | then))  # fmt: skip
    assert started == [] and path.read_bytes() == before  # refused before anything ran or was written
    return str(refused.value)


@pytest.mark.parametrize(
    ("first", "then", "make_then", "named"),
    [
        ({}, {}, lambda: image_model(normalize=False), "model.normalize=True (now False)"),
        ({}, {}, lambda: image_model(binary=False), "model.binary=True (now False)"),
        ({}, {}, lambda: image_model(norm_mode="chw"), "model.norm_mode='channels' (now 'chw')"),
        ({}, {}, lambda: image_model(dense_units=(32,)), "model.dense_units=[64] (now [32])"),
        ({"optimizer": "adam"}, {"optimizer": "adamw"}, image_model, "optimizer='adam' (now 'adamw')"),
        ({"optimizer": "adamw"}, {"optimizer": "adamw", "weight_decay": 0.5}, image_model, "weight_decay=0.0 (now 0.5)"),
        ({}, {"lr": 1e-2}, image_model, "lr=0.005 (now 0.01)"),
        ({}, {"warmup_steps": 3}, image_model, "warmup_steps=2 (now 3)"),
        ({"decay_steps": 5}, {"decay_steps": 6}, image_model, "decay_steps=5 (now 6)"),
        ({}, {"min_lr_ratio": 0.1}, image_model, "min_lr_ratio=0.0 (now 0.1)"),
        ({}, {"seed": 1}, image_model, "seed=0 (now 1)"),
        # another data set of the same size, or another precision (both were accepted, and run.json rewritten)
        ({"data_id": "digits-a"}, {"data_id": "digits-b"}, image_model, "data_id='digits-a' (now 'digits-b')"),
        ({}, {"precision": "bf16"}, image_model, "precision='fp32' (now 'bf16')"),
        # a decay that followed the epochs is not an explicit one
        ({"decay_steps": 5}, {"decay_steps": None}, image_model, "decay_steps=5 (now None: the rest of the run)"),
    ],
)
def test_resume_refuses_another_model_or_optimizer_naming_the_field(tmp_path, first, then, make_then, named):
    message = train_then_resume(tmp_path, first, then, make_then=make_then)
    assert "cannot resume" in message and named in message


def test_resume_names_every_field_that_differs(tmp_path):
    message = train_then_resume(tmp_path, {}, {"lr": 1e-2, "batch_size": 5}, make_then=lambda: image_model(normalize=False))
    for named in ("model.normalize=True (now False)", "lr=0.005 (now 0.01)", "batch_size=10 (now 5)"):
        assert named in message


def test_resume_refuses_other_optimizer_hyperparameters(tmp_path, monkeypatch):
    """betas and eps are not fit() arguments, but a checkpoint written with other ones must not be continued."""
    import binedu.train as train

    path = tmp_path / "c.safetensors"
    kw = dict(epochs=2, batch_size=10, progress=False, checkpoint=path)
    real = train.make_optimizer
    monkeypatch.setattr(train, "make_optimizer", lambda *a, **k: (o := real(*a, **k)).param_groups[0].update(betas=(0.8, 0.99)) or o)
    fit(image_model(), image_set(40), max_steps=2, **kw)
    monkeypatch.setattr(train, "make_optimizer", real)
    with pytest.raises(ValueError, match=r"optimizer.betas=\(0.8, 0.99\) \(now \(0.9, 0.999\)\)"):
        fit(image_model(), image_set(40), max_steps=4, resume=True, **kw)


def test_resume_with_the_same_settings_still_works_after_the_checks(tmp_path):
    path = tmp_path / "c.safetensors"
    kw = dict(epochs=2, batch_size=10, optimizer="adamw", weight_decay=0.1, progress=False, checkpoint=path)
    fit(language_model(), counting_sequences(20), max_steps=1, **kw)
    h = fit(language_model(seed=3), counting_sequences(20), max_steps=3, resume=True, **kw)
    assert h.steps == [0, 1, 2]


def test_a_corrupt_optimizer_section_is_refused_with_a_clear_error(tmp_path, monkeypatch):
    """Valid checksums, but the optimizer's groups do not fit the model: a TrainingCheckpointError, not a KeyError."""
    import binedu.train_checkpoint as tc

    path = tmp_path / "c.safetensors"
    kw = dict(epochs=2, batch_size=10, progress=False, checkpoint=path)
    split = tc._split_optimizer

    def two_groups(state):
        tensors, rest = split(state)
        return tensors, rest | {"param_groups": rest["param_groups"] * 2}

    monkeypatch.setattr(tc, "_split_optimizer", two_groups)
    fit(image_model(), image_set(40), max_steps=2, **kw)
    monkeypatch.setattr(tc, "_split_optimizer", split)
    with pytest.raises(TrainingCheckpointError, match="cannot resume .*optimizer section is corrupt"):
        fit(image_model(), image_set(40), max_steps=4, resume=True, **kw)


def test_a_corrupt_progress_section_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    model = image_model()
    fit(model, image_set(40), epochs=2, batch_size=10, max_steps=2, progress=False, checkpoint=path)
    saved = read_training_checkpoint(path)
    save_training_checkpoint(path, model, state={"step": "two"}, history=saved.history, meta=saved.meta)
    with pytest.raises(TrainingCheckpointError, match="progress section is corrupt"):
        fit(image_model(), image_set(40), epochs=2, batch_size=10, progress=False, checkpoint=path, resume=True)


def test_resuming_a_finished_run_with_more_epochs_trains_at_a_real_rate(tmp_path):
    """It was refused with a decay_steps hint; following the hint trained at a rate of about 0."""
    path = tmp_path / "c.safetensors"
    common = dict(batch_size=10, lr=5e-3, warmup_steps=2, progress=False, checkpoint=path)
    first = fit(image_model(), image_set(40), image_set(10, 1), epochs=2, **common)
    assert first.lr[-1] < 0.1 * 5e-3  # the cosine ends near 0 at the end of the plan
    model = image_model()
    longer = fit(model, image_set(40), image_set(10, 1), epochs=3, resume=True, **common)
    assert longer.lr[:8] == first.lr  # the steps done keep their rates
    extra = longer.lr[8:]
    assert len(extra) == 4 and extra[0] == 5e-3 and min(extra) > 0.1 * 5e-3  # a warm restart over the extra epoch
    assert [e["epoch"] for e in longer.epochs] == [1, 2, 3]
    assert longer.epochs[-1]["val_loss"] != longer.epochs[-2]["val_loss"]
    assert longer.loss[8:] != first.loss[-4:]
    saved = read_training_checkpoint(path)
    assert saved.meta["restarts"] == [[8, 4]] and saved.meta["schedule_end"] == 12 and saved.state["step"] == 12


def test_an_extended_run_stopped_and_resumed_equals_one_extended_at_once(tmp_path):
    common = dict(batch_size=10, lr=5e-3, warmup_steps=2, record_every=3, progress=False)
    runs = []
    for stops in ((), (10,)):
        path = tmp_path / f"run{len(stops)}.safetensors"
        fit(image_model(), image_set(40), epochs=2, checkpoint=path, **common)
        for stop in stops:
            fit(image_model(), image_set(40), epochs=4, checkpoint=path, resume=True, max_steps=stop, **common)
        model = image_model(seed=9)
        history = fit(model, image_set(40), epochs=4, checkpoint=path, resume=True, **common)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    assert same_weights(a, b) and ha.to_dict() == hb.to_dict() and len(ha.steps) == 16


def test_resuming_a_finished_run_with_its_epochs_has_nothing_to_do(tmp_path):
    path = tmp_path / "c.safetensors"
    common = dict(epochs=2, batch_size=10, warmup_steps=2, progress=False, checkpoint=path)
    first = fit(image_model(), image_set(40), **common)
    before, started = path.read_bytes(), []
    model = image_model(seed=4)
    again = fit(model, image_set(40), resume=True, on_start=lambda: started.append(1), **common)
    assert started == [] and path.read_bytes() == before
    assert json.loads(json.dumps(again.to_dict())) == json.loads(json.dumps(first.to_dict()))  # the saved history
    assert same_weights(model, load_trained_model(path))  # the checkpoint's latents, not trained further


@given(
    steps=st.integers(1, 60), warmup=st.integers(0, 10), decay=st.integers(0, 60),
    extra=st.lists(st.integers(1, 40), max_size=3), ratio=st.floats(0, 1),
)  # fmt: skip
def test_a_warm_restart_keeps_the_earlier_rates_and_restarts_from_the_peak(steps, warmup, decay, extra, ratio):
    from binedu.train_schedule import Schedule

    restarts, end = [], steps
    for n in extra:
        restarts.append((end, n))
        end += n
    plain = Schedule(0.1, warmup, decay, ratio)
    extended = Schedule(0.1, warmup, decay, ratio, tuple(restarts))
    assert [extended.rate(s) for s in range(steps)] == [plain.rate(s) for s in range(steps)]
    for start, n in restarts:
        assert extended.rate(start) == 0.1
        rates = [extended.rate(s) for s in range(start, start + n)]
        assert all(0.1 * ratio - 1e-12 <= r <= 0.1 for r in rates) and rates == sorted(rates, reverse=True)
