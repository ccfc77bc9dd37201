"""One trainer per run folder: :class:`RunFolderLock`.

Two ``binedu train`` commands writing one run folder would overwrite each other's
checkpoint, tokenizer and ``run.json`` (one run's model with the other's vocabulary). The
command therefore holds a lock on the folder from its first check to its exit:

- the lock is an ``fcntl.flock`` on ``<folder>/.binedu-train.lock``, a file that also
  names its holder (process id, machine, start time), so a refused trainer can say who
  holds the folder;
- the kernel releases a ``flock`` when its process ends, however it ends: a lock file left
  by a killed trainer is *stale*, not held, and the next trainer takes it over;
- on exit the holder removes the lock file, and the folders it created for the lock if
  nothing else was written into them (a refused run leaves no empty run folder);
- where ``fcntl`` does not exist (Windows) the lock file is created with ``O_EXCL`` and a
  file whose process no longer runs on this machine is stale.

The file is removed while the lock is held, and a taker checks that the file it locked is
still the one at the path, so two trainers cannot both hold a lock on different files.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LOCK_NAME", "RunFolderBusy", "RunFolderLock"]

LOCK_NAME = ".binedu-train.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]  # no fcntl: the O_EXCL lock file is used


class RunFolderBusy(ValueError):
    """Another trainer holds the run folder."""


def _holder_text() -> bytes:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode()


def _describe(path: Path) -> str:
    """``pid 123 on host, since ...`` from a lock file, as far as it is readable."""
    try:
        with open(path, "rb") as file:
            info = json.loads(file.read(4096) or b"{}")
        if not isinstance(info, dict):
            raise ValueError
        return f"pid {int(info['pid'])} on {str(info['host'])[:64]}, since {str(info['started'])[:32]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class RunFolderLock:
    """``with RunFolderLock(folder):`` holds ``folder`` for one trainer, creating it if
    needed; a second holder gets :class:`RunFolderBusy` at once, naming the first."""

    def __init__(self, folder: str | Path, use_flock: bool | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.use_flock = fcntl is not None if use_flock is None else use_flock
        self.fd: int | None = None
        self.created: list[Path] = []

    def _make_folders(self) -> None:
        missing = []
        for folder in (self.folder, *self.folder.parents):
            if folder.exists():
                break
            missing.append(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.created = missing  # innermost first

    def _busy(self) -> RunFolderBusy:
        return RunFolderBusy(
            f"{self.folder} is in use by another trainer ({_describe(self.path)}): wait for it to finish, "
            "or choose another --out"
        )

    def _take_flock(self) -> int:
        assert fcntl is not None
        for _ in range(100):  # another trainer may remove the file between our open and our lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._busy() from None
                raise
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)
        raise self._busy()

    def _take_exclusive(self) -> int:
        for _ in range(100):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                try:
                    info = json.loads(self.path.read_bytes()[:4096] or b"{}")
                    stale = info.get("host") == socket.gethostname() and not _alive(int(info["pid"]))
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    stale = False
                if not stale:
                    raise self._busy() from None
                self.path.unlink(missing_ok=True)  # a lock left by a process that no longer runs
        raise self._busy()

    def __enter__(self) -> RunFolderLock:
        self._make_folders()
        try:
            self.fd = self._take_flock() if self.use_flock else self._take_exclusive()
        except BaseException:
            self._remove_created()
            raise
        os.ftruncate(self.fd, 0)
        os.write(self.fd, _holder_text())
        return self

    def _remove_created(self) -> None:
        for folder in self.created:
            try:
                folder.rmdir()  # only if empty: a run that wrote nothing leaves no folder
            except OSError:
                break

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: no one else holds this file
        finally:
            os.close(self.fd)
            self.fd = None
            self._remove_created()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> Any:
        self.release()
        return None
