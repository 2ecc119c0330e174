"""``serve``'s trigger endpoints end to end: a real ``rotator serve`` subprocess against the
in-process emulator, driven over HTTP on loopback, as a script or a leak scanner would.

What ops rely on (README, "Triggers"): without ROTATOR_TRIGGER_TOKEN the paths do not exist
(404); a request without the token (or a valid Standard Webhooks signature) is 401 and changes
nothing, whatever it names; ``POST /v1/rotate`` is ``rotate --now`` (the same JSON as ``rotate
-o json``); an Idempotency-Key rotates once; a trigger during a scheduled pass waits for it (or
409 after ROTATOR_SHUTDOWN_TIMEOUT_SECONDS); ``POST /v1/leaks`` replaces and revokes the key a
secret is, current or previous, and changes nothing for a secret no sink holds; the secret
never reaches the log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rotator.app import match_leak
from rotator.emulator import Emulator
from rotator.events import Event
from rotator.locks.file import FileLock
from rotator.metrics import Metrics
from rotator.settings import Settings, load_settings
from rotator.triggers import Answer, Triggers
from tests.test_service import (
    CREATE_PATH,
    Deployment,
    emulated_deployment,
    serving,
    stop,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.slow

TOKEN = "trigger-t0ken-for-the-tests-0123456789"
WEBHOOK_KEY = b"a webhook signing key of 32 byte"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with emulated_deployment(tmp_path) as made:
        yield made


def post(
    deployment: Deployment,
    path: str,
    body: object,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        deployment.url(path),
        content=content,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=timeout,
    )


def start(deployment: Deployment, **env: str) -> Any:
    """serve with the trigger token, no pass on start (a test starts what it needs)."""
    settings = {"ROTATOR_TRIGGER_TOKEN": TOKEN, "ROTATOR_RUN_ON_START": "false", **env}
    return serving(deployment, **settings)


def live(deployment: Deployment, credential: str) -> list[dict[str, Any]]:
    return [
        k
        for k in deployment.emu.keys(deployment.workspace_id)
        if str(k["name"]).split("@", 1)[0] == credential
    ]


def changing_requests(deployment: Deployment) -> list[dict[str, Any]]:
    return [r for r in deployment.emu.request_log() if r["method"] != "GET"]


def events(deployment: Deployment, name: str) -> list[dict[str, Any]]:
    return [e for e in deployment.events() if e["event"] == name]


def sign(body: bytes, *, key: bytes = WEBHOOK_KEY, at: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, computed here by the specification (not by the
    library serve uses): base64 HMAC-SHA256 of ``id.timestamp.body``."""
    message_id = f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time() if at is None else at))
    mac = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


# ------------------------------------------------------------------ no token, bad tokens


def test_without_the_token_the_paths_do_not_exist(deployment: Deployment) -> None:
    deployment.add_key("app-billing", days_left=300)
    with serving(deployment, ROTATOR_RUN_ON_START="false") as process:
        wait_ready(deployment, process)
        for path in ("/v1/rotate", "/v1/leaks"):
            answer = post(deployment, path, {"credentials": ["app-billing"]}, BEARER)
            assert answer.status_code == 404
            assert answer.text == httpx.get(deployment.url("/nope")).text
            assert httpx.get(deployment.url(path)).status_code == 404
        assert stop(process) == 0
    assert deployment.emu.request_log() == []


def test_a_bad_or_missing_token_is_401_and_changes_nothing(deployment: Deployment) -> None:
    key_id, secret = deployment.add_key("app-billing", days_left=300)
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token-of-the-same-kind-0123"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"X-Api-Key": TOKEN},
    ]
    requests = [
        ("/v1/rotate", {"credentials": ["app-billing"]}),
        ("/v1/rotate", {"workspace": "no-such-workspace", "credentials": ["app-billing"]}),
        ("/v1/rotate", {"credentials": ["no-such-credential"]}),
        ("/v1/rotate", b"not json"),
        ("/v1/leaks", {"secret": secret}),
    ]
    with start(deployment, ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET) as process:
        wait_ready(deployment, process)
        answers = set()
        for path, body in requests:
            for headers in wrong:
                answer = post(deployment, path, body, headers)
                assert answer.status_code == 401, (path, headers, answer.text)
                answers.add((answer.text, answer.headers["www-authenticate"]))
            # A signature made with another key, or too old, is no better.
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            for headers in (sign(raw, key=b"another key entirely, 32 bytes!"),
                            sign(raw, at=time.time() - 3600)):  # fmt: skip
                assert post(deployment, path, raw, headers).status_code == 401
        # The same answer whatever the request named: nothing about what exists shows.
        assert len(answers) == 1
        assert stop(process) == 0
    assert deployment.emu.request_log() == []
    assert [k["id"] for k in live(deployment, "app-billing")] == [key_id]
    assert events(deployment, "trigger.received") == []
    assert secret not in deployment.log_path.read_text()


