"""No traceback for a user's mistake or the machine's state (issue 13, item 7).

Each case runs ``python -m binedu`` in a real subprocess and checks: the exit status (1
bad data or state, 2 bad arguments), exactly one line on stderr that names the problem,
no "Traceback", and no temporary file left anywhere under the test's folder. A full disk
is simulated twice: by the kernel (``RLIMIT_FSIZE``: writes fail with EFBIG) and in
process (``fsync`` failing with ENOSPC, a read-only file system).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from binedu.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ["train", "--model", "image", "--limit", "40", "--max-steps", "2", "--batch-size", "16", "--no-progress"]
LANGUAGE = ["train", "--model", "language", "--limit", "12", "--max-steps", "2", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One trained image run and one language run (in process: fast), copied per case."""
    base = tmp_path_factory.mktemp("runs")
    assert main([*IMAGE, "--out", str(base / "image")]) == 0
    assert main([*LANGUAGE, "--out", str(base / "language")]) == 0
    return {"image": base / "image", "language": base / "language"}


def copy_run(runs: dict[str, Path], kind: str, tmp: Path) -> Path:
    return Path(shutil.copytree(runs[kind], tmp / kind))


def bomb_png(path: Path, side: int = 20000) -> None:
    """A valid 8x8 PNG whose header claims ``side x side`` pixels (CRC fixed)."""
    Image.new("RGB", (8, 8), "red").save(path)
    raw = bytearray(path.read_bytes())
    raw[16:24] = struct.pack(">II", side, side)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def image_folder(tmp: Path, bomb: bool) -> Path:
    root = tmp / "images"
    for c, colour in enumerate(("red", "blue")):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (10, 10), colour).save(root / f"c{c}" / f"{i}.png")
    if bomb:
        bomb_png(root / "c1" / "huge.png")
    return root


def edit_run_json(run: Path, change) -> Path:
    path = run / "run.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return run


def corrupt_optimizer(run: Path) -> Path:
    """Re-save the run's checkpoint (valid checksums) with an optimizer section that has no "scalars"."""
    import binedu.train_checkpoint as tc
    from binedu.train import make_optimizer

    path = run / "checkpoint.safetensors"
    saved = tc.read_training_checkpoint(path)
    model = saved.model()
    opt = make_optimizer(model, saved.meta["optimizer"], saved.meta["lr"], saved.meta["weight_decay"])
    opt.load_state_dict(saved.optimizer_state)
    split = tc._split_optimizer
    tc._split_optimizer = lambda state: (split(state)[0], {"param_groups": split(state)[1]["param_groups"]})
    try:
        tc.save_training_checkpoint(
            path, model, opt, state=saved.state, history=saved.history, tensors=saved.tensors, meta=saved.meta
        )
    finally:
        tc._split_optimizer = split
    return run


