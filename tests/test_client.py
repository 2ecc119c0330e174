"""Unit tests of rotator.client over httpx.MockTransport: envelope, parsing, errors, retries.

The loopback tests against the bundled emulator are in test_client_emulator.py.
"""

from __future__ import annotations

import gc
import json
import random
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpcore
import httpx
import pytest
from structlog.testing import capture_logs

from rotator import __version__
from rotator.client import (
    MAX_WAIT_SECONDS,
    RETRY_AFTER_CAP_SECONDS,
    KeyList,
    ProjectManagerClient,
    SkippedKey,
    _tls_context,
    is_safe_key_id,
    parse_api_datetime,
    parse_retry_after,
)
from rotator.deadline import current_deadline as _deadline
from rotator.deadline import enforce_deadlines as _enforce_deadlines
from rotator.deadline import time_left as _time_left
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
from rotator.models import Secret, is_loopback_host

BASE = "https://api.example.test"
OWN_SECRET = "pm_own_SECRET_value_0123456789abcdef"
NEW_SECRET = "pm_new_SECRET_value_zyxwvutsrq987654"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
KEY_ID = "3f2b1c9e-0000-4000-8000-000000000001"

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(data: Any = None) -> dict[str, Any]:
    return {"error": None, "success": True, "hasError": False, "statusCode": "OK", "data": data}


def failure(message: str | None, *, status: str, validation: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "technicalError": None,
            "additionalErrors": None,
            "validationErrors": validation,
            "message": message,
        },
        "success": False,
        "hasError": True,
        "statusCode": status,
    }


def key_dto(**overrides: Any) -> dict[str, Any]:
    dto: dict[str, Any] = {
        "id": KEY_ID,
        "createdBy": "9a9a9a9a-0000-4000-8000-000000000009",
        "expires": "2028-11-27T03:00:00.1234567Z",
        "name": "billing-sync@2026-11-27T03:00:00Z",
    }
    dto.update(overrides)
    return {k: v for k, v in dto.items() if v is not Ellipsis}


