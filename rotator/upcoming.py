"""Pure: when the next action on each key falls due, by the same rules as ``rotator.plan``.

``plan`` says what a pass does *now*; this says what a pass will do to a key next and from
when, so that ``status`` can show a retirement due tomorrow or an orphan revoked in ten
minutes, and list the most urgent first. No I/O, no clock, no settings: the caller passes
``now`` and plain values. The rules, per role (``status --json`` ``next_action`` and
``next_action_at``; a time in the past means the action is due now):

- a credential whose metadata cannot be trusted: ``blocked``, now;
- **current**: ``rotate`` from the moment the policy calls it due (``expiring`` or ``max-age``,
  :func:`~rotator.policy.rotation_due_at`); while a previous key is in its grace period, not
  before that key's retirement (``plan`` defers it until then);
- **missing** (the key the sink holds is gone): ``rotate``, now;
- **previous**: ``retire`` once its grace period is over (``retire_previous_after`` in the
  sink's metadata); ``none`` while the current key is missing, since a previous key is never
  retired while no current key exists;
- **pending**: ``finish-delivery`` now when the sink holds it (the current key it replaces
  shows the same), else ``revoke-orphan`` now;
- **orphan**: ``revoke-orphan`` once as old as ROTATOR_ORPHAN_MIN_AGE_MINUTES, by the time in its
  name;
- extra, unknown, unmanaged: ``none`` (never acted on).

Must not know: how a pass runs, sinks, logging. ``plan`` stays the only set of rules for what a
pass *does*; this module only dates them, and its tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rotator.models import ApiKey, Role, rotator_created_at, utc
from rotator.policy import rotation_due_at
from rotator.reconcile import CredentialView, ReconcileConfig

#: ``next_action`` of a key nothing will be done to.
NONE: Final = "none"


@dataclass(frozen=True)
class NextAction:
    """What a pass will do next to one key, and from when (None: never)."""

    action: str
    at: datetime | None

    def fields(self) -> dict[str, Any]:
        """As the ``next_action`` and ``next_action_at`` fields of a status row."""
        return {"next_action": self.action, "next_action_at": self.at}


def next_action(
    view: CredentialView | None,
    key: ApiKey | None,
    role: Role,
    *,
    now: datetime,
    config: ReconcileConfig,
) -> NextAction:
    """The next action on ``key`` (of role ``role`` in ``view``), and when it falls due.

    ``key`` is None for a credential whose keys are all gone (role ``missing``).
    ``config`` is the workspace's (its own patterns, its own key included).
    """
    if view is None or role in (Role.UNMANAGED, Role.EXTRA):
        return NextAction(NONE, None)
    if view.blocked is not None:
        return NextAction("blocked", now)
    if role is Role.MISSING or (role is Role.CURRENT and view.is_missing):
        return NextAction("rotate", now)
    record = view.record
    if role is Role.CURRENT and view.pending_delivered:
        # Its replacement landed but was never made current: the next pass finishes that
        # delivery, and this key becomes the previous one (its retirement dated then).
        return NextAction("finish-delivery", now)
    if role is Role.CURRENT and key is not None:
        due = rotation_due_at(key, config.policy)
        if view.previous is not None and record is not None:
            # plan defers a rotation while the previous key is in its grace period.
            retire = record.retire_previous_after or now
            due = max(utc(due), utc(retire))
        return NextAction("rotate", due)
    if role is Role.PREVIOUS:
        if view.current is None:
            return NextAction(NONE, None)
        after = record.retire_previous_after if record is not None else None
        return NextAction("retire", after or now)
    if role is Role.PENDING:
        return NextAction("finish-delivery" if view.pending_delivered else "revoke-orphan", now)
    if role is Role.ORPHAN and key is not None:
        created = rotator_created_at(key.name)
        return NextAction("revoke-orphan", created + config.orphan_min_age if created else now)
    return NextAction(NONE, None)


__all__ = ["NONE", "NextAction", "next_action"]
