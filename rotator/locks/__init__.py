"""The pass lock of a workspace: at most one pass acts on a workspace at a time (invariant 8)."""

from rotator.locks.base import HeldLock, PassLock

__all__ = ["HeldLock", "PassLock"]