def file_size_limit(limit: int):
    """preexec_fn: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored), like a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


# (case, argv from (runs, tmp), exit status, words the one line must contain, preexec); status 0: a warning line
CASES = [
    ("disk full while writing the checkpoint",
     lambda r, t: [*IMAGE, "--out", str(t / "new")], 1, ["no space left to write", "checkpoint.safetensors"], 8192),
    ("disk full while packing",
     lambda r, t: ["pack", str(copy_run(r, "image", t))], 1, ["no space left to write", "packed.safetensors"], 1024),
    ("pack -o an existing folder",
     lambda r, t: ["pack", str(copy_run(r, "image", t)), "-o", str(t)], 2, ["argument -o/--output", "is a folder"], None),
    ("train --out an existing file",
     lambda r, t: [*IMAGE, "--out", str(t / "file.txt")], 2, ["argument --out", "file.txt is a file"], None),
    ("a PNG whose header claims 20000x20000",
     lambda r, t: [*IMAGE, "--data", "folder", "--data-root", str(image_folder(t, bomb=True)), "--val-fraction", "0.5",
                   "--out", str(t / "new")], 1, ["huge.png"], None),
    ("evaluate an image run on text",
     lambda r, t: ["evaluate", str(copy_run(r, "image", t)), "--data", "pydoc"], 2,
     ["argument --data", "'pydoc' does not fit an image model"], None),
    ("run.json with an extra key",
     lambda r, t: ["evaluate", str(edit_run_json(copy_run(r, "image", t), lambda j: j | {"data": j["data"] | {"colour": 1}}))],
     1, ["run.json", "unknown key(s) in 'data': 'colour'"], None),
    ("run.json without a kind",
     lambda r, t: ["evaluate", str(edit_run_json(copy_run(r, "image", t), lambda j: j | {"data": {"name": "digits"}}))],
     1, ["run.json", "'kind'"], None),
    ("run.json that is a list",
     lambda r, t: ["evaluate", str(edit_run_json(copy_run(r, "image", t), lambda j: [j]))], 1,
     ["run.json must hold a JSON object, not a list"], None),
    ("run.json with a value of the wrong type",
     lambda r, t: ["evaluate", str(edit_run_json(copy_run(r, "image", t), lambda j: j | {"data": j["data"] | {"limit": "x"}}))],
     1, ["limit"], None),
    ("generate --temperature nan",
     lambda r, t: ["generate", str(r["language"]), "--prompt", "a", "--temperature", "nan"], 2,
     ["argument --temperature", "finite"], None),
    ("train --device meta",
     lambda r, t: [*IMAGE, "--device", "meta", "--out", str(t / "new")], 2, ["argument --device", "'meta'"], None),
    ("train --max-len 100000",
     lambda r, t: [*LANGUAGE, "--max-len", "100000", "--out", str(t / "new")], 2, ["argument --max-len", "at most 64"], None),
    ("a corrupt optimizer section on --resume",
     lambda r, t: [*LANGUAGE, "--max-steps", "3", "--resume", "--out", str(corrupt_optimizer(copy_run(r, "language", t)))],
     1, ["checkpoint.safetensors", "scalars"], None),
    ("a resume that changes the model",
     lambda r, t: [*IMAGE, "--max-steps", "3", "--resume", "--no-normalize", "--out", str(copy_run(r, "image", t))],
     1, ["cannot resume", "model.normalize=True (now False)"], None),
    ("generate with another run's tokenizer",
     lambda r, t: ["generate", str(r["language"]), "--prompt", "a", "--tokenizer", str(bigger_tokenizer(t))], 1,
     ["tokenizer", "big.json", "checkpoint.safetensors", "vocab_size="], None),
    # issue 22
    ("pack -o onto a FIFO (as root, -o /dev/null replaced the device)",
     lambda r, t: ["pack", str(copy_run(r, "image", t)), "-o", str(fifo(t / "pipe"))], 2,
     ["argument -o/--output", "is a FIFO", "not be replaced"], None),
    ("generate --temperature 1e-320",
     lambda r, t: ["generate", str(r["language"]), "--prompt", "a", "--temperature", "1e-320"], 2,
     ["argument --temperature", "at least 0.001"], None),
    ("a tokenizer.json nested 400 KB deep",
     lambda r, t: ["generate", str(r["language"]), "--prompt", "a", "--tokenizer", str(nested_json(t / "tok.json"))], 1,
     ["tok.json", "not a tokenizer JSON file", "nested"], None),
    ("a run.json nested 400 KB deep",
     lambda r, t: ["evaluate", str(nested_json(copy_run(r, "image", t) / "run.json").parent)], 1,
     ["run.json", "not valid JSON", "nested"], None),
    ("evaluate on a folder data set of more classes than the model",
     lambda r, t: ["evaluate", str(r["image"]), "--data", "folder", "--data-root", str(class_folders(t, 11))], 1,
     ["folder data has 11 classes", "10 outputs"], None),
    ("a PNG given as a checkpoint",
     lambda r, t: ["evaluate", str(png(t / "model.png"))], 1, ["model.png", "it is a PNG image"], None),
    ("a torch.save file given as a checkpoint",
     lambda r, t: ["evaluate", str(torch_save(t / "model.pt"))], 1, ["model.pt", "it is a zip archive", "torch.save"], None),
    ("a PNG given to pack",
     lambda r, t: ["pack", str(png(t / "model.png"))], 1, ["model.png is a PNG image, not a training checkpoint"], None),
    ("a FIFO given as a run",
     lambda r, t: ["evaluate", str(fifo(t / "pipe"))], 1, ["pipe is a FIFO"], None),
    ("a prompt with characters the tokenizer does not know",
     lambda r, t: ["generate", str(r["language"]), "--prompt", "émoji 🙂"], 0,
     ["warning", "does not know", "'🙂' (U+1F642)", "tokenizer.json"], None),
]  # fmt: skip


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def nested_json(path: Path, depth: int = 200_000) -> Path:
    """A 400 KB JSON document nested ``depth`` levels deep."""
    path.write_text("[" * depth + "]" * depth)
    return path


def class_folders(tmp: Path, classes: int) -> Path:
    root = tmp / "classes"
    for c in range(classes):
        (root / f"c{c:02d}").mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), 20 * c + i).save(root / f"c{c:02d}" / f"{i}.png")
    return root


def png(path: Path) -> Path:
    Image.new("RGB", (8, 8), "red").save(path, format="PNG")
    return path


def torch_save(path: Path) -> Path:
    import torch

    torch.save({"weight": torch.ones(2)}, path)
    return path


def bigger_tokenizer(tmp: Path) -> Path:
    from binedu.data import CharTokenizer

    tokenizer = CharTokenizer.fit(["".join(chr(c) for c in range(0x100, 0x300))])
    tokenizer.save(tmp / "big.json")
    return tmp / "big.json"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("argv", "status", "words", "limit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_gets_one_line_and_an_exit_status(runs, tmp_path, argv, status, words, limit):
    (tmp_path / "file.txt").write_text("not a folder")
    args = argv(runs, tmp_path)
    before = snapshot(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "binedu", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)},
        preexec_fn=None if limit is None else file_size_limit(limit),
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith("binedu ") and all(w in lines[0] for w in words), lines[0]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"
    if status == 2 or "resume" in args:  # refused before anything was written: the folder is as it was
        assert snapshot(tmp_path) == before


def test_a_failing_fsync_reports_a_full_disk_and_keeps_the_old_file(runs, tmp_path, monkeypatch, capsys):
    run = copy_run(runs, "image", tmp_path)
    assert main(["pack", str(run)]) == 0
    old = (run / "packed.safetensors").read_bytes()
    capsys.readouterr()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["pack", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left to write" in err and "packed.safetensors" in err
    assert (run / "packed.safetensors").read_bytes() == old
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


def test_a_read_only_file_system_is_named(runs, tmp_path, monkeypatch, capsys):
    import tempfile

    run = copy_run(runs, "image", tmp_path)

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["pack", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read-only file system" in err and str(run) in err
    assert not (run / "packed.safetensors").exists()


def test_a_terminated_run_leaves_no_temporary_file(tmp_path):
    """SIGTERM while training unwinds like Ctrl-C (exit 130): atomic writes clean up after themselves."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "binedu", "train", "--limit", "40", "--batch-size", "16", "--epochs", "1000",
         "--no-progress", "--checkpoint-every", "1", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training runs (checkpoints are written at every step)
        if line.startswith("epoch 2 "):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------- issue 22, in process


