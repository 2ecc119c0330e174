"""rotator.client against the bundled emulator on loopback: every unknown, every fault class.

Retries use a fake ``sleep`` (no real waiting); only the delay fault costs a fraction of a second.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from rotator import __version__
from rotator.client import MAX_WAIT_SECONDS, ProjectManagerClient, SkippedKey
from rotator.emulator import ODD_LIST_ENTRIES, Emulator
from rotator.errors import (
    ApiAuthError,
    ApiError,
    ApiNotFoundError,
    ApiProtocolError,
    ApiRateLimitedError,
    ApiRequestError,
    ApiServerError,
    ApiTransportError,
)
from rotator.models import Secret
from tests.drip_server import DripServer

WORKSPACE_ID = "11111111-1111-4111-8111-111111111111"
ADMIN_KEY_ID = "22222222-2222-4222-8222-222222222222"
ADMIN_SECRET = "pm_test_admin_secret_do_not_leak_0123456789"
EMULATOR_NOW = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
KEYS = "/api/data/api-keys"
ME = "/api/data/me"


def seed() -> dict[str, Any]:
    return {
        "now": "2026-11-27T00:00:00Z",
        "workspaces": [
            {
                "id": WORKSPACE_ID,
                "name": "Acme",
                "keys": [
                    {
                        "id": ADMIN_KEY_ID,
                        "name": "rotator-admin",
                        "secret": ADMIN_SECRET,
                        "expires": "2028-01-01T00:00:00Z",
                    }
                ],
            }
        ],
    }


class Setup:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.sleeps: list[float] = []
        self.responses: list[tuple[str, str]] = []
        self.clients: list[ProjectManagerClient] = []

    def client(
        self,
        *,
        max_retries: int = 3,
        timeout_seconds: float = 5.0,
        url: str | None = None,
        credential: Secret | Callable[[], Secret] | None = None,
        **kwargs: Any,
    ) -> ProjectManagerClient:
        kwargs.setdefault("sleep", self.sleeps.append)
        client = ProjectManagerClient(
            url or self.emulator.url,
            credential if credential is not None else Secret(ADMIN_SECRET),
            integration_name="key-rotator-tests",
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            on_response=lambda endpoint, status: self.responses.append((endpoint, status)),
            rng=random.Random(3),
            clock=lambda: EMULATOR_NOW,
            **kwargs,
        )
        self.clients.append(client)
        return client

    def requests(self, method: str, path: str) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.emulator.request_log()
            if entry["method"] == method and entry["path"] == path
        ]


@pytest.fixture
def setup() -> Iterator[Setup]:
    with Emulator(seed()) as emulator:
        setup = Setup(emulator)
        yield setup
        for client in setup.clients:
            client.close()


def backoff_bounds(retry: int) -> tuple[float, float]:
    ceiling = min(30.0, 0.5 * 2 ** (retry - 1))
    return ceiling / 2, ceiling


# -- the happy path ----------------------------------------------------------------------------


def test_a_rotation_round_trip(setup: Setup) -> None:
    client = setup.client()
    identity = client.me()
    assert identity.workspace_id == WORKSPACE_ID
    assert identity.workspace_name == "Acme"

    created = client.create_key("billing-sync@2026-11-27T00:00:00Z")
    assert created.secret.reveal() in setup.emulator.issued_secrets()
    assert created.key.name == "billing-sync@2026-11-27T00:00:00Z"
    assert created.key.expires == EMULATOR_NOW + timedelta(days=730)
    assert client.me(created.secret).workspace_id == WORKSPACE_ID

    listed = {key.id: key for key in client.list_keys()}
    assert set(listed) == {ADMIN_KEY_ID, created.key.id}
    assert listed[created.key.id].base_name == "billing-sync"

    client.revoke_key(created.key.id)
    assert [key.id for key in client.list_keys()] == [ADMIN_KEY_ID]
    with pytest.raises(ApiAuthError):
        client.me(created.secret)
    assert setup.sleeps == []


def test_headers_reach_the_server(setup: Setup) -> None:
    setup.client().list_keys()
    (entry,) = setup.requests("GET", KEYS)
    headers = entry["headers"]
    assert headers["authorization"] == f"Bearer {ADMIN_KEY_ID}"  # the emulator names the key
    assert headers["x-integration-name"] == "key-rotator-tests"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == f"key-rotator/{__version__}"


def test_create_validation_error_names_the_field(setup: Setup) -> None:
    with pytest.raises(ApiRequestError) as raised:
        setup.client().create_key("")
    assert raised.value.status == 400
    assert "tokenName: The TokenName field is required." in raised.value.message


# -- every unknown's variants ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["null", "empty", "absent"])
def test_list_api_key_variants(setup: Setup, variant: str) -> None:
    setup.emulator.set_variants(list_api_key=variant)
    (key,) = setup.client().list_keys()
    assert key.id == ADMIN_KEY_ID
    assert key.name == "rotator-admin"
    assert key.expires == datetime(2028, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("expires_format", ["z", "offset", "naive"])
@pytest.mark.parametrize("digits", [0, 3, 6, 7])
def test_expires_format_variants(setup: Setup, expires_format: str, digits: int) -> None:
    exact = datetime(2027, 6, 30, 23, 59, 58, 987654, tzinfo=UTC)
    key_id, _ = setup.emulator.add_key(WORKSPACE_ID, "odata-feed", expires=exact)
    setup.emulator.set_variants(expires_format=expires_format, expires_fraction_digits=digits)
    listed = {key.id: key for key in setup.client().list_keys()}
    shown = exact.microsecond // 10 ** (6 - min(digits, 6)) * 10 ** (6 - min(digits, 6))
    assert listed[key_id].expires == exact.replace(microsecond=shown)
    assert listed[key_id].expires.tzinfo is UTC


def test_expired_keys_listed_or_not(setup: Setup) -> None:
    expired_id, _ = setup.emulator.add_key(
        WORKSPACE_ID, "old", expires=EMULATOR_NOW - timedelta(days=1)
    )
    client = setup.client()
    assert expired_id in {key.id for key in client.list_keys()}
    setup.emulator.set_variants(list_expired=False)
    assert expired_id not in {key.id for key in client.list_keys()}


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(404, ApiNotFoundError), (400, ApiRequestError), (200, None)],
)
def test_revoke_unknown_status_variants(
    setup: Setup, status: int, error_type: type[ApiError] | None
) -> None:
    setup.emulator.set_variants(revoke_unknown_status=status)
    client = setup.client()
    unknown = "33333333-3333-4333-8333-333333333333"
    if error_type is None:
        client.revoke_key(unknown)
    else:
        with pytest.raises(error_type) as raised:
            client.revoke_key(unknown)
        assert raised.value.status == status
        assert raised.value.endpoint == "revoke"
    assert len(setup.requests("DELETE", f"{KEYS}/{unknown}/revoke")) == 1


def test_revoke_twice_is_handled(setup: Setup) -> None:
    client = setup.client()
    created = client.create_key("x@2026-11-27T00:00:00Z")
    client.revoke_key(created.key.id)
    with pytest.raises(ApiNotFoundError):
        client.revoke_key(created.key.id)


def test_revoke_self_denied(setup: Setup) -> None:
    setup.emulator.set_variants(revoke_self="deny")
    with pytest.raises(ApiRequestError, match="cannot revoke itself"):
        setup.client().revoke_key(ADMIN_KEY_ID)


@pytest.mark.parametrize("body", ["envelope", "empty"])
def test_unauthorized_body_variants(setup: Setup, body: str) -> None:
    setup.emulator.set_variants(unauthorized_body=body)
    client = setup.client()
    with pytest.raises(ApiAuthError) as raised:
        client.me(Secret("pm_not_a_key_at_all_0000000000000000"))
    assert raised.value.status == 401
    expected = "Authentication Failed" if body == "envelope" else "Unauthorized"
    assert raised.value.message == expected
    assert setup.sleeps == []  # a refused credential is not retried


def test_an_expired_own_credential_is_refused(setup: Setup) -> None:
    setup.emulator.set_now(datetime(2028, 1, 2, tzinfo=UTC))
    with pytest.raises(ApiAuthError):
        setup.client().list_keys()


@pytest.mark.parametrize("error_on_success", ["null", "absent"])
@pytest.mark.parametrize("revoke_data", ["null", "absent"])
def test_error_on_success_and_revoke_data_variants(
    setup: Setup, error_on_success: str, revoke_data: str
) -> None:
    setup.emulator.set_variants(error_on_success=error_on_success, revoke_data=revoke_data)
    client = setup.client()
    created = client.create_key("x@2026-11-27T00:00:00Z")
    assert client.me().workspace_id == WORKSPACE_ID
    client.revoke_key(created.key.id)
    assert [key.id for key in client.list_keys()] == [ADMIN_KEY_ID]


@pytest.mark.parametrize("revoke_data", [None, "null", "absent"])  # None: the default
def test_both_revokes_accept_an_answer_with_or_without_data(
    setup: Setup, revoke_data: str | None
) -> None:
    if revoke_data is not None:
        setup.emulator.set_variants(revoke_data=revoke_data)
    client = setup.client(max_retries=0)
    created = client.create_key("x@2026-11-27T00:00:00Z")
    client.revoke_key(created.key.id)
    assert [key["id"] for key in setup.emulator.keys(WORKSPACE_ID)] == [ADMIN_KEY_ID]
    client.revoke_all_keys(i_understand_this_revokes_every_key=True)
    assert setup.emulator.keys(WORKSPACE_ID) == []


def test_propagation_failures_surface_as_auth_errors_for_the_engine_to_retry(
    setup: Setup,
) -> None:
    setup.emulator.set_variants(propagation_failures=1)
    client = setup.client()
    created = client.create_key("x@2026-11-27T00:00:00Z")
    with pytest.raises(ApiAuthError):
        client.me(created.secret)
    assert client.me(created.secret).workspace_id == WORKSPACE_ID


# -- every fault class -------------------------------------------------------------------------


def test_429_without_retry_after_backs_off(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, status=429, times=2)
    assert len(setup.client().list_keys()) == 1
    assert len(setup.requests("GET", KEYS)) == 3
    assert len(setup.sleeps) == 2
    for retry, wait in enumerate(setup.sleeps, start=1):
        low, high = backoff_bounds(retry)
        assert low <= wait <= high
    assert setup.responses == [("list", "429"), ("list", "429"), ("list", "200")]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("4", 4.0), ("Fri, 27 Nov 2026 00:00:25 GMT", 25.0), ("86400", MAX_WAIT_SECONDS)],
    ids=["seconds", "http-date", "capped"],
)
def test_429_with_retry_after(setup: Setup, retry_after: str, expected: float) -> None:
    setup.emulator.add_fault("GET", KEYS, status=429, retry_after=retry_after)
    setup.client().list_keys()
    assert setup.sleeps == [pytest.approx(expected)]


def test_429_every_time_gives_up(setup: Setup) -> None:
    setup.emulator.add_fault("*", "*", status=429, retry_after="1", times=-1)
    with pytest.raises(ApiRateLimitedError) as raised:
        setup.client(max_retries=2).list_keys()
    assert raised.value.status == 429
    assert len(setup.requests("GET", KEYS)) == 3
    assert setup.sleeps == [1.0, 1.0]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_retried_then_given_up(setup: Setup, status: int) -> None:
    setup.emulator.add_fault("GET", KEYS, status=status, times=-1)
    with pytest.raises(ApiServerError) as raised:
        setup.client(max_retries=3).list_keys()
    assert raised.value.status == status
    assert raised.value.message == "Emulated fault"
    assert len(setup.requests("GET", KEYS)) == 4
    assert len(setup.sleeps) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_once_then_success(setup: Setup, status: int) -> None:
    setup.emulator.add_fault("DELETE", f"{KEYS}/{ADMIN_KEY_ID}/revoke", status=status)
    setup.emulator.set_variants(revoke_self="allow")
    setup.client().revoke_key(ADMIN_KEY_ID)
    assert setup.emulator.keys(WORKSPACE_ID) == []


def test_dropped_connection_is_retried_for_list(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, drop=True, times=2)
    assert len(setup.client().list_keys()) == 1
    assert setup.responses == [("list", "error"), ("list", "error"), ("list", "200")]


def test_dropped_every_time_is_a_transport_error_with_unknown_outcome(setup: Setup) -> None:
    setup.emulator.add_fault("GET", ME, drop=True, times=-1)
    with pytest.raises(ApiTransportError) as raised:
        setup.client(max_retries=1).me()
    assert raised.value.outcome_unknown is True
    assert len(setup.requests("GET", ME)) == 2


def test_delay_beyond_the_timeout_is_retried(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, delay_seconds=0.6)
    client = setup.client(timeout_seconds=0.2)
    assert len(client.list_keys()) == 1
    assert setup.responses == [("list", "error"), ("list", "200")]
    assert len(setup.sleeps) == 1


def test_delay_on_create_is_not_retried(setup: Setup) -> None:
    setup.emulator.add_fault("POST", KEYS, delay_seconds=0.6)
    client = setup.client(timeout_seconds=0.2)
    with pytest.raises(ApiTransportError, match="timed out") as raised:
        client.create_key("slow@2026-11-27T00:00:00Z")
    assert raised.value.outcome_unknown is True
    assert setup.sleeps == []
    assert setup.responses == [("create", "error")]


def test_has_error_200_is_a_protocol_error_not_retried(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, has_error_200=True)
    with pytest.raises(ApiProtocolError) as raised:
        setup.client().list_keys()
    assert raised.value.message == "Emulated failure in a 200"
    assert raised.value.status == 200
    assert len(setup.requests("GET", KEYS)) == 1


def test_malformed_body_is_a_protocol_error_without_the_body(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, malformed=True)
    with pytest.raises(ApiProtocolError) as raised:
        setup.client().list_keys()
    assert "html" not in str(raised.value)
    assert "hiccup" not in str(raised.value)
    assert len(setup.requests("GET", KEYS)) == 1


def test_connection_refused_is_retried_and_known_not_applied() -> None:
    with Emulator(seed()) as emulator:
        url = emulator.url
    setup_sleeps: list[float] = []
    with (
        ProjectManagerClient(
            url, Secret(ADMIN_SECRET), max_retries=2, sleep=setup_sleeps.append
        ) as client,
        pytest.raises(ApiTransportError) as raised,
    ):
        client.create_key("x@2026-11-27T00:00:00Z")
    assert raised.value.outcome_unknown is False
    assert len(setup_sleeps) == 2


# -- the deadline of a whole request ---------------------------------------------------------


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    """What ``call`` raised (None if nothing) and how long it took."""
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - handed back for the test to judge
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("part", ["headers", "body", "all"])
def test_a_dripping_answer_cannot_stretch_a_list_past_its_deadline(setup: Setup, part: str) -> None:
    # One byte every 50 ms: each read gets a byte well within httpx's per-read timeout, and
    # the whole answer (a few hundred bytes) would take 10 s or more.
    setup.emulator.add_fault("GET", KEYS, drip_ms=50, drip_part=part)
    client = setup.client(timeout_seconds=0.5, max_retries=0)
    error, elapsed = timed(client.list_keys)
    assert isinstance(error, ApiTransportError), error
    assert error.message == "request timed out (ReadTimeout)"
    assert error.outcome_unknown is True
    assert 0.45 <= elapsed < 1.0
    assert setup.responses == [("list", "error")]


def test_the_deadline_is_per_attempt_and_a_retry_can_succeed(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, drip_ms=50, drip_part="body")
    client = setup.client(timeout_seconds=0.5, max_retries=1)
    error, elapsed = timed(client.list_keys)
    assert error is None
    assert elapsed < 1.0
    assert setup.responses == [("list", "error"), ("list", "200")]


def test_a_dripping_create_is_cut_off_with_its_outcome_unknown_and_not_retried(
    setup: Setup,
) -> None:
    setup.emulator.add_fault("POST", KEYS, drip_ms=50, drip_part="body")
    client = setup.client(timeout_seconds=0.5, max_retries=3)
    error, elapsed = timed(lambda: client.create_key("slow@2026-11-27T00:00:00Z"))
    assert isinstance(error, ApiTransportError), error
    assert error.outcome_unknown is True
    assert elapsed < 1.0
    assert len(setup.requests("POST", KEYS)) == 1
    assert setup.sleeps == []
    # It was applied: the key exists for a later pass to revoke as an orphan.
    assert any(k["name"] == "slow@2026-11-27T00:00:00Z" for k in setup.emulator.keys(WORKSPACE_ID))


def test_the_deadline_holds_against_an_endless_drip_of_headers() -> None:
    endless = b"HTTP/1.1 200 OK\r\nX-Drip: "
    with (
        DripServer(endless, interval=0.02, endless=True) as server,
        ProjectManagerClient(
            f"http://127.0.0.1:{server.port}",
            Secret(ADMIN_SECRET),
            timeout_seconds=0.5,
            max_retries=1,
            sleep=lambda _s: None,
        ) as client,
    ):
        error, elapsed = timed(client.list_keys)
    assert isinstance(error, ApiTransportError), error
    assert "timed out" in error.message
    assert 0.9 <= elapsed < 1.6  # two attempts of 0.5 s each, not forever
    assert server.connections == 2


def test_the_deadline_holds_against_a_tls_handshake_that_drips() -> None:
    # A TLS record header announcing 16 kB of handshake, then its bytes, one every 20 ms.
    with (
        DripServer(
            b"\x16\x03\x03\x40\x00", interval=0.02, endless=True, wait_for_request=False
        ) as server,
        ProjectManagerClient(
            f"https://127.0.0.1:{server.port}",
            Secret(ADMIN_SECRET),
            timeout_seconds=0.5,
            max_retries=0,
        ) as client,
    ):
        error, elapsed = timed(lambda: client.create_key("x@2026-11-27T00:00:00Z"))
    assert isinstance(error, ApiTransportError), error
    assert error.message == "request timed out (ConnectTimeout)"
    assert error.outcome_unknown is False  # the request itself was never sent
    assert elapsed < 1.0


def test_the_deadline_holds_through_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy route (built by httpx from HTTPS_PROXY) gets the deadline too."""
    with DripServer(b"HTTP/1.1 200 Connection established\r\n\r\n", interval=0.05) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        with ProjectManagerClient(
            "https://api.projectmanager.invalid",
            Secret(ADMIN_SECRET),
            timeout_seconds=0.5,
            max_retries=0,
        ) as client:
            error, elapsed = timed(client.list_keys)
        assert proxy.connections == 1  # it did go through the proxy
    assert isinstance(error, ApiTransportError), error
    assert "timed out" in error.message
    assert elapsed < 1.0


