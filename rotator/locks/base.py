"""The interface of a workspace's pass lock.

A pass takes a workspace's lock before it changes anything there and holds it to the end. A
lock that can expire (a Kubernetes Lease) can also be *lost* while held: a renewal failed, or
another holder took it over. The runner calls :meth:`HeldLock.check` before every create, so a
pass that lost its lock starts no new rotation in that workspace (the one in flight finishes:
stopping between create and deliver would strand a key).

Errors (:mod:`rotator.errors`): ``LockHeldError`` when another pass holds it (``pass.locked``),
``LockUnavailableError`` when it could not be taken at all, ``LockLostError`` from ``check``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable


@runtime_checkable
class HeldLock(Protocol):
    """A lock this pass holds."""

    def check(self) -> None:
        """Raise ``LockLostError`` when the lock is no longer this pass's."""


@runtime_checkable
class PassLock(Protocol):
    """One workspace's lock."""

    def describe(self) -> str:
        """What and where the lock is, for logs (a path, a Lease's namespace and name)."""

    def hold(self) -> AbstractContextManager[HeldLock]:
        """Take the lock at once or raise ``LockHeldError``; release it on exit."""
