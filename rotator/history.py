"""The rotation history of one credential, reconciled from state: pure, no I/O, no clock.

A pass keeps, beside each credential's metadata in its sink (``Sink.read_history`` and
``write_history``), the last :data:`~rotator.sinks.base.HISTORY_MAX_ENTRIES` rotations: which
key replaced which, why, what asked for it, when it was created, delivered and retired, and how
it ended. Never a secret: key ids, times, names, reasons and the engine's error text only.

The history is not a log of what a pass saw happen: a pass may be killed before it writes
anything. It is made to *agree with the state* each time a credential's job ends
(:func:`reconcile_history`), from the record the sink holds, the keys the provider still lists,
and what this job did:

- every key that became current has an entry (``new_key_id`` the record's key, ``old_key_id``
  its previous key, ``delivered_at`` the record's), even when the pass that delivered it died
  before writing the history;
- an entry whose old key is no longer listed (or has expired) is ``retired``, ``retired_at`` the
  first time a job saw it gone;
- a key that was created and is gone without ever being delivered (rolled back, or revoked as an
  orphan that no sink holds) is ``rolled-back``;
- a rotation whose step failed and that nothing settled since is ``failed``.

What asked for a rotation (``trigger``: ``schedule``, ``forced``, ``api``, ``leak``) and why
(``reason``) are not in any state: a job about to create a key first writes an *intent* (an entry
with outcome ``started`` and no key yet), and an entry rebuilt after a kill takes the trigger
and reason of the intent written just before that key was made (else of the oldest one still
open; else ``schedule`` and no reason). ``rotator history`` never shows an intent.

It must not know: how a sink stores the entries, settings, logging, or the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final

from rotator.models import SinkRecord, rotator_created_at, utc
from rotator.sinks.base import HISTORY_MAX_ENTRIES, format_time, parse_time

#: What asked for a rotation.
TRIGGERS: Final = ("schedule", "forced", "api", "leak")
#: How a rotation ended (``rotator history`` ``outcome``).
DELIVERED: Final = "delivered"
RETIRED: Final = "retired"
ROLLED_BACK: Final = "rolled-back"
FAILED: Final = "failed"
OUTCOMES: Final = (DELIVERED, RETIRED, ROLLED_BACK, FAILED)
#: An intent: a job is about to create a key (never shown; settled by a later reconcile).
STARTED: Final = "started"


@dataclass(frozen=True)
class HistoryEntry:
    """One rotation of one credential."""

    workspace: str
    credential: str
    old_key_id: str | None
    new_key_id: str | None
    trigger: str
    reason: str | None
    created_at: datetime
    delivered_at: datetime | None = None
    retired_at: datetime | None = None
    outcome: str = STARTED
    #: The step that failed (``create``, ``verify``, ``deliver``, ...) and the engine's error
    #: text (which never holds a secret), for ``failed`` and rolled-back rotations.
    step: str | None = None
    error: str | None = None
    #: Names an intent, so that the job that wrote it finds it again.
    id: str | None = None

    @property
    def shown(self) -> bool:
        """Whether ``rotator history`` shows it (an open intent it does not)."""
        return self.outcome != STARTED

    def to_document(self) -> dict[str, str | None]:
        """The JSON object a sink stores (times ISO 8601 UTC with ``Z``)."""
        out: dict[str, str | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = format_time(value) if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> HistoryEntry:
        """An entry from what a sink stored; ValueError naming the field when it is not one."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = document.get(f.name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{f.name} is not a string")
            if f.name in _TIMES and value is not None:
                values[f.name] = parse_time(value)
            else:
                values[f.name] = value
        for required in ("workspace", "credential", "trigger", "created_at", "outcome"):
            if values[required] is None:
                raise ValueError(f"{required} is missing")
        return cls(**values)


_TIMES: Final = frozenset({"created_at", "delivered_at", "retired_at"})