# ------------------------------------------------------------------------- POST /v1/rotate


def test_a_trigger_rotates_as_rotate_now_does(deployment: Deployment) -> None:
    old_id, old_secret = deployment.add_key("app-billing", days_left=300)
    other_id, _ = deployment.add_key("app-other", days_left=300)
    with start(deployment) as process:
        wait_ready(deployment, process)
        answer = post(deployment, "/v1/rotate", {"credentials": ["app-billing"]}, BEARER)
        assert answer.status_code == 200, answer.text
        assert stop(process) == 0

    document = answer.json()
    # The object `rotate -o json` prints.
    assert document["exit_code"] == 0
    assert document["counts"]["rotated"] == 1
    assert document["dry_run"] is False
    assert [w["name"] for w in document["workspaces"]] == ["default"]
    # Rotated at once, the old key revoked (ROTATOR_EMERGENCY_GRACE_HOURS 0); nothing else.
    (new,) = live(deployment, "app-billing")
    assert new["id"] != old_id
    held = (deployment.sink_dir / "app-billing").read_text()
    assert held != old_secret and deployment.works(held)
    assert not deployment.works(old_secret)
    assert [k["id"] for k in live(deployment, "app-other")] == [other_id]

    (received,) = events(deployment, "trigger.received")
    assert received["source"] == "api"
    assert received["id"] == answer.headers["trigger-id"]
    created = events(deployment, "rotation.created")
    assert [e["trigger"] for e in created] == ["api"]
    assert all(e["trigger_id"] == received["id"] for e in created)


def test_unknown_names_are_404_and_bad_bodies_400_with_nothing_changed(
    deployment: Deployment,
) -> None:
    key_id, _ = deployment.add_key("app-billing", days_left=300)
    with start(deployment) as process:
        wait_ready(deployment, process)
        unknown = post(
            deployment, "/v1/rotate", {"credentials": ["app-billing", "app-nope"]}, BEARER
        )
        assert unknown.status_code == 404
        assert "app-nope" in unknown.json()["error"]
        elsewhere = post(
            deployment,
            "/v1/rotate",
            {"workspace": "elsewhere", "credentials": ["app-billing"]},
            BEARER,
        )
        assert elsewhere.status_code == 404
        assert "elsewhere" in elsewhere.json()["error"]
        for body, says in [
            (b"{not json", "not JSON"),
            ([], "not a JSON object"),
            ({}, "credentials"),
            ({"credentials": "app-billing"}, "credentials must be"),
            ({"credentials": []}, "credentials must be"),
            ({"credential": ["app-billing"]}, "unknown field(s) credential"),
            ({"credentials": ["app-billing"], "all": True}, "not both"),
            ({"all": "yes"}, "all must be"),
        ]:
            answer = post(deployment, "/v1/rotate", body, BEARER)
            assert answer.status_code == 400, (body, answer.text)
            assert says in answer.json()["error"]
        for body in [{}, {"secret": ""}, {"secret_sha256": "abc"}, {"secret": 1}]:
            assert post(deployment, "/v1/leaks", body, BEARER).status_code == 400
        assert httpx.get(deployment.url("/v1/rotate")).status_code == 405
        too_big = {"credentials": ["app-billing"], "pad": "x" * 70_000}
        assert post(deployment, "/v1/rotate", too_big, BEARER).status_code == 413
        chunked = httpx.post(
            deployment.url("/v1/rotate"),
            content=iter([b'{"credentials": ["app-billing"]}']),
            headers=BEARER,
            timeout=10,
        )
        assert chunked.status_code == 411
        assert stop(process) == 0
    assert changing_requests(deployment) == []
    assert [k["id"] for k in live(deployment, "app-billing")] == [key_id]


