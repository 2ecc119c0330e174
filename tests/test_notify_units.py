"""The parts of telling people and machines that need no pass: which events a report makes,
which ROTATOR_NOTIFY_ON selects, the message's text, how an Apprise URL is shown, and each
channel's bounds against real receivers on loopback (a hanging one, one that answers 500).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from rotator.app import Hooks, build_runner, run_pass
from rotator.events import Event, event_id, selected
from rotator.metrics import Metrics
from rotator.models import Role, Secret
from rotator.notify import Notifier, send_test_event
from rotator.notify.apprise_channel import AppriseChannel
from rotator.notify.message import message
from rotator.notify.webhook import WebhookChannel
from rotator.pass_events import crashed_pass_event, pass_events
from rotator.report import KeyStatus, PassReport, WorkspaceReport
from rotator.rotation import CredentialResult, Outcome, Step, StepRecord
from rotator.settings import parse_settings
from rotator.settings.notify import redacted_notify_url
from tests.servers.receivers import http_recorder

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STARTED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _key(credential: str, key_id: str, role: Role, days_left: float, **more: object) -> KeyStatus:
    fields: dict[str, object] = {
        "workspace": "acme",
        "name": credential,
        "credential": credential,
        "key_id": key_id,
        "expires": STARTED + timedelta(seconds=2, days=days_left),
        "days_left": days_left,
        "age_days": 700 - days_left,
        "managed": True,
        "due": False,
        "reason": str(role),
        "role": role,
    } | more
    return KeyStatus(**fields)  # type: ignore[arg-type]


def _report() -> PassReport:
    """A pass that did a bit of everything, in two workspaces (one locked)."""
    acme = WorkspaceReport(name="acme")
    acme.results = {
        "app-a": CredentialResult(
            "app-a", Outcome.ROTATED, attempted_rotation=True, rollout_stalled=True
        ),
        "app-b": CredentialResult(
            "app-b",
            Outcome.FAILED,
            attempted_rotation=True,
            failed_step=Step.VERIFY,
            error="the new key did not authenticate",
            rolled_back=1,
        ),
        "app-c": CredentialResult(
            "app-c", Outcome.FAILED, failed_step=Step.RECONCILE, error="two records disagree"
        ),
        "app-e": CredentialResult(
            "app-e",
            Outcome.FAILED,
            attempted_rotation=True,
            failed_step=Step.DELIVER,
            error="the sink said: Authorization: Bearer Sup3rSecretSinkToken",
        ),
        "app-x": CredentialResult("app-x", Outcome.UNCHANGED),
        "rotator": CredentialResult("rotator", Outcome.ROTATED, own_key_waiting=True),
    }
    acme.inventory = [
        _key("app-a", "new-a", Role.CURRENT, 729),
        _key("app-c", "c-1", Role.UNKNOWN, 100, reason="blocked"),
        _key("app-d", "d-1", Role.CURRENT, 3.5),
        _key("app-d", "d-0", Role.PREVIOUS, 1),  # a previous key near its end: not news
        _key("powerbi", "p-1", Role.UNMANAGED, 2, managed=False),  # not managed: not ours
        _key("rotator", "own-new", Role.CURRENT, 729),
        _key("rotator", "own-old", Role.PREVIOUS, 10),
    ]
    steps = [
        StepRecord("acme", "app-a", "rotation.created", "new-a"),
        StepRecord("acme", "app-a", "rotation.verified", "new-a"),
        StepRecord("acme", "app-a", "rotation.delivered", "new-a"),
        StepRecord("acme", "app-a", "rotation.revoked", "old-a", "grace 0"),
        StepRecord("acme", "app-b", "rotation.created", "new-b"),
        StepRecord("acme", "app-b", "rotation.rolled_back", "new-b"),
        StepRecord("acme", "app-x", "orphan.revoked", "orphan-1", "no sink holds it"),
        StepRecord("acme", "rotator", "rotation.created", "own-new"),
        StepRecord("acme", "rotator", "rotation.delivered", "own-new"),
    ]
    locked = WorkspaceReport(name="globex", locked=True)
    return PassReport(
        run_id="run-1", started_at=STARTED, duration_s=2.0, workspaces=[acme, locked], steps=steps
    )


def test_a_report_makes_one_event_per_thing_people_or_machines_must_know() -> None:
    events = pass_events(_report())

    seen = [(e.type, e.workspace, e.credential, e.key_id) for e in events]
    assert sorted(seen, key=str) == sorted(
        [
            ("workspace.locked", "globex", None, None),
            ("rotation.delivered", "acme", "app-a", "new-a"),
            ("rotation.revoked", "acme", "app-a", "old-a"),
            ("rotation.failed", "acme", "app-b", None),
            ("rotation.failed", "acme", "app-e", None),
            ("rotation.rolled_back", "acme", "app-b", "new-b"),
            ("credential.blocked", "acme", "app-c", None),
            ("orphan.revoked", "acme", "app-x", "orphan-1"),
            ("rotation.delivered", "acme", "rotator", "own-new"),
            ("rollout.stalled", "acme", "app-a", None),
            ("self.waiting", "acme", "rotator", None),
            ("key.expiring", "acme", "app-d", "d-1"),
            ("pass.failed", None, None, None),
        ],
        key=str,
    )
    by = {(e.type, e.credential): e for e in events}
    # A grace period of 0: the previous key is named by its retirement in the same pass.
    assert by["rotation.delivered", "app-a"].previous_key_id == "old-a"
    assert by["rotation.delivered", "rotator"].previous_key_id == "own-old"
    assert by["self.waiting", "rotator"].previous_key_id == "own-old"
    failed = by["rotation.failed", "app-b"]
    assert failed.reason == "verify"
    assert failed.detail is not None and "did not authenticate" in failed.detail
    assert "revoked" in failed.detail  # the rollback is said
    assert by["key.expiring", "app-d"].reason == "expiring"
    assert "Sup3rSecretSinkToken" not in str(by["rotation.failed", "app-e"].detail)
    assert by["pass.failed", None].reason == "exit-1"
    assert {e.time for e in events} == {STARTED + timedelta(seconds=2)}
    assert {e.run_id for e in events} == {"run-1"}


def test_event_ids_are_unique_and_the_same_each_time_a_report_is_read() -> None:
    first, again = pass_events(_report()), pass_events(_report())
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == len(first)
    other = _report()
    other.run_id = "run-2"
    assert not {e.id for e in first} & {e.id for e in pass_events(other)}


def test_a_pass_that_did_nothing_makes_no_event() -> None:
    quiet = PassReport(run_id="r", started_at=STARTED, workspaces=[WorkspaceReport(name="acme")])
    assert pass_events(quiet) == []


def test_a_crashed_pass_is_one_event_naming_only_the_kind_of_error() -> None:
    event = crashed_pass_event("r9", STARTED, ValueError("token=Sup3rSecretValue"))
    assert (event.type, event.reason) == ("pass.failed", "crashed")
    assert "ValueError" in (event.detail or "")
    assert "Sup3rSecretValue" not in json.dumps(event.document())


@pytest.mark.parametrize(
    ("notify_on", "types"),
    [
        (("failure",), {"rotation.failed", "key.expiring", "pass.failed"}),
        (("rotation",), {"rotation.delivered", "rotation.revoked", "orphan.revoked"}),
        (("leak",), {"leak.matched"}),
        (("failure", "leak"), {"rotation.failed", "key.expiring", "pass.failed", "leak.matched"}),
        (("all",), None),
    ],
)
def test_notify_on_selects_its_events(notify_on: tuple[str, ...], types: set[str] | None) -> None:
    every = [
        Event(t, event_id(t), STARTED)
        for t in (
            "rotation.failed", "key.expiring", "pass.failed", "rotation.delivered",
            "rotation.revoked", "orphan.revoked", "leak.matched",
        )
    ]  # fmt: skip
    chosen = {e.type for e in selected(every, notify_on)}
    assert chosen == (types if types is not None else {e.type for e in every})


def test_the_message_says_what_where_what_it_means_and_what_to_do() -> None:
    title, body = message(pass_events(_report()))

    assert title == "key-rotator: 8 problems, 4 key changes"
    assert "- ROTATION FAILED (workspace acme / credential app-b)" in body
    assert "  the new key did not authenticate" in body
    assert "Means: the credential's current key still works" in body
    assert "To do: read the log lines of this run" in body
    assert "KEY ABOUT TO EXPIRE: d-1 (workspace acme / credential app-d)" in body
    assert "the previous key old-a is revoked" in body
    assert "Run run-1" in body
    assert "None" not in body
    # Failures come before the news of key changes.
    assert body.index("ROTATION FAILED") < body.index("rotated: new key")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://TokenA/TokenB/TokenC", "slack://****/****/****"),
        ("msteams://team/tokenA/tokenB/tokenC", "msteams://****/****/****/****"),
        ("discord://1234567890/SecretWebhookToken", "discord://****/****"),
        (
            "mailto://user:password@smtp.example.com:587?to=ops@example.com&pass=Other",
            "mailto://****@smtp.example.com:587?to=ops@example.com&pass=****",
        ),
        ("json://127.0.0.1:8080/hook/TOKEN?-X-Api-Key=abc", "json://127.0.0.1:8080/****/****?-X-Api-Key=****"),
        ("jsons://localhost/?token", "jsons://localhost/?****"),
        ("tgram://123456789:AAbbCC/12345", "tgram://****"),
    ],
)  # fmt: skip
def test_an_apprise_url_is_shown_without_any_part_that_may_be_a_credential(
    url: str, shown: str
) -> None:
    assert redacted_notify_url(url) == shown


def _events(n: int) -> list[Event]:
    return [
        Event("rotation.delivered", event_id("u", i), STARTED, "acme", f"app-{i}", f"k-{i}")
        for i in range(n)
    ]


def test_the_webhook_counts_each_event_and_retries_a_5xx_once_with_the_same_id() -> None:
    metrics = Metrics()
    with http_recorder(status=503) as receiver:
        channel = WebhookChannel(
            receiver.url,
            Secret(WEBHOOK_SECRET),
            budget_seconds=5,
            count=metrics.record_notification,
        )
        deliveries = channel.deliver(_events(2))
        receiver.status = 204
        again = channel.deliver(_events(1))

    assert [d.ok for d in deliveries] == [False, False]
    assert [d.error for d in deliveries] == ["HTTP 503", "HTTP 503"]
    assert [d.ok for d in again] == [True]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [ids[0], ids[0], ids[2], ids[2], ids[0]]
    for request in receiver.requests:
        Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    text = metrics.exposition().decode()
    assert 'rotator_notifications_total{channel="webhook",result="failed"} 2.0' in text
    assert 'rotator_notifications_total{channel="webhook",result="sent"} 1.0' in text


def test_a_client_error_is_not_retried() -> None:
    with http_recorder(status=400) as receiver:
        channel = WebhookChannel(receiver.url, Secret(WEBHOOK_SECRET), budget_seconds=5)
        assert [d.error for d in channel.deliver(_events(1))] == ["HTTP 400"]
    assert len(receiver.requests) == 1


@pytest.mark.slow
def test_every_channel_ends_within_its_budget_when_the_receiver_hangs() -> None:
    with http_recorder(hang=True) as receiver:
        webhook = WebhookChannel(receiver.url, Secret(WEBHOOK_SECRET), budget_seconds=1)
        started = time.monotonic()
        deliveries = webhook.deliver(_events(3))
        webhook_took = time.monotonic() - started

        apprise = AppriseChannel([f"json://127.0.0.1:{receiver.port}/"], budget_seconds=1)
        started = time.monotonic()
        told = apprise.deliver(_events(3))
        apprise_took = time.monotonic() - started

    assert webhook_took < 2.0, webhook_took
    assert [d.ok for d in deliveries] == [False, False, False]
    assert deliveries[-1].error == "no time was left in the channel's budget"
    assert apprise_took < 2.5, apprise_took
    assert [(d.ok, d.events) for d in told] == [(False, 3)]
    # Each reached the receiver (then waited for it), rather than failing before it tried.
    assert [r.headers.get("webhook-id") is not None for r in receiver.requests] == [True, False]


class _Broken:
    """A channel that breaks its promise: it raises, or it never returns (or, ``works``, a
    channel that keeps what it is told)."""

    def __init__(
        self, name: str, *, hang: threading.Event | None = None, works: bool = False
    ) -> None:
        self.name = name
        self.hang = hang
        self.works = works
        self.got: list[Event] = []

    def send(self, events: Sequence[Event]) -> None:
        self.got.extend(events)
        if self.works:
            return
        if self.hang is not None:
            self.hang.wait(30)
            return
        raise RuntimeError("a bug")


def test_the_notifier_survives_channels_that_raise_or_never_return() -> None:
    release = threading.Event()
    raising, hanging = _Broken("raising"), _Broken("hanging", hang=release)
    recording = _Broken("kubernetes-events", works=True)
    notifier = Notifier(
        [raising, hanging], ["failure"], every_event=[recording], budget_seconds=0.5
    )
    failure = Event("rotation.failed", event_id("f"), STARTED)
    delivered = Event("rotation.delivered", event_id("d"), STARTED)
    started = time.monotonic()
    try:
        notifier.send([failure, delivered])
    finally:
        release.set()
    assert time.monotonic() - started < 2.5
    assert raising.got == [failure] and hanging.got == [failure]  # only what NOTIFY_ON selects
    assert recording.got == [failure, delivered]  # a record of objects gets every event


def test_the_test_message_reports_each_channel() -> None:
    with http_recorder() as receiver:
        webhook = WebhookChannel(receiver.url, Secret(WEBHOOK_SECRET), budget_seconds=2)
        broken = _Broken("raising")
        event = Event("notify.test", event_id("t"), STARTED)
        deliveries = send_test_event([webhook, broken], event)
    assert [(d.channel, d.ok, d.error) for d in deliveries] == [
        ("webhook", True, None),
        ("raising", False, "RuntimeError"),
    ]
    assert broken.got == [event]


def test_a_pass_that_crashes_is_told_and_its_error_goes_on_up() -> None:
    readings: list[datetime] = []

    def broken_clock() -> datetime:
        # Read once as the runner is built; gone when the pass starts.
        if readings:
            raise RuntimeError("the clock is gone: token=Sup3rSecretValue")
        readings.append(STARTED)
        return STARTED

    settings = parse_settings({"ROTATOR_API_KEY": "admin-key", "ROTATOR_KEY_NAMES": "app-*"})
    runner = build_runner(settings, hooks=Hooks(clock=broken_clock))
    with http_recorder() as receiver:
        channel = WebhookChannel(receiver.url, Secret(WEBHOOK_SECRET), budget_seconds=2)
        with pytest.raises(RuntimeError, match="the clock is gone"):
            run_pass(runner, [], Notifier([channel], ["failure"]))
    [request] = receiver.requests
    document = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    assert (document["type"], document["reason"]) == ("pass.failed", "crashed")
    assert b"Sup3rSecretValue" not in request.body


def test_notify_urls_are_split_on_spaces_and_commas_but_not_inside_a_query() -> None:
    settings = parse_settings(
        {
            "ROTATOR_API_KEY": "admin-key",
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_NOTIFY_URLS": (
                "mailto://127.0.0.1:2525?from=r@example.com&to=a@example.com,b@example.com,"
                "json://127.0.0.1:9/hook  slack://TokenA/TokenB/TokenC"
            ),
            "ROTATOR_NOTIFY_ON": " Rotation , failure,rotation",
        }
    )
    assert [url.get_secret_value() for url in settings.notify_urls] == [
        "mailto://127.0.0.1:2525?from=r@example.com&to=a@example.com,b@example.com",
        "json://127.0.0.1:9/hook",
        "slack://TokenA/TokenB/TokenC",
    ]
    assert "TokenA" not in repr(settings)
    assert settings.notify_on == ("rotation", "failure")
