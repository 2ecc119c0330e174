"""``serve``'s trigger endpoints: ``POST /v1/rotate`` and ``POST /v1/leaks``.

Responsible for: whether the endpoints exist (ROTATOR_TRIGGER_TOKEN set, else 404 as for any
unknown path), who may call them (``Authorization: Bearer <token>`` compared in constant time,
or a Standard Webhooks signature made with ROTATOR_WEBHOOK_SECRET), what a request must look
like (400 naming what is wrong, never echoing a value), ``Idempotency-Key``, and the answers.

What is rotated, and how, is ``rotator.app.rotate_now``: the code path of ``rotate --now``, with
``trigger`` ``api`` or ``leak``. It runs under ``work``, the lock serve's scheduled passes hold
too, so a trigger during a pass waits for it (up to ROTATOR_SHUTDOWN_TIMEOUT_SECONDS, then 409);
another process's pass holding a workspace's own lock is waited for the same way.

A leak report's secret is hashed on arrival and dropped: it is never logged, stored, echoed or
put in an error; only its SHA-256 is kept (matched against the hashes the sinks store anyway).
The logs name the trigger's id, the workspace, credential and key id matched, never the hash.

Must not know: the HTTP server (``rotator.service`` hands over the method, path, headers and
body, and writes the answer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog

from rotator.app import (
    LeakMatch,
    RotateRefusedError,
    RotateResult,
    match_leak,
    rotate_now,
)
from rotator.events import Event
from rotator.logging import get_logger
from rotator.metrics import Metrics
from rotator.models import Secret
from rotator.report import PassReport, pass_document
from rotator.rotation import Outcome
from rotator.settings import Settings
from rotator.sinks.base import format_time

ROTATE_PATH: Final = "/v1/rotate"
LEAKS_PATH: Final = "/v1/leaks"
PATHS: Final = (ROTATE_PATH, LEAKS_PATH)

#: The largest request body read: a rotate request names credentials, a leak report one
#: secret; anything bigger is not one of them (413, unread).
MAX_BODY_BYTES: Final = 64 * 1024
#: How long a finished request's answer is kept for its Idempotency-Key: a scanner or a script
#: retrying within a day gets the first answer; after that the key may be used again.
IDEMPOTENCY_TTL_SECONDS: Final = 24 * 3600.0
#: How many answers are kept at most (the oldest goes first): memory stays bounded whatever
#: callers send.
IDEMPOTENCY_MAX_ENTRIES: Final = 1000
_MAX_IDEMPOTENCY_KEY: Final = 255
_SHA256_HEX: Final = re.compile(r"[0-9a-fA-F]{64}")
_WEBHOOK_HEADERS: Final = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class Answer:
    """What an endpoint answers: the status, a JSON body (or plain text), extra headers."""

    status: int
    body: Mapping[str, Any] | str
    headers: tuple[tuple[str, str], ...] = ()

    def encoded(self) -> tuple[bytes, str]:
        """The body's bytes and content type."""
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        text = json.dumps(self.body, indent=2, default=_json_default) + "\n"
        return text.encode(), "application/json"


NOT_FOUND: Final = Answer(404, "not found\n")
#: The one answer to any request that is not authenticated, whatever it asked for: it says
#: nothing about which workspaces or credentials exist.
UNAUTHORIZED: Final = Answer(
    401, {"error": "unauthorized"}, (("WWW-Authenticate", 'Bearer realm="rotator"'),)
)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return format_time(value)  # as `rotate -o json` shows times: ISO 8601 UTC with Z
    raise TypeError(type(value).__name__)


class BadRequestError(Exception):
    """The request's body is not what the endpoint takes: 400 with this message (never a value
    from the body)."""


# --------------------------------------------------------------------- idempotency


@dataclass
class _Entry:
    fingerprint: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    finished_at: float = 0.0


