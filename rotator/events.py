"""The events a pass sends out to people and machines (notifications, webhooks, Kubernetes
Events): one immutable :class:`Event` per thing that happened, and the :class:`Channel` each
destination implements.

An event never carries a secret: only names, key ids, times, reasons. Delivering it can never
change what the pass did or its exit code: a channel logs and counts its own failures
(``notify.failed``) and returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol


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
    #: The pass (or trigger) it came from: its ``run_id`` in the logs.
    run_id: str | None = None

    def document(self) -> dict[str, str | None]:
        """The event as the webhook's JSON object (``time`` in ISO 8601 UTC)."""
        return {
            "type": self.type,
            "id": self.id,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "workspace": self.workspace,
            "credential": self.credential,
            "key_id": self.key_id,
            "previous_key_id": self.previous_key_id,
            "reason": self.reason,
            "detail": self.detail,
            "run_id": self.run_id,
        }


class Channel(Protocol):
    """One destination of events (Apprise, a webhook, Kubernetes Events)."""

    #: Its label in ``notify.sent``/``notify.failed`` and ``rotator_notifications_total``.
    name: str

    def send(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` within the channel's own short timeout; never raise."""


# ------------------------------------------------------ which events ROTATOR_NOTIFY_ON selects

#: ``failure``: people must act (or know that something was left undone).
FAILURE_EVENTS: Final = frozenset(
    {
        "rotation.failed",
        "pass.failed",
        "rollout.stalled",
        "self.waiting",
        "credential.blocked",
        "key.expiring",
        "workspace.failed",
        "workspace.locked",
    }
)
#: ``rotation``: each rotation delivered and each key revoked (a previous key retired, an
#: orphan revoked).
ROTATION_EVENTS: Final = frozenset({"rotation.delivered", "rotation.revoked", "orphan.revoked"})
#: Only ``all`` selects the rest: ``rotation.rolled_back`` (its credential's ``rotation.failed``
#: already tells), ``notify.test``, and any type added later until a word selects it.
#: ``leak``: a leak report received, matched or not.
LEAK_EVENTS: Final = frozenset({"leak.matched", "leak.unmatched"})
#: Each word of ROTATOR_NOTIFY_ON and the event types it selects (``all``: every type).
NOTIFY_ON: Final[Mapping[str, frozenset[str]]] = {
    "failure": FAILURE_EVENTS,
    "rotation": ROTATION_EVENTS,
    "leak": LEAK_EVENTS,
}


def selected(events: Iterable[Event], notify_on: Iterable[str]) -> list[Event]:
    """The events ROTATOR_NOTIFY_ON's words select, in their order."""
    words = set(notify_on)
    if "all" in words:
        return list(events)
    types = frozenset().union(*(NOTIFY_ON.get(word, frozenset()) for word in words))
    return [event for event in events if event.type in types]


def event_id(*parts: object) -> str:
    """A stable id from what makes an event itself (its run, type, place, key): the same parts
    always give the same id, so a receiver can drop a repeat."""
    digest = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode())
    return f"evt_{digest.hexdigest()[:32]}"
