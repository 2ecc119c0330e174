"""The events of a finished pass: its report turned into :class:`~rotator.events.Event` values.

Pure: the report in, events out, no I/O. What a pass did is read from
:func:`rotator.report.actions_taken` (the same reading ``run-once`` prints), what it left in
a state people must know of from the results (a stalled restart, the own key waiting) and the
inventory the pass ended with (a managed key within :data:`EXPIRY_WARNING` of its expiry).

Each event's id is a hash of its run, type, place and key (rotator.events.event_id): the same
report always gives the same ids, and two passes never share one. No event carries a secret:
the texts come from the report, which holds key ids, names and error texts that never quote a
key, and each detail is scrubbed as a log line is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from rotator.events import Event, event_id
from rotator.logging import scrub_text
from rotator.models import Role
from rotator.report import PassReport, WorkspaceReport, actions_taken

__all__ = ["EXPIRY_WARNING", "crashed_pass_event", "pass_events"]

#: A managed credential's current key this close to its expiry is a failure people must see:
#: at the default ROTATOR_ROTATE_BEFORE_DAYS (30) it should have been rotated weeks ago.
EXPIRY_WARNING: Final = timedelta(days=7)

#: What a finished action of ``actions_taken`` is as an event, by (action, result).
_DONE: Final = {
    ("rotate", "done"): "rotation.delivered",
    ("finish-delivery", "done"): "rotation.delivered",
    ("retire", "done"): "rotation.revoked",
    ("revoke-orphan", "done"): "orphan.revoked",
}


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _workspace_event(action: dict[str, object]) -> tuple[str, str]:
    """A workspace-wide problem's type and reason."""
    if action["result"] == "skipped":
        return "workspace.locked", "locked"
    return "workspace.failed", "failed"


def _from_actions(report: PassReport) -> Iterator[Event]:
    """What the pass did, one event per action done, failed or blocked."""
    actions = actions_taken(report)
    # A previous key revoked in the same pass (a grace period of 0) is no longer in the
    # inventory the rotation's entry reads it from: its retirement names it.
    retired = {
        (action["workspace"], action["credential"]): _text(action["key_id"])
        for action in actions
        if (action["action"], action["result"]) == ("retire", "done")
    }
    for action in actions:
        kind, result = str(action["action"]), str(action["result"])
        workspace = _text(action["workspace"])
        credential = _text(action["credential"])
        key_id = _text(action["key_id"])
        detail = _text(action["detail"])
        previous = _text(action.get("previous_key_id"))
        if kind == "rotate" and previous is None:
            previous = retired.get((action["workspace"], action["credential"]))
        reason: str | None
        if kind == "workspace":
            event_type, reason = _workspace_event(action)
        elif (kind, result) in _DONE:
            event_type, reason = _DONE[kind, result], kind
        elif result == "blocked":
            event_type, reason = "credential.blocked", "blocked"
        elif result == "failed":
            event_type, reason = "rotation.failed", _text(action.get("step"))
        else:
            # "unknown" comes with the credential's failure (its own event); "skipped" is a
            # rotation the budget or a stop left for the next pass, which is not news.
            continue
        yield _event(
            report,
            event_type,
            workspace=workspace,
            credential=credential,
            key_id=key_id,
            previous_key_id=previous,
            reason=reason,
            detail=detail,
        )


def _rolled_back(report: PassReport) -> Iterator[Event]:
    """Each replacement revoked because a later step failed (its credential's failure is an
    event of its own)."""
    for step in report.steps:
        if step.event == "rotation.rolled_back":
            yield _event(
                report,
                "rotation.rolled_back",
                workspace=step.workspace,
                credential=step.credential,
                key_id=step.key_id,
                reason="rolled-back",
                detail="the replacement was revoked, undelivered; the current key stays",
            )


def _from_results(report: PassReport, ws: WorkspaceReport) -> Iterator[Event]:
    for credential, result in sorted(ws.results.items()):
        if result.rollout_stalled:
            yield _event(
                report,
                "rollout.stalled",
                workspace=ws.name,
                credential=credential,
                reason="rollout-timeout",
                detail="a consumer's restart did not finish in time; its previous key stays valid",
            )
        if result.own_key_waiting:
            previous = next(
                (
                    s.key_id
                    for s in ws.inventory
                    if s.credential == credential and s.role is Role.PREVIOUS
                ),
                None,
            )
            yield _event(
                report,
                "self.waiting",
                workspace=ws.name,
                credential=credential,
                previous_key_id=previous,
                reason="waiting-for-credential-source",
                detail="the rotator still authenticates with its previous key: its credential "
                "source does not hold the new one, so the previous key is kept",
            )


def _expiring(report: PassReport, ws: WorkspaceReport, now: datetime) -> Iterator[Event]:
    for status in ws.inventory:
        if (
            status.managed
            and status.role is Role.CURRENT
            and status.expires is not None
            and status.expires - now < EXPIRY_WARNING
        ):
            days = (status.expires - now) / timedelta(days=1)
            when = f"in {days:.1f} days" if days >= 0 else f"{-days:.1f} days ago"
            yield _event(
                report,
                "key.expiring",
                workspace=ws.name,
                credential=status.credential,
                key_id=status.key_id,
                reason="expired" if days < 0 else "expiring",
                detail=f"the current key expires {when} "
                f"({status.expires.replace(microsecond=0).isoformat()})",
            )


def _event(  # noqa: PLR0913 - an event's fields, each named at the call
    report: PassReport,
    event_type: str,
    *,
    workspace: str | None = None,
    credential: str | None = None,
    key_id: str | None = None,
    previous_key_id: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> Event:
    return Event(
        type=event_type,
        id=event_id(report.run_id, event_type, workspace, credential, key_id),
        time=report.started_at + timedelta(seconds=report.duration_s),
        workspace=workspace,
        credential=credential,
        key_id=key_id,
        previous_key_id=previous_key_id,
        reason=reason,
        # Error texts never quote a key; blanked as a log line is all the same (a second line
        # of defence: a bearer token or a ``secret=...`` an SDK put in its message).
        detail=scrub_text(detail) if detail else detail,
        run_id=report.run_id,
    )


def pass_events(report: PassReport) -> list[Event]:
    """Every event of a finished pass, in the order people read them: what each workspace's
    credentials went through, then the keys about to expire, then the pass's verdict
    (``pass.failed`` when its exit code is not 0)."""
    ended = report.started_at + timedelta(seconds=report.duration_s)
    events = list(_from_actions(report))
    events.extend(_rolled_back(report))
    for ws in report.workspaces:
        events.extend(_from_results(report, ws))
    for ws in report.workspaces:
        events.extend(_expiring(report, ws, ended))
    code = report.exit_code
    if code != 0:
        if code == 3:
            undone = "nothing could be done: no workspace could be used"
        elif report.stopped_early:
            undone = "the pass was stopped early"
        else:
            undone = "something was left undone"
        events.append(_event(report, "pass.failed", reason=f"exit-{code}", detail=undone))
    unique: dict[str, Event] = {}
    for event in events:
        # Two events of one kind on one key in one pass (a retry) are one event, told once.
        unique.setdefault(event.id, event)
    return list(unique.values())


def crashed_pass_event(run_id: str, at: datetime, error: BaseException) -> Event:
    """A pass that crashed before it could report: ``pass.failed`` naming the error's kind
    only (its text could quote anything)."""
    return Event(
        type="pass.failed",
        id=event_id(run_id, "pass.failed"),
        time=at,
        reason="crashed",
        detail=f"the pass crashed ({type(error).__name__}); see the log",
        run_id=run_id,
    )