class IdempotencyKeys:
    """The answers of finished requests by Idempotency-Key, in memory, for
    IDEMPOTENCY_TTL_SECONDS, at most IDEMPOTENCY_MAX_ENTRIES.

    A request whose key is in flight waits for that one's answer. Only a 200 is kept: a request
    that changed nothing (409, 404, 503) may be sent again with the same key and is done then.
    A key sent again with another body is refused (422): it is a mistake, not a retry.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = IDEMPOTENCY_TTL_SECONDS,
        max_entries: int = IDEMPOTENCY_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, key: str, fingerprint: str, work: Callable[[], Answer]) -> tuple[Answer, bool]:
        """The answer of ``key``: the kept one (True: a replay), or ``work()``'s, or 422 for a
        key already used with another ``fingerprint`` (False: not a replay)."""
        while True:
            with self._lock:
                self._forget_expired()
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry(fingerprint)
                    self._entries.move_to_end(key)
                    break
            if entry.fingerprint != fingerprint:
                return Answer(
                    422, {"error": "this Idempotency-Key was used with another request"}
                ), False
            entry.done.wait()
            if entry.answer is not None:
                return entry.answer, True
            # The first request changed nothing and was not kept: this one is done now.
        answer: Answer | None = None
        try:
            answer = work()
            return answer, False
        finally:
            with self._lock:
                if answer is not None and answer.status == 200:
                    entry.answer, entry.finished_at = answer, self._clock()
                    while len(self._entries) > self._max:
                        self._entries.popitem(last=False)
                else:
                    self._entries.pop(key, None)
            entry.done.set()

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [
            k for k, e in self._entries.items() if e.answer and now - e.finished_at > self._ttl
        ]:
            del self._entries[key]


# ----------------------------------------------------------------------- the endpoints


class Triggers:
    """``POST /v1/rotate`` and ``POST /v1/leaks`` of one ``serve`` process."""

    def __init__(
        self,
        settings: Settings,
        *,
        work: threading.Lock,
        stop: threading.Event,
        metrics: Metrics,
        send_events: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self._settings = settings
        # Where a leak report's events go (notifications, webhooks: ROTATOR_NOTIFY_ON `leak`).
        self._send_events = send_events or (lambda _events: None)
        self._work = work
        self._stop = stop
        self._metrics = metrics
        self._log = get_logger()
        self._keys = IdempotencyKeys()
        token = settings.trigger_token
        self._token_sha256 = (
            hashlib.sha256(token.get_secret_value().encode()).digest() if token else None
        )
        self._webhook = _webhook_verifier(settings)

    @property
    def enabled(self) -> bool:
        return self._token_sha256 is not None

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """The answer to ``POST path`` (one of PATHS) with ``headers`` (names in any case)."""
        if not self.enabled:
            return NOT_FOUND
        lowered = {name.lower(): value for name, value in headers.items()}
        authenticated, webhook_id = self._authenticated(lowered, body)
        if not authenticated:
            return UNAUTHORIZED
        source = "api" if path == ROTATE_PATH else "leak"
        try:
            request = _json_object(body)
            parsed: _RotateRequest | str = (
                self._rotate_request(request) if source == "api" else _leak_sha256(request)
            )
        except BadRequestError as exc:
            return Answer(400, {"error": str(exc)})
        if self._settings.dry_run:
            # An emergency action must never look done while nothing changed (as `rotate`).
            return Answer(403, {"error": "ROTATOR_DRY_RUN is true: this serve changes no key"})
        trigger_id = uuid.uuid4().hex
        # A signed request's webhook-id is its idempotency key unless it names one: a replayed
        # signed message (within the signature's five minutes) rotates nothing again.
        key = lowered.get("idempotency-key") or webhook_id
        if key is not None and not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY:
            return Answer(400, {"error": "Idempotency-Key must be 1 to 255 characters"})

        def work() -> Answer:
            with structlog.contextvars.bound_contextvars(trigger_id=trigger_id):
                self._log.info("trigger.received", id=trigger_id, source=source)
                done = (
                    self._leak(parsed, trigger_id)
                    if isinstance(parsed, str)
                    else self._rotate(parsed)
                )
            return Answer(done.status, done.body, (*done.headers, ("Trigger-Id", trigger_id)))

        if key is None:
            return work()
        answer, replayed = self._keys.run(f"{path} {key}", _fingerprint(parsed), work)
        if not replayed:
            return answer
        # The first request's answer, its Trigger-Id included: nothing was done again.
        self._log.info("trigger.replayed", id=trigger_id, source=source)
        return Answer(
            answer.status, answer.body, (*answer.headers, ("Idempotent-Replayed", "true"))
        )

    # ------------------------------------------------------------------ authentication

    def _authenticated(self, headers: Mapping[str, str], body: bytes) -> tuple[bool, str | None]:
        """Whether the request is the operator's, and a signed request's webhook-id. Made before
        the body is even parsed, whatever the request asks for: how long it takes says nothing
        about which workspaces or credentials exist."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        given_sha256 = hashlib.sha256(given.strip().encode("utf-8", "replace")).digest()
        # Compared as hashes: equal lengths, so not even the token's length shows in the time.
        bearer = hmac.compare_digest(given_sha256, self._token_sha256 or b"")
        if bearer and scheme.lower() == "bearer":
            return True, None
        if self._webhook is not None and all(name in headers for name in _WEBHOOK_HEADERS):
            try:
                self._webhook.verify(body, {n: headers[n] for n in _WEBHOOK_HEADERS})
            except Exception:  # noqa: BLE001 - any failure of the library is "not signed by us"
                return False, None
            return True, headers["webhook-id"]
        return False, None

    # ----------------------------------------------------------------------- rotate

    def _rotate_request(self, request: Mapping[str, Any]) -> _RotateRequest:
        unknown = sorted(set(request) - {"workspace", "credentials", "all"})
        if unknown:
            raise BadRequestError(
                f"unknown field(s) {', '.join(unknown)}: give workspace and credentials, or all"
            )
        workspace = request.get("workspace")
        if workspace is not None and (not isinstance(workspace, str) or not workspace):
            raise BadRequestError("workspace must be a non-empty string")
        every = request.get("all", False)
        if not isinstance(every, bool):
            raise BadRequestError("all must be true or false")
        names = request.get("credentials")
        if names is not None and (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise BadRequestError("credentials must be a non-empty array of credential names")
        if bool(names) == every:
            raise BadRequestError('give credentials (an array of names) or "all": true, not both')
        if workspace is None:
            configured = [ws.name for ws in self._settings.workspaces]
            if len(configured) != 1:
                raise BadRequestError("several workspaces are configured: name the workspace")
            workspace = configured[0]
        return _RotateRequest(workspace, tuple(sorted(set(names or ()))), every)

    def _rotate(self, request: _RotateRequest) -> Answer:
        def rotate(wait: float) -> RotateResult:
            return rotate_now(
                self._settings,
                request.credentials,
                all_managed=request.all,
                workspace=request.workspace,
                trigger="api",
                refuse_unknown_first=True,
                lock_wait_seconds=wait,
                stop=self._stop,
                on_response=self._metrics.observe_api,
            )

        outcome = self._exclusively(rotate)
        if isinstance(outcome, Answer):
            return outcome
        document = pass_document(outcome.report)
        if any(ws.locked for ws in outcome.report.workspaces):
            return Answer(409, {**document, "error": _LOCK_HELD})
        if outcome.unknown:
            return Answer(
                404,
                {**document, "error": f"not managed here: {', '.join(outcome.unknown)}"},
            )
        return Answer(200, document)

    # ------------------------------------------------------------------------ leaks

    def _leak(self, secret_sha256: str, trigger_id: str) -> Answer:
        def search_and_rotate(wait: float) -> tuple[list[LeakMatch], dict[str, str], list[Any]]:
            deadline = time.monotonic() + wait
            found = match_leak(
                self._settings,
                secret_sha256,
                on_response=self._metrics.observe_api,
                stop=self._stop,
            )
            to_rotate: dict[str, list[str]] = {}
            for match in found.matches:
                if match.live:
                    to_rotate.setdefault(match.workspace, []).append(match.credential)
            results: list[Any] = []
            for workspace, credentials in sorted(to_rotate.items()):
                try:
                    results.append(
                        rotate_now(
                            self._settings,
                            credentials,
                            workspace=workspace,
                            trigger="leak",
                            lock_wait_seconds=max(deadline - time.monotonic(), 0.0),
                            stop=self._stop,
                            on_response=self._metrics.observe_api,
                        ).report
                    )
                except RotateRefusedError as exc:
                    results.append(exc)
            return found.matches, found.unread, results

        outcome = self._exclusively(search_and_rotate)
        if isinstance(outcome, Answer):
            return outcome
        matches, unread, results = outcome
        reports = [r for r in results if isinstance(r, PassReport)]
        for report in reports:
            self._count(report)
        rotated = {
            (ws.name, credential)
            for report in reports
            for ws in report.workspaces
            for credential, result in ws.results.items()
            if result.outcome is Outcome.ROTATED
        }
        for match in matches:
            self._log.warning(
                "leak.matched",
                workspace=match.workspace,
                credential=match.credential,
                key_id=match.key_id,
                role=match.role,
                rotated=(match.workspace, match.credential) in rotated,
                already_revoked=not match.live,
            )
        if not matches:
            self._log.info("leak.unmatched", unread=sorted(unread))
        self._send_events(_leak_events(trigger_id, matches, rotated))
        body: dict[str, Any] = {
            "matched": [
                {
                    "workspace": m.workspace,
                    "credential": m.credential,
                    "key_id": m.key_id,
                    "role": m.role,
                    "rotated": (m.workspace, m.credential) in rotated,
                    "already_revoked": not m.live,
                }
                for m in matches
            ],
            "rotations": [pass_document(report) for report in reports],
        }
        refused = [str(r) for r in results if isinstance(r, RotateRefusedError)]
        if refused:
            body["errors"] = refused
        if unread:
            body["unread"] = sorted(unread)
        if any(ws.locked for report in reports for ws in report.workspaces):
            return Answer(409, {**body, "error": _LOCK_HELD})
        if unread and not matches:
            # A key of a workspace that could not be read may be the one: "no match" would be
            # an all-clear nobody can give. The scanner sends it again later.
            return Answer(503, {**body, "error": "a workspace could not be read; send it again"})
        return Answer(200, body)

    # ------------------------------------------------------------------------ shared

    def _exclusively(self, work: Callable[[float], Any]) -> Any:
        """``work(seconds left)`` under serve's work lock, taken within
        ROTATOR_SHUTDOWN_TIMEOUT_SECONDS (else 409); 503 once serve is stopping."""
        timeout = self._settings.shutdown_timeout_seconds
        deadline = time.monotonic() + timeout
        if self._stop.is_set():
            return _STOPPING
        if not self._work.acquire(timeout=timeout):
            return Answer(409, {"error": _LOCK_HELD})
        try:
            if self._stop.is_set():
                return _STOPPING
            try:
                result = work(max(deadline - time.monotonic(), 0.0))
            except RotateRefusedError as exc:
                return Answer(
                    _REFUSED_STATUS.get(exc.reason, 400), {"error": "; ".join(exc.problems)}
                )
            except Exception as exc:  # noqa: BLE001 - serve answers; the error's text stays out
                # By class only, as rotator.crashed: an unforeseen error's text could hold anything.
                self._log.error("trigger.crashed", error_type=type(exc).__name__)
                return Answer(500, {"error": f"unexpected {type(exc).__name__}; see the log"})
        finally:
            self._work.release()
        if isinstance(result, RotateResult):
            self._count(result.report)
        return result

    def _count(self, report: PassReport) -> None:
        for ws in report.workspaces:
            outcomes = list(ws.outcomes.values())
            self._metrics.record_rotations(ws.name, "succeeded", outcomes.count(Outcome.ROTATED))
            self._metrics.record_rotations(ws.name, "failed", outcomes.count(Outcome.FAILED))
            self._metrics.record_rotations(ws.name, "rolled_back", ws.rolled_back)


_LOCK_HELD: Final = (
    "another pass held the workspace's lock for ROTATOR_SHUTDOWN_TIMEOUT_SECONDS; nothing was "
    "changed: send it again"
)
_STOPPING: Final = Answer(503, {"error": "serve is stopping; nothing was changed"})
#: The answer to each reason ``rotate_now`` refuses for: an unknown name is 404; under
#: ROTATOR_DRY_RUN this serve changes no key, whoever asks (403).
_REFUSED_STATUS: Final = {"unknown-workspace": 404, "unknown-credential": 404, "dry-run": 403}


def _leak_events(
    trigger_id: str, matches: Sequence[LeakMatch], rotated: set[tuple[str, str]]
) -> list[Event]:
    """What people and machines are told of a leak report: a ``leak.matched`` per credential it
    matched, or one ``leak.unmatched``; never the secret nor its hash."""
    now = datetime.now(UTC)
    if not matches:
        return [Event("leak.unmatched", trigger_id, now, detail="no sink holds this secret")]
    return [
        Event(
            "leak.matched",
            f"{trigger_id}-{number}",
            now,
            workspace=m.workspace,
            credential=m.credential,
            key_id=m.key_id,
            reason=m.role,
            detail=(
                "replaced"
                if (m.workspace, m.credential) in rotated
                else "already revoked"
                if not m.live
                else "not replaced: see the log"
            ),
        )
        for number, m in enumerate(matches, 1)
    ]


@dataclass(frozen=True)
class _RotateRequest:
    workspace: str
    credentials: tuple[str, ...]
    all: bool


def _fingerprint(request: _RotateRequest | str) -> str:
    """What tells two requests under one Idempotency-Key apart (a leak's: its hash alone)."""
    if isinstance(request, str):
        return request
    return json.dumps([request.workspace, request.credentials, request.all])


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # Never the decoder's message: it quotes the body, which may hold a secret.
        raise BadRequestError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise BadRequestError("the body is not a JSON object")
    return document


def _leak_sha256(request: Mapping[str, Any]) -> str:
    """The SHA-256 (lowercase hex) of the leaked secret; the secret itself goes no further."""
    unknown = sorted(set(request) - {"secret", "secret_sha256"})
    if unknown:
        raise BadRequestError(
            f"unknown field(s) {', '.join(unknown)}: give secret or secret_sha256"
        )
    if ("secret" in request) == ("secret_sha256" in request):
        raise BadRequestError("give secret or secret_sha256, not both")
    if "secret" in request:
        secret = request["secret"]
        if not isinstance(secret, str) or not secret.strip():
            raise BadRequestError("secret must be a non-empty string")
        # A key is one word: white space around it is the scanner's, not the key's.
        return Secret(secret.strip()).sha256()
    digest = request["secret_sha256"]
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise BadRequestError("secret_sha256 must be 64 hexadecimal digits")
    return digest.lower()


class _Verifier(Protocol):
    """What serve needs of ``standardwebhooks.Webhook``."""

    def verify(self, data: bytes, headers: dict[str, str]) -> object: ...


def _webhook_verifier(settings: Settings) -> _Verifier | None:
    """A Standard Webhooks verifier of ROTATOR_WEBHOOK_SECRET, when it is set and the library
    (extra ``notify``) is installed; else None, and only the bearer token is accepted."""
    if settings.webhook_secret is None:
        return None
    try:
        from standardwebhooks import Webhook  # noqa: PLC0415 - optional: extra `notify`
    except ImportError:
        get_logger().warning(
            "trigger.webhook_unavailable",
            detail="ROTATOR_WEBHOOK_SECRET is set but the standardwebhooks library is not "
            "installed (pip install 'key-rotator[notify]'): only the bearer token is accepted",
        )
        return None
    verifier: _Verifier = Webhook(settings.webhook_secret.get_secret_value())
    return verifier
