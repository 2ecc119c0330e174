"""Unit tests of rotator.client over httpx.MockTransport: envelope, parsing, errors, retries.

The loopback tests against the bundled emulator are in test_client_emulator.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from rotator import __version__
from rotator.client import (
    RETRY_AFTER_CAP_SECONDS,
    ProjectManagerClient,
    parse_api_datetime,
    parse_retry_after,
)
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
        "ftp://127.0.0.1",
        "api.projectmanager.com",
        "https://user:pass@api.projectmanager.com",
        "http://[::1",
    ],
)
def test_refuses_plain_http_off_loopback_and_odd_urls(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        ProjectManagerClient(url, Secret(OWN_SECRET))


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
    recorder = Recorder(ok([]))
    with ProjectManagerClient(
        "https://gateway.example.test/pm/",
        Secret(OWN_SECRET),
        transport=httpx.MockTransport(recorder),
    ) as client:
        client.list_keys()
    assert str(recorder.requests[0].url) == "https://gateway.example.test/pm/api/data/api-keys"


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


def test_list_with_unreadable_key_is_a_protocol_error(harness: Harness) -> None:
    client = harness.client(
        Recorder(
            ok([key_dto(expires="soon")]),
            ok([key_dto(id=None)]),
            ok([key_dto(name=...)]),
            ok([key_dto(expires=...)]),
            ok(["not an object"]),
            ok(None),
            ok({"id": KEY_ID}),
        )
    )
    for _ in range(7):
        with pytest.raises(ApiProtocolError) as raised:
            client.list_keys()
        assert raised.value.endpoint == "list"
        assert str(raised.value).startswith("list: ")
        assert not str(raised.value).startswith("list: list")


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


@pytest.mark.parametrize("key_id", ["", "a/b", "x?y", "z#w"])
def test_revoke_refuses_an_id_that_would_change_the_path(harness: Harness, key_id: str) -> None:
    recorder = Recorder(ok())
    client = harness.client(recorder)
    with pytest.raises(ValueError, match="key id"):
        client.revoke_key(key_id)
    assert recorder.requests == []


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
    assert len(recorder.requests) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    ("retry_after", "minimum"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        ("Fri, 27 Nov 2026 03:01:00 GMT", 60.0),
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


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after(" 30 ", NOW) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 03:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Fri, 27 Nov 2026 02:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("inf", NOW) is None
    assert parse_retry_after("", NOW) is None


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


def test_default_rng_and_clock_work(harness: Harness) -> None:
    sleeps: list[float] = []
    recorder = Recorder(
        httpx.Response(
            429,
            headers={
                "Retry-After": (datetime.now(UTC) + timedelta(seconds=90)).strftime(
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
    assert 85.0 <= wait <= 90.0


def test_a_status_without_a_standard_phrase(harness: Harness) -> None:
    client = harness.client(Recorder(httpx.Response(499, text="")))
    with pytest.raises(ApiRequestError) as raised:
        client.list_keys()
    assert raised.value.message == "HTTP 499"
