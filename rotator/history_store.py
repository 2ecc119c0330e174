"""When a pass reads and writes the rotation history (rotator.history), and what a failure of
it does: nothing to the pass.

The runner calls :func:`open_intent` just before a credential's job, when the job plans to
create a key (the trigger and reason outlive a kill only there), and :func:`record_job` once
the job is over, with the pass lock held. Each reads what it needs, reconciles through the pure
:func:`~rotator.history.reconcile_history`, and writes only what changed: at most two writes per
credential per pass, none when nothing changed. A history that cannot be read, parsed or
written is logged (``history.unreadable``, ``history.write_failed``) and left as it is; it never
changes the pass's result, its exit code or anything the rotation does.

It must not know: settings, how a sink stores the history, or the rules themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from rotator.errors import HistoryUnsupportedError, SinkError
from rotator.history import (
    HistoryEntry,
    JobEvents,
    entries_from_documents,
    intent,
    reconcile_history,
)
from rotator.models import ApiKey, rotator_created_at, utc
from rotator.plan import PlannedAction
from rotator.reconcile import CredentialView
from rotator.rotation import CredentialResult, StepRecord
from rotator.sinks.base import Sink


@dataclass(frozen=True)
class Opened:
    """The history of a credential as its job began, with the intent it wrote (if any)."""

    entries: tuple[HistoryEntry, ...]
    intent_id: str | None


def _read(
    sink: Sink, workspace: str, credential: str, log: structlog.typing.FilteringBoundLogger
) -> list[HistoryEntry] | None:
    """The stored history, or None when there is none to reconcile (logged, unless the sink
    keeps none at all)."""
    try:
        documents = sink.read_history(credential)
        return entries_from_documents(documents, workspace=workspace, credential=credential)
    except HistoryUnsupportedError:
        return None
    except (SinkError, ValueError) as exc:
        # Left as it is: overwriting a history that cannot be read would lose it.
        log.warning("history.unreadable", credential=credential, error=str(exc))
        return None


def _write(
    sink: Sink,
    credential: str,
    entries: Sequence[HistoryEntry],
    log: structlog.typing.FilteringBoundLogger,
) -> bool:
    try:
        sink.write_history(credential, [e.to_document() for e in entries])
    except SinkError as exc:
        log.warning("history.write_failed", credential=credential, error=str(exc))
        return False
    return True


def open_intent(  # noqa: PLR0913 - the job's facts, each named at the call
    sink: Sink,
    *,
    workspace: str,
    view: CredentialView,
    actions: Sequence[PlannedAction],
    trigger: str,
    now: datetime,
    log: structlog.typing.FilteringBoundLogger,
) -> Opened | None:
    """Write the intent of a job that plans a create (its trigger and reason); None when the
    job creates nothing or the history is unavailable."""
    rotation = next((a for a in actions if a.creates), None)
    if rotation is None:
        return None
    entries = _read(sink, workspace, view.credential, log)
    if entries is None:
        return None
    started = intent(
        workspace=workspace,
        credential=view.credential,
        old_key_id=view.current.id if view.current else None,
        trigger=trigger,
        reason=rotation.reason,
        now=now,
    )
    if not _write(sink, view.credential, [*entries, started], log):
        return Opened(tuple(entries), None)
    return Opened((*entries, started), started.id)


def record_job(  # noqa: PLR0913 - the job's facts, each named at the call
    sink: Sink,
    *,
    workspace: str,
    view: CredentialView,
    keys: Sequence[ApiKey],
    actions: Sequence[PlannedAction],
    result: CredentialResult,
    steps: Sequence[StepRecord],
    opened: Opened | None,
    trigger: str,
    now: datetime,
    log: structlog.typing.FilteringBoundLogger,
) -> None:
    """Reconcile the credential's history with what its sink and the provider show now and
    what this job did, and write it when it changed."""
    credential = view.credential
    mine = [s for s in steps if s.workspace == workspace and s.credential == credential]
    created = tuple(s.key_id for s in mine if s.event == "rotation.created" and s.key_id)
    never_delivered = tuple(
        s.key_id for s in mine if s.event in ("rotation.rolled_back", "orphan.revoked") and s.key_id
    )
    quiet = not (created or never_delivered or result.revoked) and view.pending is None
    if opened is None and quiet:
        # Nothing happened that the history could miss (a blocked credential, a retire that
        # waits): no call at all.
        return
    try:
        record = sink.read(credential).record
    except SinkError as exc:
        # Without the record the history would be reconciled against a guess: next pass.
        log.warning("history.unreadable", credential=credential, error=str(exc))
        return
    entries = (
        list(opened.entries) if opened is not None else _read(sink, workspace, credential, log)
    )
    if entries is None:
        return
    live, made_at = _keys_of(credential, keys, now, gone=set(result.revoked))
    live.update(k for k in created if k not in result.revoked)
    rotation = next((a for a in (view.current, view.pending) if a is not None), None)
    planned = next((a for a in actions if a.creates), None)
    job = JobEvents(
        trigger=trigger,
        reason=planned.reason if planned else None,
        intent_id=opened.intent_id if opened else None,
        old_key_id=rotation.id if rotation else None,
        created=created,
        never_delivered=never_delivered,
        made_at=made_at,
        attempted=result.attempted_rotation,
        failed_step=str(result.failed_step) if result.failed_step else None,
        error=result.error,
    )
    after = reconcile_history(
        entries,
        workspace=workspace,
        credential=credential,
        record=record,
        live_key_ids=live,
        now=now,
        job=job,
    )
    if after != entries:
        _write(sink, credential, after, log)


def settle(  # noqa: PLR0913 - the credential's facts, each named at the call
    sink: Sink,
    *,
    workspace: str,
    view: CredentialView,
    keys: Sequence[ApiKey],
    now: datetime,
    log: structlog.typing.FilteringBoundLogger,
) -> None:
    """Reconcile the history of a credential that had no job this pass with what the sink and
    the provider show (a delivery whose pass died before it wrote the history, an old key that
    expired or that a person revoked); written only when it changed."""
    if view.blocked is not None or view.record is None:
        return
    entries = _read(sink, workspace, view.credential, log)
    if entries is None:
        return
    live, made_at = _keys_of(view.credential, keys, now)
    after = reconcile_history(
        entries,
        workspace=workspace,
        credential=view.credential,
        record=view.record,
        live_key_ids=live,
        now=now,
        job=JobEvents(made_at=made_at),
    )
    if after != entries:
        _write(sink, view.credential, after, log)


def _keys_of(
    credential: str, keys: Sequence[ApiKey], now: datetime, gone: Collection[str] = ()
) -> tuple[set[str], dict[str, datetime]]:
    """The credential's keys that still work (listed, unexpired, not revoked by this job), and
    when each rotator-made one was made (from its name)."""
    own = [k for k in keys if k.base_name == credential]
    live = {k.id for k in own if utc(k.expires) > utc(now) and k.id not in gone}
    made_at = {k.id: t for k in own if (t := rotator_created_at(k.name)) is not None}
    return live, made_at


__all__ = ["Opened", "open_intent", "record_job", "settle"]