def entries_from_documents(
    documents: Iterable[Mapping[str, Any]], *, workspace: str, credential: str
) -> list[HistoryEntry]:
    """The entries a sink returned; ValueError when one is malformed or names another
    credential or workspace (a history is then left as it is, never overwritten)."""
    entries = []
    for index, document in enumerate(documents):
        try:
            entry = HistoryEntry.from_document(document)
        except ValueError as exc:
            raise ValueError(f"entry {index}: {exc}") from None
        if (entry.workspace, entry.credential) != (workspace, credential):
            raise ValueError(f"entry {index} is of another workspace or credential")
        entries.append(entry)
    return entries


def intent(  # noqa: PLR0913 - what an intent records, each named at the call
    *,
    workspace: str,
    credential: str,
    old_key_id: str | None,
    trigger: str,
    reason: str | None,
    now: datetime,
) -> HistoryEntry:
    """What a job writes before it creates a key: the trigger and reason, which no state keeps
    (a fresh ``id`` names it)."""
    return HistoryEntry(
        workspace=workspace,
        credential=credential,
        old_key_id=old_key_id,
        new_key_id=None,
        trigger=trigger,
        reason=reason,
        created_at=utc(now),
        outcome=STARTED,
        id=uuid.uuid4().hex,
    )


@dataclass(frozen=True)
class JobEvents:
    """What one credential's job did in this pass, as the history needs it."""

    trigger: str = "schedule"
    #: The reason of the rotation it planned (``expiring``, ``forced``, ...), if any.
    reason: str | None = None
    #: The intent it wrote before its create (None: it planned none, or the write failed).
    intent_id: str | None = None
    #: The key the sink held when the job began (what a new key replaces).
    old_key_id: str | None = None
    #: Keys it created.
    created: tuple[str, ...] = ()
    #: Keys it revoked as never delivered: rolled back after a failed step, or orphans.
    never_delivered: tuple[str, ...] = ()
    #: When each key the job knew of was made, from the rotator's marker in its name.
    made_at: Mapping[str, datetime] | None = None
    #: Whether it tried to create a key at all (False: none planned, or the budget, the
    #: breaker or a stop held it back).
    attempted: bool = False
    failed_step: str | None = None
    error: str | None = None


def reconcile_history(  # noqa: PLR0913 - the state and the job, each named at the call
    entries: Sequence[HistoryEntry],
    *,
    workspace: str,
    credential: str,
    record: SinkRecord | None,
    live_key_ids: Collection[str],
    now: datetime,
    job: JobEvents | None = None,
) -> list[HistoryEntry]:
    """The history of ``credential`` made to agree with the state (the module's rules).

    ``record`` is what the sink holds now (None: nothing, or unreadable); ``live_key_ids`` the
    credential's keys the provider lists now and that have not expired; ``job`` what this
    pass's job did (None: only the state is reconciled). Returns the entries oldest first,
    bounded; the input is not changed.
    """
    now = utc(now)
    job = job or JobEvents()
    made_at = dict(job.made_at or {})
    if record is not None and record.key_id and record.key_name:
        named = rotator_created_at(record.key_name)
        if named is not None:
            made_at.setdefault(record.key_id, named)
    out = list(entries)

    def index_of(key_id: str) -> int | None:
        return next((i for i, e in enumerate(out) if e.new_key_id == key_id), None)

    def take_intent(own: bool, key_id: str | None = None) -> HistoryEntry | None:
        """This job's own intent (``own``), else the one a killed pass wrote just before it
        made ``key_id`` (the latest written before the time in the key's name), else the
        oldest one still open."""
        open_ = [e for e in out if e.outcome == STARTED]
        if own:
            chosen = next((e for e in open_ if job.intent_id and e.id == job.intent_id), None)
        else:
            others = [e for e in open_ if e.id is None or e.id != job.intent_id]
            made = made_at.get(key_id or "")
            # The name's time has whole seconds; the intent was written just before it.
            before = [e for e in others if made and e.created_at < made + timedelta(seconds=1)]
            chosen = max(before, key=lambda e: e.created_at) if before else None
            chosen = chosen or next(iter(others), None)
        if chosen is not None:
            out.remove(chosen)
        return chosen

    def add(key_id: str, old: str | None, *, own: bool) -> None:
        started = take_intent(own, key_id)
        # Without an intent: this job's own trigger and reason, else what a scheduled pass has.
        trigger, reason = (job.trigger, job.reason) if own else ("schedule", None)
        out.append(
            HistoryEntry(
                workspace=workspace,
                credential=credential,
                old_key_id=old if old is not None or started is None else started.old_key_id,
                new_key_id=key_id,
                trigger=started.trigger if started else trigger,
                reason=started.reason if started else reason,
                created_at=made_at.get(key_id) or (started.created_at if started else now),
                outcome=FAILED,
            )
        )

    # Keys this job created: each takes this job's intent (its trigger and reason).
    for key_id in job.created:
        if index_of(key_id) is None:
            add(key_id, job.old_key_id, own=True)
    # The key the sink holds, even when the pass that delivered it died before writing this.
    delivered_key = None
    if record is not None and record.key_id and record.delivered_at is not None:
        delivered_key = record.key_id
        if index_of(delivered_key) is None and delivered_key in made_at:
            add(delivered_key, record.previous_key_id, own=False)
        i = index_of(delivered_key)
        if i is not None:
            entry = out[i]
            out[i] = replace(
                entry,
                old_key_id=record.previous_key_id or entry.old_key_id,
                delivered_at=entry.delivered_at or utc(record.delivered_at),
                outcome=RETIRED if entry.outcome == RETIRED else DELIVERED,
                step=None,
                error=None,
            )
    # Keys revoked as never delivered: rolled back, or an orphan a killed pass left.
    for key_id in job.never_delivered:
        if index_of(key_id) is None:
            add(key_id, record.key_id if record else job.old_key_id, own=False)
    held = {record.key_id, record.pending_key_id} if record is not None else set()
    out = [_settle(e, set(live_key_ids), held, job, now) for e in out]
    # This job's intent, if nothing above took it: a create that failed outright, or none tried.
    own = take_intent(own=True)
    if own is not None and job.attempted and job.failed_step is not None:
        out.append(replace(own, outcome=FAILED, step=job.failed_step, error=job.error, id=None))
    out.sort(key=lambda e: utc(e.created_at))
    return out[-HISTORY_MAX_ENTRIES:]


