"""One rotation pass: reconcile, plan, rotate each credential, aggregate failures.

This is the only place that decides what to change. It reads state from two places only, the
provider's key list and the sink's metadata (design.md, "Where state lives"), so a pass that
died anywhere is settled by the next one. The steps of one credential::

    settle pending delivery ─▶ retire previous (grace over) ─▶ revoke orphans ─▶ rotate if due
    rotate: create ─▶ verify ─▶ deliver (pending, secret, current, read back) ─▶ retire

Safety rules enforced here (the invariants of design.md):

- a previous key is revoked only after its replacement was verified, delivered and read back;
- a new key is rolled back only when a read-back shows the sink does not hold it; when the
  sink's state is unknown nothing is revoked and the pending record lets the next pass decide;
- a key a person made is never revoked unless the sink's metadata names it as the previous key
  of this very credential; rotator-made keys no sink holds are revoked as orphans only when the
  credential has metadata and the key is older than the orphan minimum age;
- one credential's failure never stops the others; a workspace whose rotations keep failing trips
  its circuit breaker and creates no more keys in this pass.

It knows nothing of settings, environment variables, HTTP or file formats: the CLI wires a
:class:`KeyProvider` (the API client) and a :class:`~rotator.sinks.base.Sink` per workspace.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
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
    LockHeldError,
    RotatorError,
    SinkError,
)
from rotator.logging import get_logger
from rotator.models import (
    ApiKey,
    Decision,
    Identity,
    NewKey,
    Role,
    Secret,
    SinkRecord,
    rotator_created_at,
    rotator_key_name,
    utc,
)
from rotator.policy import RotationPolicy, decide, is_managed, missing, urgency
from rotator.sinks.base import Sink


class KeyProvider(Protocol):
    """What the engine needs of the ProjectManager API (``rotator.client`` implements it)."""

    def list_keys(self) -> list[ApiKey]: ...
    def create_key(self, token_name: str) -> NewKey: ...
    def revoke_key(self, key_id: str) -> None: ...
    def me(self, credential: Secret | None = None) -> Identity: ...


@dataclass(frozen=True)
class EngineConfig:
    """The settings a pass obeys, as plain values (built by the CLI from Settings)."""

    policy: RotationPolicy
    grace: timedelta = timedelta(hours=24)
    orphan_min_age: timedelta = timedelta(minutes=10)
    dry_run: bool = False
    max_failure_ratio: float = 0.5
    max_rotations_per_pass: int = 50
    #: ``me`` with a new key is tried this often: a new key may take a moment to propagate.
    verify_attempts: int = 5
    verify_first_wait_seconds: float = 0.5


@dataclass
class Workspace:
    """One workspace: its label, the API client holding its own credential, and its sink."""

    name: str
    provider: KeyProvider
    sink: Sink
    expected_workspace_id: str | None = None


class Action(StrEnum):
    """What a pass would do (``plan --json`` ``action``)."""

    ROTATE = "rotate"
    RETIRE = "retire"
    REVOKE_ORPHAN = "revoke-orphan"
    FINISH_DELIVERY = "finish-delivery"
    BLOCKED = "blocked"


class Step(StrEnum):
    """Where a credential's rotation failed (``rotation.failed`` ``step``)."""

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
class PlannedAction:
    workspace: str
    credential: str
    key_id: str | None
    action: Action
    reason: str
    days_left: float | None


@dataclass(frozen=True)
class KeyStatus:
    """One listed key as ``status`` shows it."""

    workspace: str
    name: str
    credential: str
    key_id: str
    expires: datetime
    days_left: float
    age_days: float
    managed: bool
    due: bool
    reason: str
    role: Role


@dataclass
class StepRecord:
    """One thing a pass did, for people (``rotator demo``) and tests; never a secret."""

    workspace: str
    credential: str
    event: str
    key_id: str | None = None
    detail: str = ""


