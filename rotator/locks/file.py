"""The file lock: ``fcntl.flock`` on ``.rotator.lock`` in a folder (the file sink's, or
ROTATOR_LOCK_DIR). The kernel drops it when the process dies, so a killed pass never leaves it
held; it cannot be lost while the process lives, so :meth:`check` never fails.

Refuses a symlink at the lock's path (``O_NOFOLLOW``): a lock file that points elsewhere is
not ours to create or truncate.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from rotator.errors import LockHeldError, LockUnavailableError

LOCK_FILE_NAME: Final = ".rotator.lock"


class _FileHeld:
    def check(self) -> None:
        return None


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
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror
            raise LockUnavailableError(f"cannot open the lock {path}: {reason}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LockHeldError(f"{path} is held by another pass") from exc
            except OSError as exc:
                raise LockUnavailableError(f"cannot lock {path}: {exc.strerror}") from exc
            try:
                yield _FileHeld()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
