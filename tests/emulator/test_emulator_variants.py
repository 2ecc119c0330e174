"""Each variant (one switch per unknown of the API's documentation, and the latency): its effect."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rotator.emulator import Emulator
from tests.emulator.emulator_support import (
    ACME_ID,
    ADMIN_KEY_ID,
    ADMIN_SECRET,
    OTHER_SECRET,
    bearer,
    seed,
)


def listed(admin: httpx.Client) -> list[dict[str, object]]:
    data = admin.get("/api/data/api-keys").json()["data"]
    assert isinstance(data, list)
    return data


@pytest.mark.parametrize(
    ("variant", "expected"), [("absent", "missing"), ("null", None), ("empty", "")]
)
def test_list_api_key(
    emulator: Emulator, admin: httpx.Client, variant: str, expected: object
) -> None:
    emulator.set_variants(list_api_key=variant)
    key = listed(admin)[0]
    assert key.get("apiKey", "missing") == expected


def test_list_expired(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_key(ACME_ID, "old", expires=emulator.now() - timedelta(days=1))
    assert [key["name"] for key in listed(admin)] == ["rotator-admin", "old"]
    emulator.set_variants(list_expired=False)
    assert [key["name"] for key in listed(admin)] == ["rotator-admin"]


@pytest.mark.parametrize(
    ("style", "digits", "expected"),
    [
        ("z", 7, "2028-01-01T00:00:00.1234560Z"),
        ("z", 3, "2028-01-01T00:00:00.123Z"),
        ("z", 0, "2028-01-01T00:00:00Z"),
        ("offset", 7, "2028-01-01T02:00:00.1234560+02:00"),
        ("offset", 0, "2028-01-01T02:00:00+02:00"),
        ("naive", 7, "2028-01-01T00:00:00.1234560"),
        ("naive", 1, "2028-01-01T00:00:00.1"),
    ],
)
def test_expires_format(
    emulator: Emulator, admin: httpx.Client, style: str, digits: int, expected: str
) -> None:
    expires = datetime(2028, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    emulator.add_key(ACME_ID, "fractional", expires=expires)
    emulator.set_variants(expires_format=style, expires_fraction_digits=digits)
    shown = listed(admin)[1]["expires"]
    assert shown == expected
    parsed = datetime.fromisoformat(str(shown))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    assert abs(parsed - expires) < timedelta(seconds=1)  # the same instant, however shown


@pytest.mark.parametrize(("status", "name"), [(404, "NotFound"), (400, "BadRequest"), (200, "OK")])
def test_revoke_unknown_status(
    emulator: Emulator, admin: httpx.Client, status: int, name: str
) -> None:
    emulator.set_variants(revoke_unknown_status=status)
    response = admin.delete("/api/data/api-keys/00000000-0000-4000-8000-000000000000/revoke")
    assert response.status_code == status
    assert response.json()["statusCode"] == name
    assert response.json()["success"] is (status == 200)


def test_revoke_self(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(revoke_self="deny")
    denied = admin.delete(f"/api/data/api-keys/{ADMIN_KEY_ID}/revoke")
    assert denied.status_code == 400
    assert denied.json()["hasError"] is True
    assert admin.get("/api/data/me").status_code == 200
    emulator.set_variants(revoke_self="allow")
    assert admin.delete(f"/api/data/api-keys/{ADMIN_KEY_ID}/revoke").status_code == 200
    assert admin.get("/api/data/me").status_code == 401


def test_unauthorized_body(emulator: Emulator) -> None:
    url = f"{emulator.url}/api/data/me"
    enveloped = httpx.get(url, headers=bearer("nope"))
    assert enveloped.json()["error"]["message"] == "Authentication Failed"
    emulator.set_variants(unauthorized_body="empty")
    empty = httpx.get(url, headers=bearer("nope"))
    assert (empty.status_code, empty.content) == (401, b"")


def test_error_on_success(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(error_on_success="absent")
    body = admin.get("/api/data/me").json()
    assert "error" not in body
    assert body["success"] is True
    failure = admin.post("/api/data/api-keys", json={})
    assert failure.json()["error"]["message"] == "Input Validation Failed"  # errors still show


#: The properties of AstroResult, what both revoke operations answer in the API's OpenAPI file;
#: it allows no other (``additionalProperties: false``), so no ``data``.
ASTRO_RESULT_PROPERTIES = frozenset({"error", "success", "hasError", "statusCode"})


def test_revoke_answers_carry_no_data_by_default(emulator: Emulator, admin: httpx.Client) -> None:
    key_id, _ = emulator.add_key(ACME_ID, "a")
    for path in (f"/api/data/api-keys/{key_id}/revoke", "/api/data/api-keys/revoke-all"):
        body = admin.delete(path).json()
        assert set(body) <= ASTRO_RESULT_PROPERTIES
        assert body["success"] is True


def test_revoke_data_null_is_a_variant(emulator: Emulator, admin: httpx.Client) -> None:
    # The API's documentation leaves open whether a revoke answer carries "data": null.
    key_id, _ = emulator.add_key(ACME_ID, "a")
    emulator.set_variants(revoke_data="null")
    assert admin.delete(f"/api/data/api-keys/{key_id}/revoke").json()["data"] is None
    assert admin.delete("/api/data/api-keys/revoke-all").json()["data"] is None


def test_max_keys(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(max_keys=2)
    assert admin.post("/api/data/api-keys", json={"tokenName": "second"}).status_code == 200
    refused = admin.post("/api/data/api-keys", json={"tokenName": "third"})
    assert refused.status_code == 400
    assert refused.json()["statusCode"] == "BadRequest"
    assert len(emulator.keys(ACME_ID)) == 2


def test_max_name_length(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(max_name_length=5)
    assert admin.post("/api/data/api-keys", json={"tokenName": "12345"}).status_code == 200
    refused = admin.post("/api/data/api-keys", json={"tokenName": "123456"})
    assert refused.status_code == 400
    assert "tokenName" in refused.json()["error"]["validationErrors"]


def test_duplicate_names(emulator: Emulator, admin: httpx.Client) -> None:
    assert admin.post("/api/data/api-keys", json={"tokenName": "twin"}).status_code == 200
    assert admin.post("/api/data/api-keys", json={"tokenName": "twin"}).status_code == 200
    emulator.set_variants(duplicate_names="deny")
    assert admin.post("/api/data/api-keys", json={"tokenName": "twin"}).status_code == 400
    assert admin.post("/api/data/api-keys", json={"tokenName": "single"}).status_code == 200


def test_secret_length(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(secret_length=90)
    created = admin.post("/api/data/api-keys", json={"tokenName": "long"}).json()["data"]
    assert len(created["apiKey"]) == 90


def test_propagation_failures(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.set_variants(propagation_failures=2)
    secret = admin.post("/api/data/api-keys", json={"tokenName": "slow"}).json()["data"]["apiKey"]
    url = f"{emulator.url}/api/data/me"
    statuses = [httpx.get(url, headers=bearer(secret)).status_code for _ in range(3)]
    assert statuses == [401, 401, 200]
    assert admin.get("/api/data/me").status_code == 200  # only the new key is affected


def test_variants_from_the_seed() -> None:
    document = {**seed(), "variants": {"list_api_key": "null", "secret_length": 41}}
    with Emulator(document) as emu, httpx.Client(base_url=emu.url) as client:
        client.headers.update(bearer("pm_test_admin_secret_for_acme"))
        assert client.get("/api/data/api-keys").json()["data"][0]["apiKey"] is None
        made = client.post("/api/data/api-keys", json={"tokenName": "n"}).json()["data"]
        assert len(made["apiKey"]) == 41


@pytest.mark.parametrize(
    "bad",
    [
        {"list_api_key": "maybe"},
        {"list_expired": 1},
        {"expires_fraction_digits": 8},
        {"expires_fraction_digits": True},
        {"revoke_unknown_status": 500},
        {"max_keys": -1},
        {"max_keys": "3"},
        {"secret_length": 0},
        {"propagation_failures": -1},
        {"latency_ms": -1},
        {"latency_ms": 0.5},
        {"no_such_variant": 1},
    ],
)
def test_bad_variants_are_refused(emulator: Emulator, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="variant"):
        emulator.set_variants(**bad)


def test_limits_can_be_lifted_again(emulator: Emulator) -> None:
    emulator.set_variants(max_keys=1, max_name_length=None)
    emulator.set_variants(max_keys=None)


def test_latency_delays_every_api_request_and_no_control_request(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.set_latency(150)
    assert emulator._state.variants()["latency_ms"] == 150
    for path in ("/api/data/me", "/api/data/api-keys", "/api/data/nowhere"):
        started = time.monotonic()
        admin.get(path)
        assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    admin.get("/_emulator/state")
    assert time.monotonic() - started < 0.1
    emulator.set_latency(0)
    started = time.monotonic()
    admin.get("/api/data/me")
    assert time.monotonic() - started < 0.1


def test_latency_is_served_in_parallel_not_one_request_at_a_time(emulator: Emulator) -> None:
    """A benchmark of many rotations at 20 ms each needs requests to wait side by side."""
    emulator.set_latency(300)
    count = 40
    results: list[tuple[int, float, float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def call(index: int) -> None:
        secret = ADMIN_SECRET if index % 2 else OTHER_SECRET
        with httpx.Client(base_url=emulator.url, headers=bearer(secret), timeout=10) as client:
            barrier.wait()
            path = "/api/data/me" if index % 3 else "/api/data/api-keys"
            started = time.monotonic()
            status = client.get(path).status_code
            ended = time.monotonic()
        with lock:
            results.append((status, started, ended))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _, _ in results] == [200] * count
    assert all(ended - started >= 0.3 for _, started, ended in results)
    first_start = min(started for _, started, _ in results)
    last_end = max(ended for _, _, ended in results)
    assert last_end - first_start < 2.0  # one at a time would take 12 s
    assert len(emulator.request_log()) == count


def test_latency_through_the_control_endpoint(emulator: Emulator, admin: httpx.Client) -> None:
    answer = admin.post("/_emulator/variants", json={"latency_ms": 20})
    assert answer.json()["variants"]["latency_ms"] == 20
    assert admin.post("/_emulator/variants", json={"latency_ms": "x"}).status_code == 400


def test_stop_cuts_a_long_latency_short() -> None:
    emulator = Emulator()
    emulator.start()
    emulator.set_latency(60_000)
    waiting = threading.Thread(target=lambda: _swallow(emulator.url))
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2
    waiting.join(5)
    assert not waiting.is_alive()


def _swallow(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(f"{url}/api/data/me", timeout=10)
