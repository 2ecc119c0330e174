"""The ProjectManager.com API-key endpoints over httpx: the only module that talks to the API.

Responsible for: building requests (bearer credential, ``x-integration-name``, ``Accept``,
``User-Agent``), judging every answer by its HTTP status *and* its envelope (``success`` /
``hasError``), mapping failures onto :mod:`rotator.errors`, parsing every variant the
documentation leaves open (the API's documented unknowns), and retrying what is safe to
retry. It knows nothing of policies, sinks, settings or the engine; it never logs, raises or
shows a secret (httpx exceptions carry the request and its ``Authorization`` header, so they
are translated and never chained onto the errors raised here).

Deadline: ``timeout_seconds`` bounds each attempt as a whole (connect, TLS, sending, the
headers and the whole body), whatever the server does: every socket operation gets the time
left until the attempt's deadline as its timeout, so a server that drips one byte a second
cannot stretch an attempt (httpx alone would restart its read timeout at every byte;
:mod:`rotator.deadline`, shared with the Kubernetes connection). Name resolution is the one
step the deadline cannot cut short (the system resolver has its own).
Every client of the process shares one TLS context (the CA bundle is loaded once, not for
each client of each pass: that cost 30 ms and grew the process's memory pass after pass).

Retries (tenacity): connection errors, timeouts, 429 and 5xx are retried at most
``max_retries`` times (``max_retries + 1`` attempts). The wait before retry *n* (1-based) is
"equal jitter" exponential backoff: with ``ceiling = min(30, 0.5 * 2 ** (n - 1))`` seconds, the
wait is uniform in ``[ceiling / 2, ceiling]``, so it never collapses to zero yet two rotators
never retry in lockstep. A ``Retry-After`` header (delta-seconds or an HTTP date) is honoured
up to a point: **no single wait is longer than 30 s** (:data:`MAX_WAIT_SECONDS`), whatever the
server asks, so with the defaults (10 s, 4 retries) one call takes at most 5 * 10 + 4 * 30 =
170 s: a hostile or confused server cannot park a CronJob's pass for hours.

Stopping: a ``stop`` event given to the constructor ends any wait between retries at once, and
no retry starts once it is set (a call's first attempt still goes, so that the credential in
flight at SIGTERM can finish); the call then raises ``ApiTransportError("stopped")`` whose
``outcome_unknown`` says whether an earlier attempt may have been applied. An attempt already
on the wire is not cut off (it ends within its deadline), and its answer is returned if it
succeeded: a created key's secret is never thrown away.

Create is not idempotent. A create whose connection timed out or dropped after the request was
sent, or that got a 5xx, may have made a key, so it is not retried: a retry could leave two.
It is retried only when the request surely was not applied (the connection was never made,
or 429). A lost create raises :class:`ApiTransportError` with ``outcome_unknown=True`` (or
:class:`ApiServerError` for a 5xx). This ends safely: a key made that way carries the rotator's
name marker (``<base>@<UTC time>``), no sink holds it, and a later pass revokes it as an orphan
once it is older than ROTATOR_ORPHAN_MIN_AGE_MINUTES. Revoke is retried: a repeated revoke of
an already-revoked key gets 404, 400 or 200, and the engine confirms every revoke by listing.

Odd answers: a listed key that is not an object, lacks ``id``, ``name`` or ``expires``, or has
an unreadable ``expires`` does not fail the whole list: :meth:`ProjectManagerClient.list_keys`
returns a :class:`KeyList` of the readable keys whose ``skipped`` names the others. ``expires``
at the ends of .NET's range (``0001-01-01T00:00:00``, ``9999-12-31T23:59:59.9999999``, with any
offset) parses, clamped to ``datetime.min`` / ``datetime.max`` in UTC. A key id is put in a
revoke path only when it is one safe path segment (see :func:`is_safe_key_id`).
"""

from __future__ import annotations

import email.utils
import functools
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import MINYEAR, UTC, datetime
from http import HTTPStatus
from ssl import SSLContext
from types import TracebackType
from typing import Any, Final, Self

import httpx
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from rotator import __version__
from rotator.deadline import current_deadline as _deadline
from rotator.deadline import enforce_deadlines as _enforce_deadlines
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
from rotator.models import (
    ApiKey,
    Identity,
    NewKey,
    Secret,
    is_loopback_host,
    is_safe_key_id,
    utc,
)

