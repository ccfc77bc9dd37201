"""DataLoader worker processes that never outlive the process that started them.

PyTorch's workers check for their parent only between two examples (every 5 s at
most), so a worker inside a slow read, or one of many started by a huge
``num_workers``, keeps running after its parent was killed (``SIGKILL``, the OOM
killer, a scheduler's hard stop). :func:`die_with_parent`, given as the DataLoader's
``worker_init_fn``, asks the Linux kernel to kill the worker as soon as its parent
dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(worker_id: int = 0) -> None:
    """``worker_init_fn`` of a DataLoader: this worker is killed when its parent dies
    (Linux); a worker whose parent is already gone exits at once."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl (an unusual Linux): the PyTorch watchdog remains
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)
