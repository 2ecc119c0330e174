"""The events a pass sends out to people and machines (notifications, webhooks, Kubernetes
Events): one immutable :class:`Event` per thing that happened, and the :class:`Channel` each
destination implements.

An event never carries a secret: only names, key ids, times, reasons. Delivering it can never
change what the pass did or its exit code: a channel logs and counts its own failures
(``notify.failed``) and returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One thing a pass (or a trigger) did, as every channel sends it."""

    #: What happened: ``rotation.delivered``, ``rotation.revoked``, ``rotation.failed``,
    #: ``rollout.stalled``, ``self.waiting``, ``credential.blocked``, ``key.expiring``,
    #: ``pass.failed``, ``leak.matched``, ``leak.unmatched``, ...
    type: str
    #: Unique and stable for this event: a receiver drops a repeat with the same id.
    id: str
    time: datetime
    workspace: str | None = None
    credential: str | None = None
    key_id: str | None = None
    previous_key_id: str | None = None
    reason: str | None = None
    detail: str | None = None


class Channel(Protocol):
    """One destination of events (Apprise, a webhook, Kubernetes Events)."""

    #: Its label in ``notify.sent``/``notify.failed`` and ``rotator_notifications_total``.
    name: str

    def send(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` within the channel's own short timeout; never raise."""
