"""What every channel of events shares: the result of one delivery, how it is logged
(``notify.sent`` / ``notify.failed``) and counted (``rotator_notifications_total``), and a call
bounded in time whatever the library under it does.

A channel (rotator.events.Channel) tells what it sent through :func:`settle`, once per message
(Apprise) or per event (the webhook), so every channel logs and counts alike. It knows nothing of
settings or of the pass.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from rotator.logging import get_logger

__all__ = ["Bounded", "Counter", "Delivery", "bounded", "settle"]

#: Counts one delivery: ``(channel, result)`` with result ``sent`` or ``failed``.
Counter = Callable[[str, str], None]

T = TypeVar("T")

_SENT: Final = "sent"
_FAILED: Final = "failed"


@dataclass(frozen=True)
class Delivery:
    """One message (or event) a channel delivered or gave up on; never a secret: ``target``
    is what the channel may show of where it went (an Apprise URL redacted, the webhook's
    host), ``error`` what went wrong in words."""

    channel: str
    target: str
    ok: bool
    error: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    events: int = 1


def settle(delivery: Delivery, count: Counter | None) -> Delivery:
    """Log and count ``delivery``; return it."""
    log = get_logger().bind(channel=delivery.channel, target=delivery.target)
    fields: dict[str, object] = {"events": delivery.events}
    if delivery.event_id is not None:
        fields |= {"id": delivery.event_id, "type": delivery.event_type}
    if delivery.ok:
        log.info("notify.sent", **fields)
    else:
        log.warning("notify.failed", error=delivery.error, **fields)
    if count is not None:
        count(delivery.channel, _SENT if delivery.ok else _FAILED)
    return delivery


@dataclass
class Bounded(Generic[T]):
    """What a :func:`bounded` call came to: ``finished`` in time, with its value or error."""

    finished: bool = False
    value: T | None = None
    error: BaseException | None = None


def bounded(calls: Sequence[Callable[[], T]], seconds: float) -> list[Bounded[T]]:
    """Run each of ``calls`` in a daemon thread of its own, all at once, and wait at most
    ``seconds`` in all for them. A call still running then is left to end on its own (its
    library's own timeouts end it) and the caller goes on: what is returned is a snapshot
    taken at the deadline, one per call. The threads see the caller's context (run_id)."""
    outcomes: list[Bounded[T]] = [Bounded() for _ in calls]
    lock = threading.Lock()

    def run(call: Callable[[], T], outcome: Bounded[T]) -> None:
        error: BaseException | None = None
        value: T | None = None
        try:
            value = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller, never lost
            error = exc
        with lock:
            outcome.value, outcome.error, outcome.finished = value, error, True

    workers = []
    for call, outcome in zip(calls, outcomes, strict=True):
        context = contextvars.copy_context()
        worker = threading.Thread(
            target=context.run, args=(run, call, outcome), name="rotator-notify", daemon=True
        )
        worker.start()
        workers.append(worker)
    deadline = time.monotonic() + seconds
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return [Bounded(o.finished, o.value, o.error) for o in outcomes]
