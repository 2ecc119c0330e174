"""``rotator.logging``: the redaction processor on its own, and the configured chain end to end.

The processor is the second line of defence (callers never log secrets on purpose); these tests
call it directly with every shape a secret could hide in, then check the configured chain, where
exceptions are formatted before redaction so that a traceback's text is redacted too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.logging import (
    REDACTED,
    configure,
    get_logger,
    redact_secrets,
    scrub_text,
    substitute_secrets,
)
from rotator.models import Secret

TOKEN = "pm_live_0123456789abcdefSECRET"


def redact(**event: Any) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", dict(event)))


def no_token_in(value: object) -> bool:
    return TOKEN not in json.dumps(value, default=repr)


# -- field names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "apiKey",
        "API_KEY",
        "api_key",
        "api-key",
        "X-Api-Key",
        "apikey",
        "token",
        "Token",
        "access_token",
        "refreshToken",
        "X-Vault-Token",
        "secret",
        "SECRET",
        "client_secret",
        "secrets",
        "secret_id",
        "SecretId",
        "password",
        "Password",
        "db_password",
        "passwd",
        "authorization",
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "private_key",
        "credential_value",
        "aws_secret_access_key",
        "session_token",
    ],
)
def test_a_field_named_like_a_secret_is_redacted_at_any_case(name: str) -> None:
    assert redact(**{name: TOKEN}) == {name: REDACTED}
    assert redact(outer={name: TOKEN}) == {"outer": {name: REDACTED}}
    assert redact(outer=[{"deeper": {name: TOKEN}}]) == {"outer": [{"deeper": {name: REDACTED}}]}


@pytest.mark.parametrize(
    "name",
    [
        "credential",  # the credential's base name (README), not its value
        "key_id",
        "previous_key_id",
        "key_name",
        "token_name",
        "secret_sha256",
        "pending_secret_sha256",
        "event",
        "workspace",
        "api_url",
        "tokens_used",
    ],
)
def test_fields_that_only_mention_a_secret_are_kept(name: str) -> None:
    assert redact(**{name: "billing-sync"}) == {name: "billing-sync"}


def test_an_empty_sensitive_field_stays_empty() -> None:
    assert redact(token=None, nested={"password": None}) == {
        "token": None,
        "nested": {"password": None},
    }


# -- values -------------------------------------------------------------------------------------


def test_a_secret_object_is_redacted_wherever_it_is() -> None:
    secret = Secret(TOKEN)
    event = redact(
        value=secret,
        listed=[secret, "plain"],
        mapping={"nested": secret},
        as_tuple=(secret,),
        as_set={secret},
        as_frozenset=frozenset([secret]),
    )
    assert event == {
        "value": REDACTED,
        "listed": [REDACTED, "plain"],
        "mapping": {"nested": REDACTED},
        "as_tuple": [REDACTED],
        "as_set": [REDACTED],
        "as_frozenset": [REDACTED],
    }


@pytest.mark.parametrize(
    "text",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"sent with bearer   {TOKEN} and more",
        f"Bearer {TOKEN}!%$&*()[]",  # any printable character a bearer token may hold
        f"Authorization: Bearer {TOKEN}",
        f"authorization: Basic {TOKEN}",
        f"{{'Authorization': 'Bearer {TOKEN}'}}",
        f'{{"authorization":"{TOKEN}"}}',
        f"Authorization={TOKEN}",
        f"https://x.example/?api_key={TOKEN}&page=2",
        f"token={TOKEN}",
        f"password: {TOKEN}",
        f"{{'apiKey': '{TOKEN}'}}",
        f'{{"secret_id": "{TOKEN}"}}',
        f"X-Vault-Token: {TOKEN}",
    ],
)
def test_a_token_inside_any_string_is_redacted(text: str) -> None:
    for event in (
        redact(message=text),
        redact(event=text),
        redact(nested={"deep": [text]}),
        redact(listed=(text,)),
    ):
        assert no_token_in(event), event
    assert TOKEN not in scrub_text(text)


@pytest.mark.parametrize(
    "token", ["pm!live%tail", "pm.live~tail+/=", "pm(live)tail*", "pm<live>tail|^`"]
)
def test_a_bearer_token_of_any_printable_characters_is_redacted_whole(token: str) -> None:
    for text in (
        f"Bearer {token}",
        f"bearer {token} was refused",
        f"Authorization: Bearer {token}",
    ):
        assert "tail" not in scrub_text(text), text


#: What the patterns look for, and what only resembles it: names in several cases (the Kelvin
#: sign folds to k), separators, quotes and values.
_NAMES = st.sampled_from([
    "Bearer", "BEARER", "bearer", "Authorization", "AUTHORIZATION", "api_key", "Api-Key",
    "apikey", "X-Vault-Token", "secret_id", "SECRETS", "password", "PASSWD", "cookie",
    "private-key", "credential_value", "\u212aEY", "token_name", "credential", "key_id", "bear",
    "auth", "pass", "ws-001",
])  # fmt: skip
_SEPARATORS = st.sampled_from([":", "=", ": ", " ", "  ", "'", '"', "\\'", '":"', "\n", ""])
_VALUES = st.sampled_from([TOKEN, "abc123", "Bearer abc", "43865a2b-85a5", "", ",", "}", "&"])
_TEXTS = st.lists(st.tuples(_NAMES, _SEPARATORS, _VALUES).map("".join), max_size=4).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_TEXTS)
def test_the_shortcut_of_text_without_a_name_changes_nothing(text: str) -> None:
    """scrub_text skips the substitutions when no name they need is in the text: it must give
    exactly what running them gives, whatever the text."""
    assert scrub_text(text) == substitute_secrets(text)


def test_a_secret_in_json_inside_a_string_is_redacted() -> None:
    document = json.dumps({"body": json.dumps({"token": TOKEN, "apiKey": TOKEN})})
    assert TOKEN not in scrub_text(document)
    assert TOKEN not in scrub_text(json.dumps({"headers": {"Authorization": f"Bearer {TOKEN}"}}))


def test_dict_keys_are_scrubbed_too() -> None:
    assert redact(seen={"Bearer abc123": 1}) == {"seen": {f"Bearer {REDACTED}": 1}}


def test_ordinary_text_is_left_alone() -> None:
    text = "rotated billing-sync: token_name=billing-sync@2026-11-27T03:00:00Z, 3 keys, 0 failed"
    assert redact(message=text) == {"message": text}
    assert redact(count=3, ratio=0.5, flag=True, nothing=None) == {
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
    }


def test_an_object_value_is_scrubbed_as_its_text() -> None:
    """A renderer would print an exception or any object by its repr: scrub that text."""

    class Leaky:
        def __repr__(self) -> str:
            return f"Leaky(headers={{'Authorization': 'Bearer {TOKEN}'}})"

    error = RuntimeError(f"upstream said: Bearer {TOKEN}")
    event = redact(error=error, thing=Leaky(), raw=f"Bearer {TOKEN}".encode())
    assert no_token_in(event), event
    assert event["error"] == f"RuntimeError('upstream said: Bearer {REDACTED}')"
    assert event["thing"].startswith("Leaky(headers=")


def test_deeply_nested_and_self_referencing_values_end() -> None:
    loop: dict[str, Any] = {"secret": TOKEN}
    loop["self"] = loop
    deep: Any = f"Bearer {TOKEN}"
    for _ in range(200):
        deep = [deep]
    event = redact(loop=loop, deep=deep)
    assert no_token_in(event["loop"])
    assert TOKEN not in repr(event["deep"])


# -- the configured chain -----------------------------------------------------------------------


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure(log_format="json", level="debug", stream=buffer)
    yield buffer
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def fail(error: Exception) -> None:
    raise error


def test_an_exception_is_formatted_and_then_redacted(stream: io.StringIO) -> None:
    log = get_logger()
    try:
        fail(ValueError(f"refused Authorization: Bearer {TOKEN}"))
    except ValueError:
        log.exception("sink.failed", password=TOKEN)
    try:
        fail(ConnectionError(f"api_key={TOKEN}"))
    except ConnectionError as exc:
        log.error("api.failed", exc_info=exc)
    first, second = lines(stream)
    assert TOKEN not in stream.getvalue()
    assert "Traceback (most recent call last)" in first["exception"]
    assert "ValueError: refused Authorization:" in first["exception"]
    assert first["password"] == REDACTED
    assert "ConnectionError: api_key=" in second["exception"]


def test_redaction_runs_after_everything_that_adds_text_and_before_rendering(
    stream: io.StringIO,
) -> None:
    processors = structlog.get_config()["processors"]
    names = [getattr(p, "__name__", type(p).__name__) for p in processors]
    assert names.index("redact_secrets") > names.index("ExceptionRenderer")  # format_exc_info
    assert names.index("redact_secrets") > names.index("merge_contextvars")
    assert names.index("redact_secrets") == len(names) - 2  # the renderer comes last


def test_the_chain_redacts_bound_context_and_contextvars(stream: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(run_id="r1", authorization=f"Bearer {TOKEN}")
    get_logger(token=TOKEN, workspace="acme").info("pass.started", detail=f"bearer {TOKEN}")
    (line,) = lines(stream)
    assert TOKEN not in stream.getvalue()
    assert line["run_id"] == "r1"
    assert line["workspace"] == "acme"
    assert line["authorization"] == REDACTED
    assert line["token"] == REDACTED
    assert line["detail"] == f"bearer {REDACTED}"
    assert line["level"] == "info"
    assert line["event"] == "pass.started"
    assert line["timestamp"].endswith("Z")


def test_the_console_format_redacts_too_and_shows_the_traceback() -> None:
    buffer = io.StringIO()
    configure(log_format="console", level="info", stream=buffer)
    try:
        try:
            fail(RuntimeError(f"Bearer {TOKEN}"))
        except RuntimeError:
            get_logger().exception("boom", apiKey=Secret(TOKEN))
    finally:
        structlog.reset_defaults()
    text = buffer.getvalue()
    assert TOKEN not in text
    assert "RuntimeError" in text
    assert "boom" in text


def test_levels_filter(stream: io.StringIO) -> None:
    buffer = io.StringIO()
    configure(log_format="json", level="warning", stream=buffer)
    log = get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [line["event"] for line in lines(buffer)] == ["loud"]


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as standard error is in a person's shell."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream_type", "shows_json"), [(io.StringIO, True), (_Terminal, False)])
def test_auto_is_console_on_a_terminal_and_json_elsewhere(
    stream_type: type[io.StringIO], shows_json: bool
) -> None:
    buffer = stream_type()
    configure(log_format="auto", level="info", stream=buffer)
    try:
        get_logger().info("pass.started", token=TOKEN)
    finally:
        structlog.reset_defaults()
    text = buffer.getvalue()
    assert TOKEN not in text
    assert text.startswith("{") is shows_json
    assert "pass.started" in text


def test_console_colours_only_when_asked() -> None:
    for colors in (False, True):
        buffer = _Terminal()
        configure(log_format="auto", level="info", stream=buffer, colors=colors)
        try:
            get_logger().info("pass.started")
        finally:
            structlog.reset_defaults()
        assert ("\x1b[" in buffer.getvalue()) is colors