@pytest.mark.parametrize(
    "option, value, words",
    [("--image-size", "100000", "must be <= 1024"), ("--num-workers", str(10**6), "must be <=")],
)
def test_unbounded_training_inputs_get_an_upper_bound(option, value, words, capsys):
    """A huge --image-size or --num-workers was accepted (and forked without end)."""
    from binedu.__main__ import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}" in err and words in err, err
    assert build_parser().parse_args(["train", option, "8"]) is not None


@pytest.mark.parametrize(
    "command, module, name",
    [("evaluate", "binedu.__main__", "evaluate"), ("pack", "binedu.packed", "pack_model"),
     ("generate", "binedu.generate", "generate")],
)  # fmt: skip
def test_a_cpu_out_of_memory_is_one_line(runs, tmp_path, monkeypatch, capsys, command, module, name):
    """PyTorch's CPU allocator raises a plain RuntimeError, not torch.OutOfMemoryError."""
    import importlib

    def allocator_fails(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
            "you tried to allocate 123456789012 bytes."
        )

    monkeypatch.setattr(importlib.import_module(module), name, allocator_fails)
    kind = "image" if command != "generate" else "language"
    argv = [command, str(copy_run(runs, kind, tmp_path))] + (["--prompt", "a"] if command == "generate" else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err and "--batch-size" in err, err


def test_a_failed_write_names_the_users_file_not_the_hidden_temporary(runs, tmp_path, monkeypatch, capsys):
    run = copy_run(runs, "image", tmp_path)
    real = os.chmod

    def denied(path, mode, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", denied)
    assert main(["pack", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'packed.safetensors'}: Permission denied" in err and ".tmp" not in err, err


def test_temporaries_left_by_a_killed_write_are_removed_by_the_next_one(runs, tmp_path):
    """Only binedu's own names for that file, regular and untouched for an hour, go."""
    from binedu.io import STALE_AFTER

    run = copy_run(runs, "image", tmp_path)
    old = [run / ".packed.safetensors.ab12_xyz.tmp", run / ".packed.safetensors.00000000.tmp"]
    keep = [
        run / ".packed.safetensors.fresh123.tmp",  # a write in progress
        run / ".other.safetensors.ab12_xyz.tmp",  # another file's
        run / "packed.safetensors.ab12_xyz.tmp",  # not a hidden binedu name
        run / ".packed.safetensors.toolong12.tmp",
    ]
    for path in old + keep:
        path.write_bytes(b"partial")
    for path in old + keep[1:]:
        os.utime(path, (0, os.stat(path).st_mtime - STALE_AFTER - 60))
    os.mkdir(run / ".packed.safetensors.folder12.tmp")
    os.utime(run / ".packed.safetensors.folder12.tmp", (0, 0))
    assert main(["pack", str(run)]) == 0
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in keep) and (run / ".packed.safetensors.folder12.tmp").is_dir()


def test_atomic_write_never_replaces_a_device_or_fifo(tmp_path):
    from binedu.io import atomic_write_bytes

    pipe = fifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        atomic_write_bytes(pipe, b"x")
    assert pipe.is_fifo() and os.listdir(tmp_path) == ["pipe"]


def test_report_infers_the_model_from_the_config_name(capsys):
    """`report --config paper-large` failed unless --model language was given."""
    assert main(["report", "--config", "paper-large"]) == 0
    large = capsys.readouterr().out
    assert main(["report", "--config", "paper-large", "--model", "language"]) == 0
    assert capsys.readouterr().out == large and "332" in large.replace(",", "")
    assert main(["report", "--config", "tiny"]) == 0  # in both tables: the image model, as before
    tiny = capsys.readouterr().out
    assert main(["report", "--config", "tiny", "--model", "image"]) == 0
    assert capsys.readouterr().out == tiny
    assert main(["report", "--config", "tiny", "--model", "language"]) == 0
    assert capsys.readouterr().out != tiny


def test_a_run_json_cannot_ask_for_huge_images(runs, tmp_path, capsys):
    """The --image-size bound holds for a hand-edited run.json too (the data loader checks it)."""
    run = edit_run_json(copy_run(runs, "image", tmp_path), lambda j: j | {"data": j["data"] | {"image_size": 100_000}})
    assert main(["evaluate", str(run), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "image_size must be a positive integer of at most 1024" in err, err


def test_a_run_json_cannot_ask_for_longer_sequences_than_the_model_reads(runs, tmp_path, capsys):
    run = edit_run_json(copy_run(runs, "language", tmp_path), lambda j: j | {"data": j["data"] | {"max_len": 10**9}})
    assert main(["evaluate", str(run), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_len=1000000000" in err and "at most 64 tokens" in err, err