def test_a_repeated_idempotency_key_rotates_once(deployment: Deployment) -> None:
    deployment.add_key("app-billing", days_left=300)
    headers = {**BEARER, "Idempotency-Key": "deploy-4711"}
    body = {"workspace": "default", "credentials": ["app-billing"]}
    with start(deployment) as process:
        wait_ready(deployment, process)
        first = post(deployment, "/v1/rotate", body, headers)
        again = post(deployment, "/v1/rotate", body, headers)
        other_body = post(deployment, "/v1/rotate", {"all": True}, headers)
        assert stop(process) == 0
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["trigger-id"] == first.headers["trigger-id"]
    assert again.headers["idempotent-replayed"] == "true"
    # The same key with another request is a mistake, refused; nothing done for it.
    assert other_body.status_code == 422
    creates = [r for r in deployment.emu.request_log() if r["method"] == "POST"]
    assert len([r for r in creates if r["path"] == CREATE_PATH]) == 1
    assert len(live(deployment, "app-billing")) == 1
    assert len(events(deployment, "trigger.received")) == 1


def test_a_signed_request_is_accepted_and_its_replay_rotates_nothing(
    deployment: Deployment,
) -> None:
    # The library comes with the extra `notify`; without it serve accepts only the token.
    pytest.importorskip("standardwebhooks", reason="the notify extra is not installed")
    deployment.add_key("app-billing", days_left=300)
    raw = json.dumps({"credentials": ["app-billing"]}).encode()
    headers = sign(raw)
    with start(deployment, ROTATOR_WEBHOOK_SECRET=WEBHOOK_SECRET) as process:
        wait_ready(deployment, process)
        first = post(deployment, "/v1/rotate", raw, headers)
        replay = post(deployment, "/v1/rotate", raw, headers)
        # Signed for another body: refused.
        tampered = post(deployment, "/v1/rotate", raw.replace(b"billing", b"billinG"), headers)
        assert stop(process) == 0
    assert first.status_code == 200, first.text
    assert replay.status_code == 200 and replay.json() == first.json()
    assert tampered.status_code == 401
    assert len([r for r in deployment.creates() if r["path"] == CREATE_PATH]) == 1


# ---------------------------------------------------------------- a pass holds the lock


def _create_in_flight(deployment: Deployment, process: subprocess.Popen[bytes]) -> None:
    wait_ready(deployment, process)
    wait_for(
        lambda: any(e["event"] == "key.evaluated" and e.get("due") for e in deployment.events()),
        "the scheduled pass to reach its due credential",
    )
    time.sleep(0.3)  # the create is on its way to the emulator's delay
    assert deployment.creates() == []


def test_a_trigger_during_a_scheduled_pass_waits_for_it_and_rotates_once(
    deployment: Deployment,
) -> None:
    due_id, _ = deployment.add_key("app-due", days_left=3)
    other_id, _ = deployment.add_key("app-other", days_left=300)
    deployment.emu.add_fault("POST", CREATE_PATH, delay_seconds=2, times=1)
    with serving(deployment, ROTATOR_TRIGGER_TOKEN=TOKEN) as process:
        _create_in_flight(deployment, process)
        sent = time.monotonic()
        answer = post(deployment, "/v1/rotate", {"credentials": ["app-other"]}, BEARER)
        waited = time.monotonic() - sent
        assert stop(process) == 0
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["rotated"] == 1
    assert waited > 1.0, "the trigger must wait for the pass holding the lock"
    # Exactly one rotation each: the pass's and the trigger's.
    assert len(deployment.creates()) == 2
    (due_new,) = [k for k in live(deployment, "app-due") if k["id"] != due_id]
    assert due_new
    (other_new,) = live(deployment, "app-other")
    assert other_new["id"] != other_id
    # The trigger arrived during the pass and acted only once the pass had finished.
    names = [e["event"] for e in deployment.events()]
    assert names.index("trigger.received") < names.index("pass.finished")
    created = [i for i, e in enumerate(deployment.events()) if e["event"] == "rotation.created"]
    assert [deployment.events()[i].get("trigger") for i in created] == [None, "api"]
    assert created[1] > names.index("pass.finished")


