"""A pass over every workspace: locks, survey (reconcile) and plan per workspace, one pool of
threads under both concurrency limits, the budget, the circuit breaker, and stop.

The work of a pass is a set of jobs, each bound to one workspace: *open* (take the lock, ask
``me``, list the keys, read what the sink holds, reconcile, plan), one job per credential (its
planned actions, :class:`~rotator.rotation.CredentialWork`), and *close* (one list confirming
every revoke of the workspace, the inventory, release the lock). A single scheduler thread
submits jobs to one thread pool: at most ``concurrency`` in flight over all workspaces and
``workspace_concurrency`` in one; a workspace's slot is taken before its job is submitted, so no
pool thread ever sits waiting for a slot, and the pool stays full while any workspace has work.
A slow or broken workspace only ever holds its own slots.

Rules held here (the plan decides what to do; the runner decides only when, and stops):

- the whole plan is settled once every workspace is open: workspaces listed twice are refused
  (their twin may be an entry of another shard, asked only ``me``), and the budget goes to
  the most urgent rotations over all of them (:func:`rotator.plan.allocate`); what it leaves
  out is logged with why, and fails the pass when it cannot wait;
- :class:`Gates`, asked just before each create: the circuit breaker (once at least 3
  rotations of a workspace were attempted and more than ROTATOR_MAX_FAILURE_RATIO of them
  failed, no new create starts there; settling, retiring and orphan revokes go on), a stop
  (SIGTERM: nothing new is submitted; jobs in flight finish, never between create and
  deliver, and every opened workspace is still closed, so its lock is released), a lost lock;
- the rotator's own credential (``self_key_name``) rotates last in its workspace, after every
  other job of that workspace finished.

A workspace moves through :class:`Phase` (new, opening, open, closing, closed) by the moves
:data:`PHASES` allows; a job is a :class:`JobKind`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog

from rotator import history_store
from rotator.errors import (
    ApiError,
    LockError,
    LockHeldError,
    SinkError,
)
from rotator.locks.base import HeldLock
from rotator.logging import get_logger
from rotator.models import ApiKey, Reason
from rotator.plan import Action, Deferral, PlannedAction, allocate, hold_revokes
from rotator.report import KeyStatus, PassReport, WorkspaceReport
from rotator.rotation import (
    CredentialResult,
    CredentialWork,
    Outcome,
    Skip,
    Step,
    StepRecord,
    WorkspaceContext,
    expired_or_gone,
)
from rotator.survey import (
    PassConfig,
    ReadOnly,
    Survey,
    Unidentified,
    Workspace,
    WorkspaceConfigError,
    declared_ids,
    duplicate_error,
    exposed_to,
    inventory,
    listed_twice,
    log_evaluations,
    never_switched,
    own_key_running_out,
    plan_and_inventory,
    plan_of,
    read_only,
    survey,
    survey_keys,
)


class JobKind(StrEnum):
    """What a job of the pool does for its workspace."""

    OPEN = "open"
    CREDENTIAL = "credential"
    CLOSE = "close"


class Phase(StrEnum):
    """Where a workspace is in a pass; :data:`PHASES` says where it may go next."""

    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


#: A workspace's allowed moves: opened (or stopped before that), then closed once.
PHASES: dict[Phase, frozenset[Phase]] = {
    Phase.NEW: frozenset({Phase.OPENING, Phase.CLOSED}),
    Phase.OPENING: frozenset({Phase.OPEN, Phase.CLOSED}),
    Phase.OPEN: frozenset({Phase.CLOSING}),
    Phase.CLOSING: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


@dataclass
class _Job:
    workspace: _WorkspaceRun
    kind: JobKind
    credential: str | None = None
    actions: tuple[PlannedAction, ...] = ()


@dataclass
class Gates:
    """The runtime gates of one workspace's creates, in one place.

    The budget and the own key's turn are settled before any job runs (the plan's
    :func:`~rotator.plan.allocate`; the scheduler holds the own key's job until the workspace's
    other jobs are done). What can still change while jobs run is asked here just before each
    create: the circuit breaker (at least 3 rotations attempted and more than
    ROTATOR_MAX_FAILURE_RATIO of them failed), a stop asked for, a lost lock. Jobs of the
    workspace share it from several threads.
    """

    max_failure_ratio: float
    stop: threading.Event
    #: The workspace's lock, once held (None: a dry run, or no lock).
    held: Callable[[], HeldLock | None]
    attempts: int = 0
    failures: int = 0
    tripped: bool = False
    _tally: threading.Lock = field(default_factory=threading.Lock)

    def before_create(self) -> Skip | None:
        """Why a create must not start now, or None."""
        if self.tripped:
            return Skip.BREAKER
        if self.stop.is_set():
            return Skip.STOPPED
        held = self.held()
        if held is not None:
            try:
                held.check()
            except LockError:
                return Skip.LOCK_LOST
        return None

    def count(self, result: CredentialResult) -> bool:
        """Count a finished rotation (in its job's thread, so the next create anywhere sees it
        at once); True when it trips the breaker."""
        if not result.attempted_rotation:
            return False
        with self._tally:
            self.attempts += 1
            self.failures += result.outcome is Outcome.FAILED
            if self.tripped or not _breaker_trips(
                self.attempts, self.failures, self.max_failure_ratio
            ):
                return False
            self.tripped = True
            return True


@dataclass
class _WorkspaceRun:
    """The scheduler's bookkeeping for one workspace; touched by the scheduler thread only,
    except ``gates`` and ``held`` which jobs use."""

    ws: Workspace
    report: WorkspaceReport
    log: structlog.typing.FilteringBoundLogger
    stack: ExitStack = field(default_factory=ExitStack)
    held: HeldLock | None = None
    found: Survey | None = None
    #: The workspace's planned actions, from its opening until the budget is handed out.
    planned: list[PlannedAction] = field(default_factory=list)
    #: Credentials the budget left out although their key expires before the next pass.
    budget_failures: dict[str, str] = field(default_factory=dict)
    queue: deque[_Job] = field(default_factory=deque)
    last: list[_Job] = field(default_factory=list)
    in_flight: int = 0
    phase: Phase = Phase.NEW
    changed: bool = False
    #: What may still stop a create once jobs run (breaker, stop, lost lock).
    gates: Gates | None = None

    @property
    def idle(self) -> bool:
        return self.in_flight == 0 and not self.queue and not self.last

    def enter(self, phase: Phase) -> None:
        if phase not in PHASES[self.phase]:
            raise RuntimeError(f"a workspace cannot go from {self.phase} to {phase}")
        self.phase = phase


class Runner:
    """Runs passes. ``clock`` gives ``now`` (tests pass the emulator's clock)."""

    def __init__(
        self,
        config: PassConfig,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        checkpoint: Callable[[str, str], None] | None = None,
        stop_requested: threading.Event | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        # Called at each step boundary with (step, credential): lets tests stop a pass at an
        # exact point, as a crash would, without touching the internals.
        self._checkpoint = checkpoint or (lambda _step, _credential: None)
        self._stop = stop_requested or threading.Event()
        self._log = get_logger()
        self._pass_started = clock()

    @property
    def config(self) -> PassConfig:
        return self._config

    # ----------------------------------------------------------------- read-only views

    def plan(self, workspaces: Sequence[Workspace]) -> ReadOnly[PlannedAction]:
        """What a pass would do now (``rotator plan``), the budget handed out over every
        workspace as a pass would. Changes nothing, takes no lock."""
        plan, _ = self.plan_and_inventory(workspaces)
        return plan

    def days_to_next_pass(self) -> float | None:
        """Days until ROTATOR_SCHEDULE next fires, or None when unknown (a rotation the budget
        leaves out whose key expires before then cannot wait)."""
        now = self._clock()
        next_pass = self._config.next_pass_at(now) if self._config.next_pass_at else None
        return None if next_pass is None else (next_pass - now) / timedelta(days=1)

    def inventory(self, workspaces: Sequence[Workspace]) -> ReadOnly[KeyStatus]:
        """Every key of every workspace with its role (``rotator status``). Changes nothing."""
        now = self._clock()
        return read_only(
            workspaces,
            lambda ws, found: inventory(ws, found, now, self._config.reconcile),
            now=now, config=self._config.reconcile, log=self._log,
        )  # fmt: skip

    def plan_and_inventory(
        self, workspaces: Sequence[Workspace]
    ) -> tuple[ReadOnly[PlannedAction], list[KeyStatus]]:
        """``plan`` and ``inventory`` from one read of each workspace (``rotator plan`` shows
        what is due now and, below it, what falls due next). Changes nothing."""
        return plan_and_inventory(
            workspaces, self._config, now=self._clock(), log=self._log,
            days_to_next_pass=self.days_to_next_pass(),
        )  # fmt: skip

    # ----------------------------------------------------------------------- the pass

    def run_pass(
        self,
        workspaces: Sequence[Workspace],
        *,
        forced: Collection[str] | None = None,
        unidentified: Sequence[Unidentified] = (),
    ) -> PassReport:
        """One pass over ``workspaces``.

        ``forced`` names credentials to rotate at once whatever the policy (``rotate --now``):
        the pass then touches only those, and first retires a previous key still in its grace
        period. Only managed credentials can be forced (invariant 6).

        ``unidentified``: entries of the workspaces file outside this pass whose ``me`` could
        not be asked (``rotate --workspace`` passes them). Like an entry of the pass that could
        not be identified, each may be one of these workspaces listed again: the pass then
        revokes nothing another sink could hold there, and fails.
        """
        run_id = uuid.uuid4().hex
        started = time.monotonic()
        report = PassReport(run_id=run_id, started_at=self._clock())
        self._pass_started = report.started_at
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            self._log.info(
                "pass.started",
                dry_run=self._config.dry_run,
                workspaces=[w.name for w in workspaces],
            )
            for entry in unidentified:
                self._log.error("workspace.twin_unchecked", other=entry.name, error=entry.why)
                report.unchecked_twins[entry.name] = entry.why
            runs = [
                _WorkspaceRun(ws, WorkspaceReport(name=ws.name), self._log.bind(workspace=ws.name))
                for ws in workspaces
            ]
            for run in runs:
                run.gates = self._gates(run)
            report.workspaces = [r.report for r in runs]
            _Scheduler(self, runs, report, forced, unidentified).run()
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

    # ------------------------------------------------------------- jobs (pool threads)

    def _open(self, run: _WorkspaceRun, forced: Collection[str] | None) -> list[PlannedAction]:
        """Take the lock, survey and plan: this workspace's actions, before the budget."""
        ws, log = run.ws, run.log
        if ws.duplicate_of:
            error = duplicate_error(ws.duplicate_of, None)
            log.error("workspace.duplicate", error=error)
            raise WorkspaceConfigError(error)
        if ws.unusable is not None:
            raise WorkspaceConfigError(ws.unusable)
        if ws.lock is not None and not self._config.dry_run:
            run.held = run.stack.enter_context(ws.lock.hold())
            ws.sink.prepare()
        now = self._clock()
        found = survey(ws, now, self._config.reconcile, log, named=forced or ())
        run.found = found
        run.report.unmatched_patterns = found.unmatched
        if found.incomplete is not None:
            run.report.failed = True
            run.report.error = found.incomplete
        log_evaluations(found, forced, log)
        if forced is not None:
            # Read because it was named, yet neither listed nor held: not managed here.
            run.report.not_found = sorted(set(forced).difference(found.views))
        return plan_of(ws, found, now, self._config, forced)

    def _credential(self, job: _Job, steps: list[StepRecord]) -> CredentialResult:
        run = job.workspace
        if run.found is None or job.credential is None:
            raise RuntimeError("a credential job before its workspace was opened")
        ctx = WorkspaceContext(
            name=run.ws.name,
            provider=run.ws.provider,
            sink=run.ws.sink,
            identity=run.found.identity,
            config=self._config.rotation,
            clock=self._clock,
            sleep=self._sleep,
            checkpoint=self._checkpoint,
            steps=steps,
            log=run.log,
        )

        gates = run.gates
        if gates is None:
            raise RuntimeError("a credential job of a workspace without its gates")
        own = job.credential == run.ws.self_key_name
        work = CredentialWork(
            ctx,
            run.found.views[job.credential],
            job.actions,
            before_create=gates.before_create,
            own_key_source=(run.ws.credential_source or never_switched) if own else None,
        )
        history = self._history_context(run, job)
        opened = history_store.open_intent(actions=job.actions, **history)
        result = work.run()
        history_store.record_job(
            keys=run.found.keys, actions=job.actions, result=result, steps=steps,
            opened=opened, **{**history, "now": self._clock()},
        )  # fmt: skip
        if gates.count(result):
            run.report.breaker_tripped = True
            run.log.error(
                "breaker.tripped", attempts=gates.attempts, failures=gates.failures,
                max_failure_ratio=self._config.max_failure_ratio,
            )  # fmt: skip
        return result

    def _history_context(self, run: _WorkspaceRun, job: _Job) -> dict[str, Any]:
        """What the rotation history of a credential's job is kept with (rotator.history_store):
        its sink, its view as the pass found it, the trigger, the time, the log."""
        if run.found is None or job.credential is None:
            raise RuntimeError("a credential job before its workspace was opened")
        return {
            "sink": run.ws.sink,
            "workspace": run.ws.name,
            "view": run.found.views[job.credential],
            "trigger": self._config.trigger,
            "now": self._clock(),
            "log": run.log,
        }

    def _gates(self, run: _WorkspaceRun) -> Gates:
        return Gates(self._config.max_failure_ratio, self._stop, lambda: run.held)

    def _close(self, run: _WorkspaceRun) -> None:
        """Confirm every revoke with one list, build the inventory, release the lock."""
        try:
            found = run.found
            if found is None:
                return
            revoked = {c: r.revoked for c, r in run.report.results.items() if r.revoked}
            if run.changed:
                now = self._clock()
                try:
                    keys: tuple[ApiKey, ...] | None = tuple(run.ws.provider.list_keys())
                except ApiError as exc:
                    keys = None
                    problem = f"could not confirm the revoke: {exc}"
                for credential, ids in revoked.items():
                    still = [i for i in ids if keys is None or not expired_or_gone(i, keys, now)]
                    if still:
                        error = problem if keys is None else (
                            f"key {still[0]} is still listed after its revoke"
                        )  # fmt: skip
                        _fail_late(run, credential, error)
                if keys is not None:
                    found = survey_keys(
                        run.ws,
                        keys,
                        identity=found.identity,
                        now=now,
                        config=self._config.reconcile,
                        log=run.log,
                    )
            report = run.report
            if not (self._config.dry_run or report.failed or report.lock_lost):
                # The history of every credential no job touched agrees with the state too (a
                # workspace refused, or whose lock was lost, is left as it is).
                for credential, view in found.views.items():
                    if credential not in report.results:
                        history_store.settle(
                            run.ws.sink, workspace=run.ws.name, view=view, keys=found.keys,
                            now=self._clock(), log=run.log,
                        )  # fmt: skip
            stuck = (
                None
                if run.report.failed or run.found is None
                else own_key_running_out(
                    run.ws, run.found, now=self._clock(), pass_started=self._pass_started,
                    config=self._config.reconcile, log=run.log,
                )
            )  # fmt: skip
            own = run.ws.self_key_name
            if stuck is not None and own is not None:
                earlier = run.report.results.get(own, CredentialResult(own, Outcome.UNCHANGED))
                run.report.results[own] = replace(
                    earlier, outcome=Outcome.FAILED, failed_step=Step.RETIRE, error=stuck
                )
            run.report.inventory = inventory(run.ws, found, self._clock(), self._config.reconcile)
        finally:
            run.stack.close()


def credential_jobs(
    run: _WorkspaceRun, actions: Sequence[PlannedAction], *, dry_run: bool
) -> list[_Job]:
    """The credential jobs of one workspace, once the budget was handed out: settling-only
    credentials first, then rotating ones in urgency order. A rotation the budget left out
    is named; one whose key expires before the next pass is a failure (exit 1)."""
    log = run.log
    for action in actions:
        if action.deferred is None or action.action is not Action.ROTATE:
            continue
        log.log(
            logging.ERROR if action.overdue
            else logging.WARNING if action.deferred == Deferral.BUDGET else logging.INFO,
            "rotation.deferred", credential=action.credential, key_id=action.key_id,
            reason=action.deferred, rotation_reason=action.reason,
            days_left=action.days_left, expires_before_next_pass=action.overdue,
        )  # fmt: skip
        if action.overdue:
            # Left out, and it cannot wait (the plan says why): a failure, never a 0.
            run.budget_failures[action.credential] = (
                "left out by ROTATOR_MAX_ROTATIONS_PER_PASS, and it cannot wait: "
                + {
                    Reason.MISSING: "its key is gone",
                    Reason.FORCED: "its rotation was asked for now",
                }.get(Reason(action.reason), "its key expires before the next scheduled pass")
            )
    if dry_run:
        for action in actions:
            log.info(
                "rotation.planned", credential=action.credential, key_id=action.key_id,
                action=str(action.action), reason=action.reason, deferred=action.deferred,
                dry_run=True,
            )  # fmt: skip
        return []
    by_credential: dict[str, list[PlannedAction]] = {}
    for action in actions:
        by_credential.setdefault(action.credential, [])
        if action.deferred is None:
            by_credential[action.credential].append(action)
    for credential, acts in list(by_credential.items()):
        if not acts:
            del by_credential[credential]
            if any(a.credential == credential and a.deferred == Deferral.BUDGET
                   for a in actions):  # fmt: skip
                run.report.results[credential] = _left_out(run, credential)
    rotating = {a.credential for a in actions if a.creates}
    order = {a.credential: i for i, a in enumerate(actions)}
    return [
        _Job(run, JobKind.CREDENTIAL, c, tuple(acts))
        for c, acts in sorted(
            by_credential.items(), key=lambda item: (item[0] in rotating, order[item[0]])
        )
    ]


def _left_out(run: _WorkspaceRun, credential: str) -> CredentialResult:
    """The result of a credential whose only action, a rotation, the budget left out."""
    error = run.budget_failures.get(credential)
    if error is None:
        return CredentialResult(credential, Outcome.UNCHANGED, skipped=Skip.BUDGET)
    return CredentialResult(
        credential, Outcome.FAILED, failed_step=Step.CREATE, error=error, skipped=Skip.BUDGET
    )


def _fail_late(run: _WorkspaceRun, credential: str, error: str) -> None:
    """A credential's revoke was not confirmed by the closing list: it failed after all."""
    result = run.report.results[credential]
    step = result.failed_step or Step.RETIRE
    run.log.error("rotation.failed", credential=credential, step=str(step), error=error)
    run.report.results[credential] = replace(
        result, outcome=Outcome.FAILED, failed_step=step, error=error
    )


class _Scheduler:
    """Feeds the pool: one thread (the caller's) decides what runs next.

    A pass has three phases: every workspace is *opened* (locked, surveyed, planned) in the
    pool; once all are open, the plan over all of them is settled in this thread (workspaces
    listed twice are refused, the budget is handed out most urgent first); then the credential
    jobs run, and each workspace is closed when its jobs are done.
    """

    def __init__(
        self,
        runner: Runner,
        runs: list[_WorkspaceRun],
        report: PassReport,
        forced: Collection[str] | None,
        unidentified: Sequence[Unidentified] = (),
    ) -> None:
        self._runner = runner
        self._runs = runs
        self._report = report
        self._forced = forced
        self._unidentified = unidentified
        self._config = runner.config
        self._allocated = False
        self._futures: dict[Future[Any], _Job] = {}
        self._cursor = 0

    def run(self) -> None:
        try:
            self._run()
        except BaseException:
            # Whatever ended the pass (a crash, an interrupt, an error no rule foresaw in this
            # thread), no lock outlives it: a serve process would otherwise lock itself out.
            for run in self._runs:
                run.stack.close()
            raise

    def _run(self) -> None:
        with ThreadPoolExecutor(
            max_workers=self._config.concurrency, thread_name_prefix="rotator"
        ) as pool:
            while True:
                while len(self._futures) < self._config.concurrency:
                    job = self._next_job()
                    if job is None:
                        break
                    job.workspace.in_flight += 1
                    # Each job runs in a copy of this thread's context, so every line it logs
                    # carries the pass's run_id (structlog's context lives in contextvars).
                    context = contextvars.copy_context()
                    future = pool.submit(context.run, self._execute, job)
                    self._futures[future] = job
                if not self._futures:
                    if not self._allocated:
                        self._allocate()
                        continue
                    break
                done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
                for future in done:
                    job = self._futures.pop(future)
                    error = future.exception()
                    if error is not None and not isinstance(error, Exception):
                        # An interrupt (or a test's simulated crash) ends the pass at once, as
                        # the process dying would; only the locks are let go, as death would.
                        self._runner._stop.set()
                        raise error
                    self._finished(job, future)
        if self._runner._stop.is_set() and any(r.phase is not Phase.CLOSED for r in self._runs):
            self._report.stopped_early = True

    # -- the plan over every workspace (scheduler thread) -------------------------------

    def _allocate(self) -> None:
        """Once every workspace is open: refuse workspaces listed twice (by ``me``'s workspace
        id, over this pass's entries and, when sharded, other shards' entries), hand out the
        budget over the whole plan, and queue each workspace's jobs."""
        self._allocated = True
        opened = [r for r in self._runs if r.phase is Phase.OPEN and r.found is not None]
        twice = listed_twice(
            [(r.ws, r.found) for r in opened if r.found is not None],
            self._runner._log,
            self._report.unchecked_twins,
        )
        for run in opened:
            if run.ws.name in twice and run.found is not None:
                error = duplicate_error(twice[run.ws.name], run.found.identity.workspace_id)
                run.log.error("workspace.duplicate", error=error)
                run.report.failed = True
                run.report.error = error
                run.planned = []
        everything = allocate(
            (a for r in opened for a in r.planned),
            self._config.max_rotations_per_pass,
            days_to_next_pass=self._runner.days_to_next_pass(),
        )
        everything = self._hold_revokes(opened, everything)
        if any(a.deferred == Deferral.BUDGET for a in everything):
            self._report.budget_exhausted = True
            self._runner._log.warning(
                "budget.exhausted",
                limit=self._config.max_rotations_per_pass,
                deferred=sum(
                    a.deferred == Deferral.BUDGET and a.action is Action.ROTATE for a in everything
                ),
            )
        by_workspace: dict[str, list[PlannedAction]] = {}
        for action in everything:
            by_workspace.setdefault(action.workspace, []).append(action)
        for run in opened:
            jobs = credential_jobs(
                run, by_workspace.get(run.ws.name, []), dry_run=self._config.dry_run
            )
            run.planned = []
            own = run.ws.self_key_name
            run.last = [
                j for j in jobs if j.credential == own and any(a.creates for a in j.actions)
            ]
            run.queue.extend(j for j in jobs if j not in run.last)

    def _hold_revokes(
        self, opened: list[_WorkspaceRun], actions: list[PlannedAction]
    ) -> list[PlannedAction]:
        """An entry whose identity this pass could not learn (its ``me``, credential or sink
        failed before its survey ended; another shard's, or one outside a ``rotate
        --workspace``, whose ``me`` failed) may be one of these workspaces listed again, and
        its sink may hold any key of it: no such key is revoked there until every entry is
        known. An entry with a ``workspace_id`` in the workspaces file can only be that
        workspace again; one without may be any."""
        declared = declared_ids([r.ws for r in self._runs])
        suspects = {u.name: u.declared_workspace_id for u in self._unidentified}
        suspects.update(
            (r.ws.name, declared[r.ws.name])
            for r in self._runs
            if r.found is None and not r.report.locked
        )
        suspects.update(
            (name, declared.get(name))
            for name in self._report.unchecked_twins
            if name not in suspects
        )
        identities = {r.ws.name: r.found.identity.workspace_id for r in opened if r.found}
        exposed = exposed_to(suspects, identities)
        if not exposed:
            return actions
        held = hold_revokes(actions, exposed)
        count = sum(a.deferred == Deferral.ENTRY_UNIDENTIFIED for a in held)
        if count:
            self._runner._log.warning(
                "revokes.held", unidentified=sorted(suspects), workspaces=sorted(exposed),
                held=count,
            )  # fmt: skip
        return held

    # -- choosing -------------------------------------------------------------------------

    def _next_job(self) -> _Job | None:
        """The next job with a free slot, round-robin over workspaces; None when none can run."""
        stopping = self._runner._stop.is_set()
        count = len(self._runs)
        for offset in range(count):
            run = self._runs[(self._cursor + offset) % count]
            if run.phase in (Phase.CLOSING, Phase.CLOSED) or (
                run.in_flight >= self._config.workspace_concurrency
            ):
                continue
            job = self._job_of(run, stopping)
            if job is not None:
                self._cursor = (self._cursor + offset + 1) % count
                return job
        return None

    def _job_of(self, run: _WorkspaceRun, stopping: bool) -> _Job | None:
        if run.phase in (Phase.NEW, Phase.OPENING):
            if run.phase is Phase.OPENING or stopping:
                if stopping and run.phase is Phase.NEW:
                    self._report.stopped_early = True
                    run.enter(Phase.CLOSED)
                return None
            run.enter(Phase.OPENING)
            return _Job(run, JobKind.OPEN)
        if not self._allocated:
            return None  # the plan over every workspace is not settled yet
        if run.queue and not stopping:
            return run.queue.popleft()
        if stopping and run.queue:
            self._report.stopped_early = True
            run.queue.clear()
        if not run.queue and run.in_flight == 0 and run.last and not stopping:
            run.queue.extend(run.last)
            run.last.clear()
            return self._job_of(run, stopping)
        if run.idle or (stopping and run.in_flight == 0):
            run.enter(Phase.CLOSING)
            run.last.clear()
            return _Job(run, JobKind.CLOSE)
        return None

    # -- running (pool threads) -----------------------------------------------------------

    def _execute(self, job: _Job) -> object:
        if job.kind is JobKind.OPEN:
            return self._runner._open(job.workspace, self._forced)
        if job.kind is JobKind.CREDENTIAL:
            return self._runner._credential(job, self._report.steps)
        self._runner._close(job.workspace)
        return None

    # -- results (scheduler thread) -------------------------------------------------------

    def _finished(self, job: _Job, future: Future[Any]) -> None:
        run = job.workspace
        run.in_flight -= 1
        error = future.exception()
        if job.kind is JobKind.OPEN:
            if error is not None:
                self._open_failed(run, error)
                return
            run.enter(Phase.OPEN)
            run.planned = future.result()
            return
        if job.kind is JobKind.CLOSE:
            run.enter(Phase.CLOSED)
            if error is not None:
                run.report.failed = True
                run.report.error = f"closing failed: {_describe(error)}"
                run.log.error("workspace.close_failed", error=_describe(error))
            return
        credential = job.credential or ""
        if error is not None:  # CredentialWork catches everything; this is a last resort
            result = CredentialResult(
                credential, Outcome.FAILED, failed_step=Step.RECONCILE,
                error=f"unexpected {type(error).__name__}",
            )  # fmt: skip
        else:
            result = future.result()
        late = run.budget_failures.get(credential)
        if late is not None and result.outcome is not Outcome.FAILED:
            # Its settling actions ran, but the rotation it needed before the next pass did not.
            result = replace(result, outcome=Outcome.FAILED, failed_step=Step.CREATE, error=late)
        run.report.results[credential] = result
        # Only an action that is not "blocked" can have changed anything: then the closing
        # list confirms the revokes and the inventory is read again.
        if any(a.action is not Action.BLOCKED for a in job.actions):
            run.changed = True
        if result.skipped is Skip.LOCK_LOST and not run.report.lock_lost:
            run.report.lock_lost = True
            run.log.error("pass.lock_lost", credential=credential)
        if result.skipped is Skip.STOPPED:
            self._report.stopped_early = True

    def _open_failed(self, run: _WorkspaceRun, error: BaseException) -> None:
        run.stack.close()
        run.enter(Phase.CLOSED)
        if isinstance(error, LockHeldError):
            run.report.locked = True
            run.report.error = str(error)
            run.log.warning("pass.locked", error=str(error))
            return
        run.report.error = _describe(error)
        if isinstance(error, ApiError):
            # Nothing could be done here: its credential was refused or the API is down.
            run.report.usable = False
            run.log.error("workspace.unusable", error=_describe(error))
        else:
            # The credential file, the lock or the sink failed: something was left undone
            # (exit 1, not 3), named; the other workspaces go on.
            run.report.failed = True
            run.log.error("workspace.failed", error=_describe(error))


def _breaker_trips(attempts: int, failures: int, max_failure_ratio: float) -> bool:
    """The circuit breaker's rule: at least 3 attempts, and *more* than the ratio failed."""
    return attempts >= 3 and failures / attempts > max_failure_ratio


def _describe(error: BaseException) -> str:
    """An error for a report: our own errors say what failed; anything else only its class,
    since its text could hold anything."""
    if isinstance(error, ApiError | SinkError | LockError | WorkspaceConfigError):
        return str(error)
    return f"unexpected {type(error).__name__}"
