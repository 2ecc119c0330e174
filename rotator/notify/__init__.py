"""Sending a pass's events out: to people through Apprise (ROTATOR_NOTIFY_URLS), to machines as
signed webhooks (ROTATOR_WEBHOOK_URL), each chosen by ROTATOR_NOTIFY_ON.

:class:`Notifier` is what a pass's end calls: it keeps the events ROTATOR_NOTIFY_ON selects and
hands them to every channel at once, each in a thread of its own, and waits no longer than the
budget (and a little slack) in all. A channel logs and counts its own deliveries
(rotator.notify.base); nothing here raises, and nothing here can change what the pass did or its
exit code. The channels' libraries are imported by the modules that use them, which are
imported only when a channel is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Final, Protocol, runtime_checkable

import structlog

from rotator.events import Channel, Event, selected
from rotator.logging import get_logger
from rotator.notify.base import Delivery, bounded

__all__ = ["BUDGET_SECONDS", "Notifier", "ReportingChannel", "send_test_event"]

#: What one pass may spend telling each channel, all its events together: a few seconds, so
#: that a receiver that hangs delays a pass (and a CronJob's exit) that long at most. The
#: channels run side by side, so the pass waits this (plus a little slack) in all.
BUDGET_SECONDS: Final = 5.0
#: How much longer than the budget a channel's thread is waited for (its own bound ends it).
_SLACK_SECONDS: Final = 1.0


class Notifier:
    """The channels of one process and which events they are told."""

    def __init__(
        self,
        channels: Sequence[Channel],
        notify_on: Iterable[str],
        *,
        every_event: Sequence[Channel] = (),
        budget_seconds: float = BUDGET_SECONDS,
    ) -> None:
        """``channels`` are told what ``notify_on`` selects; ``every_event`` channels are told
        every event (a record of what happened to an object, such as its Kubernetes Events,
        is not news to choose from)."""
        self._channels = tuple(channels)
        self._every_event = tuple(every_event)
        self._notify_on = tuple(notify_on)
        self._budget = budget_seconds

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self._channels + self._every_event

    def send(self, events: Sequence[Event], *, run_id: str | None = None) -> None:
        """Tell every channel the selected ``events``; never raises, never waits much longer
        than the budget."""
        try:
            self._send(events, run_id)
        except Exception as exc:  # noqa: BLE001 - telling must never change a pass's result
            get_logger().error("notify.failed", channel="all", error=type(exc).__name__)

    def _send(self, events: Sequence[Event], run_id: str | None) -> None:
        chosen = selected(events, self._notify_on)
        told = [(c, chosen) for c in self._channels if chosen]
        told += [(c, list(events)) for c in self._every_event if events]
        if not told:
            return
        with structlog.contextvars.bound_contextvars(
            **({"run_id": run_id} if run_id is not None else {})
        ):
            outcomes = bounded(
                [partial(channel.send, these) for channel, these in told],
                self._budget + _SLACK_SECONDS,
            )
            for (channel, _), outcome in zip(told, outcomes, strict=True):
                if outcome.error is not None or not outcome.finished:
                    # The channel broke its own promise (a bug, or a library that ignored its
                    # timeout): said once here, as it cannot have said it itself.
                    get_logger().warning(
                        "notify.failed",
                        channel=channel.name,
                        error=type(outcome.error).__name__ if outcome.error else "no answer",
                    )


@runtime_checkable
class ReportingChannel(Channel, Protocol):
    """A channel that can also say how each delivery went (``check-config --notify-test``)."""

    def deliver(self, events: Sequence[Event]) -> list[Delivery]: ...


def send_test_event(channels: Sequence[Channel], event: Event) -> list[Delivery]:
    """``check-config --notify-test``: ``event`` through every channel, all at once as a pass
    does; each delivery. A channel that cannot say how it went counts as delivered when its
    ``send`` returned within the budget."""
    outcomes = bounded([partial(_test_one, channel, event) for channel in channels],
                       BUDGET_SECONDS + _SLACK_SECONDS)  # fmt: skip
    deliveries: list[Delivery] = []
    for channel, outcome in zip(channels, outcomes, strict=True):
        if outcome.value is not None:
            deliveries.extend(outcome.value)
            continue
        error = type(outcome.error).__name__ if outcome.error is not None else "no answer"
        deliveries.append(Delivery(channel.name, channel.name, ok=False, error=error))
    return deliveries


def _test_one(channel: Channel, event: Event) -> list[Delivery]:
    if isinstance(channel, ReportingChannel):
        return channel.deliver([event])
    channel.send([event])
    return [Delivery(channel.name, channel.name, ok=True)]
