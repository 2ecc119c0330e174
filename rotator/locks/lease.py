"""The Lease lock: a ``coordination.k8s.io/v1`` Lease per workspace, for passes in a cluster.

Taking it: create the Lease naming this holder, or, when it exists and is free (no holder) or
expired (``renewTime + leaseDurationSeconds`` is past), replace it carrying the
``resourceVersion`` just read, so that of two passes taking it at once exactly one wins (the
other gets 409 and reports ``LockHeldError``). A Lease another holder renewed within its
duration is ``LockHeldError``, naming the holder.

Keeping it: a background thread renews ``renewTime`` about every third of the duration, each
renewal a replace with the last ``resourceVersion``. The lock is *lost* when a renewal finds
another holder (or the Lease deleted), or when no renewal has succeeded for two thirds of the
duration (the API unreachable: soon another pass may take it); then :meth:`_LeaseHeld.check`
raises ``LockLostError``. A killed process renews nothing, so its Lease expires after one
duration and the next pass takes it.

Releasing it: the holder is cleared (a replace with the last ``resourceVersion``; the Lease
stays, with its ``leaseTransitions`` count). A release that fails is not an error: the Lease
expires by itself.

Clocks: expiry compares the holder's ``renewTime`` with this process's clock, as the Lease API
intends; nodes' clocks are assumed to agree to well within the duration (NTP).

API failures become ``LockUnavailableError`` naming the server and the Lease, never a token.
The client is lightkube's (typed models on httpx), through :mod:`rotator.kube`: each request has
a deadline as a whole, shortened to a third of the duration when that is less, so that a hung
renewal cannot outlast the time the Lease is surely ours. This module knows nothing of
settings, sinks or the engine.
"""

from __future__ import annotations

import contextvars
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from rotator.errors import (
    ConfigError,
    LockHeldError,
    LockLostError,
    LockUnavailableError,
)
from rotator.kube import (
    SERVICE_ACCOUNT_DIR,
    Connection,
    Failure,
    FailureKind,
    dns_safe,
    fit_name,
    is_dns_label,
    is_dns_subdomain,
    load_configuration,
    micro_time,
    own_namespace,
)
from rotator.models import utc

if TYPE_CHECKING:
    from lightkube.models.coordination_v1 import LeaseSpec
    from lightkube.resources.coordination_v1 import Lease

_T = TypeVar("_T")

DEFAULT_DURATION: Final = timedelta(seconds=60)
DEFAULT_REQUEST_TIMEOUT: Final = timedelta(seconds=10)
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "key-rotator"
_SETTING = "ROTATOR_LOCK"
# Renew every third of the duration; give up (lost) after two thirds without a renewal, well
# before another pass may take the Lease (client-go's leader election keeps the same ratios).
_RENEW_FRACTION: Final = 1 / 3
_DEADLINE_FRACTION: Final = 2 / 3


def lease_name(workspace: str) -> str:
    """The Lease of ``workspace``'s pass lock: ``key-rotator-<workspace>``, DNS-1123 safe."""
    return fit_name(f"key-rotator-{dns_safe(workspace)}")


