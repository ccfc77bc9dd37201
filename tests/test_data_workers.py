"""DataLoader workers never outlive their parent (issue 22): a parent killed with
SIGKILL while its workers are inside a slow read left them running (PyTorch's own
watchdog looks for the parent only between two examples)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PARENT = """
import os, signal, sys, time
import torch
from torch.utils.data import Dataset
from binedu.data import loader

class Slow(Dataset):
    def __len__(self):
        return 8
    def __getitem__(self, i):
        time.sleep(120)  # a read that hangs
        return torch.zeros(1)

batches = iter(loader(Slow(), batch_size=1, num_workers=2))
print(" ".join(str(w.pid) for w in batches._workers), flush=True)
time.sleep(2)  # the workers are inside __getitem__
os.kill(os.getpid(), signal.SIGKILL)
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


def test_workers_die_with_their_parent():
    done = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    try:
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in pids), "a worker outlived its parent"
    finally:
        for pid in pids:  # the test's own workers, by id, if they survived
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_die_with_parent_is_harmless_in_a_living_process():
    from binedu.data.workers import die_with_parent

    code = "from binedu.data.workers import die_with_parent; die_with_parent(0); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr
    assert callable(die_with_parent)