__all__ = [
    "MAX_WAIT_SECONDS",
    "KeyList",
    "ProjectManagerClient",
    "SkippedKey",
    "is_safe_key_id",
    "parse_api_datetime",
    "parse_retry_after",
]

_log = structlog.get_logger()

_KEYS_PATH: Final = "/api/data/api-keys"
_REVOKE_ALL_PATH: Final = "/api/data/api-keys/revoke-all"
_ME_PATH: Final = "/api/data/me"
_FIXED_PATHS: Final = (_KEYS_PATH, _REVOKE_ALL_PATH, _ME_PATH)

#: The longest single wait between two attempts, Retry-After included: what a CronJob can
#: afford to sit idle for, four times over, within its ROTATOR_HTTP_MAX_RETRIES.
MAX_WAIT_SECONDS: Final = 30.0
#: Backoff: first retry waits 0.25-0.5 s, doubling, each ceiling capped at MAX_WAIT_SECONDS.
BACKOFF_BASE_SECONDS: Final = 0.5
BACKOFF_CAP_SECONDS: Final = MAX_WAIT_SECONDS
#: The longest Retry-After honoured; a longer one is waited for only this long.
RETRY_AFTER_CAP_SECONDS: Final = MAX_WAIT_SECONDS

#: Longest envelope message kept in an exception (a server could answer with a novel).
_MAX_MESSAGE_CHARS: Final = 500

