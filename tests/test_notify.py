"""Telling people (Apprise) and machines (signed webhooks) what a pass did, end to end.

Real passes of the ``rotator`` command against the emulator, with real receivers on loopback:
an HTTP server recording every request (Apprise's ``json://``, the webhook), an SMTP server
(``mailto://``). Signatures are checked with the Standard Webhooks library itself. Receivers
that answer 500, hang or answer slowly must leave the pass's exit code and result as they were,
and its extra time bounded; no byte any receiver got may hold a secret the emulator issued.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from rotator.emulator import Emulator
from tests.cli_support import CliResult, Seeded, run_cli, seed
from tests.servers.receivers import HttpRecorder, http_recorder, silent_server, smtp_server
from tests.test_service import (
    Deployment,
    Labels,
    deployment,  # noqa: F401 - serve's own fixture, shared
    lbl,
    scrape,
    series,
    serving,
    stop,
    wait_for,
    wait_ready,
)

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: What one pass may spend telling a channel that hangs (rotator.notify.BUDGET_SECONDS), plus
#: the slack it is waited for, plus the rest of a pass and the interpreter's start on a busy
#: machine.
BOUNDED_SECONDS = 15.0


def _signed_events(receiver: HttpRecorder) -> list[dict[str, Any]]:
    """Every request's body, verified with the Standard Webhooks library (raises if one is not
    signed with WEBHOOK_SECRET)."""
    verifier = Webhook(WEBHOOK_SECRET)
    documents = []
    for request in receiver.requests:
        document = verifier.verify(request.body, request.headers)
        assert request.headers["webhook-id"] == document["id"]
        documents.append(document)
    return documents


def _notify_lines(result: CliResult) -> list[dict[str, Any]]:
    return [e for e in result.events() if str(e.get("event")).startswith("notify.")]


def _secrets(acme: Seeded) -> set[str]:
    return acme.emu.issued_secrets() | {acme.admin_secret, WEBHOOK_SECRET}


def _assert_no_secret(received: bytes, secrets: set[str]) -> None:
    assert received, "nothing received: the test is wrong"
    for secret in secrets:
        assert secret.encode() not in received


def test_a_pass_tells_people_once_and_machines_each_event_signed(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme = seed(emulator)
    old_id, _ = acme.add_key("app-billing", days_left=5)
    acme.add_key("app-healthy", days_left=400)
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(WEBHOOK_SECRET + "\n")
    with http_recorder() as people, http_recorder() as machines, smtp_server() as (mail, port):
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_GRACE_HOURS="0",
            ROTATOR_NOTIFY_ON="all",
            ROTATOR_NOTIFY_URLS=(
                f"json://127.0.0.1:{people.port}/hook, "
                f"mailto://127.0.0.1:{port}?from=rotator@example.com&to=ops@example.com"
            ),
            ROTATOR_WEBHOOK_URL=f"{machines.url}/rotator",
            ROTATOR_WEBHOOK_SECRET_FILE=str(secret_file),
            ROTATOR_LOG_FORMAT="json",
        )
        result = run_cli(["run-once"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    new_id = next(k["id"] for k in acme.live_keys("app-billing"))

    # People: one message for the pass, on each URL.
    assert len(people.requests) == 1
    message = json.loads(people.requests[0].body)
    assert message["title"] == "key-rotator: 2 key changes"
    assert "credential app-billing" in message["message"]
    assert new_id in message["message"]
    assert old_id in message["message"]
    assert "app-healthy" not in message["message"]
    assert len(mail.messages) == 1
    sender, recipients, content = mail.messages[0]
    assert (sender, recipients) == ("rotator@example.com", ["ops@example.com"])
    assert b"key-rotator: 2 key changes" in content

    # Machines: each event, signed, with its own id; the webhook path as configured.
    documents = _signed_events(machines)
    assert [r.path for r in machines.requests] == ["/rotator", "/rotator"]
    by_type = {d["type"]: d for d in documents}
    assert set(by_type) == {"rotation.delivered", "rotation.revoked"}
    delivered, revoked = by_type["rotation.delivered"], by_type["rotation.revoked"]
    assert (delivered["workspace"], delivered["credential"]) == ("default", "app-billing")
    assert (delivered["key_id"], delivered["previous_key_id"]) == (new_id, old_id)
    assert revoked["key_id"] == old_id
    assert delivered["id"] != revoked["id"]
    assert set(delivered) >= {
        "type", "id", "time", "workspace", "credential", "key_id", "previous_key_id", "reason",
        "detail",
    }  # fmt: skip
    assert delivered["time"].endswith("Z")

    lines = _notify_lines(result)
    assert [(e["event"], e["channel"]) for e in lines].count(("notify.sent", "apprise")) == 2
    assert [(e["event"], e["channel"]) for e in lines].count(("notify.sent", "webhook")) == 2
    assert all(e.get("run_id") for e in lines)

    received = people.bodies() + machines.bodies() + b"".join(m[2] for m in mail.messages)
    _assert_no_secret(received, _secrets(acme))
    _assert_no_secret(result.output.encode(), _secrets(acme))


def test_by_default_only_failures_are_told(emulator: Emulator, tmp_path: Path) -> None:
    acme = seed(emulator)
    key_id, _ = acme.add_key("app-billing", days_left=5)
    with http_recorder() as people, http_recorder() as machines:
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_NOTIFY_URLS=f"json://127.0.0.1:{people.port}/",
            ROTATOR_WEBHOOK_URL=machines.url,
            ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        acme.add_key("app-orders", days_left=400)
        fine = run_cli(["run-once"], env, tmp_path)
        assert fine.returncode == 0, fine.describe()
        assert people.requests == [] and machines.requests == []  # a success is not news

        acme.add_key("app-stuck", days_left=3)
        acme.emu.add_fault("POST", "/api/data/api-keys", status=400, times=-1)
        failed = run_cli(["run-once"], env, tmp_path)

    assert failed.returncode == 1, failed.describe()
    documents = _signed_events(machines)
    types = sorted(d["type"] for d in documents)
    assert types == ["key.expiring", "pass.failed", "rotation.failed"]
    by_type = {d["type"]: d for d in documents}
    assert by_type["rotation.failed"]["credential"] == "app-stuck"
    assert by_type["rotation.failed"]["reason"] == "create"
    assert by_type["rotation.failed"]["detail"]
    assert by_type["key.expiring"]["credential"] == "app-stuck"
    assert by_type["pass.failed"]["reason"] == "exit-1"
    assert len(people.requests) == 1
    message = json.loads(people.requests[0].body)
    assert message["title"] == "key-rotator: 3 problems"
    assert "ROTATION FAILED" in message["message"]
    assert "credential app-stuck" in message["message"]
    assert key_id not in message["message"]  # app-billing was rotated in the first pass
    _assert_no_secret(people.bodies() + machines.bodies(), _secrets(acme))


@pytest.mark.parametrize(
    ("receiver", "delivered"),
    [({"status": 500}, False), ({"hang": True}, False), ({"delay": 1.0}, True)],
    ids=["answers-500", "hangs", "answers-slowly"],
)
def test_a_receiver_that_fails_hangs_or_is_slow_leaves_the_pass_alone(
    emulator: Emulator, tmp_path: Path, receiver: dict[str, Any], delivered: bool
) -> None:
    acme = seed(emulator)
    acme.add_key("app-billing", days_left=5)
    with http_recorder(**receiver) as people, http_recorder(**receiver) as machines:
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_GRACE_HOURS="0",
            ROTATOR_NOTIFY_ON="rotation",
            ROTATOR_NOTIFY_URLS=f"json://127.0.0.1:{people.port}/",
            ROTATOR_WEBHOOK_URL=machines.url,
            ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        started = time.monotonic()
        result = run_cli(["run-once", "-o", "json"], env, tmp_path)
        elapsed = time.monotonic() - started

    # The pass did what it does without receivers, and says so.
    assert result.returncode == 0, result.describe()
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0
    assert report["counts"]["rotated"] == 1 and report["counts"]["retired"] == 1
    assert acme.live_keys("app-billing")[0]["name"] != "app-billing"
    assert elapsed < BOUNDED_SECONDS, f"the pass took {elapsed:.1f} s"

    lines = _notify_lines(result)
    outcome = "notify.sent" if delivered else "notify.failed"
    assert {(e["event"], e["channel"]) for e in lines} == {
        (outcome, "apprise"),
        (outcome, "webhook"),
    }, lines
    ids = [r.headers["webhook-id"] for r in machines.requests]
    if receiver.get("status") == 500:
        # Each event tried twice, with the same id: a receiver drops the repeat.
        assert len(ids) == 4 and len(set(ids)) == 2
        assert all(ids.count(i) == 2 for i in ids)
    elif delivered:
        assert len(ids) == len(set(ids)) == 2
    _assert_no_secret(people.bodies() + machines.bodies(), _secrets(acme))


def test_rotate_now_tells_too(emulator: Emulator, tmp_path: Path) -> None:
    acme = seed(emulator)
    old_id, _ = acme.add_key("app-billing", days_left=400)
    with http_recorder() as machines:
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_NOTIFY_ON="rotation",
            ROTATOR_WEBHOOK_URL=machines.url,
            ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        result = run_cli(["rotate", "app-billing", "--now"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    documents = _signed_events(machines)
    assert sorted(d["type"] for d in documents) == ["rotation.delivered", "rotation.revoked"]
    assert {d["key_id"] for d in documents if d["type"] == "rotation.revoked"} == {old_id}


def test_check_config_shows_notification_urls_with_their_secrets_masked(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme = seed(emulator)
    env = acme.env(
        tmp_path / "secrets",
        ROTATOR_NOTIFY_URLS=(
            "slack://TokenAAAAAA/TokenBBBBBB/TokenCCCCCC "
            "json://hookuser:hookpass@hooks.example.com/path/PathToken123?-X-Api-Key=HeaderToken9"
        ),
        ROTATOR_WEBHOOK_URL="https://hooks.example.com/rotator",
        ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    for args in (["check-config"], ["check-config", "-o", "json"]):
        result = run_cli(args, env, tmp_path)
        assert result.returncode == 0, result.describe()
        for secret in (
            "TokenAAAAAA", "TokenBBBBBB", "TokenCCCCCC", "hookuser", "hookpass", "PathToken123",
            "HeaderToken9", WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"),
        ):  # fmt: skip
            assert secret not in result.output, result.describe()
        assert "slack://****/****/****" in result.stdout
        assert "json://****@hooks.example.com/****/****?-X-Api-Key=****" in result.stdout
        assert "https://hooks.example.com/rotator" in result.stdout


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"ROTATOR_NOTIFY_URLS": "nosuchservice://TopSecretToken1"}, "ROTATOR_NOTIFY_URLS: "),
        ({"ROTATOR_NOTIFY_ON": "failures"}, "ROTATOR_NOTIFY_ON: "),
        (
            {
                "ROTATOR_WEBHOOK_URL": "http://hooks.example.com/x",
                "ROTATOR_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            "ROTATOR_WEBHOOK_URL: must be https unless the host is loopback",
        ),
        ({"ROTATOR_WEBHOOK_URL": "https://hooks.example.com/x"}, "ROTATOR_WEBHOOK_SECRET: "),
        (
            {
                "ROTATOR_WEBHOOK_URL": "https://hooks.example.com/x",
                "ROTATOR_WEBHOOK_SECRET": "TopSecretToken1",
            },
            "ROTATOR_WEBHOOK_SECRET: must start with whsec_",
        ),
    ],
    ids=["unknown-service", "unknown-word", "plain-http", "no-secret", "not-whsec"],
)
def test_bad_notification_settings_are_exit_2_naming_the_variable(
    emulator: Emulator, tmp_path: Path, variables: dict[str, str], expected: str
) -> None:
    acme = seed(emulator)
    acme.add_key("app-billing", days_left=5)
    for command in (["check-config"], ["run-once"]):
        result = run_cli(command, acme.env(tmp_path / "secrets", **variables), tmp_path)
        assert result.returncode == 2, result.describe()
        assert expected in result.stderr
        assert "TopSecretToken1" not in result.output
        assert "Traceback" not in result.output
    assert acme.changing_requests() == []


def test_notify_test_sends_one_message_on_each_channel(emulator: Emulator, tmp_path: Path) -> None:
    acme = seed(emulator)
    with http_recorder() as people, http_recorder() as machines:
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_NOTIFY_URLS=f"json://127.0.0.1:{people.port}/",
            ROTATOR_WEBHOOK_URL=machines.url,
            ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        result = run_cli(["check-config", "--online", "--notify-test"], env, tmp_path)
        assert result.returncode == 0, result.describe()
        assert "ok    apprise" in result.stdout and "ok    webhook" in result.stdout
        assert len(people.requests) == 1
        assert [d["type"] for d in _signed_events(machines)] == ["notify.test"]

        machines.status = 500
        failed = run_cli(["check-config", "--online", "--notify-test", "-o", "json"], env, tmp_path)
    assert failed.returncode == 1, failed.describe()
    rows = {row["channel"]: row for row in json.loads(failed.stdout)["notify_test"]}
    assert rows["apprise"]["status"] == "ok"
    assert rows["webhook"]["status"] == "error" and "HTTP 500" in rows["webhook"]["detail"]
    assert "rotator: notification webhook" in failed.stderr

    alone = run_cli(["check-config", "--notify-test"], env, tmp_path)
    assert alone.returncode == 2, alone.describe()
    assert "--online" in alone.stderr


@pytest.mark.slow
def test_serve_tells_each_pass_and_counts_what_it_could_not_deliver(
    deployment: Deployment,  # noqa: F811 - the fixture imported above
) -> None:
    deployment.add_key("app-billing", days_left=5)
    people = HttpRecorder(status=500).start()
    machines = HttpRecorder().start()
    variables = {
        "ROTATOR_NOTIFY_ON": "rotation",
        "ROTATOR_NOTIFY_URLS": f"json://127.0.0.1:{people.port}/",
        "ROTATOR_WEBHOOK_URL": machines.url,
        "ROTATOR_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }

    def counted() -> dict[Labels, float]:
        return series(scrape(deployment), "rotator_notifications_total")

    try:
        with serving(deployment, **variables) as process:
            wait_ready(deployment, process)
            wait_for(lambda: sum(counted().values()) >= 2, "both channels to be counted")
            assert counted() == {
                lbl(channel="apprise", result="sent"): 0,
                lbl(channel="apprise", result="failed"): 1,
                lbl(channel="webhook", result="sent"): 1,
                lbl(channel="webhook", result="failed"): 0,
            }
            success = series(scrape(deployment), "rotator_last_pass_success")
            assert success == {lbl(workspace="default"): 1}
            assert stop(process) == 0
    finally:
        people.stop()
        machines.stop()

    assert [d["type"] for d in _signed_events(machines)] == ["rotation.delivered"]
    assert len(people.requests) == 1
    failed = [e for e in deployment.events() if e["event"] == "notify.failed"]
    assert [(e["channel"], e["error"]) for e in failed] == [("apprise", "Apprise: failure")]
    assert all(e.get("run_id") for e in failed)


def test_a_mail_server_that_never_answers_costs_the_pass_its_budget_at_most(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme = seed(emulator)
    acme.add_key("app-billing", days_left=5)
    with silent_server() as port:
        env = acme.env(
            tmp_path / "secrets",
            ROTATOR_NOTIFY_ON="all",
            ROTATOR_NOTIFY_URLS=f"mailto://127.0.0.1:{port}?from=r@example.com&to=o@example.com",
        )
        started = time.monotonic()
        result = run_cli(["run-once"], env, tmp_path)
        elapsed = time.monotonic() - started

    assert result.returncode == 0, result.describe()
    assert "default/app-billing: rotated" in result.stdout
    assert elapsed < BOUNDED_SECONDS, f"the pass took {elapsed:.1f} s"
    assert [(e["event"], e["channel"]) for e in _notify_lines(result)] == [
        ("notify.failed", "apprise")
    ]