def default_holder_identity() -> str:
    """A holder identity unique to this process: the host (a pod's name), the pid, a nonce."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


class LeaseLock:
    """A :class:`~rotator.locks.base.PassLock` on one Lease."""

    def __init__(
        self,
        *,
        namespace: str | None,
        name: str,
        holder_identity: str,
        duration: timedelta = DEFAULT_DURATION,
        kubeconfig: Path | None = None,
        request_timeout: timedelta = DEFAULT_REQUEST_TIMEOUT,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> None:
        problems = []
        if not is_dns_subdomain(name):
            problems.append(f"{_SETTING}: the Lease name {name!r} is not a valid object name")
        if not holder_identity:
            problems.append(f"{_SETTING}: the Lease holder identity is empty")
        if duration < timedelta(seconds=1):
            problems.append("ROTATOR_LEASE_DURATION_SECONDS: must be at least 1")
        self._namespace = namespace or own_namespace(service_account_dir)
        if not is_dns_label(self._namespace):
            problems.append(
                f"ROTATOR_LEASE_NAMESPACE: {self._namespace!r} is not a valid namespace"
            )
        if problems:
            raise ConfigError(problems)
        self._name = name
        self._identity = holder_identity
        self._duration_seconds = math.ceil(duration.total_seconds())
        period = self._duration_seconds * _RENEW_FRACTION
        self._timeout = min(request_timeout.total_seconds(), period)
        self._cluster = load_configuration(
            kubeconfig,
            setting=_SETTING,
            what="the lease lock",
            service_account_dir=service_account_dir,
        )
        self._server = self._cluster.server
        # The models' module loads now, with the configuration, rather than in a pass.
        from lightkube.resources import coordination_v1  # noqa: F401, PLC0415

        # One hold at a time per instance: the Lease cannot tell two holds of one identity apart.
        self._holding = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LeaseLock(server={self._server!r}, namespace={self._namespace!r}, "
            f"name={self._name!r}, holder={self._identity!r})"
        )

    @property
    def holder_identity(self) -> str:
        return self._identity

    def describe(self) -> str:
        return f"lease:{self._namespace}/{self._name}"

    @contextmanager
    def hold(self) -> Iterator[_LeaseHeld]:
        if not self._holding.acquire(blocking=False):
            raise LockHeldError(f"{self.describe()} is held by this process already")
        try:
            connection = Connection(self._cluster, timeout_seconds=self._timeout)
            try:
                held = self._acquire(connection)
                try:
                    yield held
                finally:
                    held.release()
            finally:
                connection.close()
        finally:
            self._holding.release()

    # -- taking it ---------------------------------------------------------------------------

    def _acquire(self, connection: Connection) -> _LeaseHeld:
        calls = _Calls(connection, self._namespace, self._name)
        where = self.describe()
        now = micro_time(datetime.now(UTC))
        found = calls.read()
        if isinstance(found, Failure):
            if found.kind is not FailureKind.NOT_FOUND:
                raise LockUnavailableError(found.message) from found.cause
            lease = calls.create(self._new_lease(now))
            if isinstance(lease, Failure):
                if lease.kind is FailureKind.ALREADY_EXISTS:
                    raise LockHeldError(f"{where} was just taken by another pass") from lease.cause
                raise LockUnavailableError(lease.message) from lease.cause
        else:
            spec = found.spec
            holder = spec.holderIdentity if spec else None
            if holder and holder != self._identity and not _expired(found, now):
                until = _expires_at(found)
                raise LockHeldError(f"{where} is held by {holder} until {until} unless renewed")
            transitions = (spec.leaseTransitions if spec else None) or 0
            if holder != self._identity:
                transitions += 1
            found.spec = self._spec(now, now, transitions)
            lease = calls.replace(found)
            if isinstance(lease, Failure):
                if lease.kind in (FailureKind.CONFLICT, FailureKind.NOT_FOUND):
                    raise LockHeldError(
                        f"{where} was taken by another pass at the same time"
                    ) from lease.cause
                raise LockUnavailableError(lease.message) from lease.cause
        return _LeaseHeld(
            calls,
            lease,
            identity=self._identity,
            where=where,
            period=self._duration_seconds * _RENEW_FRACTION,
            deadline=self._duration_seconds * _DEADLINE_FRACTION,
        )

    def _new_lease(self, now: datetime) -> Lease:
        from lightkube.models.meta_v1 import ObjectMeta  # noqa: PLC0415 - optional extra
        from lightkube.resources.coordination_v1 import Lease  # noqa: PLC0415

        return Lease(
            metadata=ObjectMeta(name=self._name, labels={MANAGED_BY_LABEL: MANAGED_BY}),
            spec=self._spec(now, now, 0),
        )

    def _spec(self, acquired: datetime, renewed: datetime, transitions: int) -> LeaseSpec:
        from lightkube.models.coordination_v1 import LeaseSpec  # noqa: PLC0415 - optional extra

        return LeaseSpec(
            holderIdentity=self._identity,
            leaseDurationSeconds=self._duration_seconds,
            acquireTime=micro_time(acquired),
            renewTime=micro_time(renewed),
            leaseTransitions=transitions,
        )


@dataclass
class _Calls:
    """The Lease API calls, each returning the Lease or the Failure of the call."""

    connection: Connection
    namespace: str
    name: str

    def read(self) -> Lease | Failure:
        from lightkube.resources.coordination_v1 import Lease  # noqa: PLC0415 - optional extra

        client = self.connection.client
        return self._attempt(
            "read", lambda: client.get(Lease, self.name, namespace=self.namespace), read=True
        )

    def create(self, lease: Lease) -> Lease | Failure:
        client = self.connection.client
        return self._attempt("create", lambda: client.create(lease, namespace=self.namespace))

    def replace(self, lease: Lease) -> Lease | Failure:
        client = self.connection.client
        if lease.metadata is not None:
            # lightkube puts a replace where the object's metadata says: say it, whatever
            # the answer it came from held.
            lease.metadata.namespace = self.namespace
        return self._attempt("update", lambda: client.replace(lease))

    def _attempt(self, verb: str, call: Callable[[], _T], *, read: bool = False) -> _T | Failure:
        return self.connection.call(f"{verb} Lease {self.namespace}/{self.name}", call, read=read)


class Renewal(StrEnum):
    """What one renewal of a held Lease came to."""

    RENEWED = "renewed"
    #: Not this time (a timeout, a conflict that left the Lease ours): try again soon.
    FAILED = "failed"
    #: Another holder has it, or it was deleted: the lock is lost.
    LOST = "lost"


class _LeaseHeld:
    """A Lease this pass holds, renewed by a background thread until :meth:`release`."""

    def __init__(
        self,
        calls: _Calls,
        lease: Lease,
        *,
        identity: str,
        where: str,
        period: float,
        deadline: float,
    ) -> None:
        self._calls = calls
        self._lease = lease
        self._identity = identity
        self._where = where
        self._period = period
        self._deadline = deadline
        self._state = threading.Lock()
        self._renewed_at = time.monotonic()
        self._lost: str | None = None
        self._stop = threading.Event()
        # In a copy of the pass's context: what the renewal logs carries the pass's run_id.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run,
            args=(self._renew_until_stopped,),
            name=f"lease-renewal:{where}",
            daemon=True,
        )
        self._thread.start()

    def check(self) -> None:
        with self._state:
            lost = self._lost
            silent_for = time.monotonic() - self._renewed_at
        if lost is not None:
            raise LockLostError(f"{self._where}: {lost}")
        if silent_for > self._deadline:
            raise LockLostError(
                f"{self._where}: not renewed for {silent_for:.0f} s; another pass may take it"
            )

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._state:
            if self._lost is not None:
                return
            lease = self._lease
        # Clear the holder so the next pass need not wait for the Lease to expire.
        if lease.spec is not None:
            lease.spec.holderIdentity = None
            lease.spec.renewTime = micro_time(datetime.now(UTC))
        with suppress(Exception):
            self._calls.replace(lease)

    def _renew_until_stopped(self) -> None:
        wait = self._period
        while not self._stop.wait(wait):
            outcome = self._renew()
            if outcome is Renewal.LOST:
                return
            # After a failure, try again sooner: the deadline is only two periods away.
            wait = self._period if outcome is Renewal.RENEWED else self._period / 3

    def _renew(self) -> Renewal:
        """One renewal: ``renewed``, ``failed`` (try again soon) or ``lost``."""
        with self._state:
            lease = self._lease
        sent_at = time.monotonic()
        if lease.spec is not None:
            lease.spec.renewTime = micro_time(datetime.now(UTC))
        renewed = self._calls.replace(lease)
        if isinstance(renewed, Failure) and renewed.kind is FailureKind.CONFLICT:
            # Someone changed the Lease: still ours only if it still names this holder.
            current = self._calls.read()
            if isinstance(current, Failure):
                return self._failed(current)
            holder = current.spec.holderIdentity if current.spec else None
            if holder != self._identity:
                return self._lose(f"taken over by {holder or 'nobody (released)'}")
            with self._state:
                self._lease = current
            return Renewal.FAILED
        if isinstance(renewed, Failure):
            return self._failed(renewed)
        with self._state:
            self._lease = renewed
            self._renewed_at = sent_at
        return Renewal.RENEWED

    def _failed(self, failure: Failure) -> Renewal:
        if failure.kind is FailureKind.NOT_FOUND:
            return self._lose("the Lease was deleted")
        return Renewal.FAILED

    def _lose(self, reason: str) -> Renewal:
        with self._state:
            self._lost = reason
        return Renewal.LOST


def _expires_at(lease: Lease) -> datetime | None:
    spec = lease.spec
    if spec is None or spec.renewTime is None or not spec.leaseDurationSeconds:
        return None
    return utc(spec.renewTime) + timedelta(seconds=spec.leaseDurationSeconds)


def _expired(lease: Lease, now: datetime) -> bool:
    """Whether the holder let it lapse: ``renewTime + leaseDurationSeconds < now``. A Lease
    missing either field has nothing that keeps it: free."""
    until = _expires_at(lease)
    return until is None or until < now
