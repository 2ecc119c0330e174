"""An in-process lock for tests: exclusive among the users of one instance, and a switch
(``lose()``) that makes the holder's next :meth:`check` fail, as a lost Lease would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rotator.errors import LockHeldError, LockLostError


class _MemoryHeld:
    def __init__(self, owner: MemoryLock) -> None:
        self._owner = owner

    def check(self) -> None:
        if self._owner.lost:
            raise LockLostError("the memory lock was lost")


class MemoryLock:
    """A :class:`~rotator.locks.base.PassLock` held in memory."""

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._lock = threading.Lock()
        self.lost = False
        #: How many times the lock was taken (tests assert a pass held it).
        self.acquisitions = 0

    def __repr__(self) -> str:
        return f"MemoryLock(name={self._name!r})"

    @property
    def held(self) -> bool:
        return self._lock.locked()

    def describe(self) -> str:
        return f"memory:{self._name}"

    def lose(self) -> None:
        self.lost = True

    @contextmanager
    def hold(self) -> Iterator[_MemoryHeld]:
        if not self._lock.acquire(blocking=False):
            raise LockHeldError(f"{self.describe()} is held by another pass")
        self.acquisitions += 1
        self.lost = False
        try:
            yield _MemoryHeld(self)
        finally:
            self._lock.release()