# -- stopping ----------------------------------------------------------------------------------


def test_a_stop_ends_a_long_retry_after_wait_at_once(setup: Setup) -> None:
    setup.emulator.add_fault("GET", KEYS, status=429, retry_after="3600", times=-1)
    stop = threading.Event()
    client = setup.client(stop=stop, sleep=None)
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        error, elapsed = timed(client.list_keys)
    finally:
        timer.cancel()
    assert isinstance(error, ApiTransportError), error
    assert error.message == "stopped"
    assert error.outcome_unknown is False
    assert 0.15 <= elapsed < 0.7
    assert len(setup.requests("GET", KEYS)) == 1  # no attempt after the stop


def test_a_stopped_client_makes_one_attempt_and_no_retry(setup: Setup) -> None:
    stop = threading.Event()
    stop.set()
    setup.emulator.add_fault("GET", "/api/data/api-keys", status=503, times=-1)
    client = setup.client(stop=stop)
    with pytest.raises(ApiTransportError, match="stopped"):
        client.list_keys()
    assert len(setup.emulator.request_log()) == 1


# -- the credential provider -------------------------------------------------------------------


def test_the_client_switches_to_its_own_new_key_at_once(setup: Setup) -> None:
    own = [Secret(ADMIN_SECRET)]
    setup.emulator.set_variants(revoke_self="allow")
    client = setup.client(credential=lambda: own[0])
    created = client.create_key("rotator-admin@2026-11-27T00:00:00Z")
    assert client.me(created.secret).workspace_id == WORKSPACE_ID  # verify the new key
    own[0] = created.secret  # switch: the next request already uses it
    client.revoke_key(ADMIN_KEY_ID)
    assert [key.id for key in client.list_keys()] == [created.key.id]
    used = [entry["headers"]["authorization"] for entry in setup.emulator.request_log()]
    assert used == [
        f"Bearer {ADMIN_KEY_ID}",
        f"Bearer {created.key.id}",  # me(explicit key)
        f"Bearer {created.key.id}",
        f"Bearer {created.key.id}",
    ]