class Recorder:
    """A MockTransport handler that replays a script of answers and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


class Harness:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.responses: list[tuple[str, str]] = []
        self.clients: list[ProjectManagerClient] = []

    def client(
        self, recorder: Recorder, *, max_retries: int = 4, **kwargs: Any
    ) -> ProjectManagerClient:
        client = ProjectManagerClient(
            BASE,
            Secret(OWN_SECRET),
            transport=httpx.MockTransport(recorder),
            sleep=self.sleeps.append,
            on_response=lambda endpoint, status: self.responses.append((endpoint, status)),
            rng=random.Random(7),
            clock=lambda: NOW,
            max_retries=max_retries,
            **kwargs,
        )
        self.clients.append(client)
        return client


@pytest.fixture
def harness() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    for client in harness.clients:
        client.close()


def ok(data: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json=envelope(data), **kwargs)


def error_chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    for link in error_chain(error):
        for text in (str(link), repr(link), repr(link.args)):
            for secret in secrets:
                assert secret not in text
            assert "Bearer" not in text


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.projectmanager.com",
        "https://api.projectmanager.com/",
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:1234",
        "http://[::1]:8080",
    ],
)
def test_accepts_https_or_loopback_http(url: str) -> None:
    with ProjectManagerClient(url, Secret(OWN_SECRET)) as client:
        assert "ProjectManagerClient(" in repr(client)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.projectmanager.com",
        "http://10.0.0.1",
        "http://128.0.0.1",
        # Names that start like loopback but resolve anywhere: the admin key in plain text.
        "http://localhost.attacker.example",
        "http://127.0.0.1.attacker.example",
        "ftp://127.0.0.1",
        "api.projectmanager.com",
        "https://user:pass@api.projectmanager.com",
        "http://[::1",
    ],
)
def test_refuses_plain_http_off_loopback_and_odd_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        ProjectManagerClient(url, Secret(OWN_SECRET))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost.attacker.example", False),
        ("attacker-localhost", False),
        ("localhost.", False),
        ("127.0.0.1.nip.io", False),
        ("128.0.0.1", False),
        ("::2", False),
        ("0:0:0:0:0:0:0:1", True),
        # Not this machine, though reachable as one or on a private network.
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("192.168.1.10", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("127.0.0.1.", False),
        ("", False),
    ],
)
def test_is_loopback_host_only_for_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize("bad", ["", "has space", "line\nbreak", "caf\u00e9"])
def test_refuses_a_credential_no_header_could_carry_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="bearer token") as raised:
        ProjectManagerClient(BASE, Secret(bad))
    if bad:
        assert bad not in str(raised.value)


def test_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        ProjectManagerClient(BASE, Secret(OWN_SECRET), max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        ProjectManagerClient(BASE, Secret(OWN_SECRET), timeout_seconds=0)


def test_repr_shows_no_secret(harness: Harness) -> None:
    client = harness.client(Recorder(ok([])))
    assert OWN_SECRET not in repr(client)
    assert OWN_SECRET not in str(client)
    assert BASE in repr(client)


# -- requests ----------------------------------------------------------------------------------


def test_every_request_carries_the_agreed_headers(harness: Harness) -> None:
    recorder = Recorder(ok([]))
    client = harness.client(recorder, integration_name="acme-rotator")
    client.list_keys()
    (request,) = recorder.requests
    assert request.method == "GET"
    assert str(request.url) == f"{BASE}/api/data/api-keys"
    assert request.headers["authorization"] == f"Bearer {OWN_SECRET}"
    assert request.headers["x-integration-name"] == "acme-rotator"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == f"key-rotator/{__version__}"


def test_base_url_with_a_path_prefix_is_kept() -> None:
    """For the endpoints whose URL is merged once (list, revoke-all) and the one merged at each
    call (revoke, with its key id)."""
    recorder = Recorder(ok([]), ok(), ok())
    with ProjectManagerClient(
        "https://gateway.example.test/pm/",
        Secret(OWN_SECRET),
        transport=httpx.MockTransport(recorder),
    ) as client:
        client.list_keys()
        client.revoke_key(KEY_ID)
        client.revoke_all_keys(i_understand_this_revokes_every_key=True)
    assert [str(r.url) for r in recorder.requests] == [
        "https://gateway.example.test/pm/api/data/api-keys",
        f"https://gateway.example.test/pm/api/data/api-keys/{KEY_ID}/revoke",
        "https://gateway.example.test/pm/api/data/api-keys/revoke-all",
    ]


@pytest.mark.parametrize("api_key", [None, "", ...], ids=["null", "empty", "absent"])
def test_list_parses_every_apikey_variant(harness: Harness, api_key: object) -> None:
    client = harness.client(Recorder(ok([key_dto(apiKey=api_key)])))
    (key,) = client.list_keys()
    assert key.id == KEY_ID
    assert key.name == "billing-sync@2026-11-27T03:00:00Z"
    assert key.base_name == "billing-sync"
    assert key.created_by == "9a9a9a9a-0000-4000-8000-000000000009"
    assert key.expires == datetime(2028, 11, 27, 3, 0, 0, 123456, tzinfo=UTC)


def test_list_of_nothing_and_missing_created_by(harness: Harness) -> None:
    client = harness.client(Recorder(ok([]), ok([key_dto(createdBy=None)])))
    assert client.list_keys() == []
    assert client.list_keys()[0].created_by is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2028-01-02T03:04:05Z", datetime(2028, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2028-01-02T03:04:05.1234567Z", datetime(2028, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2028-01-02T03:04:05.9999999Z", datetime(2028, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)),
        ("2028-01-02T03:04:05.5Z", datetime(2028, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2028-01-02T05:04:05.1234567+02:00", datetime(2028, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2028-01-01T22:04:05-05:00", datetime(2028, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2028-01-02T03:04:05.1234567", datetime(2028, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2028-01-02T03:04:05", datetime(2028, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2028-01-02T03:04:05+0000", datetime(2028, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_api_datetime_variants(text: str, expected: datetime) -> None:
    parsed = parse_api_datetime(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "tomorrow", "2028-13-01T00:00:00Z", "2028-01-02"])
def test_parse_api_datetime_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError; the message is ours
        parse_api_datetime(text)


def test_list_whose_answer_is_not_an_array_is_a_protocol_error(harness: Harness) -> None:
    client = harness.client(Recorder(ok(None), ok({"id": KEY_ID})))
    for _ in range(2):
        with pytest.raises(ApiProtocolError) as raised:
            client.list_keys()
        assert raised.value.endpoint == "list"
        assert str(raised.value) == "list: data is not an array"


def test_unreadable_keys_are_skipped_and_named_not_fatal_to_the_list(harness: Harness) -> None:
    good = key_dto()
    client = harness.client(
        Recorder(
            ok(
                [
                    key_dto(id="k-soon", expires="soon"),
                    key_dto(id=None),
                    key_dto(id="", name="nameless-id"),
                    key_dto(id="k-no-name", name=...),
                    key_dto(id="k-name-42", name=42),
                    key_dto(id="k-no-expires", expires=...),
                    key_dto(id="k-expires-0", expires=0),
                    "not an object",
                    None,
                    [1, 2],
                    good,
                ]
            )
        )
    )
    listed = client.list_keys()
    assert isinstance(listed, KeyList)
    assert [key.id for key in listed] == [KEY_ID]
    assert listed == [listed[0]]  # still a plain list of ApiKey for callers that iterate
    assert listed.skipped == (
        SkippedKey(id="k-soon", name=good["name"], reason="unreadable expires"),
        SkippedKey(id=None, name=good["name"], reason="no id"),
        SkippedKey(id=None, name="nameless-id", reason="no id"),
        SkippedKey(id="k-no-name", name=None, reason="no name"),
        SkippedKey(id="k-name-42", name=None, reason="no name"),
        SkippedKey(id="k-no-expires", name=good["name"], reason="no expires"),
        SkippedKey(id="k-expires-0", name=good["name"], reason="no expires"),
        SkippedKey(id=None, name=None, reason="not an object"),
        SkippedKey(id=None, name=None, reason="not an object"),
        SkippedKey(id=None, name=None, reason="not an object"),
    )
    assert "skipped=" in repr(listed)


def test_a_clean_list_skips_nothing(harness: Harness) -> None:
    listed = harness.client(Recorder(ok([key_dto()]))).list_keys()
    assert listed.skipped == ()


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("0001-01-01T00:00:00", datetime.min.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00.0000000+02:00", datetime.min.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00+00:00", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999", datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999Z", datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999-05:00", datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T22:00:00+02:00", datetime(9999, 12, 31, 20, 0, tzinfo=UTC)),
    ],
)
def test_dotnet_min_and_max_values_parse_without_overflow(
    harness: Harness, expires: str, expected: datetime
) -> None:
    assert parse_api_datetime(expires) == expected
    (key,) = harness.client(Recorder(ok([key_dto(expires=expires)]))).list_keys()
    assert key.expires == expected
    assert key.expires.tzinfo is UTC
    created = harness.client(Recorder(ok(key_dto(expires=expires, apiKey=NEW_SECRET))))
    assert created.create_key("x").key.expires == expected


def test_create_whose_new_key_cannot_be_read_is_a_protocol_error(harness: Harness) -> None:
    client = harness.client(
        Recorder(ok(key_dto(expires="soon", apiKey=NEW_SECRET)), ok(key_dto(id=None)))
    )
    with pytest.raises(ApiProtocolError) as raised:
        client.create_key("x")
    assert str(raised.value) == f"create: new key {KEY_ID}: unreadable expires"
    with pytest.raises(ApiProtocolError, match="create: the new key: no id"):
        client.create_key("x")


def test_create_posts_the_token_name_and_returns_the_secret(harness: Harness) -> None:
    recorder = Recorder(ok(key_dto(apiKey=NEW_SECRET)))
    client = harness.client(recorder)
    created = client.create_key("billing-sync@2026-11-27T03:00:00Z")
    (request,) = recorder.requests
    assert request.method == "POST"
    assert json.loads(request.content) == {"tokenName": "billing-sync@2026-11-27T03:00:00Z"}
    assert created.secret.reveal() == NEW_SECRET
    assert created.key.id == KEY_ID
    assert NEW_SECRET not in repr(created)


@pytest.mark.parametrize("api_key", [None, "", ..., 42])
def test_create_without_a_secret_is_a_protocol_error(harness: Harness, api_key: object) -> None:
    client = harness.client(Recorder(ok(key_dto(apiKey=api_key))))
    with pytest.raises(ApiProtocolError, match="apiKey"):
        client.create_key("x")


def test_create_with_a_secret_no_header_could_carry(harness: Harness) -> None:
    client = harness.client(Recorder(ok(key_dto(apiKey="two words"))))
    with pytest.raises(ApiProtocolError, match="bearer token") as raised:
        client.create_key("x")
    assert "two words" not in str(raised.value)


def test_create_with_data_not_an_object(harness: Harness) -> None:
    client = harness.client(Recorder(ok([key_dto(apiKey=NEW_SECRET)])))
    with pytest.raises(ApiProtocolError, match="not an object"):
        client.create_key("x")


@pytest.mark.parametrize(
    "body",
    [
        envelope(None),
        {"success": True, "hasError": False, "statusCode": "OK"},
        {"error": None, "success": True, "hasError": False, "statusCode": "OK"},
        {"success": True, "hasError": False, "statusCode": "OK", "data": None},
    ],
    ids=["data-null", "error-and-data-absent", "data-absent", "error-absent"],
)
def test_revoke_accepts_every_success_shape(harness: Harness, body: dict[str, Any]) -> None:
    recorder = Recorder(httpx.Response(200, json=body))
    client = harness.client(recorder)
    client.revoke_key(KEY_ID)
    (request,) = recorder.requests
    assert request.method == "DELETE"
    assert request.url.path == f"/api/data/api-keys/{KEY_ID}/revoke"


UNSAFE_IDS = [
    "",
    ".",
    "..",
    "a/b",
    "../revoke-all",
    "x?y",
    "z#w",
    "with space",
    " lead",
    "tab\t",
    "new\nline",
    "pct%2Fencoded",
    "caf\u00e9",
    "a;b",
    "a/" * 100,
]


@pytest.mark.parametrize("key_id", UNSAFE_IDS, ids=range(len(UNSAFE_IDS)))
def test_revoke_refuses_an_unsafe_id_before_sending(harness: Harness, key_id: str) -> None:
    recorder = Recorder(ok())
    client = harness.client(recorder)
    with pytest.raises(ApiRequestError, match="unsafe") as raised:
        client.revoke_key(key_id)
    assert raised.value.endpoint == "revoke"
    assert raised.value.status is None
    assert len(str(raised.value)) < 150  # a long id is cut in the message
    assert not is_safe_key_id(key_id)
    assert recorder.requests == []
    assert harness.responses == []


@pytest.mark.parametrize("key_id", [KEY_ID, "abc", "A-Z_0.9", "...", "a..b", "-"])
def test_revoke_puts_a_safe_id_in_the_path_as_is(harness: Harness, key_id: str) -> None:
    recorder = Recorder(ok())
    harness.client(recorder).revoke_key(key_id)
    assert is_safe_key_id(key_id)
    (request,) = recorder.requests
    assert request.url.raw_path == f"/api/data/api-keys/{key_id}/revoke".encode()


def test_a_listed_key_with_an_odd_id_is_listed_but_never_revoked(harness: Harness) -> None:
    recorder = Recorder(ok([key_dto(id="a/../b"), key_dto()]))
    client = harness.client(recorder)
    odd, _good = client.list_keys()
    assert odd.id == "a/../b"
    with pytest.raises(ApiRequestError, match="unsafe"):
        client.revoke_key(odd.id)
    assert len(recorder.requests) == 1  # the list only


def test_revoke_unknown_id_404_and_400(harness: Harness) -> None:
    client = harness.client(
        Recorder(
            httpx.Response(404, json=failure("API key not found.", status="NotFound")),
            httpx.Response(400, json=failure("Already revoked", status="BadRequest")),
        )
    )
    with pytest.raises(ApiNotFoundError, match="API key not found") as not_found:
        client.revoke_key(KEY_ID)
    assert not_found.value.status == 404
    assert not_found.value.endpoint == "revoke"
    with pytest.raises(ApiRequestError, match="Already revoked"):
        client.revoke_key(KEY_ID)
    assert harness.sleeps == []  # neither is retried


def test_revoke_all_needs_the_flag(harness: Harness) -> None:
    recorder = Recorder(ok())
    client = harness.client(recorder)
    with pytest.raises(ValueError, match="every key"):
        client.revoke_all_keys(i_understand_this_revokes_every_key=False)
    assert recorder.requests == []
    client.revoke_all_keys(i_understand_this_revokes_every_key=True)
    (request,) = recorder.requests
    assert (request.method, request.url.path) == ("DELETE", "/api/data/api-keys/revoke-all")
    assert harness.responses == [("revoke_all", "200")]


def test_me_with_own_and_with_another_credential(harness: Harness) -> None:
    me = {
        "id": "user-1",
        "workSpaceId": "ws-1",
        "workSpaceName": "Acme",
        "emailAddress": "a@b.example",
        "roleName": "Admin",
    }
    recorder = Recorder(ok(me))
    client = harness.client(recorder)
    identity = client.me()
    assert (identity.user_id, identity.workspace_id, identity.workspace_name) == (
        "user-1",
        "ws-1",
        "Acme",
    )
    client.me(Secret(NEW_SECRET))
    assert [r.headers["authorization"] for r in recorder.requests] == [
        f"Bearer {OWN_SECRET}",
        f"Bearer {NEW_SECRET}",
    ]
    assert recorder.requests[1].headers["x-integration-name"] == "key-rotator"
    assert harness.responses == [("me", "200"), ("me", "200")]


def test_me_with_missing_fields_and_with_a_wrong_shape(harness: Harness) -> None:
    client = harness.client(Recorder(ok({}), ok([])))
    assert client.me().workspace_id is None
    with pytest.raises(ApiProtocolError, match="not an object"):
        client.me()


def test_me_with_an_unusable_new_credential_is_refused_before_sending(harness: Harness) -> None:
    recorder = Recorder(ok({}))
    client = harness.client(recorder)
    with pytest.raises(ValueError, match="bearer token"):
        client.me(Secret("new key\r\nX-Injected: 1"))
    assert recorder.requests == []


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error_type", "message"),
    [
        (
            httpx.Response(401, json=failure("Authentication Failed", status="Unauthorized")),
            ApiAuthError,
            "Authentication Failed",
        ),
        (httpx.Response(401, content=b""), ApiAuthError, "Unauthorized"),
        (
            httpx.Response(401, json={"error": None, "success": False, "hasError": True}),
            ApiAuthError,
            "Unauthorized",
        ),
        (httpx.Response(403, text="<html>nope</html>"), ApiAuthError, "Forbidden"),
        (
            httpx.Response(404, json=failure(None, status="NotFound")),
            ApiNotFoundError,
            "Not Found",
        ),
        (
            httpx.Response(
                400,
                json=failure(
                    "Input Validation Failed",
                    status="BadRequest",
                    validation={"tokenName": ["The TokenName field is required.", "Too short."]},
                ),
            ),
            ApiRequestError,
            "Input Validation Failed | tokenName: The TokenName field is required.; Too short.",
        ),
        (httpx.Response(409, json=[1, 2]), ApiRequestError, "Conflict"),
        (
            httpx.Response(200, json=failure("Something broke", status="OK")),
            ApiProtocolError,
            "Something broke",
        ),
        (
            httpx.Response(200, json={**envelope([]), "hasError": True}),
            ApiProtocolError,
            "reports a failure",
        ),
        (
            httpx.Response(200, json={"hasError": False, "data": []}),
            ApiProtocolError,
            "reports a failure",
        ),
        (httpx.Response(200, text="<html>upstream hiccup"), ApiProtocolError, "not a JSON"),
        (httpx.Response(200, json=[]), ApiProtocolError, "not a JSON"),
        (httpx.Response(302, headers={"Location": "/x"}), ApiProtocolError, "unexpected"),
    ],
    ids=[
        "401-envelope",
        "401-empty",
        "401-error-null",
        "403-html",
        "404-message-null",
        "400-validation",
        "409-not-an-object",
        "200-hasError",
        "200-success-and-hasError",
        "200-success-absent",
        "200-not-json",
        "200-json-array",
        "302",
    ],
)
def test_error_mapping(
    harness: Harness, response: httpx.Response, error_type: type[ApiError], message: str
) -> None:
    recorder = Recorder(response)
    client = harness.client(recorder)
    with pytest.raises(error_type) as raised:
        client.list_keys()
    assert type(raised.value) is error_type
    assert message in raised.value.message
    assert raised.value.status == response.status_code
    assert raised.value.endpoint == "list"
    assert len(recorder.requests) == 1  # none of these is retried
    assert "<html>" not in str(raised.value)
    assert_no_secret(raised.value, OWN_SECRET)


def test_additional_errors_and_a_long_message_are_bounded(harness: Harness) -> None:
    body = failure("x" * 2000, status="BadRequest")
    body["error"]["additionalErrors"] = ["also this"]
    client = harness.client(Recorder(httpx.Response(400, json=body)))
    with pytest.raises(ApiRequestError) as raised:
        client.list_keys()
    assert len(raised.value.message) <= 503
    assert raised.value.message.endswith("...")


# -- retries -----------------------------------------------------------------------------------


def backoff_bounds(retry: int) -> tuple[float, float]:
    ceiling = min(30.0, 0.5 * 2 ** (retry - 1))
    return ceiling / 2, ceiling


def test_5xx_is_retried_with_growing_jittered_backoff_then_succeeds(harness: Harness) -> None:
    recorder = Recorder(
        httpx.Response(503, json=failure("busy", status="ServiceUnavailable")),
        httpx.Response(500, text=""),
        httpx.Response(502, text="bad gateway"),
        ok([]),
    )
    client = harness.client(recorder)
    assert client.list_keys() == []
    assert len(recorder.requests) == 4
    assert len(harness.sleeps) == 3
    for retry, wait in enumerate(harness.sleeps, start=1):
        low, high = backoff_bounds(retry)
        assert low <= wait <= high
    assert harness.responses == [("list", "503"), ("list", "500"), ("list", "502"), ("list", "200")]


def test_backoff_ceiling_is_capped(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(500, text="")), max_retries=9)
    with pytest.raises(ApiServerError):
        client.list_keys()
    assert len(harness.sleeps) == 9
    assert all(15.0 <= wait <= 30.0 for wait in harness.sleeps[6:])


def test_5xx_gives_up_after_max_retries(harness: Harness) -> None:
    recorder = Recorder(httpx.Response(503, json=failure("down", status="ServiceUnavailable")))
    client = harness.client(recorder, max_retries=2)
    with pytest.raises(ApiServerError, match="down") as raised:
        client.list_keys()
    assert raised.value.status == 503
    assert len(recorder.requests) == 3
    assert len(harness.sleeps) == 2


def test_max_retries_zero_means_one_attempt(harness: Harness) -> None:
    recorder = Recorder(httpx.Response(429, text=""))
    client = harness.client(recorder, max_retries=0)
    with pytest.raises(ApiRateLimitedError, match="Too Many Requests"):
        client.list_keys()
    assert len(recorder.requests) == 1  # no retry after the stop


@pytest.mark.parametrize(
    ("retry_after", "minimum"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        ("Fri, 27 Nov 2026 03:00:20 GMT", 20.0),
        ("100000", RETRY_AFTER_CAP_SECONDS),
        ("Sat, 01 Jan 2028 00:00:00 GMT", RETRY_AFTER_CAP_SECONDS),
    ],
)
def test_429_honours_retry_after(harness: Harness, retry_after: str, minimum: float) -> None:
    recorder = Recorder(
        httpx.Response(
            429,
            headers={"Retry-After": retry_after},
            json=failure("usage limit reached", status="TooManyRequests"),
        ),
        ok([]),
    )
    client = harness.client(recorder)
    assert client.list_keys() == []
    (wait,) = harness.sleeps
    assert wait == pytest.approx(minimum)  # backoff of the first retry is below every minimum


@pytest.mark.parametrize("retry_after", ["soon", "-3", "nan", "Thu, 26 Nov 2026 00:00:00 GMT"])
def test_unusable_or_past_retry_after_falls_back_to_backoff(
    harness: Harness, retry_after: str
) -> None:
    client = harness.client(
        Recorder(httpx.Response(429, headers={"Retry-After": retry_after}), ok([]))
    )
    client.list_keys()
    (wait,) = harness.sleeps
    low, high = backoff_bounds(1)
    assert low <= wait <= high


def test_retry_after_on_503_is_honoured_too(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(503, headers={"Retry-After": "12"}), ok([])))
    client.list_keys()
    assert harness.sleeps == [12.0]


@pytest.mark.parametrize("retry_after", ["3600", "86400", "1e308", "Sat, 01 Jan 2028 00:00:00 GMT"])
def test_no_single_wait_is_longer_than_the_cap(harness: Harness, retry_after: str) -> None:
    client = harness.client(
        Recorder(
            httpx.Response(429, headers={"Retry-After": retry_after}),
            httpx.Response(503, headers={"Retry-After": retry_after}),
            ok([]),
        )
    )
    client.list_keys()
    assert harness.sleeps == [MAX_WAIT_SECONDS, MAX_WAIT_SECONDS]
    assert MAX_WAIT_SECONDS == 30.0


def test_backoff_alone_never_exceeds_the_cap(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(503)), max_retries=12)
    with pytest.raises(ApiServerError):
        client.list_keys()
    assert max(harness.sleeps) <= MAX_WAIT_SECONDS


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after(" 30 ", NOW) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 03:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 02:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("inf", NOW) is None
    assert parse_retry_after("", NOW) is None
    # A date at the end of the calendar, with an offset that leaves Python's range in UTC.
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 -0500", NOW) is None


def test_4xx_is_never_retried(harness: Harness) -> None:
    recorder = Recorder(httpx.Response(400, json=failure("bad", status="BadRequest")), ok([]))
    client = harness.client(recorder)
    with pytest.raises(ApiRequestError):
        client.list_keys()
    assert len(recorder.requests) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    ("exc", "outcome_unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.ReadTimeout("slow answer"), True),
        (httpx.RemoteProtocolError("peer closed"), True),
        (httpx.ReadError("reset"), True),
    ],
)
def test_transport_errors_are_retried_for_list(
    harness: Harness, exc: Exception, outcome_unknown: bool
) -> None:
    recorder = Recorder(exc)
    client = harness.client(recorder, max_retries=3)
    with pytest.raises(ApiTransportError) as raised:
        client.list_keys()
    assert len(recorder.requests) == 4
    assert raised.value.outcome_unknown is outcome_unknown
    assert type(exc).__name__ in raised.value.message
    assert harness.responses == [("list", "error")] * 4


def test_transport_error_then_success(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.ReadTimeout("slow"), ok([])))
    assert client.list_keys() == []
    assert len(harness.sleeps) == 1


def test_revoke_is_retried_after_a_lost_answer(harness: Harness) -> None:
    recorder = Recorder(httpx.ReadTimeout("lost"), httpx.Response(404, text=""))
    client = harness.client(recorder)
    with pytest.raises(ApiNotFoundError):
        client.revoke_key(KEY_ID)
    assert len(recorder.requests) == 2


def test_a_request_that_cannot_be_formed_is_not_retried(harness: Harness) -> None:
    recorder = Recorder(httpx.LocalProtocolError("illegal header"))
    client = harness.client(recorder)
    with pytest.raises(ApiTransportError) as raised:
        client.list_keys()
    assert len(recorder.requests) == 1
    assert raised.value.outcome_unknown is False


# -- create is not idempotent ------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        httpx.ReadTimeout("answer lost"),
        httpx.WriteTimeout("half sent"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
)
def test_create_is_not_retried_when_it_may_have_been_applied(
    harness: Harness, first: Exception
) -> None:
    recorder = Recorder(first, ok(key_dto(apiKey=NEW_SECRET)))
    client = harness.client(recorder)
    with pytest.raises(ApiTransportError) as raised:
        client.create_key("billing-sync@2026-11-27T03:00:00Z")
    assert raised.value.outcome_unknown is True
    assert raised.value.endpoint == "create"
    assert len(recorder.requests) == 1
    assert harness.sleeps == []


def test_create_is_not_retried_after_a_5xx(harness: Harness) -> None:
    recorder = Recorder(
        httpx.Response(500, json=failure("oops", status="InternalServerError")),
        ok(key_dto(apiKey=NEW_SECRET)),
    )
    client = harness.client(recorder)
    with pytest.raises(ApiServerError, match="oops"):
        client.create_key("x")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "first",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.Response(429, headers={"Retry-After": "3"}),
    ],
    ids=["connect-error", "connect-timeout", "429"],
)
def test_create_is_retried_when_it_surely_was_not_applied(
    harness: Harness, first: httpx.Response | Exception
) -> None:
    recorder = Recorder(first, ok(key_dto(apiKey=NEW_SECRET)))
    client = harness.client(recorder)
    assert client.create_key("x").secret.reveal() == NEW_SECRET
    assert len(recorder.requests) == 2
    assert len(harness.sleeps) == 1


def test_create_gives_up_on_connect_errors_with_outcome_known(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.ConnectError("refused")), max_retries=1)
    with pytest.raises(ApiTransportError) as raised:
        client.create_key("x")
    assert raised.value.outcome_unknown is False


# -- secrets stay out --------------------------------------------------------------------------


def leaky(request: httpx.Request) -> httpx.Response:
    """An httpx error whose message quotes the request's Authorization header."""
    raise httpx.ReadError(f"boom {request.headers['authorization']}", request=request)