def test_a_trigger_gets_409_when_the_pass_outlasts_the_wait(deployment: Deployment) -> None:
    deployment.add_key("app-due", days_left=3)
    other_id, _ = deployment.add_key("app-other", days_left=300)
    deployment.emu.add_fault("POST", CREATE_PATH, delay_seconds=4, times=1)
    with serving(
        deployment, ROTATOR_TRIGGER_TOKEN=TOKEN, ROTATOR_SHUTDOWN_TIMEOUT_SECONDS="1"
    ) as process:
        _create_in_flight(deployment, process)
        answer = post(deployment, "/v1/rotate", {"credentials": ["app-other"]}, BEARER)
        assert answer.status_code == 409
        assert "ROTATOR_SHUTDOWN_TIMEOUT_SECONDS" in answer.json()["error"]
        wait_for(lambda: len(deployment.creates()) == 1, "the pass's create")
        wait_for(lambda: bool(events(deployment, "pass.finished")), "the pass to finish")
        assert stop(process) == 0
    assert [k["id"] for k in live(deployment, "app-other")] == [other_id]
    assert len(deployment.creates()) == 1


# ------------------------------------------------------------------------- POST /v1/leaks


def test_a_leaked_current_key_is_replaced_and_revoked(deployment: Deployment) -> None:
    deployment.add_key("app-billing", days_left=300)
    other_id, _ = deployment.add_key("app-other", days_left=300)
    with start(deployment) as process:
        wait_ready(deployment, process)
        assert post(deployment, "/v1/rotate", {"credentials": ["app-billing"]}, BEARER).is_success
        delivered = (deployment.sink_dir / "app-billing").read_text()
        meta = json.loads((deployment.sink_dir / "app-billing.meta.json").read_text())
        leaked_id = meta["key_id"]
        before = len(deployment.emu.request_log())
        answer = post(deployment, "/v1/leaks", {"secret": delivered + "\n"}, BEARER)
        again = post(deployment, "/v1/leaks", {"secret": delivered}, BEARER)
        assert stop(process) == 0
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(m["workspace"], m["credential"], m["key_id"]) for m in body["matched"]] == [
        ("default", "app-billing", leaked_id)
    ]
    assert body["matched"][0]["rotated"] is True
    assert len(deployment.emu.request_log()) > before
    (new,) = live(deployment, "app-billing")
    assert new["id"] != leaked_id
    assert not deployment.works(delivered)
    now_held = (deployment.sink_dir / "app-billing").read_text()
    assert now_held != delivered and deployment.works(now_held)
    assert [k["id"] for k in live(deployment, "app-other")] == [other_id]
    matched = events(deployment, "leak.matched")
    assert [(e["credential"], e["key_id"], e["role"], e["rotated"]) for e in matched] == [
        ("app-billing", leaked_id, "current", True),
        ("app-billing", leaked_id, "previous", False),
    ]
    leak_triggers = [e for e in events(deployment, "trigger.received") if e["source"] == "leak"]
    assert len(leak_triggers) == 2
    assert [e["trigger"] for e in events(deployment, "rotation.created")] == ["api", "leak"]
    text = deployment.log_path.read_text()
    assert delivered not in text
    assert hashlib.sha256(delivered.encode()).hexdigest() not in text
    # Reported again once revoked: still recognised (the record keeps the replaced key's hash),
    # harmless now: nothing is rotated again.
    (match,) = again.json()["matched"]
    assert (match["key_id"], match["role"]) == (leaked_id, "previous")
    assert match["already_revoked"] is True and match["rotated"] is False
    assert again.json()["rotations"] == []