# -- odd keys in the list ----------------------------------------------------------------------


def test_odd_list_entries_are_listed_or_skipped_and_never_revoked(setup: Setup) -> None:
    setup.emulator.add_list_entries(WORKSPACE_ID, ODD_LIST_ENTRIES)
    client = setup.client()
    listed = client.list_keys()
    by_id = {key.id: key for key in listed}
    assert list(by_id) == [
        ADMIN_KEY_ID,
        "odd-min-value",
        "odd-max-value",
        "odd/slash",
        "..",
        "odd id?#",
    ]
    assert by_id["odd-min-value"].expires == datetime.min.replace(tzinfo=UTC)
    assert by_id["odd-max-value"].expires == datetime.max.replace(tzinfo=UTC)
    assert listed.skipped == (
        SkippedKey(id=None, name="odd-empty-id", reason="no id"),
        SkippedKey(id="odd-no-name", name=None, reason="no name"),
        SkippedKey(id="odd-no-expires", name="odd-no-expires", reason="no expires"),
        SkippedKey(id="odd-bad-expires", name="odd-bad-expires", reason="unreadable expires"),
        SkippedKey(id=None, name=None, reason="not an object"),
        SkippedKey(id=None, name=None, reason="not an object"),
    )
    before = len(setup.emulator.request_log())
    for unsafe in ("odd/slash", "..", "odd id?#"):
        with pytest.raises(ApiRequestError, match="unsafe"):
            client.revoke_key(unsafe)
    assert len(setup.emulator.request_log()) == before
    assert [key["id"] for key in setup.emulator.keys(WORKSPACE_ID)] == [ADMIN_KEY_ID]


