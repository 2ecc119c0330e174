"""The /_emulator control endpoint, and `python -m rotator.emulator` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rotator.emulator import Emulator, SeedError, run
from rotator.emulator.__main__ import main
from tests.emulator.emulator_support import ACME_ID, ADMIN_SECRET, GLOBEX_ID, bearer, seed


@pytest.fixture
def control(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{emulator.url}/_emulator") as client:
        yield client


def test_state_shows_workspaces_and_keys_without_secrets(control: httpx.Client) -> None:
    state = control.get("/state").json()
    assert state["now"] == "2026-11-27T00:00:00Z"
    assert [workspace["id"] for workspace in state["workspaces"]] == [ACME_ID, GLOBEX_ID]
    acme_keys = state["workspaces"][0]["keys"]
    assert acme_keys[0]["name"] == "rotator-admin"
    assert acme_keys[0]["expires"] == "2028-01-01T00:00:00Z"
    assert acme_keys[0]["revoked"] is False
    assert ADMIN_SECRET not in json.dumps(state)


def test_secrets_lists_every_issued_secret(control: httpx.Client) -> None:
    assert set(control.get("/secrets").json()["secrets"]) == {
        ADMIN_SECRET,
        "pm_test_admin_secret_for_globex",
    }


def test_clock(emulator: Emulator, control: httpx.Client) -> None:
    assert control.post("/clock", json={"now": "2027-01-01T00:00:00+01:00"}).json() == {
        "now": "2026-12-31T23:00:00Z"
    }
    assert control.post("/clock", json={"advance_seconds": 3600}).json()["now"] == (
        "2027-01-01T00:00:00Z"
    )
    assert emulator.now().isoformat() == "2027-01-01T00:00:00+00:00"
    assert control.post("/clock", json={}).status_code == 400


def test_variants(emulator: Emulator, control: httpx.Client, admin: httpx.Client) -> None:
    answer = control.post("/variants", json={"list_api_key": "empty", "max_keys": 5})
    assert answer.status_code == 200
    assert answer.json()["variants"]["max_keys"] == 5
    assert admin.get("/api/data/api-keys").json()["data"][0]["apiKey"] == ""
    refused = control.post("/variants", json={"list_api_key": "sometimes"})
    assert refused.status_code == 400
    assert "list_api_key" in refused.json()["error"]


def test_faults(control: httpx.Client, admin: httpx.Client) -> None:
    rule = {"method": "GET", "path": "/api/data/me", "status": 429, "retry_after": "2", "times": 2}
    assert control.post("/faults", json=rule).status_code == 200
    assert admin.get("/api/data/me").headers["retry-after"] == "2"
    assert control.delete("/faults").status_code == 200
    assert admin.get("/api/data/me").status_code == 200
    assert (
        control.post("/faults", json={"method": "GET", "path": "*", "bogus": 1}).status_code == 400
    )
    assert control.post("/faults", json={"path": "*"}).status_code == 400


def test_keys_and_workspaces(emulator: Emulator, control: httpx.Client) -> None:
    made = control.post(
        "/keys", json={"workspace_id": ACME_ID, "name": "ci", "expires": "2027-06-01T00:00:00Z"}
    ).json()
    assert set(made) == {"id", "secret"}
    assert made["secret"] in emulator.issued_secrets()
    assert emulator.keys(ACME_ID)[-1]["id"] == made["id"]
    chosen = control.post(
        "/keys", json={"workspace_id": ACME_ID, "name": "fixed", "secret": "fixed-secret"}
    ).json()
    assert chosen["secret"] == "fixed-secret"
    workspace = control.post("/workspaces", json={"name": "Initech"}).json()
    assert emulator.keys(workspace["id"]) == []
    assert control.post("/keys", json={"workspace_id": "nowhere", "name": "x"}).status_code == 400


def test_users_keys_made_by_them_and_list_entries(
    emulator: Emulator, control: httpx.Client, admin: httpx.Client
) -> None:
    person = control.post(
        "/users", json={"workspace_id": ACME_ID, "full_name": "Pat", "email": "pat@x.example"}
    ).json()["id"]
    made = control.post(
        "/keys",
        json={
            "workspace_id": ACME_ID,
            "name": "billing@2026-06-01T00:00:00Z",
            "created_by": person,
        },
    ).json()
    assert emulator.keys(ACME_ID)[-1]["created_by"] == person
    with httpx.Client(base_url=emulator.url, headers=bearer(made["secret"])) as as_person:
        assert as_person.get("/api/data/me").json()["data"]["id"] == person
    state = control.get("/state").json()
    assert person in [user["id"] for user in state["workspaces"][0]["users"]]
    odd = {"id": "a/b", "name": "odd", "expires": "0001-01-01T00:00:00"}
    assert (
        control.post("/list-entries", json={"workspace_id": ACME_ID, "entries": [odd]}).status_code
        == 200
    )
    assert admin.get("/api/data/api-keys").json()["data"][-1] == odd
    assert (
        control.post("/list-entries", json={"workspace_id": ACME_ID, "entries": 1}).status_code
        == 400
    )
    assert control.request("DELETE", "/list-entries", json={}).status_code == 200
    assert admin.get("/api/data/api-keys").json()["data"][-1]["id"] != "a/b"
    drip = {"method": "GET", "path": "/api/data/me", "drip_ms": 1, "drip_part": "body"}
    assert control.post("/faults", json=drip).status_code == 200
    assert admin.get("/api/data/me").json()["data"]["id"] == emulator.admin_user_id(ACME_ID)


def test_new_keys_can_be_made_to_act_as_another_user(
    emulator: Emulator, control: httpx.Client, admin: httpx.Client
) -> None:
    person = emulator.add_user(ACME_ID, "Pat")
    assert control.post(
        "/new-key-user", json={"workspace_id": ACME_ID, "user_id": person}
    ).is_success
    assert control.get("/state").json()["workspaces"][0]["new_key_user_id"] == person
    made = admin.post("/api/data/api-keys", json={"tokenName": "app"}).json()["data"]
    assert emulator.keys(ACME_ID)[-1]["created_by"] == person
    with httpx.Client(base_url=emulator.url, headers=bearer(made["apiKey"])) as as_new:
        assert as_new.get("/api/data/me").json()["data"]["id"] == person
    # The admin itself still answers as the admin; back to the API's rule with no user.
    assert admin.get("/api/data/me").json()["data"]["id"] == emulator.admin_user_id(ACME_ID)
    assert control.post("/new-key-user", json={"workspace_id": ACME_ID}).is_success
    admin.post("/api/data/api-keys", json={"tokenName": "app-2"})
    assert emulator.keys(ACME_ID)[-1]["created_by"] == emulator.admin_user_id(ACME_ID)
    assert control.post("/new-key-user", json={"workspace_id": "nowhere"}).status_code == 400


def test_requests(control: httpx.Client, admin: httpx.Client) -> None:
    admin.get("/api/data/me")
    control.get("/state")
    requests = control.get("/requests").json()["requests"]
    assert [(entry["method"], entry["path"]) for entry in requests] == [("GET", "/api/data/me")]
    assert ADMIN_SECRET not in json.dumps(requests)


def test_bad_bodies_and_routes(control: httpx.Client) -> None:
    assert control.post("/clock", content=b"{not json").status_code == 400
    assert control.post("/clock", json=[1]).status_code == 400
    assert control.get("/nothing").status_code == 404


def test_faults_never_touch_the_control_endpoint(emulator: Emulator, control: httpx.Client) -> None:
    emulator.add_fault("*", "*", status=500, times=-1)
    assert control.get("/state").status_code == 200


def _start(*arguments: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "rotator.emulator", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_a_seed_until_a_signal(tmp_path: Path, stop_signal: signal.Signals) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed()))
    process = _start("--port", "0", "--seed", str(seed_file))
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        prefix = "emulator listening on http://127.0.0.1:"
        assert ready.startswith(prefix)
        port = int(ready.removeprefix(prefix))
        assert port > 0
        url = f"http://127.0.0.1:{port}"
        me = httpx.get(f"{url}/api/data/me", headers=bearer(ADMIN_SECRET))
        assert me.json()["data"]["workSpaceId"] == ACME_ID
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stderr == ""  # quiet: no request logging
    assert stdout == ""


@pytest.mark.slow
def test_run_without_a_seed_serves_an_empty_world() -> None:
    process = _start()
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[1]
        assert httpx.get(f"{url}/_emulator/state").json()["workspaces"] == []
        process.terminate()
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def _serve_until_sigterm(serve: Callable[[], int]) -> int:
    """Call ``serve`` here; send SIGTERM only once it has installed its own handler."""
    original = signal.getsignal(signal.SIGTERM)

    def terminate_once_it_listens() -> None:
        # Sending before run() installed its handler would kill pytest: wait for it first.
        deadline = time.monotonic() + 5
        while signal.getsignal(signal.SIGTERM) is original and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_it_listens)
    killer.start()
    try:
        return serve()
    finally:
        killer.join()
        assert signal.getsignal(signal.SIGTERM) is original  # run() restored the handler


def test_run_in_process_prints_the_ready_line_and_stops_on_sigterm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed()))
    assert _serve_until_sigterm(lambda: run(0, seed_file)) == 0
    assert capsys.readouterr().out.startswith("emulator listening on http://127.0.0.1:")


def test_main_parses_port_and_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed()))
    assert _serve_until_sigterm(lambda: main(["--port", "0", "--seed", str(seed_file)])) == 0
    assert "emulator listening on" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--seed" in capsys.readouterr().out


def test_run_refuses_a_seed_that_is_not_an_object(tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text("[]")
    with pytest.raises(SeedError, match="a seed is a JSON object, not a list"):
        run(0, seed_file)
