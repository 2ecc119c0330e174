"""The pass-lock contract, parametrized over every lock: file, memory and Lease.

What the runner relies on: a held lock is exclusive, a released one can be taken again, a lock
that was lost is reported by ``check()``, and a holder that dies (SIGKILL, no clean-up) does not
keep the lock forever: the kernel drops a file lock at once, a Lease expires after its duration.
The Lease runs against the loopback stand-in of the API server, through the real client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.errors import LockHeldError, LockLostError
from rotator.locks.base import HeldLock, PassLock
from rotator.locks.file import FileLock
from rotator.locks.lease import LeaseLock
from rotator.locks.memory import MemoryLock
from tests.k8s.fixtures import NAMESPACE, Cluster

ROOT = Path(__file__).resolve().parents[2]
#: Short enough for tests to wait out, long enough for renewals (every third) to be seen.
LEASE_SECONDS = 2.0


@dataclass
class LockBackend:
    lock: PassLock
    #: Another pass's handle on the same lock (another process's, where that is possible).
    contender: Callable[[], PassLock]
    #: Make the holder lose the lock (another holder takes it over), or None when it cannot be.
    lose: Callable[[], None] | None = None
    #: The command of a process that takes the lock, prints "held" and waits; None: in-process.
    holder_command: list[str] | None = None
    #: How long after its holder was killed the lock is free again.
    frees_after: float = 0.0


def _file_backend(tmp_path: Path) -> LockBackend:
    directory = tmp_path / "locks"
    return LockBackend(
        lock=FileLock(directory),
        contender=lambda: FileLock(directory),
        holder_command=[sys.executable, "-m", "tests.locks.hold_lock", "file", str(directory)],
    )


def _memory_backend(tmp_path: Path) -> LockBackend:
    lock = MemoryLock("acme")
    return LockBackend(lock=lock, contender=lambda: lock, lose=lock.lose)


def _lease_backend(cluster: Cluster) -> LockBackend:
    def lease(identity: str) -> LeaseLock:
        return LeaseLock(
            namespace=NAMESPACE,
            name="key-rotator-acme",
            holder_identity=identity,
            duration=timedelta(seconds=LEASE_SECONDS),
            kubeconfig=cluster.kubeconfig,
        )

    def take_over() -> None:
        def intruder(lease: dict[str, object]) -> None:
            lease["spec"]["holderIdentity"] = "intruder"  # type: ignore[index]

        cluster.server.modify("Lease", NAMESPACE, "key-rotator-acme", intruder)

    return LockBackend(
        lock=lease("pass-1"),
        contender=lambda: lease("pass-2"),
        lose=take_over,
        holder_command=[
            sys.executable,
            "-m",
            "tests.locks.hold_lock",
            "lease",
            str(cluster.kubeconfig),
            NAMESPACE,
            "key-rotator-acme",
            "killed-pass",
            str(LEASE_SECONDS),
        ],
        frees_after=LEASE_SECONDS,
    )


@pytest.fixture(params=["file", "memory", "lease"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> LockBackend:
    if request.param == "file":
        return _file_backend(tmp_path)
    if request.param == "memory":
        return _memory_backend(tmp_path)
    return _lease_backend(request.getfixturevalue("cluster"))


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _takeable(lock: PassLock) -> bool:
    try:
        with lock.hold():
            return True
    except LockHeldError:
        return False


def _lost(held: HeldLock) -> bool:
    try:
        held.check()
    except LockLostError:
        return True
    return False


@pytest.fixture
def holder(backend: LockBackend) -> Iterator[subprocess.Popen[str] | None]:
    """A process holding the backend's lock (killed at the end), or None for in-process locks."""
    if backend.holder_command is None:
        yield None
        return
    process = subprocess.Popen(
        backend.holder_command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_implements_the_protocol(backend: LockBackend) -> None:
    assert isinstance(backend.lock, PassLock)
    assert backend.lock.describe()


def test_a_held_lock_is_exclusive(backend: LockBackend) -> None:
    with backend.lock.hold() as held:
        assert isinstance(held, HeldLock)
        with pytest.raises(LockHeldError), backend.contender().hold():
            pytest.fail("two passes held one lock")
        held.check()


def test_a_released_lock_can_be_taken_again(backend: LockBackend) -> None:
    with backend.lock.hold():
        pass
    with backend.contender().hold() as held:
        held.check()
    with backend.lock.hold():
        pass


def test_a_held_lock_stays_held_across_renewals(backend: LockBackend) -> None:
    with backend.lock.hold() as held:
        # Past the deadline a Lease that was never renewed would be lost (two thirds of it).
        time.sleep(LEASE_SECONDS if isinstance(backend.lock, LeaseLock) else 0.1)
        held.check()
        assert not _takeable(backend.contender())


def test_a_lost_lock_is_detected_by_check(backend: LockBackend) -> None:
    if backend.lose is None:
        return  # a file lock cannot be lost while its process lives
    with backend.lock.hold() as held:
        held.check()
        backend.lose()
        assert _wait_for(lambda: _lost(held), timeout=LEASE_SECONDS * 2)
        with pytest.raises(LockLostError):
            held.check()


def test_a_killed_holder_does_not_keep_the_lock(
    backend: LockBackend, holder: subprocess.Popen[str] | None
) -> None:
    if holder is None:
        return  # an in-process lock dies with its process: nothing outlives it
    contender = backend.contender()
    assert not _takeable(contender)
    killed_at = time.monotonic()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert _wait_for(lambda: _takeable(contender), timeout=backend.frees_after + 3)
    # A Lease is free only once it expired: the dead holder renewed nothing, released nothing.
    assert time.monotonic() - killed_at >= backend.frees_after * 0.5
