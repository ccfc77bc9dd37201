"""Atomic file writing: a file is either fully written or not there at all.

Files are first written to a hidden temporary file next to the target, then renamed
over it. ``tempfile.mkstemp`` creates that file with mode 0600 whatever the umask;
binedu then gives it the mode any other new file would get (``0666 & ~umask``: 0644
under the usual umask 022), so runs, checkpoints and packed models can be shared on a
JupyterHub like files written by ``open``.

A target that exists but is not a regular file (a device such as ``/dev/null``, a
FIFO, a socket) is never replaced: renaming over it would swap the system's device for
a file. Errors name the target, never the hidden temporary file. A process killed
with ``SIGKILL`` (or a power cut) mid-write leaves its temporary file behind; the next
write of the same target removes such leftovers: only binedu's own names
(``.<name>.<8 characters>.tmp``, regular files) untouched for :data:`STALE_AFTER`
seconds, so a write in progress in another process is never disturbed.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "atomic_write_bytes",
    "atomic_write",
    "current_umask",
    "file_mode",
    "remove_stale_temporaries",
    "STALE_AFTER",
]

STALE_AFTER = 3600
"""Seconds without a write after which a leftover temporary file counts as abandoned
(a checkpoint write being slower than this between two of its writes is not plausible)."""

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
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"{path} exists and is not a regular file (a device, FIFO or socket): it is not replaced")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
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
        error = _as_os_error(exc, path, Path(tmp))
        if error is not None:
            raise error from exc
        raise
    return path


def remove_stale_temporaries(path: str | Path, now: float | None = None) -> list[Path]:
    """Remove the temporary files that writes of ``path`` left behind when killed:
    regular files named ``.<name>.<8 characters>.tmp`` (``tempfile.mkstemp``'s names for
    this target) whose last change is over :data:`STALE_AFTER` seconds old. Returns
    the removed paths; a file that cannot be removed is left alone."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    limit = (time.time() if now is None else now) - STALE_AFTER
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _as_os_error(exc: BaseException, path: Path, tmp: Path | None = None) -> OSError | None:
    """A failed write as an ``OSError`` naming ``path``, so that callers (the command
    line) can say which file could not be written and why: safetensors reports a full
    disk as ``SafetensorError("... (os error 28)")``, ``write()`` errors carry no file
    name, and others name the hidden temporary file ``tmp``. ``None``: raise ``exc``
    unchanged."""
    if isinstance(exc, OSError):
        if exc.filename is not None and (tmp is None or Path(exc.filename) != tmp):
            return None
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    if type(exc).__name__ == "SafetensorError":
        code = re.search(r"(?:Os \{ code: |os error )(\d+)", str(exc))
        if code is not None:
            number = int(code.group(1))
            return OSError(number, os.strerror(number), str(path))
    return None


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