def test_a_leaked_previous_key_in_its_grace_period_is_revoked_at_once(
    deployment: Deployment,
) -> None:
    deployment.add_key("app-billing", days_left=300)
    rotate = {"credentials": ["app-billing"]}
    # A day of grace for each replaced key, so that a replaced key is still alive when it leaks.
    with start(deployment, ROTATOR_EMERGENCY_GRACE_HOURS="24") as process:
        wait_ready(deployment, process)
        assert post(deployment, "/v1/rotate", rotate, BEARER).is_success
        first = (deployment.sink_dir / "app-billing").read_text()
        first_id = json.loads((deployment.sink_dir / "app-billing.meta.json").read_text())["key_id"]
        assert post(deployment, "/v1/rotate", rotate, BEARER).is_success
        assert deployment.works(first), "the replaced key is in its grace period"
        answer = post(
            deployment,
            "/v1/leaks",
            {"secret_sha256": hashlib.sha256(first.encode()).hexdigest().upper()},
            BEARER,
        )
        assert stop(process) == 0
    assert answer.status_code == 200, answer.text
    (match,) = answer.json()["matched"]
    assert (match["credential"], match["key_id"], match["role"]) == (
        "app-billing",
        first_id,
        "previous",
    )
    assert not deployment.works(first)
    assert first_id not in {k["id"] for k in live(deployment, "app-billing")}
    held = (deployment.sink_dir / "app-billing").read_text()
    assert deployment.works(held)


def test_a_secret_no_sink_holds_changes_nothing(deployment: Deployment) -> None:
    key_id, secret = deployment.add_key("app-billing", days_left=300)
    with start(deployment) as process:
        wait_ready(deployment, process)
        assert post(deployment, "/v1/rotate", {"credentials": ["app-billing"]}, BEARER).is_success
        writes = len(changing_requests(deployment))
        unknown = post(deployment, "/v1/leaks", {"secret": "pm-key-nobody-has-this-one"}, BEARER)
        assert stop(process) == 0
    assert unknown.status_code == 200
    assert unknown.json() == {"matched": [], "rotations": []}
    assert len(changing_requests(deployment)) == writes
    assert len(events(deployment, "leak.unmatched")) == 1
    assert "pm-key-nobody-has-this-one" not in deployment.log_path.read_text()
    assert key_id not in {k["id"] for k in live(deployment, "app-billing")}
    assert secret not in deployment.log_path.read_text()


# ------------------------------------------------------------- config/leak-adapter, a scanner


ADAPTER = Path(__file__).resolve().parents[1] / "config" / "leak-adapter" / "leak-adapter.py"


def adapt(
    deployment: Deployment, alert: object, token_file: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ADAPTER), "--token-file", str(token_file), deployment.url("")],
        input=json.dumps(alert),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_leak_adapter_reports_a_github_alert(deployment: Deployment, tmp_path: Path) -> None:
    deployment.add_key("app-billing", days_left=300)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with start(deployment) as process:
        wait_ready(deployment, process)
        assert post(deployment, "/v1/rotate", {"credentials": ["app-billing"]}, BEARER).is_success
        delivered = (deployment.sink_dir / "app-billing").read_text()
        leaked_id = json.loads((deployment.sink_dir / "app-billing.meta.json").read_text())[
            "key_id"
        ]
        # As `gh api repos/OWNER/REPO/secret-scanning/alerts/NUMBER` prints it.
        alert = {
            "number": 42,
            "state": "open",
            "secret_type": "projectmanager_api_key",
            "secret": delivered,
            "html_url": "https://github.com/acme/app/security/secret-scanning/42",
        }
        matched = adapt(deployment, alert, token_file)
        unknown = adapt(deployment, {"alert": {**alert, "secret": "pm-key-nobody-has"}}, token_file)
        empty = adapt(deployment, {"alert": {"number": 43}}, token_file)
        assert stop(process) == 0
    assert matched.returncode == 0, matched.stderr
    (match,) = json.loads(matched.stdout)["matched"]
    assert (match["credential"], match["key_id"], match["rotated"]) == (
        "app-billing",
        leaked_id,
        True,
    )
    assert "matched default/app-billing" in matched.stderr
    assert not deployment.works(delivered)
    assert unknown.returncode == 0 and json.loads(unknown.stdout)["matched"] == []
    assert empty.returncode == 2 and "holds no secret" in empty.stderr
    for run in (matched, unknown, empty):
        assert delivered not in run.stdout + run.stderr


# --------------------------------------------------------------- told to people and machines