def test_no_secret_in_errors_logs_or_their_chains(harness: Harness) -> None:
    recorder = Recorder(
        leaky,
        leaky,
        httpx.Response(401, json=failure("Authentication Failed", status="Unauthorized")),
    )
    client = harness.client(recorder, max_retries=1)
    with capture_logs() as logs:
        with pytest.raises(ApiTransportError) as transport:
            client.list_keys()
        with pytest.raises(ApiAuthError) as auth:
            client.me(Secret(NEW_SECRET))
    assert_no_secret(transport.value, OWN_SECRET, NEW_SECRET)
    assert transport.value.__cause__ is None
    assert transport.value.__context__ is None
    assert auth.value.__context__ is None
    events = [entry["event"] for entry in logs]
    assert events == ["api.request", "api.retry", "api.request", "api.request"]
    assert logs[0] == {
        "event": "api.request",
        "log_level": "debug",
        "method": "GET",
        "endpoint": "list",
        "status": "error",
        "attempt": 1,
    }
    assert logs[3]["status"] == "401"
    for entry in logs:
        assert OWN_SECRET not in repr(entry)
        assert NEW_SECRET not in repr(entry)


def test_a_secret_echoed_by_the_server_is_redacted(harness: Harness) -> None:
    client = harness.client(
        Recorder(
            httpx.Response(
                401, json=failure(f"Token {NEW_SECRET} is not valid", status="Unauthorized")
            )
        )
    )
    with pytest.raises(ApiAuthError) as raised:
        client.me(Secret(NEW_SECRET))
    assert raised.value.message == "Token [redacted] is not valid"
    assert_no_secret(raised.value, OWN_SECRET, NEW_SECRET)


