"""The command line, ``python -m binedu`` (binedu.__main__)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from binedu.__main__ import build_parser, main, plan_train
from binedu.history import History
from binedu.train_checkpoint import read_training_checkpoint

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ["train", "--model", "image", "--limit", "40", "--epochs", "2", "--batch-size", "16", "--no-progress"]
LANGUAGE = ["train", "--model", "language", "--limit", "12", "--max-steps", "2", "--batch-size", "8", "--no-progress"]


def final_metrics(stdout: str) -> dict[str, float]:
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith("final: ")]
    return {k: float(v) for k, v in (item.split("=") for item in line[len("final: ") :].split())}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "image"
    assert main([*IMAGE, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def language_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "language"
    assert main([*LANGUAGE, "--out", str(out)]) == 0
    return out


def test_train_image_writes_a_run_folder_and_a_final_line(image_run, capsys):
    assert {p.name for p in image_run.iterdir()} == {"checkpoint.safetensors", "history.json", "run.json"}
    history = History.load(image_run / "history.json")
    assert [e["epoch"] for e in history.epochs] == [1, 2] and len(history.steps) == 2 * 3
    run = json.loads((image_run / "run.json").read_text())
    assert run["data"]["name"] == "digits" and run["model"]["num_classes"] == 10 and run["model"]["binary"] is True
    assert read_training_checkpoint(image_run / "checkpoint.safetensors").state["step"] == 6


def test_evaluate_reports_the_runs_validation_metrics(image_run, capsys):
    assert main(["evaluate", str(image_run)]) == 0
    metrics = final_metrics(capsys.readouterr().out)
    last = History.load(image_run / "history.json").epochs[-1]
    assert metrics["loss"] == pytest.approx(last["val_loss"], abs=1e-4)
    assert metrics["acc"] == pytest.approx(last["val_acc"], abs=1e-4)


def test_train_prints_progress_lines_and_final_metrics(tmp_path, capsys):
    assert main([*IMAGE, "--epochs", "1", "--out", str(tmp_path / "r"), "--float"]) == 0
    out = capsys.readouterr().out
    assert "model: ImageClassifier tiny (float)" in out and "epoch 1 step 3:" in out
    assert "=None" not in out and "decay_steps" not in out  # the tiny recipe decays over the rest of the run
    metrics = final_metrics(out)
    assert {"epochs", "steps", "train_loss", "val_loss", "train_acc", "val_acc", "best_val_acc"} <= set(metrics)


def test_resume_continues_the_run_and_refuses_to_overwrite(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main([*IMAGE, "--max-steps", "2", "--out", out]) == 0
    assert main([*IMAGE, "--max-steps", "4", "--out", out]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert main([*IMAGE, "--max-steps", "4", "--out", out, "--resume"]) == 0
    assert History.load(Path(out) / "history.json").steps == [0, 1, 2, 3]


def test_language_run_evaluates_and_generates(language_run, capsys):
    assert (language_run / "tokenizer.json").is_file()
    assert main(["evaluate", str(language_run), "--limit", "6"]) == 0
    assert {"loss", "acc", "ppl"} <= set(final_metrics(capsys.readouterr().out))
    assert main(["generate", str(language_run), "--prompt", "The ", "--max-new-tokens", "5", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("The ")


def test_pack_then_evaluate_and_report_the_packed_file(image_run, capsys):
    assert main(["evaluate", str(image_run)]) == 0
    trained = final_metrics(capsys.readouterr().out)
    assert main(["pack", str(image_run)]) == 0
    assert "packed: " in capsys.readouterr().out
    packed = image_run / "packed.safetensors"
    assert packed.stat().st_size * 30 < (image_run / "checkpoint.safetensors").stat().st_size
    assert main(["evaluate", str(packed)]) == 0
    assert final_metrics(capsys.readouterr().out) == pytest.approx(trained, abs=1e-6)
    assert main(["report", str(packed)]) == 0
    assert "packed" in capsys.readouterr().out
    assert main(["pack", str(packed)]) == 1
    assert "not a training checkpoint" in capsys.readouterr().err


def test_packed_language_model_generates_the_same_text(language_run, capsys):
    prompt = ["--prompt", "A", "--max-new-tokens", "8", "--seed", "3"]
    assert main(["generate", str(language_run / "checkpoint.safetensors"), *prompt]) == 0
    trained = capsys.readouterr().out
    assert main(["pack", str(language_run), "-o", str(language_run / "lm.safetensors")]) == 0
    capsys.readouterr()
    assert main(["generate", str(language_run / "lm.safetensors"), *prompt]) == 0
    assert capsys.readouterr().out == trained


def test_report_of_a_paper_config_counts_without_allocating(capsys):
    assert main(["report", "--model", "language", "--config", "paper-large"]) == 0
    out = capsys.readouterr().out
    assert "332,855,098" in out and "32.00x" in out


def test_float_models_cannot_be_packed(tmp_path, capsys):
    out = str(tmp_path / "f")
    assert main([*IMAGE, "--max-steps", "1", "--float", "--out", out]) == 0
    assert main(["pack", out]) == 1
    assert "only binary models" in capsys.readouterr().err


def test_paper_presets_are_one_command_each():
    parse = build_parser().parse_args
    image = plan_train(parse(["train", "--config", "paper-3x3", "--data-root", "/data/food-101"]))
    assert image["data"] | {"root": None} == {
        "kind": "image", "name": "food101", "root": None, "seed": 0, "limit": None, "image_size": 256,
    }  # fmt: skip
    assert image["train"] == {
        "optimizer": "adam", "lr": 1e-4, "batch_size": 64, "epochs": 1000, "warmup_steps": 20, "decay_steps": 1100,
        "min_lr_ratio": 0.1,
    }  # fmt: skip
    lm = plan_train(parse(["train", "--model", "language", "--config", "paper-small", "--epochs", "3"]))
    assert (lm["data"]["name"], lm["data"]["tokenizer"], lm["data"]["max_len"]) == ("wikitext-103", "wordpiece", 256)
    assert (lm["train"]["optimizer"], lm["train"]["lr"], lm["train"]["epochs"]) == ("adamw", 1e-5, 3)
    assert plan_train(parse(["train", "--config", "paper-5x5", "--float"]))["out"] == Path("runs/image-paper-5x5-float")


def test_paper_3x3_model_trains_a_step_on_a_folder_of_images(tmp_path, capsys):
    """Alg. 7 as written (1.4 M parameters), on a class-per-folder fixture at 32x32."""
    for c, colour in enumerate(("red", "blue")):
        folder = tmp_path / "images" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    args = ["train", "--config", "paper-3x3", "--data", "folder", "--data-root", str(tmp_path / "images")]
    args += ["--image-size", "32", "--max-steps", "1", "--batch-size", "4", "--val-fraction", "0.34", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    # paper-3x3 has 5,132,165 parameters with 101 classes; 2 classes drop 99 outputs of 256 weights + 1 bias
    assert f"ImageClassifier paper-3x3 (binary), {5_132_165 - 99 * 257:,} parameters" in out and "final: " in out


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["train", "--config", "huge"], 2, "argument --config: invalid choice: 'huge'"),
        (["train", "--model", "language", "--config", "paper-3x3"], 2, "argument --config: 'paper-3x3' is not a language config"),
        (["report", "--model", "image", "--config", "paper-small"], 2, "argument --config: 'paper-small' is not an image config"),
        (["train", "--model", "language", "--data", "digits"], 2, "argument --data: 'digits' does not fit a language model"),
        (["train", "--data", "pydoc"], 2, "argument --data: 'pydoc' does not fit an image model"),
        (["train", "--epochs", "0"], 2, "argument --epochs: must be >= 1, got 0"),
        (["train", "--seed", "-1"], 2, "argument --seed: must be >= 0, got -1"),
        (["train", "--lr", "inf"], 2, "argument --lr: must be a finite number"),
        (["train", "--lr", "nan"], 2, "argument --lr: must be a finite number"),
        (["train", "--lr", "0"], 2, "argument --lr: must be > 0"),
        (["train", "--weight-decay", "nan"], 2, "argument --weight-decay: must be a finite number"),
        (["train", "--min-lr-ratio", "1.5"], 2, "argument --min-lr-ratio: must be <= 1"),
        (["train", "--val-fraction", "0"], 2, "argument --val-fraction: must be > 0"),
        (["train", "--image-size", "0"], 2, "argument --image-size: must be >= 1, got 0"),
        (["train", "--image-size", "2"], 2, "argument --image-size: image_size=2 is too small for 2 max-pools"),
        (["train", "--model", "language", "--max-len", "0"], 2, "argument --max-len: must be >= 2, got 0"),
        (["train", "--model", "language", "--max-len", "100000"], 2, "argument --max-len: at most 64 (the tiny config's context)"),
        (["train", "--checkpoint-every", "-1"], 2, "argument --checkpoint-every: must be >= 0, got -1"),
        (["train", "--device", "meta"], 2, "argument --device: unsupported device 'meta'"),
        (["train", "--device", "tpu"], 2, "argument --device: unknown device 'tpu'"),
        (["generate", "run", "--prompt", "a", "--temperature", "-1"], 2, "argument --temperature: must be >= 0, got -1"),
        (["generate", "run", "--prompt", "a", "--temperature", "nan"], 2, "argument --temperature: must be a finite number"),
        (["generate", "run", "--prompt", "a", "--top-k", "0"], 2, "argument --top-k: must be >= 1"),
        (["evaluate", "run", "--batch-size", "-3"], 2, "argument --batch-size: must be >= 1"),
        (["train", "--data", "food101"], 1, "needs root="),
        (["train", "--data", "folder", "--data-root", "/nonexistent/binedu"], 1, "not found"),
        (["train", "--epochs", "two"], 2, "invalid int value"),
        (["train", "--model", "audio"], 2, "invalid choice"),
        (["evaluate", "/nonexistent/run"], 1, "no such file or folder"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_arguments_and_data_exit_non_zero_with_one_clear_line(argv, status, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run that wrongly started would write runs/ here
    assert main(argv) == status
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
    assert list(tmp_path.iterdir()) == []  # every argument is checked before anything is written


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--lr", "inf"], ["--max-len", "100000"], ["--checkpoint-every", "-1"]])
def test_rejected_arguments_leave_no_run_folder(tmp_path, argv, capsys):
    out = tmp_path / "run"
    assert main([*LANGUAGE, *argv, "--out", str(out)]) == 2
    assert not out.exists()


def test_version_reads_the_package_version():
    import binedu

    done = subprocess.run([sys.executable, "-m", "binedu", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"binedu {binedu.__version__}"


def test_help_shows_examples_and_every_options_default():
    from binedu.__main__ import _Formatter

    parser = build_parser()
    top = parser.format_help()
    assert "examples:" in top and "binedu train --model image --config tiny" in top and "exit status:" in top
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"train", "evaluate", "pack", "report", "generate", "course"}
    formatter = _Formatter("binedu")
    for name, sub in commands.items():
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or action.required:  # positionals, flags, --prompt
                continue
            assert "default" in formatter._get_help_string(action), f"binedu {name} {action.option_strings[0]}"
    assert "(default: 64)" in commands["evaluate"].format_help()
    assert "(default: auto)" in commands["generate"].format_help()  # like the other commands


def test_generate_uses_the_same_device_default_as_the_other_commands():
    parse = build_parser().parse_args
    defaults = {cmd: parse([cmd, "run", *extra]).device for cmd, extra in (("evaluate", []), ("generate", ["--prompt", "a"]))}
    assert defaults == {"evaluate": "auto", "generate": "auto"} == {k: parse(["train"]).device for k in defaults}


def test_evaluate_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bogus = tmp_path / "checkpoint.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bogus)]) == 1
    assert "error" in capsys.readouterr().err


def test_real_subprocesses_train_both_models(tmp_path):
    for argv in (IMAGE + ["--max-steps", "2"], LANGUAGE):
        done = subprocess.run(
            [sys.executable, "-m", "binedu", *argv, "--out", str(tmp_path / argv[2])],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "val_loss" in final_metrics(done.stdout)
    failed = subprocess.run([sys.executable, "-m", "binedu", "train", "--lr", "fast"], cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 2 and "invalid float value" in failed.stderr


@pytest.mark.parametrize(
    ("kind", "extra", "named"),
    [
        ("image", ["--float"], "model.binary=True (now False)"),
        ("image", ["--no-normalize"], "model.normalize=True (now False)"),
        ("image", ["--optimizer", "adamw", "--weight-decay", "0.5"], "weight_decay=0.0 (now 0.5)"),
        ("language", ["--max-len", "32"], "model.max_len=64 (now 32)"),
    ],
)
def test_a_refused_resume_changes_nothing_in_the_run_folder(image_run, language_run, tmp_path, capsys, kind, extra, named):
    """run.json once said max_len=32 or binary=false after the resume had been refused."""
    import shutil

    run = Path(shutil.copytree(image_run if kind == "image" else language_run, tmp_path / kind))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    argv = IMAGE if kind == "image" else LANGUAGE
    assert main([*argv, "--max-steps", "9", *extra, "--resume", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "cannot resume" in err and named in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@given(value=st.floats(allow_nan=True, allow_infinity=True), low=st.sampled_from([0.0, 1.0]), above=st.booleans())
def test_a_float_option_accepts_exactly_the_finite_values_in_its_range(value, low, above):
    import argparse

    from binedu.__main__ import _number

    parse = _number(float, low, above=above)
    ok = math.isfinite(value) and (value > low if above else value >= low)
    if ok:
        assert parse(repr(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(repr(value))


@given(value=st.integers(-(2**70), 2**70))
def test_an_integer_option_accepts_exactly_its_range(value):
    import argparse

    from binedu.__main__ import POSITIVE, SEED

    for parse, low, high in ((POSITIVE, 1, None), (SEED, 0, 2**63 - 1)):
        if value >= low and (high is None or value <= high):
            assert parse(str(value)) == value
        else:
            with pytest.raises(argparse.ArgumentTypeError):
                parse(str(value))