def test_a_leak_report_is_told_to_the_event_channels(tmp_path: Path) -> None:
    with emulated_deployment(tmp_path) as made:
        made.add_key("app-billing", days_left=300)
        settings = load_settings(made.env(ROTATOR_TRIGGER_TOKEN=TOKEN))
        sent: list[Event] = []
        triggers = Triggers(
            settings,
            work=threading.Lock(),
            stop=threading.Event(),
            metrics=Metrics(),
            send_events=sent.extend,
        )
        rotate = json.dumps({"credentials": ["app-billing"]}).encode()
        assert triggers.handle("/v1/rotate", BEARER, rotate).status == 200
        delivered = (made.sink_dir / "app-billing").read_text()
        leaked_id = json.loads((made.sink_dir / "app-billing.meta.json").read_text())["key_id"]
        for secret in (delivered, "pm-key-nobody-has-this-one"):
            body = json.dumps({"secret": secret}).encode()
            assert triggers.handle("/v1/leaks", BEARER, body).status == 200
    assert [(e.type, e.credential, e.key_id, e.reason, e.detail) for e in sent] == [
        ("leak.matched", "app-billing", leaked_id, "current", "replaced"),
        ("leak.unmatched", None, None, None, "no sink holds this secret"),
    ]
    assert len({e.id for e in sent}) == 2
    for event in sent:
        assert delivered not in repr(event)
        assert hashlib.sha256(delivered.encode()).hexdigest() not in repr(event)


# ------------------------------------------------------------------------ several workspaces


def _two_workspaces_settings(tmp_path: Path, emu: Emulator, **env: str) -> Settings:
    entries = []
    for name in ("acme", "globex"):
        workspace_id = emu.add_workspace(name.title())
        _admin_id, admin_secret = emu.add_key(
            workspace_id, "rotator-admin", expires=emu.now() + timedelta(days=700)
        )
        emu.add_key(workspace_id, "app-billing", expires=emu.now() + timedelta(days=300))
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(admin_secret)
        entries.append(f"  - {{name: {name}, api_key_file: {key_file}}}\n")
    workspaces = tmp_path / "workspaces.yaml"
    workspaces.write_text("workspaces:\n" + "".join(entries))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    environ.update(
        ROTATOR_API_URL=emu.url,
        ROTATOR_WORKSPACES_FILE=str(workspaces),
        ROTATOR_KEY_NAMES="app-*",
        ROTATOR_SINK_FILE_DIR=str(tmp_path / "secrets"),
        ROTATOR_HTTP_MAX_RETRIES="0",
        ROTATOR_TRIGGER_TOKEN=TOKEN,
        **env,
    )
    return load_settings(environ)


def _two_workspaces(tmp_path: Path, emu: Emulator, **env: str) -> Triggers:
    return Triggers(
        _two_workspaces_settings(tmp_path, emu, **env),
        work=threading.Lock(),
        stop=threading.Event(),
        metrics=Metrics(),
    )


def _call(triggers: Triggers, path: str, body: object) -> Answer:
    return triggers.handle(path, BEARER, json.dumps(body).encode())


def test_a_leak_is_matched_in_the_one_workspace_that_holds_it(tmp_path: Path) -> None:
    with Emulator() as emu:
        triggers = _two_workspaces(tmp_path, emu)
        unnamed = _call(triggers, "/v1/rotate", {"credentials": ["app-billing"]})
        assert unnamed.status == 400
        assert "name the workspace" in str(unnamed.body)
        for name in ("acme", "globex"):
            body = {"workspace": name, "credentials": ["app-billing"]}
            assert _call(triggers, "/v1/rotate", body).status == 200
        held = {
            n: (tmp_path / "secrets" / n / "app-billing").read_text() for n in ("acme", "globex")
        }
        answer = _call(triggers, "/v1/leaks", {"secret": held["globex"]})
        assert answer.status == 200
        body = answer.body
        assert isinstance(body, dict)
        assert [(m["workspace"], m["credential"]) for m in body["matched"]] == [
            ("globex", "app-billing")
        ]
        # The other workspace's credential of the same name is untouched.
        assert (tmp_path / "secrets" / "acme" / "app-billing").read_text() == held["acme"]
        assert (tmp_path / "secrets" / "globex" / "app-billing").read_text() != held["globex"]


def test_under_dry_run_a_trigger_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with Emulator() as emu:
        triggers = _two_workspaces(tmp_path, emu, ROTATOR_DRY_RUN="true")
        body = {"workspace": "acme", "credentials": ["app-billing"]}
        assert _call(triggers, "/v1/rotate", body).status == 403
        assert _call(triggers, "/v1/leaks", {"secret": "pm-anything"}).status == 403
        assert [r for r in emu.request_log() if r["method"] != "GET"] == []