# -- stopping ----------------------------------------------------------------------------------


def test_a_stop_ends_the_wait_within_half_a_second_and_sends_nothing_more() -> None:
    stop = threading.Event()
    recorder = Recorder(httpx.Response(429, headers={"Retry-After": "3600"}), ok([]))
    with ProjectManagerClient(
        BASE, Secret(OWN_SECRET), transport=httpx.MockTransport(recorder), stop=stop
    ) as client:
        timer = threading.Timer(0.2, stop.set)
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(ApiTransportError) as raised:
                client.list_keys()
        finally:
            timer.cancel()
        elapsed = time.monotonic() - started
    assert raised.value.message == "stopped"
    assert str(raised.value) == "list: stopped"
    assert raised.value.outcome_unknown is False
    assert elapsed < 0.2 + 0.5
    assert len(recorder.requests) == 1


def test_a_stop_set_before_a_call_allows_no_retry(harness: Harness) -> None:
    # The first attempt of a call still goes (a verify or a rollback in flight at SIGTERM must
    # finish); what a stop ends is every retry and every wait.
    stop = threading.Event()
    stop.set()
    recorder = Recorder(httpx.Response(503), ok([]))
    client = harness.client(recorder, stop=stop)
    with pytest.raises(ApiTransportError, match="stopped") as raised:
        client.list_keys()
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None
    assert len(recorder.requests) == 1