# -- create is not idempotent ------------------------------------------------------------------


def test_create_lost_after_apply_is_not_retried(setup: Setup) -> None:
    setup.emulator.add_fault("POST", KEYS, apply_then_drop=True)
    name = "billing-sync@2026-11-27T00:00:00Z"
    with pytest.raises(ApiTransportError) as raised:
        setup.client().create_key(name)
    assert raised.value.outcome_unknown is True
    assert raised.value.endpoint == "create"
    assert len(setup.requests("POST", KEYS)) == 1
    # The key exists once, with the rotator's marker, for a later pass to find as an orphan.
    made = [key for key in setup.emulator.keys(WORKSPACE_ID) if key["name"] == name]
    assert len(made) == 1
    assert setup.sleeps == []


def test_create_dropped_before_apply_is_still_not_retried(setup: Setup) -> None:
    setup.emulator.add_fault("POST", KEYS, drop=True)
    with pytest.raises(ApiTransportError) as raised:
        setup.client().create_key("x@2026-11-27T00:00:00Z")
    assert raised.value.outcome_unknown is True  # the client cannot tell it was not applied
    assert len(setup.requests("POST", KEYS)) == 1
    assert [key["id"] for key in setup.emulator.keys(WORKSPACE_ID)] == [ADMIN_KEY_ID]


