"""One credential's work in a pass: its planned actions executed in order, the rotation as an
explicit state machine, an immutable result.

The states of a rotation and the only transitions allowed between them::

    due ──▶ created ──▶ verified ──▶ pending-recorded ──▶ secret-written ──▶ delivered ──▶ revoked
     │         │           │               │                   │               │
     ▼         ▼           ▼               ▼                   ▼               ▼
   failed   rolled-back ◀──┴───────────────┴───────────────────┘             failed
               │                           │                   │          (the retire failed;
               ▼                           ▼                   ▼           the delivery stands)
             failed                      unknown ◀─────────────┘
                                           │
                                           ▼
                                         failed

Every state but ``revoked`` may also go to ``failed`` directly (a rollback that itself failed).

``unknown``: the sink's state could not be read back, or the secret landed but its record did
not; nothing is revoked and the pending record lets the next pass settle it (docs/how-it-works.md,
"Rollback"). Entering a state logs its contract event, records a step for ``rotator demo`` and
fires the checkpoint named after the state, which tests use to stop the process right there.

Safety rules held here: a previous key is revoked only after its replacement was verified,
delivered and read back, and its consumers were restarted (when the sink restarts any); a new
key is rolled back only when a read-back shows the sink does not hold it; a key is revoked only
when it belongs to this credential. This module knows nothing of settings, pools or locks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rotator.errors import (
    ApiAuthError,
    ApiError,
    ApiNotFoundError,
    ApiRequestError,
    RotatorError,
    SinkError,
)
from rotator.models import ApiKey, Identity, NewKey, Secret, SinkRecord, rotator_key_name, utc
from rotator.plan import Action, PlannedAction
from rotator.reconcile import CredentialView
from rotator.sinks.base import RolloutState, Sink, SinkState, WorkloadRollout, rollout_state


class KeyProvider(Protocol):
    """What a pass needs of the ProjectManager API (``rotator.client`` implements it)."""

    def list_keys(self) -> Sequence[ApiKey]: ...
    def create_key(self, token_name: str) -> NewKey: ...
    def revoke_key(self, key_id: str) -> None: ...
    def me(self, credential: Secret | None = None) -> Identity: ...


class State(StrEnum):
    """Where one rotation is; the checkpoint names tests stop at."""

    DUE = "due"
    CREATED = "created"
    VERIFIED = "verified"
    PENDING_RECORDED = "pending-recorded"
    SECRET_WRITTEN = "secret-written"  # noqa: S105 - a state name, not a password
    DELIVERED = "delivered"
    REVOKED = "revoked"
    ROLLED_BACK = "rolled-back"
    UNKNOWN = "unknown"
    FAILED = "failed"


#: The allowed transitions: everything else raises IllegalTransitionError.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DUE: frozenset({State.CREATED, State.FAILED}),
    State.CREATED: frozenset({State.VERIFIED, State.ROLLED_BACK, State.FAILED}),
    State.VERIFIED: frozenset({State.PENDING_RECORDED, State.ROLLED_BACK, State.FAILED}),
    State.PENDING_RECORDED: frozenset(
        {State.SECRET_WRITTEN, State.ROLLED_BACK, State.UNKNOWN, State.FAILED}
    ),
    State.SECRET_WRITTEN: frozenset(
        {State.DELIVERED, State.ROLLED_BACK, State.UNKNOWN, State.FAILED}
    ),
    State.DELIVERED: frozenset({State.REVOKED, State.FAILED}),
    State.REVOKED: frozenset(),
    State.ROLLED_BACK: frozenset({State.FAILED}),
    State.UNKNOWN: frozenset({State.FAILED}),
    State.FAILED: frozenset(),
}

#: The contract's log event for entering a state (None: no event of its own).
_EVENTS: dict[State, str | None] = {
    State.CREATED: "rotation.created",
    State.VERIFIED: "rotation.verified",
    State.PENDING_RECORDED: None,
    State.SECRET_WRITTEN: None,
    State.DELIVERED: "rotation.delivered",
    State.REVOKED: "rotation.revoked",
    State.ROLLED_BACK: "rotation.rolled_back",
    State.UNKNOWN: "rotation.state_unknown",
    State.FAILED: None,  # rotation.failed is logged with its step by the credential's work
}


class IllegalTransitionError(RotatorError):
    """A rotation tried to move between states the table does not connect (a bug)."""


class Step(StrEnum):
    """Where a credential's work failed (``rotation.failed`` ``step``)."""

    RECONCILE = "reconcile"
    CREATE = "create"
    VERIFY = "verify"
    DELIVER = "deliver"
    RETIRE = "retire"


