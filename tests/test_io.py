"""Atomic writes (binedu.io): all or nothing, no temporary files left, modes follow the umask."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from binedu.io import atomic_write, atomic_write_bytes, current_umask

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it after."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    assert mode(atomic_write_bytes(tmp_path / "a.json", b"{}")) == expected
    # a file replaced by a new version gets the mode of a new file too
    assert mode(atomic_write_bytes(tmp_path / "a.json", b"[]")) == expected


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_file_binedu_writes_follows_the_umask(tmp_path, umask, mask):
    """Checkpoints, packed models, histories, run.json and tokenizer.json, through the CLI's own writers."""
    from binedu import ImageClassifier, pack_model, save_packed
    from binedu.data.tokenizers import CharTokenizer
    from binedu.history import History
    from binedu.train_checkpoint import save_training_checkpoint

    umask(mask)
    torch.manual_seed(0)
    model = ImageClassifier.from_config("tiny")
    files = [
        save_training_checkpoint(tmp_path / "checkpoint.safetensors", model),
        save_packed(pack_model(model), tmp_path / "packed.safetensors"),
    ]
    History().save(tmp_path / "history.json")
    CharTokenizer.fit(["abc"]).save(tmp_path / "tokenizer.json")
    files += [tmp_path / "history.json", tmp_path / "tokenizer.json"]
    assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(0o666 & ~mask) for f in files}


def test_the_cli_writes_shareable_files_under_umask_022(tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--model", "language", "--limit", "8", "--max-steps", "1", "--batch-size", "4", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-c", f"import os, sys; os.umask(0o022); from binedu.__main__ import main; sys.exit(main({argv + ['--out', str(out)]!r}))"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    modes = {p.name: oct(mode(p)) for p in out.iterdir()}
    assert modes == dict.fromkeys(("checkpoint.safetensors", "history.json", "run.json", "tokenizer.json"), "0o644")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = atomic_write_bytes(tmp_path / "a.bin", b"old")

    def disk_full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, disk_full)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path):
    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "b.bin", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_writing_over_a_folder_is_refused_before_anything_is_created(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        atomic_write_bytes(tmp_path / "d", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and list((tmp_path / "d").iterdir()) == []


def test_a_full_disk_reported_by_safetensors_becomes_an_os_error_naming_the_file(tmp_path):
    from safetensors import SafetensorError

    def full(tmp: Path) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "c.safetensors", full)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "c.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_a_real_file_size_limit_fails_cleanly(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would (ENOSPC)."""
    code = f"""
import resource, signal, torch
from safetensors.torch import save_file
from binedu.io import atomic_write
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    atomic_write({str(tmp_path / "x.safetensors")!r}, lambda t: save_file({{"a": torch.zeros(10000)}}, str(t)))
except OSError as exc:
    print(exc.errno, exc.filename)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [str(errno.EFBIG), str(tmp_path / "x.safetensors")], done.stderr
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=50, deadline=None)
@given(mask=st.integers(0, 0o777), data=st.binary(max_size=64))
def test_any_umask_gives_the_mode_open_would_give_and_the_bytes_written(mask, data):
    import tempfile

    old = os.umask(mask)
    try:
        with tempfile.TemporaryDirectory() as folder:
            os.chmod(folder, 0o700)  # the folder's own mode came from the umask too
            path = atomic_write_bytes(Path(folder) / "f.bin", data)
            with open(Path(folder) / "reference", "wb"):
                pass
            assert mode(path) == mode(Path(folder) / "reference") == 0o666 & ~mask
            assert path.read_bytes() == data
    finally:
        os.umask(old)