@dataclass
class WorkspaceReport:
    name: str
    usable: bool = True
    locked: bool = False
    breaker_tripped: bool = False
    error: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    inventory: list[KeyStatus] = field(default_factory=list)
    #: Credentials a forced rotation named that this workspace does not manage.
    not_found: list[str] = field(default_factory=list)
    rolled_back: int = 0

    @property
    def succeeded(self) -> bool:
        """The pass left nothing undone in this workspace."""
        return (
            self.usable
            and not self.locked
            and not self.breaker_tripped
            and Outcome.FAILED not in self.outcomes.values()
        )


@dataclass
class PassReport:
    """The result of one pass over every workspace."""

    run_id: str
    started_at: datetime
    duration_s: float = 0.0
    workspaces: list[WorkspaceReport] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    rotations_succeeded: int = 0
    rotations_failed: int = 0
    stopped_early: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(list(w.outcomes.values()).count(outcome) for w in self.workspaces)

    @property
    def exit_code(self) -> int:
        """0 all done, 1 something left undone, 3 no workspace could be used (contract.md)."""
        if self.workspaces and not any(w.usable for w in self.workspaces):
            return 3
        if self.stopped_early or not all(w.succeeded for w in self.workspaces):
            return 1
        return 0


class _StepFailedError(RotatorError):
    """A credential's step failed; the credential is left safe (internal control flow)."""

    def __init__(self, step: Step, error: str) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


@dataclass
class CredentialView:
    """A credential's state, reconciled from the provider's keys and the sink's metadata."""

    credential: str
    record: SinkRecord | None
    current: ApiKey | None = None
    previous: ApiKey | None = None
    pending: ApiKey | None = None
    #: True/False once the sink's hash was compared with the pending hash; None: nothing pending.
    pending_delivered: bool | None = None
    orphans: list[ApiKey] = field(default_factory=list)
    young_orphans: list[ApiKey] = field(default_factory=list)
    unknown: list[ApiKey] = field(default_factory=list)
    extras: list[ApiKey] = field(default_factory=list)
    decision: Decision | None = None

    def previous_retire_due(self, now: datetime) -> bool:
        after = self.record.retire_previous_after if self.record else None
        return self.previous is not None and (after is None or utc(after) <= utc(now))

    def roles(self) -> dict[str, Role]:
        roles: dict[str, Role] = {}
        for keys, role in (
            (self.orphans + self.young_orphans, Role.ORPHAN),
            (self.unknown, Role.UNKNOWN),
            (self.extras, Role.EXTRA),
            ([self.pending] if self.pending else [], Role.PENDING),
            ([self.previous] if self.previous else [], Role.PREVIOUS),
            ([self.current] if self.current else [], Role.CURRENT),
        ):
            roles.update({k.id: role for k in keys})
        return roles


def reconcile(
    credential: str,
    keys: Sequence[ApiKey],
    record: SinkRecord | None,
    stored_sha256: str | None,
    now: datetime,
    config: EngineConfig,
) -> CredentialView:
    """Assign every key of ``credential`` its role (design.md, "Where state lives"). Pure."""
    view = CredentialView(credential=credential, record=record)
    if record is None:
        # No metadata: the newest key a person made is current (else the newest rotator-made
        # one); nothing proves any other rotator-made key was never delivered, so none is an
        # orphan: they are "unknown" and left alone.
        people = [k for k in keys if not k.made_by_rotator]
        made = [k for k in keys if k.made_by_rotator]
        pool = people or made
        view.current = max(pool, key=lambda k: k.expires) if pool else None
        view.unknown = [k for k in made if k is not view.current]
        view.extras = [k for k in people if k is not view.current]
        view.decision = decide(view.current, now, config.policy) if view.current else None
        return view

    by_id = {k.id: k for k in keys}
    view.current = by_id.get(record.key_id) if record.key_id else None
    view.previous = by_id.get(record.previous_key_id) if record.previous_key_id else None
    if record.pending_key_id is not None:
        view.pending = by_id.get(record.pending_key_id)
        view.pending_delivered = (
            stored_sha256 is not None and stored_sha256 == record.pending_secret_sha256
        )
    held = {record.key_id, record.previous_key_id, record.pending_key_id}
    for key in keys:
        if key.id in held:
            continue
        created = rotator_created_at(key.name)
        if created is None:
            view.extras.append(key)
        elif utc(now) - created >= config.orphan_min_age:
            view.orphans.append(key)
        else:
            view.young_orphans.append(key)
    if view.current is not None:
        view.decision = decide(view.current, now, config.policy)
    elif record.key_id is not None:
        view.decision = missing()
    return view


