"""One credential's work in a pass: its planned actions executed in order, the rotation as an
explicit state machine, an immutable result.

The states of a rotation and the only transitions allowed between them are drawn and held in
:mod:`rotator.states` (``TRANSITIONS``).

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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from rotator.delivery import DeliveryError, TwoPhaseDelivery
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
from rotator.sinks.base import RolloutState, Sink, SinkState, rollout_state
from rotator.states import TRANSITIONS, IllegalTransitionError, State


class KeyProvider(Protocol):
    """What a pass needs of the ProjectManager API (``rotator.client`` implements it)."""

    def list_keys(self) -> Sequence[ApiKey]: ...
    def create_key(self, token_name: str) -> NewKey: ...
    def revoke_key(self, key_id: str) -> None: ...
    def me(self, credential: Secret | None = None) -> Identity: ...


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


class Step(StrEnum):
    """Where a credential's work failed (``rotation.failed`` ``step``)."""

    RECONCILE = "reconcile"
    CREATE = "create"
    VERIFY = "verify"
    DELIVER = "deliver"
    RETIRE = "retire"


class Skip(StrEnum):
    """Why a rotation was not started (``CredentialResult.skipped``)."""

    #: ROTATOR_MAX_ROTATIONS_PER_PASS went to more urgent rotations (the plan's allocation).
    BUDGET = "budget"
    #: The workspace's circuit breaker tripped.
    BREAKER = "breaker"
    #: A stop was asked for (SIGTERM).
    STOPPED = "stopped"
    #: The workspace's lock was lost.
    LOCK_LOST = "lock-lost"
    #: A retire before it waits for consumers' restarts: its record must stay.
    ROLLOUT_WAITING = "rollout-waiting"


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
    skipped: Skip | None = None
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
    skipped: Skip | None = None
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


class _CredentialSteps:
    """The steps one credential's work is made of, and what they share (its view, what the sink
    was last read to hold, its tally): verify, deliver, roll back, revoke, write a record and
    read it back, ask the consumers and the own key's source. :class:`CredentialWork` puts
    them in the order of the planned actions."""

    def __init__(
        self,
        ctx: WorkspaceContext,
        view: CredentialView,
        actions: Sequence[PlannedAction],
        *,
        before_create: Callable[[], Skip | None] = lambda: None,
        own_key_source: Callable[[], Secret] | None = None,
    ) -> None:
        self._ctx = ctx
        self._own_key_source = own_key_source
        self._view = view
        self._actions = actions
        self._before_create = before_create
        self._credential = view.credential
        self._log = ctx.log.bind(credential=view.credential)
        self._sink_kind = ctx.sink.kind_of(view.credential)
        self._consumers = Consumers(ctx.sink, view.credential, ctx.clock, self._log)
        self._tally = _Tally()
        self._state: SinkState | None = view.state
        self._current: ApiKey | None = view.current
        #: A retire waited for consumers' restarts: no rotation may replace its record now.
        self._retire_deferred = False
        #: This pass's rotation, delivered: a grace-0 retire that follows completes it.
        self._machine: Rotation | None = None

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
        """Two-phase delivery (rotator.delivery); a failure is this rotation's ``deliver``."""
        delivery = TwoPhaseDelivery(
            self._ctx.sink, self._credential, machine,
            rollback=lambda key: self._rollback(machine, key),
            clock=self._ctx.clock, grace=self._ctx.config.grace,
        )  # fmt: skip
        try:
            record, self._state = delivery.deliver(state, new, old)
        except DeliveryError as exc:
            raise _StepFailedError(Step.DELIVER, str(exc)) from exc
        return record

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
        reason = own_key_switch_problem(
            self._own_key_source, record, self._ctx.provider, self._ctx.identity
        )
        if reason is None:
            return True
        self._tally.own_key_waiting = True
        self._log.warning("self.waiting", key_id=record.key_id, reason=reason)
        return False

    def _consumers_ready(self, record: SinkRecord) -> bool:
        """Whether every consumer runs with the delivery of ``record`` (else the previous key
        stays: ``rollout.stalled`` past the deadline fails the credential)."""
        try:
            state = self._consumers.state_after(record)
        except SinkError as exc:
            raise _StepFailedError(Step.RETIRE, f"consumers' restart: {exc}") from exc
        if state is RolloutState.STALLED:
            self._tally.stalled = True
            raise _StepFailedError(Step.RETIRE, "a consumer's restart stalled; the old key stays")
        if state is RolloutState.WAITING:
            self._log.info("rotation.deferred", reason="rollout-waiting")
        return state is RolloutState.READY

    def _start_rollout(self, record: SinkRecord) -> bool:
        """Restart the consumers after a delivery; True when they are all ready already."""
        try:
            return self._consumers.state_after(record) is RolloutState.READY
        except SinkError as exc:
            # The delivery stands; the retire waits until a later pass sees the restarts done.
            self._log.error("rollout.failed", error=str(exc))
            return False

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

    def _catch_up(self, state: SinkState) -> None:
        """Copy the credential's key to the targets that lag behind, then read them all again."""
        sink = self._ctx.sink
        try:
            sink.catch_up(self._credential, state)
            self._state = sink.read(self._credential)
        except SinkError as exc:
            raise _StepFailedError(Step.DELIVER, f"bringing a target up to date: {exc}") from exc
        self._log.info("rotation.caught_up", targets=list(state.lagging))
        self._ctx.checkpoint("caught-up", self._credential)

    def _write_record(self, record: SinkRecord, step: Step, *, lagging_ok: bool = False) -> None:
        state = self._require_state()
        try:
            self._ctx.sink.write_record(self._credential, record, expected_version=state.version)
            self._state = self._ctx.sink.read(self._credential)
        except SinkError as exc:
            raise _StepFailedError(step, str(exc)) from exc
        if self._state.record != record or (self._state.lagging and not lagging_ok):
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


