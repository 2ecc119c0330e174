"""What a pass did: per-workspace and per-pass reports, the key inventory, the exit-code rule.

Exit codes (README): 0 everything due was done; 1 something was left undone (a credential
failed, a lock was held or lost, a breaker tripped, a consumer's restart stalled, the pass was
stopped early); 3 no workspace could be used at all and nothing was changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rotator.models import Role
from rotator.rotation import CredentialResult, Outcome, Step, StepRecord


@dataclass(frozen=True)
class KeyStatus:
    """One listed key, or one remembered credential with no key at all, as ``status`` shows it.

    A credential whose keys have all vanished shows as one row with ``key_id`` and ``expires``
    of the key its sink last held (``role`` ``current``, ``reason`` ``missing``), so that a
    managed credential with no working key is never invisible.
    """

    workspace: str
    name: str
    credential: str
    key_id: str | None
    expires: datetime | None
    days_left: float | None
    age_days: float | None
    managed: bool
    due: bool
    reason: str
    role: Role
    #: Whether the sink holds this key's secret now; None when the sink could not be read.
    in_sink: bool | None = None
    #: What a pass will do to this key next (``rotate``, ``retire``, ``revoke-orphan``,
    #: ``finish-delivery``, ``blocked`` or ``none``; rotator.upcoming) and from when (UTC; in
    #: the past when it is due now; None for ``none``).
    next_action: str = "none"
    next_action_at: datetime | None = None
    #: The targets of a credential delivered to several places that do not hold its key yet
    #: (the next pass brings them up to date); empty when every target holds it.
    lagging: tuple[str, ...] = ()


@dataclass
class WorkspaceReport:
    name: str
    usable: bool = True
    locked: bool = False
    lock_lost: bool = False
    breaker_tripped: bool = False
    #: The lock or the sink could not be used (exit 1: something was left undone).
    failed: bool = False
    error: str | None = None
    results: dict[str, CredentialResult] = field(default_factory=dict)
    inventory: list[KeyStatus] = field(default_factory=list)
    #: Credentials a forced rotation named that this workspace does not manage.
    not_found: list[str] = field(default_factory=list)
    #: Patterns of the workspace's key_names that selected no listed key.
    unmatched_patterns: tuple[str, ...] = ()

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return {c: r.outcome for c, r in self.results.items()}

    @property
    def own_key_waiting(self) -> bool:
        """The rotator's own previous key is kept: the process does not read its new key yet."""
        return any(r.own_key_waiting for r in self.results.values())

    @property
    def rolled_back(self) -> int:
        return sum(r.rolled_back for r in self.results.values())

    @property
    def succeeded(self) -> bool:
        """The pass left nothing undone in this workspace."""
        return (
            self.usable
            and not self.locked
            and not self.lock_lost
            and not self.breaker_tripped
            and not self.failed
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
    stopped_early: bool = False
    budget_exhausted: bool = False
    #: Sharded: entries of other shards whose ``me`` failed here, and why. Whether one of them
    #: is this pod's workspace listed twice is not known, so the pass is not all done (exit 1),
    #: as an unsharded pass with that entry unusable would not be.
    unchecked_twins: dict[str, str] = field(default_factory=dict)

    @property
    def rotations_succeeded(self) -> int:
        return self.count(Outcome.ROTATED)

    @property
    def rotations_failed(self) -> int:
        return sum(
            1
            for w in self.workspaces
            for r in w.results.values()
            if r.attempted_rotation and r.outcome is Outcome.FAILED
        )

    def count(self, outcome: Outcome) -> int:
        return sum(list(w.outcomes.values()).count(outcome) for w in self.workspaces)

    @property
    def exit_code(self) -> int:
        """0 all done, 1 something left undone, 3 no workspace could be used (README)."""
        if self.workspaces and not any(w.usable for w in self.workspaces):
            return 3
        if (
            self.stopped_early
            or self.unchecked_twins
            or not all(w.succeeded for w in self.workspaces)
        ):
            return 1
        return 0


# ------------------------------------------------------------------ what a pass did, as data


def _blocked(ws: WorkspaceReport, credential: str) -> bool:
    return any(s.credential == credential and s.reason == "blocked" for s in ws.inventory)


def _previous_of(ws: WorkspaceReport, credential: str) -> KeyStatus | None:
    return next(
        (s for s in ws.inventory if s.credential == credential and s.role is Role.PREVIOUS), None
    )


def _credential_actions(
    ws: WorkspaceReport, result: CredentialResult, steps: list[StepRecord]
) -> list[dict[str, object]]:
    """The actions one credential's work took, one entry each, from its steps and result."""
    credential = result.credential
    out: list[dict[str, object]] = []

    def add(
        action: str, result_: str, key_id: str | None, detail: str = "", **more: object
    ) -> None:
        entry: dict[str, object] = {
            "workspace": ws.name,
            "credential": credential,
            "action": action,
            "result": result_,
            "key_id": key_id,
            "detail": detail,
        }
        entry.update(more)
        out.append(entry)

    created: str | None = None
    for step in steps:
        if step.event == "orphan.revoked":
            add("revoke-orphan", "done", step.key_id, step.detail)
        elif step.event == "rotation.created":
            created = step.key_id
        elif step.event == "rotation.delivered" and created is None:
            add("finish-delivery", "done", step.key_id, step.detail)
        elif step.event == "rotation.delivered":
            previous = _previous_of(ws, credential)
            add(
                "rotate",
                "done",
                step.key_id,
                "",
                previous_key_id=previous.key_id if previous else None,
                retire_previous_at=previous.next_action_at if previous else None,
            )
        elif step.event == "rotation.revoked":
            add("retire", "done", step.key_id, step.detail)
        elif step.event == "rotation.state_unknown":
            add("rotate", "unknown", step.key_id, step.detail or "the next pass settles it")
    if result.outcome is Outcome.FAILED:
        blocked = result.failed_step is Step.RECONCILE and _blocked(ws, credential)
        action = "blocked" if blocked else _failed_action(result)
        detail = result.error or ""
        if result.rolled_back:
            detail += " (the new key was revoked; the old one stays)"
        add(action, "blocked" if blocked else "failed", None, detail, step=str(result.failed_step))
    elif result.skipped is not None:
        add("rotate", "skipped", None, result.skipped)
    return out


def _failed_action(result: CredentialResult) -> str:
    if result.failed_step is Step.RETIRE:
        return "retire"
    if result.failed_step is Step.RECONCILE:
        return "reconcile"
    return "rotate"


def _workspace_problem(ws: WorkspaceReport) -> dict[str, object] | None:
    """A workspace-wide line: locked, unusable, or failed before or after its credentials."""
    if ws.locked:
        result, detail = "skipped", ws.error or "another pass holds its lock"
    elif not ws.usable:
        result, detail = "failed", f"could not be used: {ws.error}"
    elif ws.failed and ws.error:
        result, detail = "failed", ws.error
    elif ws.breaker_tripped:
        result, detail = "failed", "the circuit breaker tripped: no more keys were created"
    elif ws.lock_lost:
        result, detail = "failed", "the lock was lost: no more keys were created"
    else:
        return None
    return {
        "workspace": ws.name,
        "credential": None,
        "action": "workspace",
        "result": result,
        "key_id": None,
        "detail": detail,
    }


def actions_taken(report: PassReport) -> list[dict[str, object]]:
    """What a pass did, one entry per action (``run-once`` and ``rotate`` print one line each):
    ``workspace``, ``credential``, ``action`` (``rotate``, ``retire``, ``revoke-orphan``,
    ``finish-delivery``, ``blocked``, or ``workspace`` for a workspace-wide problem),
    ``result`` (``done``, ``failed``, ``unknown``, ``skipped``, ``blocked``), ``key_id`` and
    ``detail``; a rotation also has ``previous_key_id`` and ``retire_previous_at``."""
    out: list[dict[str, object]] = []
    for ws in report.workspaces:
        problem = _workspace_problem(ws)
        if problem is not None:
            out.append(problem)
        for credential in sorted(ws.results):
            steps = [
                s for s in report.steps if s.workspace == ws.name and s.credential == credential
            ]
            out.extend(_credential_actions(ws, ws.results[credential], steps))
    return out


def counts(actions: list[dict[str, object]]) -> dict[str, int]:
    """The last line of ``run-once`` and ``rotate``: how many of each."""

    def n(action: str | None, result: str) -> int:
        return sum(1 for a in actions if a["result"] == result and action in (None, a["action"]))

    return {
        "rotated": n("rotate", "done"),
        "retired": n("retire", "done"),
        "orphans_revoked": n("revoke-orphan", "done"),
        "failed": n(None, "failed") + n(None, "unknown"),
        "blocked": n(None, "blocked"),
        "skipped": n(None, "skipped"),
    }


def pass_document(report: PassReport, *, dry_run: bool = False) -> dict[str, object]:
    """The pass's report as one JSON-ready object (``run-once -o json``, ``rotate -o json``)."""
    actions = actions_taken(report)
    return {
        "run_id": report.run_id,
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "dry_run": dry_run,
        "exit_code": report.exit_code,
        "stopped_early": report.stopped_early,
        "budget_exhausted": report.budget_exhausted,
        "unchecked_twins": dict(report.unchecked_twins),
        "counts": counts(actions),
        "actions": actions,
        "workspaces": [
            {
                "name": ws.name,
                "succeeded": ws.succeeded,
                "usable": ws.usable,
                "locked": ws.locked,
                "lock_lost": ws.lock_lost,
                "breaker_tripped": ws.breaker_tripped,
                "failed": ws.failed,
                "error": ws.error,
                "unmatched_patterns": list(ws.unmatched_patterns),
                "not_found": list(ws.not_found),
                "results": [
                    {
                        "credential": r.credential,
                        "outcome": str(r.outcome),
                        "failed_step": str(r.failed_step) if r.failed_step else None,
                        "error": r.error,
                        "rolled_back": r.rolled_back,
                        "revoked": list(r.revoked),
                        "skipped": r.skipped,
                    }
                    for _, r in sorted(ws.results.items())
                ],
            }
            for ws in report.workspaces
        ],
    }
