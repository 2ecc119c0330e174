"""Telling people: one message per pass, through Apprise, to each of ROTATOR_NOTIFY_URLS.

Apprise (extra ``notify``) is imported when the channel is built, which happens only when
ROTATOR_NOTIFY_URLS is set. Every URL gets the same message (rotator.notify.message), all at
once, each within the channel's budget: Apprise's own call timeout, its services' socket
timeouts shrunk to it, and a thread the pass stops waiting for at the deadline, so a server that
hangs or drips costs the pass the budget at most. What is logged of a URL is its redacted form
(rotator.settings.notify); what went wrong is Apprise's status word, never its log text (which
quotes parts of tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Final

from rotator.events import Event
from rotator.notify.base import Counter, Delivery, bounded, settle
from rotator.notify.message import message
from rotator.settings.notify import apprise_module, redacted_notify_url

__all__ = ["AppriseChannel"]

#: What the pass waits past the budget for Apprise's own timeout to report, before giving up.
_GRACE_SECONDS: Final = 0.5


class AppriseChannel:
    """Sends the one message of a pass to every Apprise URL; never raises."""

    name = "apprise"

    def __init__(
        self, urls: Sequence[str], *, budget_seconds: float, count: Counter | None = None
    ) -> None:
        self._apprise = apprise_module()
        self._urls = tuple(urls)
        self._budget = budget_seconds
        self._count = count

    def __repr__(self) -> str:
        return f"AppriseChannel({[redacted_notify_url(u) for u in self._urls]})"

    def send(self, events: Sequence[Event]) -> None:
        self.deliver(events)

    def deliver(self, events: Sequence[Event]) -> list[Delivery]:
        """Send one message about ``events`` to every URL; each one's delivery, logged and
        counted. Nothing is sent for no event."""
        if not events or not self._urls:
            return []
        try:
            title, body = message(events)
        except Exception as exc:  # noqa: BLE001 - a bug in the text must not harm the pass
            return [
                self._settle(url, len(events), f"message: {type(exc).__name__}")
                for url in self._urls
            ]
        outcomes = bounded(
            [partial(self._notify, url, title, body) for url in self._urls],
            self._budget + _GRACE_SECONDS,
        )
        deliveries = []
        for url, outcome in zip(self._urls, outcomes, strict=True):
            if not outcome.finished:
                error: str | None = f"no answer within {self._budget:g} s"
            elif outcome.error is not None:
                error = type(outcome.error).__name__
            else:
                error = outcome.value
            deliveries.append(self._settle(url, len(events), error))
        return deliveries

    def _settle(self, url: str, events: int, error: str | None) -> Delivery:
        return settle(
            Delivery(self.name, redacted_notify_url(url), error is None, error, events=events),
            self._count,
        )

    def _notify(self, url: str, title: str, body: str) -> str | None:
        """One URL's notification: None when Apprise says it was delivered, else its status."""
        # Nothing on disk (a pod's root file system is read-only); the sender's name is ours.
        asset = self._apprise.AppriseAsset(
            app_id="key-rotator", app_desc="key-rotator", storage_mode="memory"
        )
        notifier: Any = self._apprise.Apprise(asset=asset)
        if not notifier.add(url):
            return "Apprise cannot use this URL"
        for service in notifier:
            # The services' own socket timeouts (4 s, 15 s for e-mail) would outlast the budget.
            service.socket_connect_timeout = min(service.socket_connect_timeout, self._budget)
            service.socket_read_timeout = min(service.socket_read_timeout, self._budget)
        result = notifier.notify(
            body=body,
            title=title,
            body_format=self._apprise.NotifyFormat.TEXT,
            timeout=self._budget,
        )
        return None if result else f"Apprise: {result.status.name.lower()}"