@dataclass
class _WorkspaceRun:
    """Mutable state of one workspace during a pass."""

    workspace: Workspace
    report: WorkspaceReport
    identity: Identity
    keys: list[ApiKey]
    log: structlog.typing.FilteringBoundLogger
    attempts: int = 0
    failures: int = 0


class Engine:
    """Runs passes. ``clock`` gives ``now`` (tests pass the emulator's clock)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        checkpoint: Callable[[str, str], None] | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        # Called at each step boundary with (step, credential): lets tests abort a pass at an
        # exact point, as a crash would, without touching the engine's internals.
        self._checkpoint = checkpoint or (lambda _step, _credential: None)
        self._stop = stop_requested or threading.Event()
        self._log = get_logger()

    # ----------------------------------------------------------------- read-only views

    def inventory(self, workspaces: Sequence[Workspace]) -> list[KeyStatus]:
        """Every key of every workspace with its role (``rotator status``). Changes nothing."""
        statuses: list[KeyStatus] = []
        for ws in workspaces:
            keys = ws.provider.list_keys()
            statuses.extend(self._statuses(ws, keys, self._read_views(ws, keys)))
        return statuses

    def plan(self, workspaces: Sequence[Workspace]) -> list[PlannedAction]:
        """What a pass would do now (``rotator plan``). Changes nothing, takes no lock."""
        actions: list[PlannedAction] = []
        now = self._clock()
        for ws in workspaces:
            keys = ws.provider.list_keys()
            for credential, view in self._read_views(ws, keys).items():
                actions.extend(self._planned(ws.name, credential, view, now))
        return actions

    def _read_views(
        self, ws: Workspace, keys: Sequence[ApiKey]
    ) -> dict[str, CredentialView | SinkError]:
        views: dict[str, CredentialView | SinkError] = {}
        credentials = self._credentials(keys)
        problems = ws.sink.check_names(credentials)
        for credential in credentials:
            if credential in problems:
                views[credential] = SinkError(problems[credential])
                continue
            try:
                views[credential] = self._view(ws, keys, credential)
            except SinkError as exc:
                views[credential] = exc
        return views

    def _credentials(self, keys: Sequence[ApiKey]) -> list[str]:
        return sorted({k.base_name for k in keys if is_managed(k.base_name, self._config.policy)})

    def _view(self, ws: Workspace, keys: Sequence[ApiKey], credential: str) -> CredentialView:
        record = ws.sink.read_record(credential)
        stored = ws.sink.stored_sha256(credential) if record and record.has_pending else None
        own = [k for k in keys if k.base_name == credential]
        return reconcile(credential, own, record, stored, self._clock(), self._config)

    def _planned(
        self, workspace: str, credential: str, view: CredentialView | SinkError, now: datetime
    ) -> list[PlannedAction]:
        if isinstance(view, SinkError):
            return [PlannedAction(workspace, credential, None, Action.BLOCKED, str(view), None)]
        out: list[PlannedAction] = []
        record = view.record
        if record is not None and record.pending_key_id is not None:
            if view.pending_delivered:
                out.append(
                    PlannedAction(
                        workspace,
                        credential,
                        record.pending_key_id,
                        Action.FINISH_DELIVERY,
                        "pending-delivered",
                        None,
                    )
                )
            elif view.pending is not None:
                out.append(
                    PlannedAction(
                        workspace,
                        credential,
                        view.pending.id,
                        Action.REVOKE_ORPHAN,
                        "pending-not-delivered",
                        None,
                    )
                )
        if view.previous is not None and view.previous_retire_due(now):
            out.append(
                PlannedAction(
                    workspace, credential, view.previous.id, Action.RETIRE, "grace-over", None
                )
            )
        out.extend(
            PlannedAction(workspace, credential, k.id, Action.REVOKE_ORPHAN, "orphan", None)
            for k in view.orphans
        )
        in_grace = view.previous is not None and not view.previous_retire_due(now)
        if view.decision is not None and view.decision.due and not in_grace:
            key_id = view.current.id if view.current else (record.key_id if record else None)
            out.append(
                PlannedAction(
                    workspace,
                    credential,
                    key_id,
                    Action.ROTATE,
                    str(view.decision.reason),
                    round(view.decision.days_left, 3),
                )
            )
        return out

    def _statuses(
        self,
        ws: Workspace,
        keys: Sequence[ApiKey],
        views: dict[str, CredentialView | SinkError],
    ) -> list[KeyStatus]:
        now = self._clock()
        out: list[KeyStatus] = []
        for key in sorted(keys, key=lambda k: (k.base_name, k.expires)):
            decision = decide(key, now, self._config.policy)
            view = views.get(key.base_name)
            managed = view is not None
            role = Role.UNMANAGED
            due, reason = False, "unmanaged"
            if isinstance(view, CredentialView):
                role = view.roles().get(key.id, Role.UNKNOWN)
                if role is Role.CURRENT and view.decision is not None:
                    due, reason = view.decision.due, str(view.decision.reason)
                else:
                    reason = str(role)
            elif isinstance(view, SinkError):
                role, reason = Role.UNKNOWN, "blocked"
            out.append(
                KeyStatus(
                    workspace=ws.name,
                    name=key.name,
                    credential=key.base_name,
                    key_id=key.id,
                    expires=key.expires,
                    days_left=round(decision.days_left, 3),
                    age_days=round(decision.age_days, 3),
                    managed=managed,
                    due=due,
                    reason=reason,
                    role=role,
                )
            )
        return out

    # ----------------------------------------------------------------------- the pass

    def run_pass(
        self, workspaces: Sequence[Workspace], *, forced: Collection[str] = ()
    ) -> PassReport:
        """One pass over ``workspaces``.

        ``forced`` names credentials to rotate at once whatever the policy (``rotator rotate
        --now``, a leaked key): the pass then touches only those, and first retires a previous
        key still in its grace period. Only managed credentials can be forced (invariant 6).
        """
        run_id = uuid.uuid4().hex
        started = time.monotonic()
        report = PassReport(run_id=run_id, started_at=self._clock())
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            self._log.info(
                "pass.started",
                dry_run=self._config.dry_run,
                workspaces=[w.name for w in workspaces],
            )
            budget = [self._config.max_rotations_per_pass]
            for ws in workspaces:
                if self._stop.is_set():
                    report.stopped_early = True
                    break
                report.workspaces.append(self._run_workspace(ws, report, budget, set(forced)))
            report.duration_s = round(time.monotonic() - started, 3)
            self._log.info(
                "pass.finished",
                rotated=report.count(Outcome.ROTATED),
                failed=report.count(Outcome.FAILED),
                unchanged=report.count(Outcome.UNCHANGED),
                duration_s=report.duration_s,
                exit_code=report.exit_code,
            )
        return report

    def _run_workspace(
        self, ws: Workspace, report: PassReport, budget: list[int], forced: set[str]
    ) -> WorkspaceReport:
        wreport = WorkspaceReport(name=ws.name)
        log = self._log.bind(workspace=ws.name)
        lock = _no_lock() if self._config.dry_run else ws.sink.lock()
        try:
            with lock:
                try:
                    identity = ws.provider.me()
                    if (
                        ws.expected_workspace_id
                        and identity.workspace_id != ws.expected_workspace_id
                    ):
                        raise ApiAuthError(
                            "the credential belongs to another workspace", endpoint="me"
                        )
                    keys = ws.provider.list_keys()
                except ApiError as exc:
                    wreport.usable = False
                    wreport.error = str(exc)
                    log.error("workspace.unusable", error=str(exc))
                    return wreport
                run = _WorkspaceRun(ws, wreport, identity, keys, log)
                self._run_credentials(run, report, budget, forced)
                views = self._read_views(ws, run.keys)
                wreport.inventory = self._statuses(ws, run.keys, views)
        except LockHeldError as exc:
            wreport.locked = True
            wreport.error = str(exc)
            log.warning("pass.locked", error=str(exc))
        except SinkError as exc:  # the lock itself could not be taken or created
            wreport.usable = False
            wreport.error = str(exc)
            log.error("workspace.unusable", error=str(exc))
        return wreport

    def _run_credentials(
        self, run: _WorkspaceRun, report: PassReport, budget: list[int], forced: set[str]
    ) -> None:
        credentials = self._credentials(run.keys)
        problems = run.workspace.sink.check_names(credentials)
        if forced:
            run.report.not_found = sorted(forced.difference(credentials))
            credentials = [c for c in credentials if c in forced]
        prepared: list[tuple[str, CredentialView | None]] = []
        for credential in credentials:
            clog = run.log.bind(credential=credential)
            if credential in problems:
                self._fail(run, report, credential, Step.RECONCILE, problems[credential], clog)
                prepared.append((credential, None))
                continue
            try:
                view = self._settle(run, report, credential, clog, retire_now=credential in forced)
            except _StepFailedError as exc:
                self._fail(run, report, credential, exc.step, exc.error, clog)
                prepared.append((credential, None))
                continue
            prepared.append((credential, view))
        # Rotate the most urgent first, so a budget or a breaker defers the least urgent.
        ordered = sorted(
            prepared,
            key=lambda cv: urgency(cv[1].decision) if cv[1] and cv[1].decision else (2, 0.0),
        )
        for credential, settled in ordered:
            if settled is None:
                continue
            if self._stop.is_set():
                report.stopped_early = True
                return
            clog = run.log.bind(credential=credential)
            self._rotate_if_due(
                run, report, credential, settled, budget, credential in forced, clog
            )

    # ------------------------------------------------------------ settle one credential

    def _settle(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        clog: structlog.typing.FilteringBoundLogger,
        *,
        retire_now: bool = False,
    ) -> CredentialView:
        """Finish or undo an interrupted delivery, retire a previous key, revoke orphans.

        ``retire_now`` retires the previous key even inside its grace period (a forced rotation:
        a credential has at most one previous key).
        """
        sink = run.workspace.sink
        dry = self._config.dry_run
        for _ in range(3):
            try:
                view = self._view(run.workspace, run.keys, credential)
            except SinkError as exc:  # unreadable metadata included: no action on it
                raise _StepFailedError(Step.RECONCILE, str(exc)) from exc
            record = view.record
            if record is None or record.pending_key_id is None or dry:
                break
            now = self._clock()
            try:
                if view.pending_delivered:
                    pending = view.pending
                    sink.write_record(
                        credential,
                        SinkRecord(
                            key_id=record.pending_key_id,
                            key_name=pending.name if pending else None,
                            expires=pending.expires if pending else None,
                            delivered_at=now,
                            secret_sha256=record.pending_secret_sha256,
                            previous_key_id=record.key_id,
                            retire_previous_after=now + self._config.grace,
                        ),
                    )
                    clog.info(
                        "rotation.delivered",
                        key_id=record.pending_key_id,
                        sink=sink.kind,
                        recovered=True,
                    )
                    self._step(
                        report,
                        run,
                        credential,
                        "rotation.delivered",
                        record.pending_key_id,
                        "finished an interrupted delivery",
                    )
                    continue
                if view.pending is not None:
                    # The sink does not hold it (hash differs): it was never delivered.
                    self._revoke(run, credential, view.pending, Step.RECONCILE)
                    clog.info("orphan.revoked", key_id=view.pending.id, pending=True)
                    self._step(
                        report,
                        run,
                        credential,
                        "orphan.revoked",
                        view.pending.id,
                        "never delivered",
                    )
                sink.write_record(credential, record.without_pending())
            except SinkError as exc:
                raise _StepFailedError(Step.RECONCILE, str(exc)) from exc
        if dry:
            return view
        now = self._clock()
        if view.previous is not None and (retire_now or view.previous_retire_due(now)):
            self._revoke(run, credential, view.previous, Step.RETIRE)
            clog.info("rotation.revoked", key_id=view.previous.id)
            self._step(
                report, run, credential, "rotation.revoked", view.previous.id, "grace period over"
            )
        for orphan in view.orphans:
            try:
                self._revoke(run, credential, orphan, Step.RECONCILE)
            except _StepFailedError as exc:
                self._fail(run, report, credential, exc.step, exc.error, clog)
                continue
            clog.info("orphan.revoked", key_id=orphan.id)
            self._step(report, run, credential, "orphan.revoked", orphan.id, "no sink holds it")
        if view.unknown:
            clog.warning(
                "key.unknown",
                key_ids=[k.id for k in view.unknown],
                detail="rotator-made keys, but the sink holds no metadata to judge them",
            )
        try:
            return self._view(run.workspace, run.keys, credential)
        except SinkError as exc:
            raise _StepFailedError(Step.RECONCILE, str(exc)) from exc

    # ------------------------------------------------------------------ rotate one

    def _rotate_if_due(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        view: CredentialView,
        budget: list[int],
        forced: bool,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        now = self._clock()
        decision = view.decision
        if forced and view.current is not None:
            decision = decide(view.current, now, self._config.policy, forced=True)
        if decision is None:
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        clog.info(
            "key.evaluated",
            key_id=view.current.id if view.current else None,
            due=decision.due,
            reason=str(decision.reason),
            days_left=round(decision.days_left, 3),
        )
        if not decision.due:
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        if view.previous is not None and not forced:
            # Its previous key is still in its grace period: one rotation at a time.
            clog.info("rotation.deferred", reason="previous-in-grace", key_id=view.previous.id)
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        if self._config.dry_run:
            clog.info("rotation.planned", reason=str(decision.reason), dry_run=True)
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        if run.report.breaker_tripped:
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        if budget[0] <= 0:
            clog.warning("budget.exhausted", limit=self._config.max_rotations_per_pass)
            run.report.outcomes.setdefault(credential, Outcome.UNCHANGED)
            return
        budget[0] -= 1
        run.attempts += 1
        try:
            self._rotate(run, report, credential, view, clog)
        except _StepFailedError as exc:
            run.failures += 1
            report.rotations_failed += 1
            self._fail(run, report, credential, exc.step, exc.error, clog)
            self._check_breaker(run, clog)
            return
        report.rotations_succeeded += 1
        run.report.outcomes[credential] = Outcome.ROTATED

    def _check_breaker(
        self, run: _WorkspaceRun, clog: structlog.typing.FilteringBoundLogger
    ) -> None:
        if run.attempts >= 3 and run.failures / run.attempts > self._config.max_failure_ratio:
            run.report.breaker_tripped = True
            clog.error(
                "breaker.tripped",
                attempts=run.attempts,
                failures=run.failures,
                max_failure_ratio=self._config.max_failure_ratio,
            )

    def _rotate(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        view: CredentialView,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        ws = run.workspace
        old = view.current
        now = self._clock()
        try:
            new = ws.provider.create_key(rotator_key_name(credential, now))
        except ApiError as exc:
            # A create whose answer was lost may still have made a key: it carries the rotator's
            # marker and no sink holds it, so a later pass revokes it as an orphan.
            raise _StepFailedError(Step.CREATE, str(exc)) from exc
        run.keys.append(new.key)
        clog.info("rotation.created", key_id=new.key.id, previous_key_id=old.id if old else None)
        self._step(report, run, credential, "rotation.created", new.key.id)
        self._checkpoint("created", credential)

        try:
            self._verify(run, new)
        except _StepFailedError:
            self._rollback(run, report, credential, new.key, clog)
            raise
        clog.info("rotation.verified", key_id=new.key.id)
        self._step(report, run, credential, "rotation.verified", new.key.id)
        self._checkpoint("verified", credential)

        self._deliver(run, report, credential, view.record, new, old, clog)
        self._checkpoint("delivered", credential)

        if self._config.grace <= timedelta(0) and old is not None:
            self._revoke(run, credential, old, Step.RETIRE)
            clog.info("rotation.revoked", key_id=old.id)
            self._step(report, run, credential, "rotation.revoked", old.id, "grace 0")
            self._checkpoint("revoked", credential)

    def _verify(self, run: _WorkspaceRun, new: NewKey) -> None:
        """``me`` with the new key answers for this workspace (retried briefly: propagation)."""
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self._config.verify_attempts),
                wait=wait_exponential(multiplier=self._config.verify_first_wait_seconds, max=8),
                retry=retry_if_exception_type(ApiAuthError),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    identity = run.workspace.provider.me(new.secret)
        except ApiError as exc:
            raise _StepFailedError(Step.VERIFY, str(exc)) from exc
        own = run.identity.workspace_id
        if own is not None and identity.workspace_id != own:
            raise _StepFailedError(Step.VERIFY, "the new key answers for another workspace")

    def _deliver(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        record: SinkRecord | None,
        new: NewKey,
        old: ApiKey | None,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Two-phase delivery: pending record, secret, current record, read back."""
        sink = run.workspace.sink
        digest = new.secret.sha256()
        # A first delivery records the key the sink is taken to hold (the reconcile rule for a
        # sink without metadata), so that a pass finishing an interrupted delivery still knows
        # which key to retire.
        base = record or (
            SinkRecord(key_id=old.id, key_name=old.name, expires=old.expires)
            if old
            else SinkRecord()
        )
        try:
            sink.write_record(credential, base.with_pending(new.key.id, digest))
        except SinkError as exc:
            # The secret was not written yet: no sink holds the new key.
            self._rollback(run, report, credential, new.key, clog)
            raise _StepFailedError(Step.DELIVER, str(exc)) from exc
        self._checkpoint("pending-recorded", credential)

        try:
            sink.write_secret(credential, new.secret)
        except SinkError as exc:
            self._after_failed_secret_write(run, report, credential, base, new, digest, clog)
            raise _StepFailedError(Step.DELIVER, str(exc)) from exc
        self._checkpoint("secret-written", credential)

        # Read the secret back before the metadata names the new key current: if the sink lost
        # the write, the old key must stay current (and is never retired).
        try:
            stored = sink.stored_sha256(credential)
        except SinkError as exc:
            raise _StepFailedError(
                Step.DELIVER, f"{exc} (the next pass settles the delivery from its hash)"
            ) from exc
        if stored != digest:
            self._after_failed_secret_write(run, report, credential, base, new, digest, clog)
            raise _StepFailedError(Step.DELIVER, "read-back: the sink does not hold the new key")

        now = self._clock()
        current = SinkRecord(
            key_id=new.key.id,
            key_name=new.key.name,
            expires=new.key.expires,
            delivered_at=now,
            secret_sha256=digest,
            previous_key_id=old.id if old else base.key_id,
            retire_previous_after=now + self._config.grace,
        )
        try:
            sink.write_record(credential, current)
            readback = sink.read_record(credential)
        except SinkError as exc:
            # The secret is in the sink; the pending record lets the next pass finish.
            raise _StepFailedError(
                Step.DELIVER, f"{exc} (the next pass finishes the delivery)"
            ) from exc
        if readback is None or readback.key_id != new.key.id:
            raise _StepFailedError(
                Step.DELIVER, "read-back: the metadata does not name the new key"
            )
        clog.info("rotation.delivered", key_id=new.key.id, sink=sink.kind)
        self._step(report, run, credential, "rotation.delivered", new.key.id, sink.describe())

    def _after_failed_secret_write(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        base: SinkRecord,
        new: NewKey,
        digest: str,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Roll back only when a read-back proves the sink does not hold the new key."""
        sink = run.workspace.sink
        try:
            stored = sink.stored_sha256(credential)
        except SinkError:
            clog.warning(
                "rotation.state_unknown",
                key_id=new.key.id,
                detail="the sink could not be read back; the next pass settles it",
            )
            return
        if stored == digest:
            clog.warning(
                "rotation.state_unknown",
                key_id=new.key.id,
                detail="the secret landed; the next pass finishes the delivery",
            )
            return
        self._rollback(run, report, credential, new.key, clog)
        # If this fails the pending fields stay; the next pass clears them (key already revoked).
        with suppress(SinkError):
            sink.write_record(credential, base)

    def _rollback(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        key: ApiKey,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        try:
            self._revoke(run, credential, key, Step.CREATE)
        except _StepFailedError as exc:
            clog.error("rotation.rollback_failed", key_id=key.id, error=exc.error)
            return
        run.report.rolled_back += 1
        clog.warning("rotation.rolled_back", key_id=key.id)
        self._step(report, run, credential, "rotation.rolled_back", key.id)

    def _revoke(self, run: _WorkspaceRun, credential: str, key: ApiKey, step: Step) -> None:
        """Revoke ``key`` by id, then list again to confirm it is gone."""
        if key.base_name != credential:  # metadata pointing at another credential's key
            raise _StepFailedError(step, f"refusing to revoke key {key.id}: not of this credential")
        provider = run.workspace.provider
        try:
            provider.revoke_key(key.id)
        except (ApiNotFoundError, ApiRequestError):
            pass  # perhaps already gone: the list below decides
        except ApiError as exc:
            raise _StepFailedError(step, str(exc)) from exc
        try:
            run.keys = provider.list_keys()
        except ApiError as exc:
            raise _StepFailedError(step, f"could not confirm the revoke: {exc}") from exc
        now = utc(self._clock())
        # An expired key no longer works, whether or not the API still lists it (unknown 1).
        if any(k.id == key.id and utc(k.expires) > now for k in run.keys):
            raise _StepFailedError(step, f"key {key.id} is still listed after its revoke")

    # ---------------------------------------------------------------------- helpers

    def _fail(
        self,
        run: _WorkspaceRun,
        report: PassReport,
        credential: str,
        step: Step,
        error: str,
        clog: structlog.typing.FilteringBoundLogger,
    ) -> None:
        run.report.outcomes[credential] = Outcome.FAILED
        clog.error("rotation.failed", step=str(step), error=error)
        self._step(report, run, credential, "rotation.failed", None, f"{step}: {error}")

    @staticmethod
    def _step(
        report: PassReport,
        run: _WorkspaceRun,
        credential: str,
        event: str,
        key_id: str | None = None,
        detail: str = "",
    ) -> None:
        report.steps.append(StepRecord(run.workspace.name, credential, event, key_id, detail))


@contextmanager
def _no_lock() -> Iterator[None]:
    yield