_DATETIME_RE = re.compile(
    r"^(?P<main>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)
#: Printable ASCII without spaces: what a bearer token can be, and what a header can carry.
_BEARER_RE = re.compile(r"^[\x21-\x7e]+$")
_MIN_UTC: Final = datetime.min.replace(tzinfo=UTC)
_MAX_UTC: Final = datetime.max.replace(tzinfo=UTC)


def parse_api_datetime(value: str) -> datetime:
    """An API date-time as an aware UTC datetime.

    Accepts a ``Z`` suffix, a numeric offset, or no zone at all (then it is UTC), with up to 7
    (or more) fractional digits: .NET writes ticks of 100 ns, Python keeps microseconds, so the
    digits beyond the sixth are dropped (an error below 1 µs, and truncation can never roll a
    value over into the next second). .NET's ``DateTime.MinValue`` and ``MaxValue`` with an
    offset would fall outside Python's range in UTC: they are clamped to ``datetime.min`` /
    ``datetime.max`` (UTC), never an OverflowError. Raises ValueError for anything else.
    """
    match = _DATETIME_RE.match(value.strip())
    if match is None:
        raise ValueError("not an ISO 8601 date-time")
    fraction = match.group("fraction")
    zone = match.group("zone")
    text = match.group("main").replace(" ", "T")
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if zone:
        text += "+00:00" if zone in ("Z", "z") else zone
    parsed = datetime.fromisoformat(text)
    try:
        return utc(parsed)
    except OverflowError:
        return _MIN_UTC if parsed.year == MINYEAR else _MAX_UTC


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    None when absent or unreadable; a date already past gives 0. Not capped here.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = utc(email.utils.parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (when - now).total_seconds())


def _bearer(credential: Secret) -> str:
    """The Authorization header value; refuses what no header could carry, without echoing it."""
    token = credential.reveal()
    if not _BEARER_RE.match(token):
        raise ValueError("credential is empty or not a valid bearer token (no spaces, ASCII only)")
    return f"Bearer {token}"


@dataclass(frozen=True)
class SkippedKey:
    """A key in List's answer that could not be read, and why (to be logged, naming the id).

    ``id`` and ``name`` are what the entry said, when it said them as non-empty strings.
    ``reason`` is one of ``not an object``, ``no id``, ``no name``, ``no expires``,
    ``unreadable expires``.
    """

    id: str | None
    name: str | None
    reason: str


class KeyList(list[ApiKey]):
    """The readable keys of a List answer (a plain list of them), and ``skipped``: the others."""

    def __init__(self, keys: Iterable[ApiKey] = (), skipped: Iterable[SkippedKey] = ()) -> None:
        super().__init__(keys)
        self.skipped: tuple[SkippedKey, ...] = tuple(skipped)

    def __repr__(self) -> str:
        return f"KeyList({list(self)!r}, skipped={self.skipped!r})"


@dataclass
class _Retryable(Exception):  # noqa: N818 - internal signal to tenacity, never escapes
    """An attempt failed in a way worth another try; ``error`` is raised if none is left.

    ``maybe_applied``: the server may have acted on the request (a timeout after sending, a
    5xx), as opposed to surely not (never sent, 429).
    """

    error: ApiError
    retry_after: float | None = None
    maybe_applied: bool = True


class _StopRequested(Exception):  # noqa: N818 - internal signal out of tenacity, never escapes
    """The client's stop event is set: no further attempt, no further wait."""


# -- TLS ---------------------------------------------------------------------------------------


@functools.cache
def _tls_context() -> SSLContext:
    """The TLS settings of every client, made once per process: loading the CA bundle takes
    about 30 ms and a few hundred kB, too much to repeat for each client of each pass.
    SSL_CERT_FILE and SSL_CERT_DIR are honoured as httpx would (read when first needed)."""
    return httpx.create_ssl_context(trust_env=True)


# -- the client --------------------------------------------------------------------------------


class ProjectManagerClient:
    """The ProjectManager.com API-key endpoints, authenticated by one workspace's credential.

    One instance per workspace; it holds a connection pool, so close it (or use ``with``).
    """

    def __init__(
        self,
        base_url: str,
        credential: Secret | Callable[[], Secret],
        *,
        integration_name: str = "key-rotator",
        timeout_seconds: float = 10.0,
        max_retries: int = 4,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        on_response: Callable[[str, str], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Check the URL and credential and open a connection pool.

        ``base_url`` must be https unless its host is loopback. ``credential`` is the client's
        own: a :class:`Secret`, or a provider called at every attempt for the current one (so
        a process can switch to its own new key at once); a provider's exceptions reach the
        caller unchanged. ``timeout_seconds`` is the deadline of each attempt as a whole.
        ``stop``: once set, waits end at once and no retry starts (module docstring).
        ``on_response(endpoint, status)`` is called after every attempt (for metrics):
        endpoint is one of ``list``, ``create``, ``revoke``, ``revoke_all``, ``me``; status is
        the HTTP status as a string, or ``error`` when no response came. ``sleep`` (replacing
        the stoppable wait between retries), ``rng`` and ``clock`` (used to read an HTTP-date
        Retry-After) are injectable for tests.
        """
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            raise ValueError("API base URL is not a valid URL") from None
        loopback = is_loopback_host(url.host)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("API base URL must be an absolute http(s) URL")
        if url.scheme != "https" and not loopback:
            raise ValueError(
                f"API base URL must use https (plain http is allowed only for loopback, "
                f"not {url.host!r})"
            )
        if url.userinfo:
            raise ValueError("API base URL must not carry a user name or password")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if not timeout_seconds > 0 or not math.isfinite(timeout_seconds):
            raise ValueError("timeout_seconds must be positive")
        if isinstance(credential, Secret):
            _bearer(credential)  # fail now, not at the first request
            fixed = credential
            self._credential: Callable[[], Secret] = lambda: fixed
        elif callable(credential):
            self._credential = credential
        else:
            raise TypeError("credential must be a Secret or a callable returning one")
        self._base_url = str(url).rstrip("/")
        self._integration_name = integration_name
        self._timeout_seconds = float(timeout_seconds)
        self._max_retries = max_retries
        self._stop = stop if stop is not None else threading.Event()
        self._sleep = sleep
        self._on_response = on_response
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        self._clock = clock if clock is not None else (lambda: datetime.now(UTC))
        self._http = httpx.Client(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout_seconds),
            verify=_tls_context(),
            transport=transport,
            headers={
                "Accept": "application/json",
                "User-Agent": f"key-rotator/{__version__}",
                "x-integration-name": integration_name,
            },
            # A loopback emulator must never be reached through a proxy from the environment.
            trust_env=not loopback,
            follow_redirects=False,
        )
        _enforce_deadlines(self._http)
        # The fixed endpoints' URLs, merged onto base_url once: httpx would parse and merge a
        # path for every request (a tenth of the client's CPU per request).
        self._urls = {path: self._http.build_request("GET", path).url for path in _FIXED_PATHS}

    def __repr__(self) -> str:
        return (
            f"ProjectManagerClient(base_url={self._base_url!r}, "
            f"integration_name={self._integration_name!r})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- endpoints ---------------------------------------------------------------------------

    def list_keys(self) -> KeyList:
        """Every readable key of the workspace; ``.skipped`` names the entries that were not.

        Never a secret, whatever List says about ``apiKey``. ApiProtocolError only when the
        answer as a whole is not a list.
        """
        data = self._call("list", "GET", _KEYS_PATH, idempotent=True)
        if not isinstance(data, list):
            raise ApiProtocolError("data is not an array", endpoint="list")
        keys: list[ApiKey] = []
        skipped: list[SkippedKey] = []
        for item in data:
            parsed = _parse_key(item)
            if isinstance(parsed, SkippedKey):
                skipped.append(parsed)
            else:
                keys.append(parsed)
        return KeyList(keys, skipped)

    def create_key(self, token_name: str) -> NewKey:
        """Create a key named ``token_name``; the only moment its secret is known.

        Not retried when it may have been applied (see the module docstring).
        """
        data = self._call(
            "create", "POST", _KEYS_PATH, body={"tokenName": token_name}, idempotent=False
        )
        if not isinstance(data, dict):
            raise ApiProtocolError("data is not an object", endpoint="create")
        key = _parse_key(data)
        if isinstance(key, SkippedKey):
            named = f"new key {key.id}" if key.id else "the new key"
            raise ApiProtocolError(f"{named}: {key.reason}", endpoint="create")
        secret = data.get("apiKey")
        if not isinstance(secret, str) or not secret:
            raise ApiProtocolError("the answer holds no apiKey", endpoint="create")
        if not _BEARER_RE.match(secret):
            # The key exists but could never be sent: fail the create; a later pass revokes it
            # as an orphan like any other rotator-made key no sink holds.
            raise ApiProtocolError(
                f"the apiKey of new key {key.id} cannot be sent as a bearer token",
                endpoint="create",
            )
        return NewKey(key=key, secret=Secret(secret))

    def revoke_key(self, key_id: str) -> None:
        """Revoke one key by id; 404 -> ApiNotFoundError, 400 -> ApiRequestError.

        An id that is not one safe path segment (:func:`is_safe_key_id`) is refused with
        ApiRequestError before anything is sent: no id can make the request reach another
        path. A 200 for an unknown id is also possible: confirm by listing.
        """
        if not is_safe_key_id(key_id):
            shown = key_id if len(key_id) <= 80 else key_id[:80] + "..."
            raise ApiRequestError(
                f"key id {shown!r} is unsafe in a URL path: not revoked", endpoint="revoke"
            )
        self._call("revoke", "DELETE", f"{_KEYS_PATH}/{key_id}/revoke", idempotent=True)

    def revoke_all_keys(self, *, i_understand_this_revokes_every_key: bool) -> None:
        """Revoke EVERY key of the workspace, the rotator's own included. Never used by a pass."""
        if i_understand_this_revokes_every_key is not True:
            raise ValueError("revoke_all_keys revokes every key of the workspace: pass the flag")
        self._call("revoke_all", "DELETE", _REVOKE_ALL_PATH, idempotent=True)

    def me(self, credential: Secret | None = None) -> Identity:
        """Who a credential is: the client's own (None), or another one, e.g. a new key.

        ApiAuthError when the API refuses that credential.
        """
        data = self._call("me", "GET", _ME_PATH, credential=credential, idempotent=True)
        if not isinstance(data, dict):
            raise ApiProtocolError("data is not an object", endpoint="me")
        return Identity(
            user_id=_optional_str(data.get("id")),
            workspace_id=_optional_str(data.get("workSpaceId")),
            workspace_name=_optional_str(data.get("workSpaceName")),
        )

    # -- one call, with retries --------------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        idempotent: bool,
        body: Mapping[str, Any] | None = None,
        credential: Secret | None = None,
    ) -> Any:
        """The envelope's ``data`` of a successful call, after retries; else an ApiError."""
        explicit = _bearer(credential) if credential is not None else None
        outcome = self._with_retries(endpoint, method, path, idempotent, body, explicit)
        if isinstance(outcome, _Success):
            return outcome.data
        # Raised here, out of every handler, with no chain and none of its earlier traceback:
        # nothing of httpx (whose exceptions hold the request and its Authorization header)
        # hangs off what callers see, and no frame of the retries keeps a response alive.
        outcome.__cause__ = None
        outcome.__context__ = None
        raise outcome.with_traceback(None)

    def _with_retries(
        self,
        endpoint: str,
        method: str,
        path: str,
        idempotent: bool,
        body: Mapping[str, Any] | None,
        explicit_authorization: str | None,
    ) -> _Success | ApiError:
        """Attempts until one succeeds, fails for good, none is left, or a stop is asked."""
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait_seconds,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._pause,
            reraise=True,
            before_sleep=_log_retry,
        )
        attempt_number = 0
        maybe_applied = False

        def attempt() -> _Success:
            nonlocal attempt_number, maybe_applied
            # A stop ends retries, never a call's first attempt: the work in flight when SIGTERM
            # came (a verify, the revoke that rolls a key back) must be able to finish.
            if attempt_number and self._stop.is_set():
                raise _StopRequested
            attempt_number += 1
            try:
                return self._attempt(
                    endpoint=endpoint,
                    method=method,
                    path=path,
                    body=body,
                    authorization=explicit_authorization or self._own_authorization(endpoint),
                    idempotent=idempotent,
                    attempt_number=attempt_number,
                )
            except _Retryable as failure:
                maybe_applied = maybe_applied or failure.maybe_applied
                raise

        try:
            return retrying(attempt)
        except _StopRequested:
            return ApiTransportError("stopped", endpoint=endpoint, outcome_unknown=maybe_applied)
        except _Retryable as failure:
            return failure.error
        except ApiError as failure:
            return failure

    def _own_authorization(self, endpoint: str) -> str:
        """The header for the client's own credential, asked of its provider now."""
        credential = self._credential()
        if not isinstance(credential, Secret):
            raise TypeError("the credential provider must return a Secret")
        try:
            return _bearer(credential)
        except ValueError:
            raise ApiAuthError(
                "the client's credential is empty or not a valid bearer token", endpoint=endpoint
            ) from None

    def _attempt(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        authorization: str,
        idempotent: bool,
        attempt_number: int,
    ) -> _Success:
        outcome: _Success | _Retryable | ApiError
        deadline = _deadline.set(time.monotonic() + self._timeout_seconds)
        try:
            response = self._http.request(
                method,
                self._urls.get(path, path),
                json=body,
                headers={"Authorization": authorization},
            )
        except httpx.TransportError as exc:
            outcome = _transport_failure(exc, endpoint, idempotent)
            status = "error"
        else:
            status = str(response.status_code)
            outcome = _judge(response, endpoint, idempotent, self._clock, authorization)
        finally:
            _deadline.reset(deadline)
        _log.debug(
            "api.request", method=method, endpoint=endpoint, status=status, attempt=attempt_number
        )
        if self._on_response is not None:
            self._on_response(endpoint, status)
        if isinstance(outcome, _Success):
            return outcome
        # Raised here, outside the except clause, so no httpx exception becomes its context.
        raise outcome

    def _pause(self, seconds: float) -> None:
        """Wait between two attempts; a set stop event ends the wait and the call at once."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)
        if self._stop.is_set():
            raise _StopRequested

    def _wait_seconds(self, retry_state: RetryCallState) -> float:
        """Equal-jitter exponential backoff, at least as long as Retry-After, at most the cap."""
        ceiling = min(
            BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (retry_state.attempt_number - 1)
        )
        wait: float = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            wait = max(wait, failure.retry_after)
        return min(wait, MAX_WAIT_SECONDS)


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    failure = outcome.exception() if outcome is not None else None
    next_action = retry_state.next_action
    _log.debug(
        "api.retry",
        endpoint=failure.error.endpoint if isinstance(failure, _Retryable) else None,
        attempt=retry_state.attempt_number,
        wait_s=round(next_action.sleep, 3) if next_action is not None else None,
    )


# -- judging one answer ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Success:
    data: Any


def _transport_failure(
    exc: httpx.TransportError, endpoint: str, idempotent: bool
) -> _Retryable | ApiError:
    """A transport error as an ApiTransportError, wrapped as retryable when trying again is safe."""
    # Only these are raised before a byte of the request left: the request surely was not
    # applied. Everything else (read/write timeouts, resets, a dropped connection) may have been.
    never_sent = isinstance(
        exc,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.UnsupportedProtocol
        | httpx.LocalProtocolError
        | httpx.ProxyError,
    )
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    # The message names the httpx class only: str(exc) of some httpx errors quotes headers.
    error = ApiTransportError(
        f"request {kind} ({type(exc).__name__})", endpoint=endpoint, outcome_unknown=not never_sent
    )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        return error  # a request this client could not even form: trying again cannot help
    if idempotent or never_sent:
        return _Retryable(error, maybe_applied=not never_sent)
    return error


def _judge(
    response: httpx.Response,
    endpoint: str,
    idempotent: bool,
    clock: Callable[[], datetime],
    authorization: str,
) -> _Success | _Retryable | ApiError:
    status = response.status_code
    envelope = _envelope(response)
    token = authorization.removeprefix("Bearer ")
    if 200 <= status < 300:
        if envelope is None:
            return ApiProtocolError(
                "answer is not a JSON envelope", status=status, endpoint=endpoint
            )
        if envelope.get("success") is not True or envelope.get("hasError") is True:
            message = _error_message(envelope, token) or "the envelope reports a failure"
            return ApiProtocolError(message, status=status, endpoint=endpoint)
        return _Success(envelope.get("data"))
    message = (_error_message(envelope, token) if envelope else None) or _phrase(status)
    if status in (401, 403):
        return ApiAuthError(message, status=status, endpoint=endpoint)
    if status == 404:
        return ApiNotFoundError(message, status=status, endpoint=endpoint)
    if status == 429:
        # Refused before it was applied: safe to retry, create included.
        retry_after = parse_retry_after(response.headers.get("Retry-After"), clock())
        return _Retryable(
            ApiRateLimitedError(message, status=status, endpoint=endpoint),
            retry_after,
            maybe_applied=False,
        )
    if 500 <= status < 600:
        error = ApiServerError(message, status=status, endpoint=endpoint)
        if not idempotent:
            return error
        retry_after = parse_retry_after(response.headers.get("Retry-After"), clock())
        return _Retryable(error, retry_after)
    if 400 <= status < 500:
        return ApiRequestError(message, status=status, endpoint=endpoint)
    return ApiProtocolError(
        f"unexpected answer ({_phrase(status)})", status=status, endpoint=endpoint
    )


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of the body, or None when the body is empty, not JSON or not an object."""
    try:
        body = response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError both are ValueErrors
        return None
    return body if isinstance(body, dict) else None


def _error_message(envelope: Mapping[str, Any], token: str) -> str | None:
    """The envelope's own words: ``error.message``, then each validation error and extra error.

    Should a server ever echo the bearer token it was sent, the token is redacted.
    """
    error = envelope.get("error")
    if not isinstance(error, dict):
        return None
    parts: list[str] = []
    if isinstance(error.get("message"), str) and error["message"]:
        parts.append(error["message"])
    validation = error.get("validationErrors")
    if isinstance(validation, dict):
        for field, messages in validation.items():
            texts = messages if isinstance(messages, list) else [messages]
            joined = "; ".join(str(text) for text in texts if text is not None)
            parts.append(f"{field}: {joined}" if joined else str(field))
    additional = error.get("additionalErrors")
    if isinstance(additional, list):
        parts.extend(str(text) for text in additional if text)
    if not parts:
        return None
    message = " | ".join(parts).replace(token, "[redacted]")
    return message if len(message) <= _MAX_MESSAGE_CHARS else message[:_MAX_MESSAGE_CHARS] + "..."


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _parse_key(item: object) -> ApiKey | SkippedKey:
    """An ApiKeyDto as an ApiKey, or why it cannot be one; the secret is the caller's business."""
    if not isinstance(item, dict):
        return SkippedKey(id=None, name=None, reason="not an object")
    key_id = _optional_str(item.get("id"))
    name, expires = item.get("name"), item.get("expires")
    shown_name = _optional_str(name)
    if key_id is None:
        return SkippedKey(id=None, name=shown_name, reason="no id")
    if not isinstance(name, str):
        return SkippedKey(id=key_id, name=None, reason="no name")
    if not isinstance(expires, str):
        return SkippedKey(id=key_id, name=shown_name, reason="no expires")
    try:
        expires_at = parse_api_datetime(expires)
    except ValueError:
        return SkippedKey(id=key_id, name=shown_name, reason="unreadable expires")
    return ApiKey(
        id=key_id, name=name, expires=expires_at, created_by=_optional_str(item.get("createdBy"))
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