class CredentialWork(_CredentialSteps):
    """Executes the planned actions of one credential, in order, and returns its result.

    ``before_create`` is asked just before a create: it returns why the rotation must not start
    (the breaker tripped, the lock was lost, a stop was asked for) or None.

    ``own_key_source`` is given for the rotator's own credential: it reads the place the process
    takes its credential from (ROTATOR_API_KEY_FILE) anew. The previous own key is revoked only
    once that source holds the key the sink holds now and ``me`` answered with it, whatever the
    grace period says, so that a sink target the rotator does not read leaves two working keys,
    never none.
    """

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
        """The sink holds the pending key: make it current; its grace starts now. With targets
        that lag behind, they get the key first (copied from a target that holds it)."""
        state = self._require_state()
        if state.lagging:
            self._catch_up(state)
            state = self._require_state()
        record = state.record
        now = self._ctx.clock()
        if record is not None and record.pending_key_id is None and record.key_id is not None:
            # Every target holds the current key now: its grace starts again from here.
            finished = replace(
                record, delivered_at=now, retire_previous_after=now + self._ctx.config.grace
            )
            self._write_record(finished, Step.DELIVER)
            self._log.info(
                "rotation.delivered", key_id=record.key_id, sink=self._sink_kind,
                recovered=True, caught_up=list(state.lagging),
            )  # fmt: skip
            self._record_step("rotation.delivered", record.key_id, "targets caught up")
            self._start_rollout(finished)
            self._ctx.checkpoint("finished-delivery", self._credential)
            return
        if record is None or record.pending_key_id is None:
            raise _StepFailedError(Step.RECONCILE, "nothing is pending any more")
        pending = self._view.pending
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
            "rotation.delivered", key_id=record.pending_key_id, sink=self._sink_kind,
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
        if record.previous_key_id != key.id:
            # The key it was planned to follow never came (its rotation was skipped): the key
            # is still the one the sink holds, or no longer the one it replaced.
            return
        if not self._own_key_switched(record):
            self._retire_deferred = True
            return
        if not self._ctx.config.emergency and not self._consumers_ready(record):
            self._retire_deferred = True
            return
        machine, self._machine = self._machine, None
        if machine is not None:
            # The retire that completes this pass's rotation (grace 0).
            try:
                self._revoke(key, Step.RETIRE)
            except _StepFailedError:
                machine.enter(State.FAILED)
                raise
            machine.enter(State.REVOKED, key.id, detail=action.reason.replace("-", " "))
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
                # Every target gets the record without the pending key; one that lags behind
                # (it holds no secret, or another) is brought up to date by the next action.
                self._write_record(record.without_pending(), Step.RECONCILE, lagging_ok=True)
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
        reason = Skip.ROLLOUT_WAITING if self._retire_deferred else self._before_create()
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
        machine.enter(State.DELIVERED, new.key.id, sink=self._sink_kind)
        self._current = new.key
        self._tally.outcome = Outcome.ROTATED
        self._machine = machine
        self._start_rollout(delivered)


class Consumers:
    """The programs reading one credential, as its sink restarts them (Kubernetes workloads;
    none elsewhere): each call restarts those not yet restarted since the delivery of a record,
    logs ``rollout.*``, and says where they are as one state."""

    def __init__(
        self,
        sink: Sink,
        credential: str,
        clock: Callable[[], datetime],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._sink = sink
        self._credential = credential
        self._clock = clock
        self._log = log

    def state_after(self, record: SinkRecord) -> RolloutState:
        """Restart what must be, for the delivery of ``record``; ``SinkError`` if the sink
        could not be asked."""
        now = self._clock()
        workloads = self._sink.rollout(self._credential, record.delivered_at or now, now)
        for w in workloads:
            if w.started:
                self._log.info("rollout.started", kind=w.kind, name=w.name)
            if w.state is RolloutState.READY:
                self._log.info("rollout.completed", kind=w.kind, name=w.name)
            elif w.state is RolloutState.STALLED:
                self._log.error("rollout.stalled", kind=w.kind, name=w.name)
        return rollout_state(workloads)


def own_key_switch_problem(
    source: Callable[[], Secret], record: SinkRecord, provider: KeyProvider, identity: Identity
) -> str | None:
    """Why the process does not run on the own key ``record`` names yet, or None: its
    credential source must hold that key (by hash) and the key must answer ``me`` here."""
    try:
        held = source()
    except RotatorError:
        return "the credential source cannot be read"
    if record.secret_sha256 is None or held.sha256() != record.secret_sha256:
        return "the credential source does not hold the new key yet"
    try:
        answered = provider.me(held)
    except ApiError:
        return "the credential source's key does not answer yet"
    if answered.workspace_id != identity.workspace_id:
        return "the credential source's key answers for another workspace"
    return None


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
    "Skip",
    "State",
    "Step",
    "StepRecord",
    "WorkspaceContext",
    "expired_or_gone",
]
