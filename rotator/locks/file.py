"""The file lock: ``fcntl.flock`` on ``.rotator.lock`` in a folder (the file sink's, or
ROTATOR_LOCK_DIR).

The kernel drops the lock when the process dies, so a killed pass never leaves it held, and the
file itself is never removed (removing it would let two passes lock two different files). For
the same reason :meth:`HeldLock.check` fails when the path no longer names the file this pass
locked (a person deleted or replaced it): another pass could then lock the new one.

Refuses a symlink at the lock's path (``O_NOFOLLOW``) and anything but a regular file there: a
lock file that points elsewhere is not ours to create or lock. Knows nothing of sinks or passes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rotator.errors import LockHeldError, LockLostError, LockUnavailableError
from rotator.models import LOCK_FILE_NAME


class _FileHeld:
    """The lock as this pass holds it: the descriptor carrying the flock."""

    def __init__(self, path: Path, fd: int) -> None:
        self._path = path
        self._fd = fd

    def check(self) -> None:
        try:
            now = os.stat(self._path, follow_symlinks=False)
        except OSError as exc:
            raise LockLostError(f"the lock {self._path} was removed while held") from exc
        held = os.fstat(self._fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise LockLostError(f"the lock {self._path} was replaced while held")


class FileLock:
    """A :class:`~rotator.locks.base.PassLock` on ``<directory>/.rotator.lock``."""

    def __init__(self, directory: Path) -> None:
        self._directory = Path(os.path.abspath(directory))

    def __repr__(self) -> str:
        return f"FileLock(path={str(self.path)!r})"

    @property
    def path(self) -> Path:
        return self._directory / LOCK_FILE_NAME

    def describe(self) -> str:
        return f"file:{self.path}"

    @contextmanager
    def hold(self) -> Iterator[_FileHeld]:
        path = self.path
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_NONBLOCK: a FIFO or a device planted at the path must not block the open.
            fd = os.open(
                path,
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
                0o600,
            )
        except OSError as exc:
            reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise LockUnavailableError(f"cannot open the lock {path}: {reason}") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LockUnavailableError(f"cannot use the lock {path}: not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LockHeldError(f"{path} is held by another pass") from exc
            except OSError as exc:
                raise LockUnavailableError(f"cannot lock {path}: {exc.strerror}") from exc
            try:
                yield _FileHeld(path, fd)
            finally:
                # Explicitly: a forked child sharing the descriptor must not keep it locked.
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
