"""``binedu train`` on the training side of issue 22: training longer, nothing left to do,
the data's identity and the precision on resume, the seed's range, one line for a CPU
out of memory, the recipe's numbers in the help, and configs paired with their data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import TensorDataset
from train_fixtures import image_model, image_set

from binedu.__main__ import build_parser, main, plan_train
from binedu.data_identity import data_id
from binedu.history import History
from binedu.train import MAX_SEED, fit, recipe

IMAGE = ["train", "--model", "image", "--limit", "40", "--batch-size", "16", "--warmup-steps", "2", "--no-progress"]


def final_metrics(stdout: str) -> dict[str, float]:
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("final: ")]
    return {k: float(v) for k, v in (item.split("=") for item in line[len("final: ") :].split())}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_train_longer_then_nothing_left_to_do(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*IMAGE, "--epochs", "2", "--out", str(out)]) == 0
    first = final_metrics(capsys.readouterr().out)
    assert main([*IMAGE, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    longer = final_metrics(captured.out)
    assert captured.err == "" and longer["epochs"] == 3 and longer["steps"] == 9
    assert longer["val_loss"] != first["val_loss"] and longer["train_loss"] != first["train_loss"]
    history = History.load(out / "history.json")
    lr = json.loads((out / "run.json").read_text())["train"]["lr"]
    assert min(history.lr[6:]) > 0.2 * lr and history.lr[6] == lr  # a real rate: the cosine restarts
    before = snapshot(out)
    assert main([*IMAGE, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("\n") == 1
    assert captured.out.startswith(f"nothing left to do: {out / 'checkpoint.safetensors'} is at epoch 3, step 9")
    assert snapshot(out) == before


def _image_folder(root: Path, colours: tuple[str, str]) -> Path:
    for c, colour in enumerate(colours):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (12, 12), colour).save(folder / f"{i}.png")
    return root


FOLDER = ["train", "--data", "folder", "--image-size", "8", "--batch-size", "2", "--val-fraction", "0.25", "--no-progress"]


def test_resume_refuses_another_data_set_of_the_same_size_before_writing(tmp_path, capsys):
    first = _image_folder(tmp_path / "a", ("red", "blue"))
    other = _image_folder(tmp_path / "b", ("green", "yellow"))
    out = tmp_path / "run"
    assert main([*FOLDER, "--data-root", str(first), "--max-steps", "2", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["precision"] == "fp32" and len(record["data_id"]) == 32
    before = snapshot(out)
    capsys.readouterr()
    assert main([*FOLDER, "--data-root", str(other), "--max-steps", "4", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err and f"data_id='{record['data_id']}' (now '" in err and err.count("\n") == 1
    assert snapshot(out) == before
    moved = Path(shutil.copytree(first, tmp_path / "moved"))  # the same files elsewhere: the same data
    assert main([*FOLDER, "--data-root", str(moved), "--max-steps", "4", "--resume", "--out", str(out)]) == 0


def test_resume_refuses_a_precision_change_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*IMAGE, "--epochs", "2", "--max-steps", "2", "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main([*IMAGE, "--epochs", "2", "--precision", "bf16", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err and "precision='fp32' (now 'bf16')" in err
    assert snapshot(out) == before


def test_data_id_tells_data_sets_of_the_same_size_apart():
    a = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    b = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([1, 1, 0, 1]))
    c = TensorDataset(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    assert data_id(a) != data_id(b) and data_id(a) == data_id(c)
    assert data_id(TensorDataset(torch.zeros(4, 1, 2, 2).double(), torch.tensor([0, 1, 0, 1]))) != data_id(a)
    assert data_id([1, 2, 3]) is None  # a kind it does not know: not compared


def test_data_id_of_token_and_image_sets(tmp_path):
    import numpy as np

    from binedu.data import image_data
    from binedu.data.text import TokenDataset

    ids = np.array([1, 2, 3, 4, 5, 6], dtype=np.int32)
    one, moved = TokenDataset(ids, np.array([0, 3, 6]), 4), TokenDataset(ids, np.array([0, 2, 6]), 4)
    assert data_id(one) != data_id(moved) and data_id(one) == data_id(TokenDataset(ids.copy(), np.array([0, 3, 6]), 4))
    digits = image_data("digits", limit=40)
    assert data_id(digits.train) == data_id(image_data("digits", limit=40).train)
    assert data_id(digits.train) != data_id(image_data("digits", limit=40, seed=1).train)


def test_a_seed_beyond_the_data_orders_range_is_refused_up_front(tmp_path, capsys):
    """--seed 1.8e13 failed after run.json was written (the order's generator overflowed)."""
    out = tmp_path / "run"
    assert main([*IMAGE, "--seed", "18000000000000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"argument --seed: must be <= {MAX_SEED}, got 18000000000000" in err and err.count("\n") == 1
    assert not out.exists()
    with pytest.raises(ValueError, match="seed must be an integer in"):
        fit(image_model(), image_set(10), seed=MAX_SEED + 1, progress=False)
    assert main([*IMAGE, "--seed", str(MAX_SEED), "--epochs", "2", "--max-steps", "1", "--out", str(out)]) == 0


@given(seed=st.integers(0, MAX_SEED), epoch=st.integers(0, 10**6), rank=st.integers(0, 1023))
@settings(max_examples=30, deadline=None)
def test_every_accepted_seed_gives_valid_generator_seeds(seed, epoch, rank):
    from binedu.distributed import Group
    from binedu.train import _epoch_order

    assert sorted(_epoch_order(5, seed, epoch)) == list(range(5))
    torch.Generator().manual_seed(Group(rank, 1024).seed(seed))


def test_a_cpu_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    """A failed CPU allocation is a plain RuntimeError (DefaultCPUAllocator), not an OutOfMemoryError."""
    import binedu.__main__ as cli

    def allocate(*args, **kwargs):
        return torch.empty(2**50, dtype=torch.uint8)  # 1 PiB: the allocator refuses it

    monkeypatch.setattr(cli, "fit", allocate)
    assert main([*IMAGE, "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("binedu train: error: out of memory (") and "DefaultCPUAllocator" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_train_help_shows_each_recipes_numbers():
    from binedu.__main__ import build_parser

    parser = build_parser()
    text = " ".join(parser._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "the config's recipe" not in text

    def shown(kind, config, key):
        value = recipe(kind, config).get(key)
        return "the rest of the run" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    for key in ("epochs", "lr", "decay_steps"):
        image = f"image: paper-* {shown('image', 'paper-3x3', key)}, tiny/tiny-28 {shown('image', 'tiny', key)}"
        language = f"language: paper-* {shown('language', 'paper-small', key)}, tiny {shown('language', 'tiny', key)}"
        assert f"{image}; {language}" in text, key
    assert "default: image adam; language adamw" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "tiny-28", "--data", "digits"], "the digits are 8x8 images but --config tiny-28 is made for 28x28"),
        (["--config", "tiny", "--data", "digits-hard"], "digits-hard images are 28x28 (at least 20 pixels) but --config tiny"),
        (["--data", "digits-hard", "--image-size", "16"], "digits-hard images are 28x28 (at least 20 pixels) but --config tiny uses 16x16"),
    ],
)
def test_configs_and_offline_data_that_do_not_pair_are_refused(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"argument --data: {message}" in err and err.count("\n") == 1 and not out.exists()


def test_tiny_28_trains_on_digits_hard_by_default(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "tiny-28", "--limit", "20", "--max-steps", "1", "--batch-size", "8",
                 "--no-progress", "--out", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "run.json").read_text())
    assert record["data"]["name"] == "digits-hard" and record["model"]["image_size"] == 28
    assert "data: digits-hard" in capsys.readouterr().out
    args = build_parser().parse_args(["train", "--config", "tiny-28", "--data", "digits", "--image-size", "28"])
    assert plan_train(args)["data"]["name"] == "digits"  # scaled up on purpose: allowed


@given(value=st.integers(-(2**70), 2**70))
def test_the_train_seed_option_accepts_exactly_its_range(value):
    import argparse

    from binedu.__main__ import TRAIN_SEED

    if 0 <= value <= MAX_SEED:
        assert TRAIN_SEED(str(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            TRAIN_SEED(str(value))
