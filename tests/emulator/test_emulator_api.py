"""The emulated endpoints over real loopback HTTP: envelope, keys, auth, workspaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rotator.emulator import ODD_LIST_ENTRIES, REQUEST_LOG_LIMIT, Emulator
from rotator.emulator._state import EmulatorState
from tests.emulator.emulator_support import (
    ACME_ID,
    ADMIN_KEY_ID,
    ADMIN_SECRET,
    GLOBEX_ID,
    OTHER_SECRET,
    bearer,
    seed,
)

ENVELOPE_KEYS = {"error", "success", "hasError", "statusCode", "data"}
KEYS = "/api/data/api-keys"


def test_me_answers_the_callers_user_and_workspace(admin: httpx.Client) -> None:
    response = admin.get("/api/data/me")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["error"] is None
    assert (body["success"], body["hasError"], body["statusCode"]) == (True, False, "OK")
    me = body["data"]
    assert me["workSpaceId"] == ACME_ID
    assert me["workSpaceName"] == "Acme"
    assert me["roleName"] == "Admin"
    assert me["isGlobalAdmin"] is True
    assert me["emailAddress"] == "admin@acme.example"


def test_list_shows_every_key_of_the_workspace_without_secrets(
    emulator: Emulator, admin: httpx.Client
) -> None:
    other_id, _ = emulator.add_key(ACME_ID, "billing-sync", created_by="someone-else")
    emulator.add_key(GLOBEX_ID, "not-ours")
    body = admin.get("/api/data/api-keys").json()
    assert body["statusCode"] == "OK"
    listed = body["data"]
    assert [key["name"] for key in listed] == ["rotator-admin", "billing-sync"]
    assert listed[0] == {
        "id": ADMIN_KEY_ID,
        "createdBy": listed[0]["createdBy"],
        "expires": "2028-01-01T00:00:00.0000000Z",
        "name": "rotator-admin",
    }
    assert listed[1]["id"] == other_id
    assert listed[1]["createdBy"] == "someone-else"
    assert "apiKey" not in listed[1]


def test_create_answers_200_with_the_secret_once(emulator: Emulator, admin: httpx.Client) -> None:
    response = admin.post("/api/data/api-keys", json={"tokenName": "billing@2026-11-27T00:00:00Z"})
    assert response.status_code == 200
    created = response.json()["data"]
    assert created["name"] == "billing@2026-11-27T00:00:00Z"
    assert created["expires"] == "2028-11-26T00:00:00.0000000Z"  # emulator now + 730 days
    secret = created["apiKey"]
    assert len(secret) == 48
    assert all(ch.isalnum() or ch in "-_" for ch in secret)
    assert secret in emulator.issued_secrets()
    me = admin.get("/api/data/me").json()["data"]
    new_me = httpx.get(f"{emulator.url}/api/data/me", headers=bearer(secret)).json()["data"]
    assert new_me["id"] == me["id"]  # a created key acts as the user whose key created it
    assert created["createdBy"] == me["id"]
    assert [key["id"] for key in emulator.keys(ACME_ID)] == [ADMIN_KEY_ID, created["id"]]


@pytest.mark.parametrize("body", [{}, {"tokenName": ""}, {"tokenName": 7}, None])
def test_create_without_a_token_name_is_a_validation_error(
    admin: httpx.Client, body: object
) -> None:
    response = admin.post("/api/data/api-keys", json=body)
    assert response.status_code == 400
    document = response.json()
    assert document["statusCode"] == "BadRequest"
    assert (document["success"], document["hasError"]) == (False, True)
    assert document["error"]["message"] == "Input Validation Failed"
    assert list(document["error"]["validationErrors"]) == ["tokenName"]


def test_create_with_a_body_that_is_not_json_is_a_validation_error(admin: httpx.Client) -> None:
    response = admin.post("/api/data/api-keys", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Input Validation Failed"


def test_revoke_by_id_removes_the_key_and_its_access(
    emulator: Emulator, admin: httpx.Client
) -> None:
    key_id, secret = emulator.add_key(ACME_ID, "billing")
    response = admin.delete(f"/api/data/api-keys/{key_id}/revoke")
    assert response.status_code == 200
    # The OpenAPI file's AstroResult: no data (a "data": null is a variant).
    assert response.json() == {
        "error": None,
        "success": True,
        "hasError": False,
        "statusCode": "OK",
    }
    assert [key["id"] for key in emulator.keys(ACME_ID)] == [ADMIN_KEY_ID]
    assert emulator.keys(ACME_ID, include_revoked=True)[1]["revoked"] is True
    assert [key["name"] for key in admin.get("/api/data/api-keys").json()["data"]] == [
        "rotator-admin"
    ]
    assert httpx.get(f"{emulator.url}/api/data/me", headers=bearer(secret)).status_code == 401


def test_revoke_of_an_unknown_or_revoked_id_is_404_by_default(
    emulator: Emulator, admin: httpx.Client
) -> None:
    key_id, _ = emulator.add_key(ACME_ID, "billing")
    assert admin.delete(f"/api/data/api-keys/{key_id}/revoke").status_code == 200
    again = admin.delete(f"/api/data/api-keys/{key_id}/revoke")
    assert again.status_code == 404
    assert again.json()["statusCode"] == "NotFound"
    assert admin.delete("/api/data/api-keys/not-a-uuid/revoke").status_code == 404


def test_revoke_all_revokes_every_key_of_the_workspace_the_callers_too(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_key(ACME_ID, "billing")
    response = admin.delete("/api/data/api-keys/revoke-all")
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert emulator.keys(ACME_ID) == []
    assert admin.get("/api/data/me").status_code == 401
    assert len(emulator.keys(GLOBEX_ID)) == 1  # another workspace is untouched


def test_a_key_acts_in_its_own_workspace_only(emulator: Emulator, admin: httpx.Client) -> None:
    globex_key_id, _ = emulator.add_key(GLOBEX_ID, "globex-billing")
    assert admin.delete(f"/api/data/api-keys/{globex_key_id}/revoke").status_code == 404
    assert globex_key_id in [key["id"] for key in emulator.keys(GLOBEX_ID)]
    with httpx.Client(base_url=emulator.url, headers=bearer(OTHER_SECRET)) as globex:
        assert globex.get("/api/data/me").json()["data"]["workSpaceName"] == "Globex"
        names = [key["name"] for key in globex.get("/api/data/api-keys").json()["data"]]
    assert names == ["rotator-admin", "globex-billing"]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("no-such-key"), {"Authorization": ADMIN_SECRET}, {"Authorization": "Basic abc"}],
)
def test_unknown_or_malformed_credentials_get_401(
    emulator: Emulator, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/api/data/me"),
        ("GET", "/api/data/api-keys"),
        ("POST", "/api/data/api-keys"),
        ("DELETE", f"/api/data/api-keys/{ADMIN_KEY_ID}/revoke"),
        ("DELETE", "/api/data/api-keys/revoke-all"),
    ]:
        response = httpx.request(
            method, emulator.url + path, headers=headers, json={"tokenName": "x"}
        )
        assert response.status_code == 401
        body = response.json()
        assert body["statusCode"] == "Unauthorized"
        assert body["hasError"] is True
    assert len(emulator.keys(ACME_ID)) == 1


def test_an_expired_key_gets_401_once_the_clock_passes_its_expiry(
    emulator: Emulator, admin: httpx.Client
) -> None:
    assert emulator.now() == datetime(2026, 11, 27, tzinfo=UTC)
    emulator.set_now(datetime(2027, 12, 31, 23, 59, tzinfo=UTC))
    assert admin.get("/api/data/me").status_code == 200
    emulator.advance(timedelta(minutes=1))
    assert emulator.now() == datetime(2028, 1, 1, tzinfo=UTC)
    assert admin.get("/api/data/me").status_code == 401


def test_unknown_paths_and_methods_get_enveloped_404_and_405(admin: httpx.Client) -> None:
    missing = admin.get("/api/data/projects")
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == "NotFound"
    wrong = admin.put("/api/data/api-keys", json={})
    assert wrong.status_code == 405
    assert wrong.json()["statusCode"] == "MethodNotAllowed"
    assert admin.get("/api/data/api-keys/revoke-all").status_code == 405


def test_request_log_names_the_key_by_id_never_by_secret(
    emulator: Emulator, admin: httpx.Client
) -> None:
    admin.get("/api/data/me", headers={"x-integration-name": "key-rotator"})
    httpx.get(f"{emulator.url}/api/data/api-keys")
    httpx.get(f"{emulator.url}/api/data/api-keys", headers=bearer("wrong"))
    log = emulator.request_log()
    assert [(entry["method"], entry["path"], entry["status"]) for entry in log] == [
        ("GET", "/api/data/me", 200),
        ("GET", "/api/data/api-keys", 401),
        ("GET", "/api/data/api-keys", 401),
    ]
    assert "authorization" not in log[1]["headers"]
    assert log[0]["headers"]["authorization"] == f"Bearer {ADMIN_KEY_ID}"
    assert log[0]["headers"]["x-integration-name"] == "key-rotator"
    assert log[2]["headers"]["authorization"] == "Bearer unknown"
    assert ADMIN_SECRET not in repr(log)


def test_add_key_and_workspace_by_hand() -> None:
    emu = Emulator()
    workspace_id = emu.add_workspace("Initech")
    key_id, secret = emu.add_key(
        workspace_id, "ops", expires=datetime(2030, 1, 1, tzinfo=UTC), secret="s3cret", key_id="k1"
    )
    assert (key_id, secret) == ("k1", "s3cret")
    assert emu.keys(workspace_id) == [
        {
            "id": "k1",
            "name": "ops",
            "expires": datetime(2030, 1, 1, tzinfo=UTC),
            "revoked": False,
            "created_by": emu.keys(workspace_id)[0]["created_by"],
        }
    ]
    assert emu.issued_secrets() == {"s3cret"}
    assert emu.key_id_of("s3cret") == "k1"  # which key a sink holds, without its metadata
    assert emu.key_id_of("never-issued") is None
    with pytest.raises(ValueError, match="exists already"):
        emu.add_key(workspace_id, "dup", key_id="k1")
    with pytest.raises(ValueError, match="issued already"):
        emu.add_key(workspace_id, "dup", secret="s3cret")
    with pytest.raises(KeyError):
        emu.add_key("nowhere", "x")
    with pytest.raises(ValueError, match="timezone-aware"):
        emu.add_key(workspace_id, "naive", expires=datetime(2030, 1, 1))  # noqa: DTZ001
    default_expiry = emu.keys(workspace_id)[0]
    assert default_expiry["id"] == "k1"
    _, generated = emu.add_key(workspace_id, "generated")
    assert emu.keys(workspace_id)[-1]["expires"] == emu.now() + timedelta(days=730)
    assert len(generated) == 48


# -- keys made by other users, odd List entries, the bounded log ---------------------------------


def test_a_key_made_by_a_person_lists_and_acts_as_that_person(
    emulator: Emulator, admin: httpx.Client
) -> None:
    person = emulator.add_user(ACME_ID, "Pat Person", email="pat@acme.example", role="Admin")
    admin_user = emulator.admin_user_id(ACME_ID)
    assert person != admin_user
    key_id, secret = emulator.add_key(ACME_ID, "billing@2026-06-01T00:00:00Z", created_by=person)
    # The rotator's admin makes a key through the API: it is the admin's.
    mine = admin.post(KEYS, json={"tokenName": "billing@2026-11-27T00:00:00Z"}).json()["data"]
    assert mine["createdBy"] == admin_user
    listed = {key["id"]: key["createdBy"] for key in admin.get(KEYS).json()["data"]}
    assert listed == {ADMIN_KEY_ID: admin_user, key_id: person, mine["id"]: admin_user}
    with httpx.Client(base_url=emulator.url, headers=bearer(secret)) as as_person:
        me = as_person.get("/api/data/me").json()["data"]
        assert (me["id"], me["fullName"], me["emailAddress"]) == (
            person,
            "Pat Person",
            "pat@acme.example",
        )
        theirs = as_person.post(KEYS, json={"tokenName": "pat-tool"}).json()["data"]
        assert theirs["createdBy"] == person
    assert admin.get("/api/data/me").json()["data"]["id"] == admin_user
    assert {key["id"]: key["created_by"] for key in emulator.keys(ACME_ID)}[key_id] == person


def test_users_by_hand_and_from_a_seed() -> None:
    emu = Emulator(
        {
            "workspaces": [
                {
                    "id": "w1",
                    "name": "Acme Corp",
                    "users": [{"id": "u-pat", "full_name": "Pat", "email": "p@x.example"}],
                    "keys": [{"name": "pat-key", "secret": "pat-secret", "created_by": "u-pat"}],
                }
            ]
        }
    )
    assert emu.keys("w1")[0]["created_by"] == "u-pat"
    generated = emu.add_user("w1")
    with pytest.raises(ValueError, match="exists already"):
        emu.add_user("w1", "Again", user_id="u-pat")
    with pytest.raises(KeyError):
        emu.add_user("nowhere")
    users = emu._state.snapshot()["workspaces"][0]["users"]
    assert [user["id"] for user in users] == [emu.admin_user_id("w1"), "u-pat", generated]
    assert users[0]["email"] == "admin@acme-corp.example"
    assert users[2]["email"].endswith("@example.com")
    # A key made by a user nobody added still answers me, as that user id.
    _, stray = emu.add_key("w1", "stray", created_by="u-unknown")
    with emu, httpx.Client(base_url=emu.url, headers=bearer(stray)) as client:
        assert client.get("/api/data/me").json()["data"]["id"] == "u-unknown"


def test_odd_list_entries_follow_the_keys_and_are_not_keys(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_list_entries(ACME_ID, ODD_LIST_ENTRIES)
    emulator.add_list_entries(ACME_ID, [{"id": "a/b", "name": "x", "expires": "2027-01-01"}])
    data = admin.get(KEYS).json()["data"]
    assert data[0]["id"] == ADMIN_KEY_ID
    assert data[1:] == [*ODD_LIST_ENTRIES, {"id": "a/b", "name": "x", "expires": "2027-01-01"}]
    assert data[1]["expires"] == "0001-01-01T00:00:00"
    assert len(emulator.keys(ACME_ID)) == 1  # not real keys
    with httpx.Client(base_url=emulator.url, headers=bearer(OTHER_SECRET)) as globex:
        assert len(globex.get(KEYS).json()["data"]) == 1  # per workspace
    emulator.clear_list_entries(ACME_ID)
    assert len(admin.get(KEYS).json()["data"]) == 1
    emulator.add_list_entries(ACME_ID, [None])
    emulator.clear_list_entries()
    assert len(admin.get(KEYS).json()["data"]) == 1
    with pytest.raises(KeyError):
        emulator.add_list_entries("nowhere", [])


def test_a_key_id_with_a_slash_can_exist_and_is_not_revocable_by_path(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_key(ACME_ID, "odd", key_id="odd/slash")
    assert "odd/slash" in [key["id"] for key in admin.get(KEYS).json()["data"]]
    assert admin.delete(f"{KEYS}/odd/slash/revoke").status_code == 404


def test_the_request_log_keeps_only_the_latest_requests() -> None:
    state = EmulatorState(seed())
    headers = {"authorization": f"Bearer {ADMIN_SECRET}"}
    for index in range(REQUEST_LOG_LIMIT + 5):
        state.handle("GET", f"/api/data/me?{index}", headers, b"")
    log = state.request_log()
    assert len(log) == REQUEST_LOG_LIMIT
    assert log[0]["path"] == "/api/data/me?5"
    assert log[-1]["path"] == f"/api/data/me?{REQUEST_LOG_LIMIT + 4}"


def test_lifecycle_url_before_start_repeat_start_and_double_stop() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.url
    assert repr(emu) == "Emulator(stopped)"
    emu.start()
    try:
        assert emu.url.startswith("http://127.0.0.1:")
        assert repr(emu) == f"Emulator({emu.url})"
        with pytest.raises(RuntimeError, match="already running"):
            emu.start()
    finally:
        emu.stop()
    emu.stop()  # a second stop is harmless


def test_start_on_a_chosen_port_and_stop_with_a_kept_alive_connection() -> None:
    with Emulator() as probe:
        port = probe.port
    emu = Emulator({"workspaces": [{"name": "A", "keys": [{"name": "k", "secret": "sek"}]}]})
    emu.start(port)
    try:
        assert emu.url == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=emu.url, headers=bearer("sek")) as client:
            assert client.get("/api/data/me").status_code == 200
            emu.stop()  # the client's connection is still open: stop must not hang on it
            with pytest.raises(httpx.TransportError):
                client.get("/api/data/me")
    finally:
        emu.stop()


def test_start_on_a_port_in_use_fails_cleanly() -> None:
    with Emulator() as busy:
        other = Emulator()
        with pytest.raises(OSError, match="in use"):
            other.start(busy.port)
        with pytest.raises(RuntimeError):
            _ = other.url