class Outcome(StrEnum):
    """What became of one credential in a pass."""

    ROTATED = "rotated"
    FAILED = "failed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class StepRecord:
    """One thing a pass did, for people (``rotator demo``) and tests; never a secret."""

    workspace: str
    credential: str
    event: str
    key_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RotationConfig:
    """The settings one credential's work obeys, as plain values."""

    grace: timedelta = timedelta(hours=24)
    #: ``rotate --now``: retire without waiting for consumers' restarts.
    emergency: bool = False
    #: ``me`` with a new key is tried this often: a new key may take a moment to propagate.
    verify_attempts: int = 5
    verify_first_wait_seconds: float = 0.5


@dataclass(frozen=True)
class WorkspaceContext:
    """What every credential job of one workspace shares; read-only."""

    name: str
    provider: KeyProvider
    sink: Sink
    identity: Identity
    config: RotationConfig
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    #: Called with (state or step name, credential) at each step boundary (tests crash there).
    checkpoint: Callable[[str, str], None]
    #: Collects StepRecords (thread-safe: a list's append is atomic).
    steps: list[StepRecord]
    log: structlog.typing.FilteringBoundLogger


@dataclass(frozen=True)
class CredentialResult:
    """What one credential's work did; immutable, returned to the runner."""

    credential: str
    outcome: Outcome
    #: A create was attempted (counts towards the circuit breaker).
    attempted_rotation: bool = False
    failed_step: Step | None = None
    error: str | None = None
    rolled_back: int = 0
    #: Keys revoked by id, to be confirmed gone by the workspace's closing list.
    revoked: tuple[str, ...] = ()
    #: A consumer restart did not finish in time (``rollout.stalled``).
    rollout_stalled: bool = False
    #: A rotation not started, and why (``budget``, ``breaker``, ``stopped``, ``lock-lost``).
    skipped: str | None = None
    #: The rotator's own previous key stays: its credential source does not hold the new one.
    own_key_waiting: bool = False


class _StepFailedError(RotatorError):
    """A step failed; the credential is left safe (internal control flow)."""

    def __init__(self, step: Step, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


@dataclass
class _Tally:
    """The mutable bookkeeping of one job, frozen into a CredentialResult at the end."""

    outcome: Outcome = Outcome.UNCHANGED
    attempted: bool = False
    failed_step: Step | None = None
    error: str | None = None
    rolled_back: int = 0
    revoked: list[str] = field(default_factory=list)
    stalled: bool = False
    skipped: str | None = None
    own_key_waiting: bool = False


class Rotation:
    """The state machine of one rotation: tracks its state and refuses illegal moves."""

    def __init__(self, ctx: WorkspaceContext, credential: str) -> None:
        self._ctx = ctx
        self._credential = credential
        self.state = State.DUE

    def enter(self, state: State, key_id: str | None = None, **event: object) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"rotation cannot go from {self.state} to {state}")
        self.state = state
        name = _EVENTS[state]
        log = self._ctx.log.bind(credential=self._credential)
        if name is not None:
            level = log.warning if state in (State.ROLLED_BACK, State.UNKNOWN) else log.info
            level(name, key_id=key_id, **event)
            detail = str(event.get("detail", ""))
            self._ctx.steps.append(
                StepRecord(self._ctx.name, self._credential, name, key_id, detail)
            )
        self._ctx.checkpoint(str(state), self._credential)


