"""One trainer per run folder (binedu.run_lock): a second ``binedu train`` is refused in
one line, a killed trainer's lock is stale, and a refused run leaves no folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from binedu.run_lock import LOCK_NAME, RunFolderBusy, RunFolderLock

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "binedu", "train", "--model", "image", "--limit", "100", "--batch-size", "8", "--no-progress"]


def _start_trainer(out: Path, epochs: int = 500) -> subprocess.Popen:
    """A real trainer that runs long enough, started when its lock file exists."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*TRAIN, "--epochs", str(epochs), "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "run.json").is_file():  # written once every check has passed: it trains
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first trainer did not start"
        time.sleep(0.1)
    assert (out / LOCK_NAME).is_file()
    return proc


def _train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    argv = [*TRAIN, "--epochs", "1", "--out", str(out), *extra]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_second_trainer_on_the_same_run_folder_is_refused_in_one_line(tmp_path):
    out = tmp_path / "run"
    first = _start_trainer(out)
    try:
        second = _train(out, "--resume")
        assert second.returncode == 1 and second.stdout == ""
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert f"{out} is in use by another trainer (pid {first.pid} on " in second.stderr
        assert first.poll() is None  # the first trainer goes on
    finally:
        first.send_signal(signal.SIGTERM)  # interrupted like Ctrl-C: it releases its lock
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "interrupted" in err
    assert not (out / LOCK_NAME).exists()
    again = _train(out, "--resume", "--epochs", "600", "--max-steps", "1")  # now free
    assert again.returncode == 0, again.stderr


def test_a_killed_trainers_lock_is_stale_and_taken_over(tmp_path):
    out = tmp_path / "run"
    first = _start_trainer(out)
    first.kill()  # SIGKILL: no cleanup at all, the lock file stays
    first.communicate(timeout=60)
    assert (out / LOCK_NAME).is_file()
    done = _train(out, "--resume", "--epochs", "500", "--max-steps", "1")
    assert done.returncode == 0, done.stderr
    assert not (out / LOCK_NAME).exists()


def test_the_lock_refuses_a_second_holder_in_one_process_too(tmp_path):
    with RunFolderLock(tmp_path / "run"):
        with pytest.raises(RunFolderBusy, match=f"is in use by another trainer \\(pid {os.getpid()} on "):
            with RunFolderLock(tmp_path / "run"):
                pass
    with RunFolderLock(tmp_path / "run"):  # released: free again
        pass
    assert not (tmp_path / "run").exists()  # it created the folder and wrote nothing else


def test_a_refused_run_removes_the_folders_it_created_and_only_those(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with RunFolderLock(tmp_path / "kept" / "runs" / "a"):
            raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == [tmp_path / "kept"] and list((tmp_path / "kept").iterdir()) == []
    with RunFolderLock(tmp_path / "kept" / "b"):
        (tmp_path / "kept" / "b" / "run.json").write_text("{}")
    assert [p.name for p in (tmp_path / "kept" / "b").iterdir()] == ["run.json"]


def test_without_fcntl_an_exclusive_lock_file_detects_a_dead_holder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import json
    import socket

    holder = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "earlier"}
    (folder / LOCK_NAME).write_text(json.dumps(holder))
    with RunFolderLock(folder, use_flock=False):  # stale: its process is gone
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            with RunFolderLock(folder, use_flock=False):
                pass
    assert not (folder / LOCK_NAME).exists()