def stop_after(stop: threading.Event, answer: httpx.Response | Exception) -> Handler:
    """A handler that sets ``stop`` while the request is on the wire, then gives ``answer``."""

    def handler(request: httpx.Request) -> httpx.Response:
        stop.set()
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


@pytest.mark.parametrize(
    ("endpoint", "answer", "outcome_unknown"),
    [
        ("create", httpx.Response(429), False),  # refused: surely not applied
        ("create", httpx.ConnectError("refused"), False),
        ("list", httpx.ReadTimeout("slow"), True),  # sent, then lost: may have been applied
        ("revoke", httpx.Response(503), True),
        ("revoke", httpx.Response(429), False),
    ],
)
def test_a_stop_after_a_failed_attempt_says_whether_it_may_have_been_applied(
    harness: Harness,
    endpoint: str,
    answer: httpx.Response | Exception,
    outcome_unknown: bool,
) -> None:
    stop = threading.Event()
    recorder = Recorder(stop_after(stop, answer), ok(key_dto(apiKey=NEW_SECRET)))
    client = harness.client(recorder, stop=stop)
    call = {
        "create": lambda: client.create_key("x"),
        "list": client.list_keys,
        "revoke": lambda: client.revoke_key(KEY_ID),
    }[endpoint]
    with pytest.raises(ApiTransportError, match="stopped") as raised:
        call()
    assert raised.value.outcome_unknown is outcome_unknown
    assert raised.value.endpoint == endpoint
    assert len(recorder.requests) == 1