class CredentialWork:
    """Executes the planned actions of one credential, in order, and returns its result.

    ``before_create`` is asked just before a create: it returns why the rotation must not start
    (the breaker tripped, the lock was lost, a stop was asked for) or None.

    ``own_key_source`` is given for the rotator's own credential: it reads the place the process
    takes its credential from (ROTATOR_API_KEY_FILE) anew. The previous own key is revoked only
    once that source holds the key the sink holds now and ``me`` answered with it, whatever the
    grace period says, so that a sink target the rotator does not read leaves two working keys,
    never none.
    """

    def __init__(
        self,
        ctx: WorkspaceContext,
        view: CredentialView,
        actions: Sequence[PlannedAction],
        *,
        before_create: Callable[[], str | None] = lambda: None,
        own_key_source: Callable[[], Secret] | None = None,
    ) -> None:
        self._ctx = ctx
        self._own_key_source = own_key_source
        self._view = view
        self._actions = actions
        self._before_create = before_create
        self._credential = view.credential
        self._log = ctx.log.bind(credential=view.credential)
        self._tally = _Tally()
        self._state: SinkState | None = view.state
        self._current: ApiKey | None = view.current
        #: A retire waited for consumers' restarts: no rotation may replace its record now.
        self._retire_deferred = False

    def run(self) -> CredentialResult:
        for action in self._actions:
            try:
                self._execute(action)
            except _StepFailedError as exc:
                self._fail(exc.step, exc.error)
                break  # what follows relied on this action's outcome
            except Exception as exc:  # noqa: BLE001 - one credential's bug never stops a pass
                # Only the class: an unforeseen error's text could hold anything, a secret too.
                self._fail(Step.RECONCILE, f"unexpected {type(exc).__name__}")
                break
        t = self._tally
        return CredentialResult(
            credential=self._credential,
            outcome=t.outcome,
            attempted_rotation=t.attempted,
            failed_step=t.failed_step,
            error=t.error,
            rolled_back=t.rolled_back,
            revoked=tuple(t.revoked),
            rollout_stalled=t.stalled,
            skipped=t.skipped,
            own_key_waiting=t.own_key_waiting,
        )

    # ------------------------------------------------------------------ dispatch

    def _execute(self, action: PlannedAction) -> None:
        if action.action is Action.BLOCKED:
            raise _StepFailedError(Step.RECONCILE, action.reason)
        if action.action is Action.FINISH_DELIVERY:
            self._finish_delivery()
        elif action.action is Action.RETIRE:
            self._retire(action)
        elif action.action is Action.REVOKE_ORPHAN:
            self._revoke_orphan(action)
        else:
            self._rotate()

    # ------------------------------------------------------------- settling actions

    def _finish_delivery(self) -> None:
        """The sink holds the pending key: make it current; its grace starts now."""
        record = self._require_state().record
        if record is None or record.pending_key_id is None:
            raise _StepFailedError(Step.RECONCILE, "nothing is pending any more")
        pending = self._view.pending
        now = self._ctx.clock()
        finished = SinkRecord(
            key_id=record.pending_key_id,
            key_name=pending.name if pending else None,
            expires=pending.expires if pending else None,
            delivered_at=now,
            secret_sha256=record.pending_secret_sha256,
            previous_key_id=record.key_id,
            previous_secret_sha256=record.secret_sha256,
            retire_previous_after=now + self._ctx.config.grace,
        )
        self._write_record(finished, Step.RECONCILE)
        self._current = pending
        self._log.info(
            "rotation.delivered", key_id=record.pending_key_id, sink=self._ctx.sink.kind,
            recovered=True,
        )  # fmt: skip
        self._record_step("rotation.delivered", record.pending_key_id, "finished a delivery")
        self._start_rollout(finished)
        self._ctx.checkpoint("finished-delivery", self._credential)

    def _retire(self, action: PlannedAction) -> None:
        record = self._require_state().record
        key = self._key(action.key_id)
        if key is None or record is None:
            return  # already gone: nothing to retire
        if not self._own_key_switched(record):
            self._retire_deferred = True
            return
        if not self._ctx.config.emergency and not self._consumers_ready(record):
            self._retire_deferred = True
            return
        self._revoke(key, Step.RETIRE)
        self._log.info("rotation.revoked", key_id=key.id)
        self._record_step("rotation.revoked", key.id, "grace period over")
        self._ctx.checkpoint("retired", self._credential)

    def _revoke_orphan(self, action: PlannedAction) -> None:
        key = self._key(action.key_id)
        if action.reason == "pending-not-delivered":
            if key is not None:
                self._revoke(key, Step.RECONCILE)
                self._log.info("orphan.revoked", key_id=key.id, pending=True)
                self._record_step("orphan.revoked", key.id, "never delivered")
            record = self._require_state().record
            if record is not None:
                self._write_record(record.without_pending(), Step.RECONCILE)
            return
        if key is None:
            return
        try:
            self._revoke(key, Step.RECONCILE)
        except _StepFailedError as exc:
            # One orphan's failure is reported; the credential's other work goes on.
            self._fail(exc.step, exc.error)
            return
        self._log.info("orphan.revoked", key_id=key.id)
        self._record_step("orphan.revoked", key.id, "no sink holds it")

    # ------------------------------------------------------------------ rotation

    def _rotate(self) -> None:
        reason = "rollout-waiting" if self._retire_deferred else self._before_create()
        if reason is not None:
            self._tally.skipped = reason
            return
        self._tally.attempted = True
        machine = Rotation(self._ctx, self._credential)
        old = self._current
        state = self._require_state()
        try:
            new = self._ctx.provider.create_key(
                rotator_key_name(self._credential, self._ctx.clock())
            )
        except ApiError as exc:
            # A create whose answer was lost may still have made a key: it carries the marker
            # and no sink holds it, so a later pass revokes it as an orphan.
            machine.enter(State.FAILED)
            raise _StepFailedError(Step.CREATE, str(exc)) from exc
        machine.enter(State.CREATED, new.key.id, previous_key_id=old.id if old else None)

        try:
            self._verify(new)
        except _StepFailedError:
            self._rollback(machine, new.key)
            machine.enter(State.FAILED)
            raise
        machine.enter(State.VERIFIED, new.key.id)

        try:
            delivered = self._deliver(machine, state, new, old)
        except _StepFailedError:
            machine.enter(State.FAILED)
            raise
        machine.enter(State.DELIVERED, new.key.id, sink=self._ctx.sink.kind)
        self._current = new.key
        self._tally.outcome = Outcome.ROTATED
        rollout_ready = self._start_rollout(delivered)

        if old is not None and self._ctx.config.grace <= timedelta(0):
            if not (rollout_ready or self._ctx.config.emergency):
                return  # consumers still restarting: a later pass retires the old key
            if not self._own_key_switched(delivered):
                return  # the rotator does not run on its new key yet: a later pass retires
            try:
                self._revoke(old, Step.RETIRE)
            except _StepFailedError:
                machine.enter(State.FAILED)
                raise
            machine.enter(State.REVOKED, old.id, detail="grace 0")

    def _verify(self, new: NewKey) -> None:
        """``me`` with the new key answers for this workspace (retried briefly: propagation)."""
        config = self._ctx.config
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(config.verify_attempts),
                wait=wait_exponential(multiplier=config.verify_first_wait_seconds, max=8),
                retry=retry_if_exception_type(ApiAuthError),
                sleep=self._ctx.sleep,
                reraise=True,
            ):
                with attempt:
                    identity = self._ctx.provider.me(new.secret)
        except ApiError as exc:
            raise _StepFailedError(Step.VERIFY, str(exc)) from exc
        own = self._ctx.identity
        if identity.workspace_id is None or identity.workspace_id != own.workspace_id:
            raise _StepFailedError(Step.VERIFY, "the new key does not answer for this workspace")
        if own.user_id is not None and identity.user_id != own.user_id:
            raise _StepFailedError(Step.VERIFY, "the new key answers for another user")

    def _deliver(
        self, machine: Rotation, state: SinkState, new: NewKey, old: ApiKey | None
    ) -> SinkRecord:
        """Two-phase delivery: pending record, secret, read back, current record, read back."""
        sink = self._ctx.sink
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
            self._rollback(machine, new.key)
            raise _StepFailedError(Step.DELIVER, str(exc)) from exc
        machine.enter(State.PENDING_RECORDED, new.key.id)

        try:
            sink.write_secret(self._credential, new.secret, expected_version=version)
        except SinkError as exc:
            self._settle_failed_write(machine, new, digest, base)
            raise _StepFailedError(Step.DELIVER, str(exc)) from exc
        machine.enter(State.SECRET_WRITTEN, new.key.id)

        # Read the secret back before the metadata names the new key current: if the sink lost
        # the write, the old key must stay current (and is never retired).
        try:
            after = sink.read(self._credential)
        except SinkError as exc:
            machine.enter(State.UNKNOWN, new.key.id, detail="read-back failed")
            raise _StepFailedError(
                Step.DELIVER, f"{exc} (the next pass settles the delivery from its hash)"
            ) from exc
        if after.secret_sha256 != digest:
            self._settle_failed_write(machine, new, digest, base, seen=after)
            raise _StepFailedError(Step.DELIVER, "read-back: the sink does not hold the new key")

        now = self._ctx.clock()
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
            retire_previous_after=now + self._ctx.config.grace,
        )
        try:
            sink.write_record(self._credential, current, expected_version=after.version)
            readback = sink.read(self._credential)
        except SinkError as exc:
            machine.enter(State.UNKNOWN, new.key.id, detail="the secret landed; record pending")
            raise _StepFailedError(
                Step.DELIVER, f"{exc} (the next pass finishes the delivery)"
            ) from exc
        if readback.record != current or readback.secret_sha256 != digest:
            machine.enter(State.UNKNOWN, new.key.id, detail="metadata read-back differs")
            raise _StepFailedError(
                Step.DELIVER, "read-back: the metadata does not name the new key"
            )
        self._state = readback
        return current

    def _settle_failed_write(
        self,
        machine: Rotation,
        new: NewKey,
        digest: str,
        base: SinkRecord,
        seen: SinkState | None = None,
    ) -> None:
        """After a failed secret write: roll back only when a read-back proves the sink does not
        hold the new key; otherwise leave it pending for the next pass."""
        sink = self._ctx.sink
        if seen is None:
            try:
                seen = sink.read(self._credential)
            except SinkError:
                machine.enter(State.UNKNOWN, new.key.id, detail="the sink could not be read back")
                return
        if seen.secret_sha256 == digest:
            machine.enter(State.UNKNOWN, new.key.id, detail="the secret landed; next pass finishes")
            return
        self._rollback(machine, new.key)
        # The pending fields go; if this write fails, the next pass clears them (the pending key
        # is already revoked then).
        try:
            sink.write_record(self._credential, base, expected_version=seen.version)
        except SinkError:
            self._log.warning("rotation.pending_left", key_id=new.key.id)

    def _rollback(self, machine: Rotation, key: ApiKey) -> None:
        try:
            self._revoke(key, Step.CREATE)
        except _StepFailedError as exc:
            self._log.error("rotation.rollback_failed", key_id=key.id, error=exc.error)
            return
        self._tally.rolled_back += 1
        machine.enter(State.ROLLED_BACK, key.id)

    # ------------------------------------------------------------------ helpers

    def _own_key_switched(self, record: SinkRecord) -> bool:
        """For the rotator's own key: whether the process's credential source now holds the key
        the sink holds and that key answers ``me`` here (always True for other credentials)."""
        if self._own_key_source is None:
            return True
        reason = None
        try:
            held = self._own_key_source()
        except RotatorError:
            reason = "the credential source cannot be read"
        else:
            if record.secret_sha256 is None or held.sha256() != record.secret_sha256:
                reason = "the credential source does not hold the new key yet"
            else:
                try:
                    identity = self._ctx.provider.me(held)
                except ApiError:
                    reason = "the credential source's key does not answer yet"
                else:
                    if identity.workspace_id != self._ctx.identity.workspace_id:
                        reason = "the credential source's key answers for another workspace"
        if reason is None:
            return True
        self._tally.own_key_waiting = True
        self._log.warning("self.waiting", key_id=record.key_id, reason=reason)
        return False

    def _consumers_ready(self, record: SinkRecord) -> bool:
        """Whether every consumer runs with the delivery of ``record`` (else the previous key
        stays: ``rollout.stalled`` past the deadline fails the credential)."""
        delivered_at = record.delivered_at or self._ctx.clock()
        try:
            workloads = self._ctx.sink.rollout(self._credential, delivered_at, self._ctx.clock())
        except SinkError as exc:
            raise _StepFailedError(Step.RETIRE, f"consumers' restart: {exc}") from exc
        self._log_rollout(workloads)
        state = rollout_state(workloads)
        if state is RolloutState.STALLED:
            self._tally.stalled = True
            raise _StepFailedError(Step.RETIRE, "a consumer's restart stalled; the old key stays")
        if state is RolloutState.WAITING:
            self._log.info("rotation.deferred", reason="rollout-waiting")
        return state is RolloutState.READY

    def _start_rollout(self, record: SinkRecord) -> bool:
        """Restart the consumers after a delivery; True when they are all ready already."""
        try:
            workloads = self._ctx.sink.rollout(
                self._credential, record.delivered_at or self._ctx.clock(), self._ctx.clock()
            )
        except SinkError as exc:
            # The delivery stands; the retire waits until a later pass sees the restarts done.
            self._log.error("rollout.failed", error=str(exc))
            return False
        self._log_rollout(workloads)
        return rollout_state(workloads) is RolloutState.READY

    def _log_rollout(self, workloads: Sequence[WorkloadRollout]) -> None:
        for w in workloads:
            if w.started:
                self._log.info("rollout.started", kind=w.kind, name=w.name)
            if w.state is RolloutState.READY:
                self._log.info("rollout.completed", kind=w.kind, name=w.name)
            elif w.state is RolloutState.STALLED:
                self._log.error("rollout.stalled", kind=w.kind, name=w.name)

    def _revoke(self, key: ApiKey, step: Step) -> None:
        """Revoke ``key`` by id; the workspace's closing list confirms it is gone."""
        if key.base_name != self._credential:  # metadata pointing at another credential's key
            raise _StepFailedError(step, f"refusing to revoke key {key.id}: not of this credential")
        try:
            self._ctx.provider.revoke_key(key.id)
        except (ApiNotFoundError, ApiRequestError):
            pass  # perhaps already gone: the closing list decides
        except ApiError as exc:
            raise _StepFailedError(step, str(exc)) from exc
        self._tally.revoked.append(key.id)

    def _write_record(self, record: SinkRecord, step: Step) -> None:
        state = self._require_state()
        try:
            self._ctx.sink.write_record(self._credential, record, expected_version=state.version)
            self._state = self._ctx.sink.read(self._credential)
        except SinkError as exc:
            raise _StepFailedError(step, str(exc)) from exc
        if self._state.record != record:
            raise _StepFailedError(step, "read-back: the metadata is not what was written")

    def _require_state(self) -> SinkState:
        if self._state is None:  # a blocked view never reaches an action that needs it
            raise _StepFailedError(Step.RECONCILE, "the sink's state is unknown")
        return self._state

    def _key(self, key_id: str | None) -> ApiKey | None:
        view = self._view
        for key in (view.current, view.previous, view.pending, *view.orphans):
            if key is not None and key.id == key_id:
                return key
        return None

    def _fail(self, step: Step, error: str) -> None:
        t = self._tally
        t.outcome = Outcome.FAILED
        t.failed_step = step
        t.error = error
        self._log.error("rotation.failed", step=str(step), error=error)
        self._record_step("rotation.failed", None, f"{step}: {error}")

    def _record_step(self, event: str, key_id: str | None, detail: str = "") -> None:
        self._ctx.steps.append(StepRecord(self._ctx.name, self._credential, event, key_id, detail))


def expired_or_gone(key_id: str, keys: Sequence[ApiKey], now: datetime) -> bool:
    """Whether a revoked key is confirmed gone: not listed, or listed but already expired (an
    expired key no longer works, whether or not the API still lists it)."""
    return not any(k.id == key_id and utc(k.expires) > utc(now) for k in keys)


__all__ = [
    "TRANSITIONS",
    "CredentialResult",
    "CredentialWork",
    "IllegalTransitionError",
    "KeyProvider",
    "Outcome",
    "Rotation",
    "RotationConfig",
    "State",
    "Step",
    "StepRecord",
    "WorkspaceContext",
    "expired_or_gone",
]
