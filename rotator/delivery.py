"""Two-phase delivery of one new key to a credential's sink, read back at each step.

The pending record first (so that a crash at any later point is settled by the stored hash),
then the secret, a read-back of its hash, the record naming the new key current, and a read-back
of both. A new key is rolled back (revoked) only when a read-back proves the sink does not hold
it; when that cannot be known, the pending record stays for the next pass to settle. With several
targets (rotator.sinks.targets) the same steps go to every target and the read-back sees them
all. This module decides nothing else: the rotation (rotator.rotation) calls it between verify
and retire, and gives it the rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from rotator.errors import RotatorError, SinkError
from rotator.models import ApiKey, NewKey, SinkRecord
from rotator.sinks.base import Sink, SinkState
from rotator.states import State


class Machine(Protocol):
    """The rotation's state machine, as a delivery moves it (rotator.rotation.Rotation)."""

    def enter(self, state: State, key_id: str | None = None, **event: object) -> None: ...


class DeliveryError(RotatorError):
    """The delivery failed; the message says how, and what the next pass settles."""


class TwoPhaseDelivery:
    """Delivers one new key of ``credential`` through ``sink``, moving ``machine`` (the
    rotation's state machine) through pending-recorded, secret-written and unknown."""

    def __init__(  # noqa: PLR0913 - each a part of the rotation it serves, named at the call
        self,
        sink: Sink,
        credential: str,
        machine: Machine,
        *,
        rollback: Callable[[ApiKey], None],
        clock: Callable[[], datetime],
        grace: timedelta,
    ) -> None:
        self._sink = sink
        self._credential = credential
        self._machine = machine
        self._rollback = rollback
        self._clock = clock
        self._grace = grace
        self._log = structlog.get_logger().bind(credential=credential)

    def deliver(
        self, state: SinkState, new: NewKey, old: ApiKey | None
    ) -> tuple[SinkRecord, SinkState]:
        """Pending record, secret, read back, current record, read back: the record the sink
        now holds and what it read back. ``DeliveryError`` when it failed (the rotation's
        state says how far it got)."""
        sink, machine = self._sink, self._machine
        digest = new.secret.sha256()
        # A first delivery records the key the sink is taken to hold (and the hash of what it
        # holds), so that a pass finishing an interrupted delivery knows which key to retire.
        base = state.record or SinkRecord(
            key_id=old.id if old else None,
            key_name=old.name if old else None,
            expires=old.expires if old else None,
            secret_sha256=state.secret_sha256 if old else None,
        )
        try:
            version = sink.write_record(
                self._credential, base.with_pending(new.key.id, digest),
                expected_version=state.version,
            )  # fmt: skip
        except SinkError as exc:
            # The secret was not written: no sink holds the new key, whatever the record did.
            self._rollback(new.key)
            raise DeliveryError(str(exc)) from exc
        machine.enter(State.PENDING_RECORDED, new.key.id)

        try:
            sink.write_secret(self._credential, new.secret, expected_version=version)
        except SinkError as exc:
            self._settle_failed_write(new, digest, base)
            raise DeliveryError(str(exc)) from exc
        machine.enter(State.SECRET_WRITTEN, new.key.id)

        # Read the secret back before the metadata names the new key current: if the sink lost
        # the write, the old key must stay current (and is never retired).
        try:
            after = sink.read(self._credential)
        except SinkError as exc:
            machine.enter(State.UNKNOWN, new.key.id, detail="read-back failed")
            raise DeliveryError(
                f"{exc} (the next pass settles the delivery from its hash)"
            ) from exc
        if after.secret_sha256 != digest:
            self._settle_failed_write(new, digest, base, seen=after)
            raise DeliveryError("read-back: the sink does not hold the new key")

        now = self._clock()
        previous_id = old.id if old else base.key_id
        current = SinkRecord(
            key_id=new.key.id,
            key_name=new.key.name,
            expires=new.key.expires,
            delivered_at=now,
            secret_sha256=digest,
            previous_key_id=previous_id,
            # The hash the record held for that key: a leak of it is recognised after it is gone.
            previous_secret_sha256=base.secret_sha256 if base.key_id == previous_id else None,
            retire_previous_after=now + self._grace,
        )
        try:
            sink.write_record(self._credential, current, expected_version=after.version)
            readback = sink.read(self._credential)
        except SinkError as exc:
            machine.enter(State.UNKNOWN, new.key.id, detail="the secret landed; record pending")
            raise DeliveryError(f"{exc} (the next pass finishes the delivery)") from exc
        if readback.record != current or readback.secret_sha256 != digest or readback.lagging:
            machine.enter(State.UNKNOWN, new.key.id, detail="metadata read-back differs")
            raise DeliveryError("read-back: the metadata does not name the new key")
        return current, readback

    def _settle_failed_write(
        self,
        new: NewKey,
        digest: str,
        base: SinkRecord,
        seen: SinkState | None = None,
    ) -> None:
        """After a failed secret write: roll back only when a read-back proves the sink does not
        hold the new key; otherwise leave it pending for the next pass."""
        sink, machine = self._sink, self._machine
        if seen is None:
            try:
                seen = sink.read(self._credential)
            except SinkError:
                machine.enter(State.UNKNOWN, new.key.id, detail="the sink could not be read back")
                return
        if seen.secret_sha256 == digest:
            machine.enter(State.UNKNOWN, new.key.id, detail="the secret landed; next pass finishes")
            return
        self._rollback(new.key)
        # The pending fields go; if this write fails, the next pass clears them (the pending key
        # is already revoked then).
        try:
            sink.write_record(self._credential, base, expected_version=seen.version)
        except SinkError:
            self._log.warning("rotation.pending_left", key_id=new.key.id)