def test_an_attempt_that_succeeds_while_stopping_returns_its_answer(harness: Harness) -> None:
    """A created key's secret is never thrown away because a stop came while it was made."""
    stop = threading.Event()
    client = harness.client(Recorder(stop_after(stop, ok(key_dto(apiKey=NEW_SECRET)))), stop=stop)
    created = client.create_key("x")
    assert created.secret.reveal() == NEW_SECRET
    assert stop.is_set()


def test_a_final_failure_is_raised_as_itself_even_when_stopped(harness: Harness) -> None:
    stop = threading.Event()
    client = harness.client(Recorder(stop_after(stop, httpx.Response(404))), stop=stop)
    with pytest.raises(ApiNotFoundError):
        client.revoke_key(KEY_ID)


# -- the credential provider -------------------------------------------------------------------


def test_a_credential_provider_is_asked_at_every_attempt(harness: Harness) -> None:
    secrets = iter([Secret(OWN_SECRET), Secret(NEW_SECRET), Secret(NEW_SECRET + "2")])
    recorder = Recorder(ok([]), httpx.Response(503), ok([]))
    client = ProjectManagerClient(
        BASE,
        lambda: next(secrets),
        transport=httpx.MockTransport(recorder),
        sleep=lambda _s: None,
    )
    harness.clients.append(client)
    client.list_keys()
    client.list_keys()  # a 503, then a retry: the provider is asked again
    assert [r.headers["authorization"] for r in recorder.requests] == [
        f"Bearer {OWN_SECRET}",
        f"Bearer {NEW_SECRET}",
        f"Bearer {NEW_SECRET}2",
    ]


