"""Telling machines: each event POSTed to ROTATOR_WEBHOOK_URL as one JSON object, signed per
the Standard Webhooks specification with the ``standardwebhooks`` library (extra ``notify``).

Headers ``webhook-id`` (the event's id), ``webhook-timestamp`` (the attempt's time, Unix
seconds: the receiver's clock, not the pass's) and ``webhook-signature`` (``v1,`` + the HMAC of
``id.timestamp.body``). A 2xx answer delivers an event. A connection error, a timeout, 429 or
a 5xx is tried once more while the budget lasts, with the same ``webhook-id`` (so a receiver that
got the first attempt after all drops the second: an event is never told twice) and a fresh
timestamp and signature. Any other answer is final.

All of the channel's requests in one pass end within its budget, enforced at the socket
(rotator.deadline): a receiver that hangs or drips its answer costs the pass the budget at most;
events left when it is spent are given up on (``notify.failed``). The signing secret is never
logged, and nothing the receiver answers is either (only its status code).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from rotator.deadline import enforce_deadlines, request_deadline
from rotator.events import Event
from rotator.models import Secret, is_loopback_host
from rotator.notify.base import Counter, Delivery, settle

__all__ = ["WebhookChannel", "standard_webhook"]

#: Attempts of one event: the first and one retry (same webhook-id) after a transient failure.
_ATTEMPTS: Final = 2
_RETRIED_STATUS: Final = frozenset({408, 429})
_MISSING_EXTRA: Final = (
    "ROTATOR_WEBHOOK_URL: needs the notify extra (standardwebhooks): "
    "pip install 'key-rotator[notify]'"
)


def standard_webhook(secret: Secret) -> Any:
    """The Standard Webhooks signer of ``secret`` (``whsec_`` + base64); ImportError names the
    extra that brings the library."""
    try:
        from standardwebhooks.webhooks import Webhook  # noqa: PLC0415 - the optional extra
    except ImportError:
        raise ImportError(_MISSING_EXTRA) from None
    return Webhook(secret.reveal())


class WebhookChannel:
    """POSTs each event to one URL, signed; never raises."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: Secret,
        *,
        budget_seconds: float,
        count: Counter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._signer = standard_webhook(secret)
        self._budget = budget_seconds
        self._count = count
        self._transport = transport
        self._target = httpx.URL(url).host

    def __repr__(self) -> str:
        return f"WebhookChannel({self._target!r})"

    def send(self, events: Sequence[Event]) -> None:
        self.deliver(events)

    def deliver(self, events: Sequence[Event]) -> list[Delivery]:
        """POST each event in turn within the budget; each one's delivery, logged and counted."""
        deliveries: list[Delivery] = []
        if not events:
            return deliveries
        deadline = time.monotonic() + self._budget
        try:
            with httpx.Client(
                timeout=self._budget,
                transport=self._transport,
                follow_redirects=False,
                # A loopback receiver is never reached through a proxy from the environment.
                trust_env=not is_loopback_host(self._target),
            ) as http:
                enforce_deadlines(http)
                for event in events:
                    error = self._post(http, event, deadline)
                    deliveries.append(self._settle(event, error))
        except Exception as exc:  # noqa: BLE001 - a channel never harms the pass
            told = {d.event_id for d in deliveries}
            for event in events:
                if event.id not in told:
                    deliveries.append(self._settle(event, type(exc).__name__))
        return deliveries

    def _settle(self, event: Event, error: str | None) -> Delivery:
        delivery = Delivery(
            self.name, self._target, error is None, error, event_id=event.id, event_type=event.type
        )
        return settle(delivery, self._count)

    def _post(self, http: httpx.Client, event: Event, deadline: float) -> str | None:
        """One event, tried at most twice: None when delivered, else what went wrong."""
        body = json.dumps(event.document(), separators=(",", ":")).encode()
        error = "no time was left in the channel's budget"
        for _ in range(_ATTEMPTS):
            left = deadline - time.monotonic()
            if left <= 0:
                return error
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": event.id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": self._signer.sign(event.id, now, body),
            }
            try:
                with request_deadline(left):
                    response = http.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: no answer"
                continue
            if response.is_success:
                return None
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in _RETRIED_STATUS:
                return error
        return error