def _settle(
    entry: HistoryEntry, live: set[str], held: set[str | None], job: JobEvents, now: datetime
) -> HistoryEntry:
    """One entry by the state: a key gone without ever being delivered is rolled back (with the
    step this job failed at, if it was this job's); a delivered entry whose old key is gone
    (neither listed, nor unexpired, nor held) is retired now."""
    if entry.outcome == STARTED or entry.new_key_id is None:
        return entry
    if entry.delivered_at is None:
        if entry.new_key_id not in live and entry.new_key_id not in held:
            entry = replace(entry, outcome=ROLLED_BACK)
        this_job = entry.new_key_id in job.created or entry.new_key_id in job.never_delivered
        if this_job and job.failed_step is not None:
            entry = replace(entry, step=job.failed_step, error=job.error)
        return entry
    old = entry.old_key_id
    if entry.retired_at is None and old is not None and old not in live and old not in held:
        return replace(entry, retired_at=now, outcome=RETIRED)
    return entry


def newest_first(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """The entries ``rotator history`` shows (no open intent), the newest first."""
    return sorted(
        (e for e in entries if e.shown),
        key=lambda e: (utc(e.created_at), e.workspace, e.credential),
        reverse=True,
    )


def row(entry: HistoryEntry) -> dict[str, Any]:
    """An entry as ``rotator history -o json`` prints it (times as datetimes, for render)."""
    return {
        "workspace": entry.workspace,
        "credential": entry.credential,
        "old_key_id": entry.old_key_id,
        "new_key_id": entry.new_key_id,
        "trigger": entry.trigger,
        "reason": entry.reason,
        "created_at": entry.created_at,
        "delivered_at": entry.delivered_at,
        "retired_at": entry.retired_at,
        "outcome": entry.outcome,
        "step": entry.step,
        "error": entry.error,
    }


__all__ = [
    "DELIVERED",
    "FAILED",
    "OUTCOMES",
    "RETIRED",
    "ROLLED_BACK",
    "STARTED",
    "TRIGGERS",
    "HistoryEntry",
    "JobEvents",
    "entries_from_documents",
    "intent",
    "newest_first",
    "reconcile_history",
    "row",
]