def test_an_explicit_credential_for_me_bypasses_the_provider(harness: Harness) -> None:
    asked: list[int] = []

    def provider() -> Secret:
        asked.append(1)
        return Secret(OWN_SECRET)

    recorder = Recorder(ok({"id": "u"}))
    client = ProjectManagerClient(BASE, provider, transport=httpx.MockTransport(recorder))
    harness.clients.append(client)
    assert asked == []  # not called when the client is made
    client.me(Secret(NEW_SECRET))
    assert asked == []
    assert recorder.requests[0].headers["authorization"] == f"Bearer {NEW_SECRET}"


@pytest.mark.parametrize("bad", ["", "two words", "caf\u00e9"])
def test_a_provider_giving_an_unusable_credential_fails_without_sending(
    harness: Harness, bad: str
) -> None:
    recorder = Recorder(ok([]))
    client = ProjectManagerClient(
        BASE, lambda: Secret(bad), transport=httpx.MockTransport(recorder)
    )
    harness.clients.append(client)
    with pytest.raises(ApiAuthError, match="not a valid bearer token") as raised:
        client.list_keys()
    assert raised.value.endpoint == "list"
    if bad:
        assert bad not in str(raised.value)
    assert raised.value.__context__ is None
    assert recorder.requests == []


def test_a_provider_must_give_a_secret_and_a_credential_must_be_one(harness: Harness) -> None:
    client = ProjectManagerClient(
        BASE,
        lambda: OWN_SECRET,  # type: ignore[arg-type,return-value]
        transport=httpx.MockTransport(Recorder(ok([]))),
    )
    harness.clients.append(client)
    with pytest.raises(TypeError, match="must return a Secret"):
        client.list_keys()
    with pytest.raises(TypeError, match="Secret or a callable"):
        ProjectManagerClient(BASE, OWN_SECRET)  # type: ignore[arg-type]