@pytest.mark.parametrize("status", [500, 503])
def test_create_5xx_is_not_retried(setup: Setup, status: int) -> None:
    setup.emulator.add_fault("POST", KEYS, status=status)
    with pytest.raises(ApiServerError):
        setup.client().create_key("x@2026-11-27T00:00:00Z")
    assert len(setup.requests("POST", KEYS)) == 1


def test_create_429_is_retried_and_makes_one_key(setup: Setup) -> None:
    setup.emulator.add_fault("POST", KEYS, status=429, retry_after="2")
    created = setup.client().create_key("x@2026-11-27T00:00:00Z")
    assert len(setup.requests("POST", KEYS)) == 2
    assert setup.sleeps == [2.0]
    assert {key["id"] for key in setup.emulator.keys(WORKSPACE_ID)} == {
        ADMIN_KEY_ID,
        created.key.id,
    }


# -- secrets stay out --------------------------------------------------------------------------


def chain(error: BaseException) -> Iterator[BaseException]:
    link: BaseException | None = error
    while link is not None:
        yield link
        link = link.__cause__ or link.__context__


def test_no_secret_in_errors_logs_or_reprs(setup: Setup) -> None:
    emulator = setup.emulator
    client = setup.client(max_retries=1, timeout_seconds=0.2)
    created = client.create_key("leakcheck@2026-11-27T00:00:00Z")
    errors: list[BaseException] = []
    faults: list[dict[str, Any]] = [
        {"drop": True, "times": 2},
        {"status": 429, "retry_after": "1", "times": 2},
        {"status": 503, "times": 2},
        {"has_error_200": True},
        {"malformed": True},
        {"delay_seconds": 0.5, "times": 2},
    ]
    with capture_logs() as logs:
        for fault in faults:
            emulator.add_fault("GET", ME, **fault)
            with pytest.raises(ApiError) as raised:
                client.me(created.secret)
            errors.append(raised.value)
        emulator.add_fault("POST", KEYS, apply_then_drop=True)
        with pytest.raises(ApiTransportError) as lost:
            client.create_key("leakcheck@2026-11-27T00:00:01Z")
        errors.append(lost.value)
        client.revoke_key(created.key.id)
        with pytest.raises(ApiAuthError) as refused:
            client.me(created.secret)
        errors.append(refused.value)
    secrets = emulator.issued_secrets()
    assert created.secret.reveal() in secrets
    assert ADMIN_SECRET in secrets
    assert len(secrets) == 3  # admin, created, and the one lost with the dropped create
    texts = [repr(client), repr(created), repr(created.secret), str(created.key)]
    for error in errors:
        assert error.__cause__ is None
        assert error.__context__ is None
        texts.extend(f"{link!s} {link!r} {link.args!r}" for link in chain(error))
    texts.extend(repr(entry) for entry in logs)
    assert {entry["event"] for entry in logs} == {"api.request", "api.retry"}
    for text in texts:
        assert "Bearer" not in text
        for secret in secrets:
            assert secret not in text
