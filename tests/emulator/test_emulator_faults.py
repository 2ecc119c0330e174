"""Each fault: status, Retry-After, delay, drip, dropped connections, 200s that fail, bad JSON."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from rotator.emulator import Emulator
from tests.emulator.emulator_support import ACME_ID, ADMIN_SECRET

KEYS = "/api/data/api-keys"


def test_status_fault_answers_an_error_envelope_and_does_not_apply(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("POST", KEYS, status=503)
    response = admin.post(KEYS, json={"tokenName": "x"})
    assert response.status_code == 503
    body = response.json()
    assert (body["statusCode"], body["success"], body["hasError"]) == (
        "ServiceUnavailable",
        False,
        True,
    )
    assert len(emulator.keys(ACME_ID)) == 1  # nothing was created
    assert admin.post(KEYS, json={"tokenName": "x"}).status_code == 200  # times=1 used up


@pytest.mark.parametrize("retry_after", ["7", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_retry_after_is_sent_verbatim(
    emulator: Emulator, admin: httpx.Client, retry_after: str
) -> None:
    emulator.add_fault("GET", KEYS, status=429, retry_after=retry_after)
    response = admin.get(KEYS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after
    assert response.json()["statusCode"] == "TooManyRequests"


def test_times_counts_down_and_minus_one_is_forever(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("GET", KEYS, status=500, times=2)
    assert [admin.get(KEYS).status_code for _ in range(3)] == [500, 500, 200]
    emulator.add_fault("*", "*", status=502, times=-1)
    assert [admin.get("/api/data/me").status_code for _ in range(4)] == [502] * 4
    emulator.clear_faults()
    assert admin.get("/api/data/me").status_code == 200


def test_skip_lets_the_first_matching_requests_through(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("GET", "/api/data/me", status=503, skip=2)
    assert admin.get(KEYS).status_code == 200  # not a matching request: not counted
    assert [admin.get("/api/data/me").status_code for _ in range(4)] == [200, 200, 503, 200]


def test_a_skipping_rule_leaves_the_request_to_the_next_rule(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("GET", "/api/data/me", status=503, skip=1)
    emulator.add_fault("GET", "*", status=500)
    assert [admin.get("/api/data/me").status_code for _ in range(3)] == [500, 503, 200]


def test_a_negative_skip_is_refused_over_the_control_endpoint(emulator: Emulator) -> None:
    answer = httpx.post(
        f"{emulator.url}/_emulator/faults",
        json={"method": "GET", "path": "/api/data/me", "status": 503, "skip": -1},
    )
    assert answer.status_code == 400
    assert "skip" in answer.json()["error"]


def test_first_matching_rule_applies_and_others_wait(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("GET", "/api/data/me", status=500)
    emulator.add_fault("get", "*", status=503)
    assert admin.get(KEYS).status_code == 503  # the first rule does not match this path
    assert admin.get("/api/data/me").status_code == 500
    assert admin.get("/api/data/me").status_code == 200


def test_delay_answers_late_but_normally(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_fault("GET", "/api/data/me", delay_seconds=0.3)
    started = time.monotonic()
    response = admin.get("/api/data/me")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200


def test_delay_longer_than_the_clients_timeout(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_fault("GET", "/api/data/me", delay_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        admin.get("/api/data/me", timeout=0.2)
    # stop() (the fixture's teardown) must cut the 30 s delay short.


def test_drop_closes_the_connection_without_applying(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("POST", KEYS, drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        admin.post(KEYS, json={"tokenName": "lost"})
    assert len(emulator.keys(ACME_ID)) == 1
    assert emulator.request_log()[-1]["status"] is None


def test_apply_then_drop_creates_the_key_but_loses_the_response(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("POST", KEYS, apply_then_drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        admin.post(KEYS, json={"tokenName": "created-but-lost"})
    assert [key["name"] for key in emulator.keys(ACME_ID)][-1] == "created-but-lost"
    assert len(emulator.issued_secrets()) == 3  # two seeded, one created


def test_has_error_200_is_a_failure_in_a_200(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_fault("POST", KEYS, has_error_200=True)
    response = admin.post(KEYS, json={"tokenName": "x"})
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["hasError"]) == (False, True)
    assert body["error"]["message"]
    assert len(emulator.keys(ACME_ID)) == 1


def test_malformed_answers_200_with_a_body_that_is_not_json(
    emulator: Emulator, admin: httpx.Client
) -> None:
    emulator.add_fault("DELETE", "*", malformed=True)
    key_id, _ = emulator.add_key(ACME_ID, "victim")
    response = admin.delete(f"{KEYS}/{key_id}/revoke")
    assert response.status_code == 200
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()
    assert key_id in [key["id"] for key in emulator.keys(ACME_ID)]  # not applied


def read_dripped(url: str, path: str) -> list[tuple[float, bytes]]:
    """Each chunk as the socket delivered it, with the time it arrived after the request."""
    host, port = url.removeprefix("http://").split(":")
    chunks: list[tuple[float, bytes]] = []
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.monotonic()
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_SECRET}\r\n"
        connection.sendall(request.encode() + b"\r\n")
        while chunk := connection.recv(65536):
            chunks.append((time.monotonic() - started, chunk))
    return chunks


@pytest.mark.parametrize("part", ["headers", "body", "all"])
def test_drip_sends_its_part_one_byte_at_a_time(emulator: Emulator, part: str) -> None:
    emulator.add_fault("GET", "/api/data/me", drip_ms=2, drip_part=part)
    chunks = read_dripped(emulator.url, "/api/data/me")
    answer = b"".join(chunk for _, chunk in chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert b'"workSpaceName":"Acme"' in body
    # The slow part takes at least one interval a byte; a fast part goes out in one write.
    slow = {"headers": len(head) + 4, "body": len(body), "all": len(answer)}[part]
    assert chunks[-1][0] >= (slow - 1) * 0.002
    if part == "body":
        assert chunks[0][1].startswith(head + b"\r\n\r\n")
    if part == "headers":
        assert chunks[-1][1].endswith(body)
        assert len(chunks) > 10  # the head came in pieces


def test_a_dripped_answer_is_still_a_good_answer(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_fault("GET", KEYS, drip_ms=1)
    response = admin.get(KEYS)
    assert response.status_code == 200
    assert response.json()["data"][0]["name"] == "rotator-admin"
    assert response.headers["connection"] == "close"
    assert admin.get(KEYS).status_code == 200  # on a new connection


def test_stop_cuts_a_long_drip_short() -> None:
    emulator = Emulator()
    emulator.start()
    workspace = emulator.add_workspace("Acme")
    _, secret = emulator.add_key(workspace, "admin")
    emulator.add_fault("GET", "*", drip_ms=10_000)
    failures: list[BaseException] = []

    def slow_request() -> None:
        try:
            httpx.get(f"{emulator.url}/api/data/me", headers={"Authorization": f"Bearer {secret}"})
        except httpx.HTTPError as exc:
            failures.append(exc)

    client = threading.Thread(target=slow_request)
    client.start()
    time.sleep(0.2)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2
    client.join(5)
    assert not client.is_alive()
    assert len(failures) == 1  # the answer was cut, not completed


def test_a_client_hanging_up_ends_the_drip(emulator: Emulator, admin: httpx.Client) -> None:
    emulator.add_fault("GET", KEYS, drip_ms=300)
    with pytest.raises(httpx.ReadTimeout):
        admin.get(KEYS, timeout=0.1)
    admin.close()
    assert httpx.get(f"{emulator.url}/_emulator/state").status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"status": 99},
        {"times": 0},
        {"times": -2},
        {"delay_seconds": -1},
        {"drip_ms": -1},
        {"drip_part": "trailers"},
    ],
)
def test_bad_faults_are_refused(emulator: Emulator, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="fault"):
        emulator.add_fault("GET", "*", **bad)  # type: ignore[arg-type]