def test_a_provider_failure_reaches_the_caller_unchanged(harness: Harness) -> None:
    def provider() -> Secret:
        raise OSError("the key file is gone")

    client = ProjectManagerClient(BASE, provider, transport=httpx.MockTransport(Recorder(ok())))
    harness.clients.append(client)
    with pytest.raises(OSError, match="key file is gone"):
        client.list_keys()


# -- the deadline's plumbing -------------------------------------------------------------------


def test_every_real_transport_gets_the_deadline_and_a_given_one_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ProjectManagerClient("https://api.projectmanager.invalid", Secret(OWN_SECRET)) as client:
        http = client._http
        transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]
        assert len(transports) >= 2  # direct and the proxy route
        for transport in transports:
            assert isinstance(transport, httpx.HTTPTransport)
            assert type(transport._pool._network_backend).__name__ == "DeadlineBackend"
        _enforce_deadlines(http)  # twice is harmless: not wrapped again
        backend = http._transport._pool._network_backend
        assert type(backend._inner).__name__ == "SyncBackend"
    mock = httpx.MockTransport(Recorder(ok([])))
    with ProjectManagerClient(BASE, Secret(OWN_SECRET), transport=mock) as client:
        assert client._http._transport is mock


def test_an_error_keeps_no_frame_that_holds_a_response_or_request(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(503), httpx.ReadTimeout("slow")), max_retries=0)
    with pytest.raises(ApiServerError) as first:
        client.list_keys()
    with pytest.raises(ApiTransportError) as second:
        client.list_keys()
    for raised in (first.value, second.value):
        traceback = raised.__traceback__
        frames = []
        while traceback is not None:
            frames.append(traceback.tb_frame)
            traceback = traceback.tb_next
        assert [frame.f_code.co_name for frame in frames][-2:] == ["list_keys", "_call"]
        for frame in frames:
            for value in frame.f_locals.values():
                assert not isinstance(value, httpx.Response | httpx.Request | httpx.HTTPError)


def test_a_closed_client_is_not_kept_alive_by_anything(harness: Harness) -> None:
    for _ in range(3):
        client = ProjectManagerClient(
            BASE, Secret(OWN_SECRET), transport=httpx.MockTransport(Recorder(ok([key_dto()])))
        )
        client.list_keys()
        client.close()
        alive = weakref.ref(client)
        del client
        gc.collect()
        assert alive() is None


def test_time_left_shrinks_each_timeout_to_the_deadline_and_refuses_once_it_passed() -> None:
    assert _time_left(7.0, httpcore.ReadTimeout) == 7.0  # no attempt running: as asked
    token = _deadline.set(time.monotonic() + 2.0)
    try:
        assert 1.5 < (_time_left(7.0, httpcore.ReadTimeout) or 0) <= 2.0
        assert 1.5 < (_time_left(None, httpcore.ReadTimeout) or 0) <= 2.0
        assert _time_left(0.5, httpcore.ReadTimeout) == 0.5
    finally:
        _deadline.reset(token)
    token = _deadline.set(time.monotonic() - 0.001)
    try:
        with pytest.raises(httpcore.WriteTimeout, match="deadline"):
            _time_left(7.0, httpcore.WriteTimeout)
    finally:
        _deadline.reset(token)


def test_every_client_shares_one_tls_context_made_once() -> None:
    """Loading the CA bundle for each client of each pass cost ~30 ms and grew the RSS."""
    with (
        ProjectManagerClient("https://a.example.test", Secret(OWN_SECRET)) as first,
        ProjectManagerClient("https://b.example.test", Secret(OWN_SECRET)) as second,
    ):
        contexts = {id(c._http._transport._pool._ssl_context) for c in (first, second)}
    assert contexts == {id(_tls_context())}
    assert _tls_context().verify_mode == ssl.CERT_REQUIRED
    assert _tls_context().check_hostname is True


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_refuses_a_timeout_that_is_not_a_positive_number(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        ProjectManagerClient(BASE, Secret(OWN_SECRET), timeout_seconds=timeout)


def test_default_rng_and_clock_work(harness: Harness) -> None:
    sleeps: list[float] = []
    recorder = Recorder(
        httpx.Response(
            429,
            headers={
                "Retry-After": (datetime.now(UTC) + timedelta(seconds=25)).strftime(
                    "%a, %d %b %Y %H:%M:%S GMT"
                )
            },
        ),
        ok([]),
    )
    with ProjectManagerClient(
        BASE, Secret(OWN_SECRET), transport=httpx.MockTransport(recorder), sleep=sleeps.append
    ) as client:
        client.list_keys()
    (wait,) = sleeps
    assert 20.0 <= wait <= 25.0


def test_a_status_without_a_standard_phrase(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(499, text="")))
    with pytest.raises(ApiRequestError) as raised:
        client.list_keys()
    assert raised.value.message == "HTTP 499"
