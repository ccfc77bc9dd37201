"""Atomic file writing: a file is either fully written or not there at all.

Files are first written to a hidden temporary file next to the target, then renamed
over it. ``tempfile.mkstemp`` creates that file with mode 0600 whatever the umask;
binedu then gives it the mode any other new file would get (``0666 & ~umask``: 0644
under the usual umask 022), so runs, checkpoints and packed models can be shared on a
JupyterHub like files written by ``open``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write", "current_umask", "file_mode"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere the only way is
    ``os.umask(0)`` followed by restoring the old value. That pair is process-global
    (a file created by another thread in between would get mode 0666), so it runs under
    a lock, and the value is read again at every write because a program may change
    its umask at any time."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The permission bits a new regular file gets under the current umask."""
    return 0o666 & ~current_umask()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path`` then rename it over
    ``path``. A crash or an exception leaves any earlier file at ``path`` untouched and
    no temporary file behind (only ``SIGKILL`` or a power cut can leave a hidden
    ``.<name>.*.tmp``). The new file follows the umask (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        fd = -1
        write(Path(tmp))
        os.chmod(tmp, file_mode())  # after write: some writers (safetensors) recreate the file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        error = _as_os_error(exc, path)
        if error is not None:
            raise error from exc
        raise
    return path


def _as_os_error(exc: BaseException, path: Path) -> OSError | None:
    """A failed write as an ``OSError`` naming ``path``, so that callers (the command
    line) can say which file could not be written and why: safetensors reports a full
    disk as ``SafetensorError("... (os error 28)")`` and ``write()`` errors carry
    no file name. ``None``: raise ``exc`` unchanged."""
    if isinstance(exc, OSError):
        return None if exc.filename is not None else OSError(exc.errno, exc.strerror or str(exc), str(path))
    if type(exc).__name__ == "SafetensorError":
        code = re.search(r"(?:Os \{ code: |os error )(\d+)", str(exc))
        if code is not None:
            number = int(code.group(1))
            return OSError(number, os.strerror(number), str(path))
    return None


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
