"""One writer per study database: an OS advisory lock on a sidecar ``<db>.lock`` file.

Why ``flock`` on a sidecar file:

- The kernel drops the lock when the process dies, however it dies (SIGKILL, OOM, power-off of a
  container): no stale lock to clean up by hand, no pid-liveness guessing (a pid file alone is
  wrong as soon as the pid is reused).
- ``flock`` locks belong to the open file, not the process (unlike ``fcntl`` record locks), so a
  second store opened in the *same* process is refused too, and they never mix with the
  ``fcntl`` byte-range locks SQLite takes on the database file itself.
- A sidecar file keeps the lock out of SQLite's hands: the database can be refused untouched
  before the lock file is created, and the lock file can hold the owner's pid for the message.

The lock file is removed when the store is closed. Whoever acquires the lock checks that the path
still names the file it locked (an owner may remove it just as it releases); otherwise it retries.
After ``fork()`` the child closes its copy of the descriptor, so a forked worker that outlives a
killed study process does not keep the study locked.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import weakref
from pathlib import Path

if sys.platform == "win32":  # pragma: no cover - best effort, not exercised by the test suite
    import msvcrt
else:
    import fcntl

_LIVE: weakref.WeakSet[FileLock] = weakref.WeakSet()


class LockHeld(Exception):
    """The lock is held by another open file (``pid`` is the owner's, when it wrote one)."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


class FileLock:
    """An exclusive, non-blocking lock on ``path`` for as long as it is held.

    Example:
        >>> import tempfile, pathlib
        >>> lock = FileLock.acquire(pathlib.Path(tempfile.mkdtemp()) / "study.db.lock")
        >>> lock.release()
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        _LIVE.add(self)

    @classmethod
    def acquire(cls, path: Path) -> FileLock:
        """Take the lock, or raise :class:`LockHeld` (:class:`OSError`: no file can be made)."""
        for _ in range(20):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                if not _try_lock(fd):
                    raise LockHeld(_read_pid(fd))
                if _same_file(fd, path):
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    return cls(path, fd)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # we locked a file its owner removed on release: lock the new one
        raise LockHeld(None)

    def __del__(self) -> None:
        # A store dropped without close() must not keep the study locked until the process ends.
        with contextlib.suppress(Exception):
            self.release()

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        # Remove before unlocking: whoever locks the old file next sees it is gone and retries.
        if _same_file(fd, self.path):
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(fd)  # closing the last descriptor drops the lock


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover
        os.lseek(fd, 1 << 20, os.SEEK_SET)  # lock a byte past the pid so the pid stays readable
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    # The owner writes its pid right after locking: give it a moment if we looked in between.
    for _ in range(20):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode(errors="replace").strip()
        if text:
            return int(text) if text.isdigit() else None
        time.sleep(0.005)
    return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _close_in_child() -> None:
    # The child shares the parent's open file: closing its copy leaves the parent's lock alone
    # (never LOCK_UN here, that would unlock the parent too).
    for lock in list(_LIVE):
        if lock._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(lock._fd)
            lock._fd = -1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)