def test_a_rotate_trigger_is_409_while_another_process_holds_the_workspace(
    tmp_path: Path,
) -> None:
    with Emulator() as emu:
        triggers = _two_workspaces(tmp_path, emu, ROTATOR_SHUTDOWN_TIMEOUT_SECONDS="1")
        body = {"workspace": "acme", "credentials": ["app-billing"]}
        # Another rotator's pass holds acme's own lock (not this serve's work lock).
        with FileLock(tmp_path / "secrets" / "acme").hold():
            answer = _call(triggers, "/v1/rotate", body)
        assert answer.status == 409
        assert isinstance(answer.body, dict)
        assert "ROTATOR_SHUTDOWN_TIMEOUT_SECONDS" in answer.body["error"]
        assert [r for r in emu.request_log() if r["method"] != "GET"] == []
        assert _call(triggers, "/v1/rotate", body).status == 200


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_leak_no_sink_can_rule_out_is_503_never_an_all_clear(tmp_path: Path) -> None:
    with Emulator() as emu:
        triggers = _two_workspaces(tmp_path, emu)
        for name in ("acme", "globex"):
            body = {"workspace": name, "credentials": ["app-billing"]}
            assert _call(triggers, "/v1/rotate", body).status == 200
        globex = (tmp_path / "secrets" / "globex" / "app-billing").read_text()
        # acme's record cannot be read: a key of acme's may be the one reported.
        (tmp_path / "secrets" / "acme" / "app-billing.meta.json").write_text("{")
        unknown = _call(triggers, "/v1/leaks", {"secret": "pm-key-nobody-has-this-one"})
        assert unknown.status == 503
        assert isinstance(unknown.body, dict)
        assert (unknown.body["matched"], unknown.body["unread"]) == ([], ["acme"])
        # A match elsewhere is acted on all the same, and the unread workspace still named.
        found = _call(triggers, "/v1/leaks", {"secret": globex})
        assert found.status == 200
        assert isinstance(found.body, dict)
        assert [(m["workspace"], m["rotated"]) for m in found.body["matched"]] == [("globex", True)]
        assert found.body["unread"] == ["acme"]
        # Without its credential, a workspace cannot be searched at all: unread as well.
        (tmp_path / "acme.key").unlink()
        (tmp_path / "secrets" / "acme" / "app-billing.meta.json").unlink()
        again = _call(triggers, "/v1/leaks", {"secret": "pm-key-nobody-has-this-one"})
        assert again.status == 503
        assert isinstance(again.body, dict)
        assert again.body["unread"] == ["acme"]


def test_a_leak_of_either_key_of_a_delivery_cut_short_names_that_key(tmp_path: Path) -> None:
    """A pass killed between the two phases of a delivery leaves the new key's secret in the
    sink, its record naming that key pending, and the key it replaces only as the record's hash:
    both keys work, and a leak of either is matched as the credential's current key, by its own
    id."""
    with Emulator() as emu:
        settings = _two_workspaces_settings(tmp_path, emu)
        triggers = Triggers(
            settings, work=threading.Lock(), stop=threading.Event(), metrics=Metrics()
        )
        body = {"workspace": "acme", "credentials": ["app-billing"]}
        assert _call(triggers, "/v1/rotate", body).status == 200
        folder = tmp_path / "secrets" / "acme"
        replaced = (folder / "app-billing").read_text()
        meta = json.loads((folder / "app-billing.meta.json").read_text())
        pending = "pm-the-pending-key-of-a-delivery-cut-short"
        meta |= {"pending_key_id": "k-pending", "pending_secret_sha256": _sha256(pending)}
        (folder / "app-billing.meta.json").write_text(json.dumps(meta))
        (folder / "app-billing").write_text(pending)
        for secret, key_id in ((pending, "k-pending"), (replaced, meta["key_id"])):
            found = match_leak(settings, _sha256(secret))
            assert found.unread == {}
            assert [(m.workspace, m.key_id, m.role) for m in found.matches] == [
                ("acme", key_id, "current")
            ]
