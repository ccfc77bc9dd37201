"""A training checkpoint edited and signed again (valid checksums) is checked as a whole
before a resumed run writes anything (binedu.train_validate): each single edit ends in
one clear error line and leaves the run folder as it was."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from train_fixtures import image_model, image_set

from binedu.__main__ import main
from binedu.tensor_file import digest
from binedu.train import fit
from binedu.train_checkpoint import TrainingCheckpointError

IMAGE = ["train", "--model", "image", "--limit", "40", "--epochs", "2", "--batch-size", "16", "--no-progress"]
FIRST_BITS = "bits/layers.0.weight"


def resign(path: Path, document: Callable[[dict], None] | None = None, tensors: Callable[[dict], None] | None = None) -> None:
    """Edit a training checkpoint's document and/or tensors, then recompute every checksum."""
    with safe_open(str(path), "pt") as file:
        metadata = file.metadata()
        stored = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    doc = json.loads(metadata["document"])
    if document is not None:
        document(doc)
    if tensors is not None:
        tensors(stored)
    text = json.dumps(doc)
    metadata |= {"document": text, "document_sha256": hashlib.sha256(text.encode()).hexdigest()}
    metadata["tensors_sha256"] = json.dumps({k: digest(v) for k, v in sorted(stored.items())})
    save_file({k: v.contiguous() for k, v in stored.items()}, str(path), metadata=metadata)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run stopped at step 4 of 6 (3 batches an epoch: epoch 1, batch 1)."""
    out = tmp_path_factory.mktemp("validation") / "run"
    assert main([*IMAGE, "--max-steps", "4", "--out", str(out)]) == 0
    return out


def _set(*path, value):
    def edit(doc):
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return edit


def _tensor(name, make):
    def edit(stored):
        stored[name] = make(stored.get(name))

    return edit


def _drop(name):
    return lambda stored: stored.pop(name)


GROUP = ("optimizer", "param_groups", 0)
EDITS = [
    # the three of the issue: honoured, skipped, falsified
    (_set(*GROUP, "maximize", value=True), None, "optimizer.maximize=True (now False)"),
    (_set("state", "batch", value=10**6), None, "state.batch must be an integer in [0, 2], got 1000000"),
    (None, _tensor(FIRST_BITS, lambda t: t.reshape(-1)[:5].clone()), f"tensor '{FIRST_BITS}' must hold the 0/1 bits"),
    # the progress counters
    (_set("state", "step", value="four"), None, "progress section is corrupt"),
    (_set("state", "epoch", value=-1), None, "state.epoch must be an integer in [0, 2], got -1"),
    (_set("state", "epoch", value=True), None, "state.epoch must be an integer"),
    (_set("state", "step", value=3), None, "state.step=3 does not fit state.epoch=1 and state.batch=1"),
    (_set("state", "epoch", value=2), None, "state.batch=1 lies after the last of the checkpoint's 2 epochs"),
    (_set("state", "tally", "correct", value=10**9), None, "state.tally="),
    (_set("state", "tally", value=[]), None, "state.tally=[]"),
    (_set("state", "extra", value=1), None, "progress section is corrupt: keys"),
    (_set("state", "step_offset", value=-5), None, "state.step_offset must be an integer"),
    # the settings
    (_set("meta", "world_size", value="2"), None, "it ran on '2' processes, not 1"),
    (_set("meta", "world_size", value=2), None, "it ran on 2 processes, not 1"),
    (_set("meta", "epochs", value="two"), None, "meta.epochs has a wrong type or range: 'two'"),
    (_set("meta", "record_every", value=1.5), None, "meta.record_every has a wrong type or range"),
    (_set("meta", "surprise", value=1), None, "unknown key(s) in meta: 'surprise'"),
    (_set("meta", "seed", value=1), None, "seed=1 (now 0)"),
    (_set("config", "widths", value=[[8, 8], [32, 32], [64]]), None, "model.widths=[[8, 8], [32, 32], [64]]"),
    # the history
    (_set("history", "loss", value="low"), None, "history.loss must be a list of finite numbers"),
    (_set("history", "steps", value=[0, 1, 2]), None, "history.steps, history.loss and history.lr differ in length"),
    (_set("history", "steps", value=[0, 1, 2, 7]), None, "history.steps does not end with the 4 steps"),
    (_set("history", "lr", value=[0.1, -1.0, 0.1, 0.1]), None, "history.lr must be a list of finite numbers >= 0"),
    (_set("history", "flip_ratio", value=[0.5]), None, "history.flip_ratio and history.flip_steps differ in length"),
    (_set("history", "grad_norms", value={"layers.0": [1.0] * 9}), None, "history.grad_norms['layers.0'] holds 9 values"),
    (_set("history", "epochs", value=[{"epoch": "1", "step": 3}]), None, "history.epochs holds a malformed record"),
    (_set("history", "epochs", value=[{"epoch": 1, "step": 3, "partial": False}]), None, "malformed record"),
    # the optimizer
    (_set("optimizer", value=None), None, "it has no optimizer section"),
    (_set(*GROUP, "lr", value="fast"), None, "optimizer lr must be a finite number >= 0, got 'fast'"),
    (_set(*GROUP, "params", value=[0]), None, "optimizer params must be 0..13"),
    (_set(*GROUP, "momentum", value=0.9), None, "optimizer.momentum=0.9 (now None)"),
    (_set(*GROUP, "amsgrad", value=True), None, "optimizer.amsgrad=True (now False)"),
    (_set(*GROUP, "betas", value=[0.9, "x"]), None, "optimizer.betas="),
    (_set("optimizer", "scalars", value={"0": {"step": 10**9}}), None, "step must count at most the 4 steps done"),
    (_set("optimizer", "param_groups", value=[]), None, "optimizer section is corrupt"),
    (None, _tensor("optim/0/exp_avg", lambda t: torch.zeros(3)), "exp_avg is torch.float32 [3], the parameter is"),
    (None, _tensor("optim/0/exp_avg_sq", lambda t: -t - 1), "exp_avg_sq holds negative values"),
    (None, _tensor("optim/0/step", lambda t: torch.zeros(2)), "step must be a float scalar tensor"),
    (None, _drop("optim/0/exp_avg"), "optimizer state of parameter 0 holds ['exp_avg_sq', 'step']"),
    # the other tensors
    (None, _tensor("model/layers.0.weight", lambda t: torch.zeros(4, 1, 3, 3)), "it holds another model: 'layers.0.weight'"),
    (None, _drop("model/layers.0.bias"), "it holds another model (missing ['layers.0.bias']"),
    (None, _tensor(FIRST_BITS, lambda t: t + 2), f"tensor '{FIRST_BITS}' must hold the 0/1 bits"),
    (None, _tensor(FIRST_BITS, lambda t: t.float()), f"tensor '{FIRST_BITS}' must hold the 0/1 bits"),
    (None, _drop(FIRST_BITS), "the bit snapshots do not cover this model's binary parameters"),
    (None, _tensor("bits/layers.99.weight", lambda t: torch.zeros(2, dtype=torch.uint8)), "is not a bit snapshot"),
    (None, _tensor("rng/cpu", lambda t: t[:100].clone()), "tensor 'rng/cpu' is not a random-number state"),
    (None, _drop("rng/cpu"), "random-number states of 1 process(es) expected, found 0"),
    (None, _tensor("rank1/rng/cpu", lambda t: torch.zeros(5056, dtype=torch.uint8)), "unexpected tensor 'rank1/rng/cpu'"),
    (None, _tensor("evil/payload", lambda t: torch.zeros(1)), "unexpected tensor 'evil/payload'"),
]


@pytest.mark.parametrize(("document", "tensors", "message"), EDITS)
def test_a_resigned_single_edit_ends_in_one_line_and_changes_nothing(stopped_run, tmp_path, capsys, document, tensors, message):
    run = Path(shutil.copytree(stopped_run, tmp_path / "run"))
    resign(run / "checkpoint.safetensors", document, tensors)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main([*IMAGE, "--max-steps", "6", "--resume", "--out", str(run)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    assert "cannot resume" in captured.err and message in captured.err, captured.err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # every check ran before any write


def test_the_unedited_resigned_checkpoint_still_resumes(stopped_run, tmp_path, capsys):
    run = Path(shutil.copytree(stopped_run, tmp_path / "run"))
    resign(run / "checkpoint.safetensors")
    assert main([*IMAGE, "--max-steps", "6", "--resume", "--out", str(run)]) == 0
    assert "final: epochs=2 steps=6" in capsys.readouterr().out


def test_maximize_is_refused_by_fit_before_the_model_changes(tmp_path):
    """It was honoured: the loss climbed and the accuracy fell to chance, with exit status 0."""
    path = tmp_path / "c.safetensors"
    fit(image_model(), image_set(40), epochs=2, batch_size=10, max_steps=2, checkpoint=path, progress=False)
    resign(path, _set(*GROUP, "maximize", value=True))
    model = image_model(seed=3)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"optimizer.maximize=True \(now False\)"):
        fit(model, image_set(40), epochs=2, batch_size=10, checkpoint=path, resume=True, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_corrupt_tensor_is_refused_before_the_optimizer_or_model_is_loaded(tmp_path):
    path = tmp_path / "c.safetensors"
    fit(image_model(), image_set(40), epochs=2, batch_size=10, max_steps=2, checkpoint=path, progress=False)
    resign(path, tensors=_tensor("bits/layers.0.bias", lambda t: torch.ones(3, dtype=torch.uint8)))
    model = image_model(seed=3)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(TrainingCheckpointError, match="cannot resume .*bits/layers.0.bias"):
        fit(model, image_set(40), epochs=2, batch_size=10, checkpoint=path, resume=True, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_overflowing_perplexity_is_a_valid_record_and_nan_is_not():
    from binedu.history import History
    from binedu.train_validate import check_history

    state = {"step": 0, "epoch": 1, "batch": 0}
    check_history(History(epochs=[{"epoch": 1, "step": 0, "val_loss": 800.0, "val_ppl": float("inf")}]), state)
    with pytest.raises(TrainingCheckpointError, match="malformed record"):
        check_history(History(epochs=[{"epoch": 1, "step": 0, "val_loss": float("nan")}]), state)
