"""One Ferry per data directory: an exclusive lock on `<data-dir>/ferry.lock`, holding the PID.

Two Ferry processes on one data directory would run two embedded databases on one
storage (WiredTiger refuses the second, with a message about its own lock file) and share
git mirrors and build trees. The lock is taken before anything starts, so the second
one stops at once with one line naming the directory and the holder. It is an `flock`,
so the kernel lets it go when its holders die, however they die: a stale file is
harmless. The embedded database inherits the descriptor, so the directory stays locked
until the database is gone too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "ferry.lock"


class DataDirError(RuntimeError):
    """The data directory cannot be used; the message says why, in one line."""


class DataDirInUse(DataDirError):
    """Another running Ferry holds this data directory."""


class DataDirLock:
    """Held from `acquire()` until the process (and the children given `fd`) exit."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our PID, or raise DataDirInUse naming the holder."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise DataDirError(f"cannot use data directory {self.data_dir}: "
                               f"{error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(f"data directory {self.data_dir} is in use by another Ferry "
                               f"(pid {holder}); stop it or choose another --data-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
