"""The emulator's in-memory world and the ProjectManager API-key endpoints as pure request handling.

Responsible for: workspaces with their users, keys (each made by one user), the controllable
clock (frozen, or running in real time), the behaviour variants (one switch per unknown of the
API's documentation, plus a latency for benchmarks), raw entries added to List's answer (odd
keys for tests), the queued faults, the request log (the last REQUEST_LOG_LIMIT requests), and
turning one request (method, path, headers, body) into one response. Everything is guarded by
one lock, held only while computing an answer (never while sleeping), so the HTTP layer may call
in from many threads at once.

Must not know: sockets, http.server, threads that serve, or anything of the rotator itself (the
client, the engine, the sinks); it is a stand-in for the real service, nothing more.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: How the emulated time goes: ``frozen`` (it moves only when set or advanced: tests) or
#: ``real`` (it runs with the machine's clock, from wherever it was set: ``rotator emulator``).
CLOCKS = ("frozen", "real")
#: A key lives two years and its lifetime cannot be chosen (the API's documentation).
KEY_LIFETIME = timedelta(days=730)
#: The request log keeps this many of the latest requests: a long benchmark must not grow it
#: without end (about 1.5 kB a request).
REQUEST_LOG_LIMIT = 10_000

#: Entries for List's answer that a careful client must survive (``add_list_entries``): .NET's
#: DateTime.MinValue and MaxValue as ``expires``, ids that would change a URL path, and
#: entries that are not keys at all. None of them can authenticate or be revoked.
ODD_LIST_ENTRIES: tuple[object, ...] = (
    {"id": "odd-min-value", "createdBy": None, "expires": "0001-01-01T00:00:00", "name": "odd-min"},
    {
        "id": "odd-max-value",
        "createdBy": None,
        "expires": "9999-12-31T23:59:59.9999999",
        "name": "odd-max",
    },
    {"id": "odd/slash", "createdBy": None, "expires": "2027-01-01T00:00:00Z", "name": "odd-slash"},
    {"id": "..", "createdBy": None, "expires": "2027-01-01T00:00:00Z", "name": "odd-dotdot"},
    {"id": "odd id?#", "createdBy": None, "expires": "2027-01-01T00:00:00Z", "name": "odd-chars"},
    {"id": "", "createdBy": None, "expires": "2027-01-01T00:00:00Z", "name": "odd-empty-id"},
    {"id": "odd-no-name", "createdBy": None, "expires": "2027-01-01T00:00:00Z"},
    {"id": "odd-no-expires", "createdBy": None, "name": "odd-no-expires"},
    {"id": "odd-bad-expires", "createdBy": None, "expires": "soon", "name": "odd-bad-expires"},
    "not a key",
    None,
)

#: .NET ``HttpStatusCode`` names, as the envelope's ``statusCode`` carries them.
_STATUS_NAMES: dict[int, str] = {
    100: "Continue", 101: "SwitchingProtocols", 102: "Processing", 103: "EarlyHints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "NonAuthoritativeInformation",
    204: "NoContent", 205: "ResetContent", 206: "PartialContent", 207: "MultiStatus",
    208: "AlreadyReported", 226: "IMUsed", 300: "MultipleChoices", 301: "MovedPermanently",
    302: "Found", 303: "SeeOther", 304: "NotModified", 305: "UseProxy", 306: "Unused",
    307: "TemporaryRedirect", 308: "PermanentRedirect", 400: "BadRequest", 401: "Unauthorized",
    402: "PaymentRequired", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 407: "ProxyAuthenticationRequired", 408: "RequestTimeout",
    409: "Conflict", 410: "Gone", 411: "LengthRequired", 412: "PreconditionFailed",
    413: "RequestEntityTooLarge", 414: "RequestUriTooLong", 415: "UnsupportedMediaType",
    416: "RequestedRangeNotSatisfiable", 417: "ExpectationFailed", 421: "MisdirectedRequest",
    422: "UnprocessableEntity", 423: "Locked", 424: "FailedDependency", 426: "UpgradeRequired",
    428: "PreconditionRequired", 429: "TooManyRequests", 431: "RequestHeaderFieldsTooLarge",
    451: "UnavailableForLegalReasons", 500: "InternalServerError", 501: "NotImplemented",
    502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
    505: "HttpVersionNotSupported", 506: "VariantAlsoNegotiates", 507: "InsufficientStorage",
    508: "LoopDetected", 510: "NotExtended", 511: "NetworkAuthenticationRequired",
}  # fmt: skip


def status_name(status: int) -> str:
    """The .NET ``HttpStatusCode`` name of a status (its number as text when .NET has none)."""
    return _STATUS_NAMES.get(status, str(status))


_REVOKE_PATH = re.compile(r"^/api/data/api-keys/(?P<key_id>[^/]+)/revoke$")
_OFFSET_ZONE = timezone(timedelta(hours=2))

#: Each variant, its allowed values (None: any int >= 0 or None, see _check_variant) and default.
_VARIANT_CHOICES: dict[str, tuple[object, ...]] = {
    "list_api_key": ("absent", "null", "empty"),
    "list_expired": (True, False),
    "expires_format": ("z", "offset", "naive"),
    "expires_fraction_digits": tuple(range(8)),
    "revoke_unknown_status": (404, 400, 200),
    "revoke_self": ("allow", "deny"),
    "unauthorized_body": ("envelope", "empty"),
    "error_on_success": ("null", "absent"),
    # The OpenAPI file's AstroResult has no `data` (additionalProperties false): absent by
    # default; the documentation leaves open whether the live API sends "data": null.
    "revoke_data": ("absent", "null"),
    "duplicate_names": ("allow", "deny"),
}
_VARIANT_DEFAULTS: dict[str, object] = {
    "list_api_key": "absent",
    "list_expired": True,
    "expires_format": "z",
    "expires_fraction_digits": 7,
    "revoke_unknown_status": 404,
    "revoke_self": "allow",
    "unauthorized_body": "envelope",
    "error_on_success": "null",
    "revoke_data": "absent",
    "duplicate_names": "allow",
    "max_keys": None,
    "max_name_length": None,
    "secret_length": 48,
    "propagation_failures": 0,
    "latency_ms": 0,
}
_OPTIONAL_LIMITS = ("max_keys", "max_name_length")
_COUNTS = ("secret_length", "propagation_failures", "latency_ms")
_FAULT_FLAGS = ("drop", "has_error_200", "malformed", "apply_then_drop")
#: What a drip fault sends slowly: the status line and headers, the body, or both.
DRIP_PARTS = ("headers", "body", "all")


def _check_variant(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is allowed for the variant ``name``."""
    if name in _VARIANT_CHOICES:
        # bool is an int: keep True from passing as 1 and 1 as True.
        allowed = _VARIANT_CHOICES[name]
        if not any(type(value) is type(choice) and value == choice for choice in allowed):
            raise ValueError(f"variant {name}: {value!r} is not one of {list(allowed)}")
    elif name in _OPTIONAL_LIMITS:
        if value is not None and not (type(value) is int and value >= 0):
            raise ValueError(f"variant {name}: expected a non-negative int or None")
    elif name in _COUNTS:
        if not (type(value) is int and value >= (1 if name == "secret_length" else 0)):
            raise ValueError(f"variant {name}: expected a non-negative int")
    else:
        raise ValueError(f"unknown variant {name!r}; known: {sorted(_VARIANT_DEFAULTS)}")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; one with no zone is taken as UTC. Returns an aware UTC datetime."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times given to the emulator must be timezone-aware")
    return moment.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """``moment`` as ISO 8601 UTC with a ``Z`` (the control endpoint's format)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    """One queued fault rule; ``times`` counts down, -1 means forever; the first ``skip``
    matching requests pass untouched (a fault on the third ``me`` of a pass, say).

    ``drip_ms`` > 0 sends the answer one byte every ``drip_ms`` milliseconds: its ``drip_part``
    (``headers``: the status line and headers, ``body``, or ``all``) slowly, the rest at once.
    """

    method: str
    path: str
    status: int | None = None
    retry_after: str | None = None
    delay_seconds: float = 0
    drop: bool = False
    has_error_200: bool = False
    malformed: bool = False
    apply_then_drop: bool = False
    times: int = 1
    skip: int = 0
    drip_ms: float = 0
    drip_part: str = "all"

    def matches(self, method: str, path: str) -> bool:
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and self.path in ("*", path)


@dataclass(frozen=True)
class Response:
    """What the HTTP layer must send: status, headers, body; or drop the connection."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    #: close the connection without sending anything
    drop: bool = False


@dataclass
class _User:
    id: str
    full_name: str
    email: str
    role: str


@dataclass
class _Workspace:
    id: str
    name: str
    admin_user_id: str
    users: dict[str, _User] = field(default_factory=dict)
    #: The user keys created through the API act as; None: the creating key's own user.
    new_key_user_id: str | None = None


@dataclass
class _Key:
    id: str
    workspace_id: str
    name: str
    secret: str = field(repr=False)  # a secret never reaches a repr, even an emulated one
    expires: datetime
    created_by: str
    revoked: bool = False
    #: 401s still owed to /me calls before a new key has "propagated"
    pending_me_failures: int = 0


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class EmulatorState:
    """The whole emulated service. Every public method takes the one lock."""

    def __init__(self, seed: Mapping[str, Any] | None = None, *, clock: str = "frozen") -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")
        self._lock = threading.RLock()
        #: ``frozen``: the time stands at ``_frozen_at`` until set or advanced (tests);
        #: ``real``: it runs, ``_offset`` from the machine's clock (``rotator emulator``).
        self._real = clock == "real"
        self._frozen_at = datetime.now(UTC)
        self._offset = timedelta(0)
        self._variants: dict[str, object] = dict(_VARIANT_DEFAULTS)
        self._workspaces: dict[str, _Workspace] = {}
        self._keys: dict[str, _Key] = {}  # insertion order is creation order
        self._key_ids_by_secret: dict[str, str] = {}  # bearer auth in O(1), for benchmarks
        self._list_entries: dict[str, list[object]] = {}  # workspace id -> raw entries
        self._issued: set[str] = set()
        self._faults: list[Fault] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        if seed:
            self._load_seed(seed)

    def _load_seed(self, seed: Mapping[str, Any]) -> None:
        if seed.get("now"):
            self.set_now(parse_time(str(seed["now"])))
        self.set_variants(**dict(seed.get("variants") or {}))
        for workspace in seed.get("workspaces") or []:
            workspace_id = self.add_workspace(str(workspace["name"]), workspace.get("id"))
            for user in workspace.get("users") or []:
                self.add_user(
                    workspace_id,
                    user.get("full_name"),
                    user_id=user.get("id"),
                    email=user.get("email"),
                    role=str(user.get("role") or "Admin"),
                )
            for key in workspace.get("keys") or []:
                expires = parse_time(str(key["expires"])) if key.get("expires") else None
                if key.get("expires_in_days") is not None:
                    expires = self._time() + timedelta(days=float(key["expires_in_days"]))
                self.add_key(
                    workspace_id,
                    str(key["name"]),
                    expires=expires,
                    secret=key.get("secret"),
                    key_id=key.get("id"),
                    created_by=key.get("created_by"),
                    revoked=bool(key.get("revoked", False)),
                )

    # -- the clock ---------------------------------------------------------------------------

    def now(self) -> datetime:
        with self._lock:
            return self._time()

    def _time(self) -> datetime:
        """The emulated time now (the lock held by the caller)."""
        return datetime.now(UTC) + self._offset if self._real else self._frozen_at

    def set_now(self, moment: datetime) -> None:
        """Move the clock to ``moment``; a real clock goes on running from there."""
        with self._lock:
            if self._real:
                self._offset = _to_utc(moment) - datetime.now(UTC)
            else:
                self._frozen_at = _to_utc(moment)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            if self._real:
                self._offset += delta
            else:
                self._frozen_at += delta

    # -- the world ---------------------------------------------------------------------------

    def add_workspace(self, name: str, workspace_id: str | None = None) -> str:
        with self._lock:
            new_id = workspace_id or str(uuid.uuid4())
            if new_id in self._workspaces:
                raise ValueError(f"workspace {new_id} exists already")
            workspace = _Workspace(new_id, name, str(uuid.uuid4()))
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workspace"
            workspace.users[workspace.admin_user_id] = _User(
                workspace.admin_user_id, f"{name} Admin", f"admin@{slug}.example", "Admin"
            )
            self._workspaces[new_id] = workspace
            return new_id

    def add_user(
        self,
        workspace_id: str,
        full_name: str | None = None,
        *,
        user_id: str | None = None,
        email: str | None = None,
        role: str = "Admin",
    ) -> str:
        """Add a user (a person, say) to a workspace; returns its id, for ``created_by``."""
        with self._lock:
            workspace = self._workspace(workspace_id)
            new_id = user_id or str(uuid.uuid4())
            if new_id in workspace.users:
                raise ValueError(f"user {new_id} exists already")
            name = full_name or f"User {new_id[:8]}"
            slug = re.sub(r"[^a-z0-9]+", ".", name.lower()).strip(".") or "user"
            workspace.users[new_id] = _User(new_id, name, email or f"{slug}@example.com", role)
            return new_id

    def admin_user_id(self, workspace_id: str) -> str:
        """The id of the workspace's admin: who made a key unless ``created_by`` says another."""
        with self._lock:
            return self._workspace(workspace_id).admin_user_id

    def set_new_key_user(self, workspace_id: str, user_id: str | None) -> None:
        """Make keys created through the API in a workspace act as ``user_id`` (``me`` answers
        with it; List shows it as ``createdBy``); None: as the creating key's user again."""
        with self._lock:
            self._workspace(workspace_id).new_key_user_id = user_id

    def add_list_entries(self, workspace_id: str, entries: Iterable[object]) -> None:
        """Append raw entries (any JSON) to every List answer of the workspace, after its keys."""
        copied = json.loads(json.dumps(list(entries)))  # JSON only, and no sharing with callers
        with self._lock:
            self._workspace(workspace_id)
            self._list_entries.setdefault(workspace_id, []).extend(copied)

    def clear_list_entries(self, workspace_id: str | None = None) -> None:
        """Remove the raw List entries of one workspace, or of all (None)."""
        with self._lock:
            if workspace_id is None:
                self._list_entries.clear()
            else:
                self._list_entries.pop(workspace_id, None)

    def add_key(
        self,
        workspace_id: str,
        name: str,
        *,
        expires: datetime | None = None,
        secret: str | None = None,
        key_id: str | None = None,
        created_by: str | None = None,
        revoked: bool = False,
    ) -> tuple[str, str]:
        with self._lock:
            workspace = self._workspace(workspace_id)
            new_id = key_id or str(uuid.uuid4())
            if new_id in self._keys:
                raise ValueError(f"key {new_id} exists already")
            new_secret = secret or self._new_secret()
            if new_secret in self._issued:
                raise ValueError("that secret was issued already")
            self._keys[new_id] = _Key(
                id=new_id,
                workspace_id=workspace.id,
                name=name,
                secret=new_secret,
                expires=_to_utc(expires) if expires else self._time() + KEY_LIFETIME,
                created_by=created_by or workspace.admin_user_id,
                revoked=revoked,
            )
            self._issued.add(new_secret)
            self._key_ids_by_secret[new_secret] = new_id
            return new_id, new_secret

    def _workspace(self, workspace_id: str) -> _Workspace:
        try:
            return self._workspaces[workspace_id]
        except KeyError:
            raise KeyError(f"unknown workspace {workspace_id}") from None

    def _new_secret(self) -> str:
        length = int(self._variants["secret_length"])  # type: ignore[call-overload]
        # token_urlsafe(n) yields about 1.3 n characters: enough to cut to the exact length.
        return secrets.token_urlsafe(length)[:length]

    def keys(self, workspace_id: str, include_revoked: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            self._workspace(workspace_id)
            return [
                {
                    "id": key.id,
                    "name": key.name,
                    "expires": key.expires,
                    "revoked": key.revoked,
                    "created_by": key.created_by,
                }
                for key in self._keys.values()
                if key.workspace_id == workspace_id and (include_revoked or not key.revoked)
            ]

    def issued_secrets(self) -> set[str]:
        with self._lock:
            return set(self._issued)

    def key_id_of(self, secret: str) -> str | None:
        with self._lock:
            return self._key_ids_by_secret.get(secret)

    def snapshot(self) -> dict[str, Any]:
        """The whole world as JSON-ready data (the control endpoint's ``/state``); no secrets."""
        with self._lock:
            return {
                "now": iso_z(self._time()),
                "variants": dict(self._variants),
                "workspaces": [
                    {
                        "id": workspace.id,
                        "name": workspace.name,
                        "new_key_user_id": workspace.new_key_user_id,
                        "users": [
                            {"id": u.id, "full_name": u.full_name, "email": u.email, "role": u.role}
                            for u in workspace.users.values()
                        ],
                        "keys": [
                            {**key, "expires": iso_z(key["expires"])}
                            for key in self.keys(workspace.id, include_revoked=True)
                        ],
                    }
                    for workspace in self._workspaces.values()
                ],
            }

    # -- variants and faults -----------------------------------------------------------------

    def set_variants(self, **variants: object) -> None:
        for name, value in variants.items():
            _check_variant(name, value)
        with self._lock:
            self._variants.update(variants)

    def variants(self) -> dict[str, object]:
        with self._lock:
            return dict(self._variants)

    def add_fault(self, fault: Fault) -> None:
        if fault.status is not None and not 100 <= fault.status <= 599:
            raise ValueError("a fault's status must be an HTTP status (100-599)")
        if fault.times == 0 or fault.times < -1:
            raise ValueError("a fault's times must be positive, or -1 for forever")
        if fault.skip < 0:
            raise ValueError("a fault's skip cannot be negative")
        if fault.delay_seconds < 0:
            raise ValueError("a fault's delay_seconds cannot be negative")
        if fault.drip_ms < 0:
            raise ValueError("a fault's drip_ms cannot be negative")
        if fault.drip_part not in DRIP_PARTS:
            raise ValueError(f"a fault's drip_part is one of {list(DRIP_PARTS)}")
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first matching fault with uses left, with one use consumed; None when none."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry, headers=dict(entry["headers"])) for entry in self._log]

    # -- one API request ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        fault: Fault | None = None,
    ) -> Response:
        """Answer one request to the API, applying ``fault`` (already taken) if given, and log it.

        ``headers`` must have lower-case names. A delay is the caller's business (it must not
        sleep holding the lock).
        """
        with self._lock:
            caller = self._authenticated_key(headers)
            response = self._respond(method, path, caller, body, fault)
            if fault is not None and fault.retry_after is not None:
                response = Response(
                    response.status,
                    response.body,
                    {**response.headers, "Retry-After": fault.retry_after},
                    response.drop,
                )
            self._log_request(method, path, headers, None if response.drop else response.status)
            return response

    def _respond(
        self, method: str, path: str, caller: _Key | None, body: bytes, fault: Fault | None
    ) -> Response:
        if fault is not None:
            if fault.drop:
                return Response(0, drop=True)
            if fault.status is not None:
                return self._error(fault.status, "Emulated fault")
            if fault.has_error_200:
                return self._envelope(
                    200, success=False, error=self._astro_error("Emulated failure in a 200")
                )
            if fault.malformed:
                return Response(200, b"<html>upstream hiccup", {"Content-Type": "application/json"})
        response = self._route(method, path, caller, body)
        if fault is not None and fault.apply_then_drop:
            return Response(response.status, drop=True)
        return response

    def _route(self, method: str, path: str, caller: _Key | None, body: bytes) -> Response:
        revoke = _REVOKE_PATH.match(path)
        known_methods: dict[str, tuple[str, ...]] = {
            "/api/data/api-keys": ("GET", "POST"),
            "/api/data/api-keys/revoke-all": ("DELETE",),
            "/api/data/me": ("GET",),
        }
        allowed: tuple[str, ...] | None = (
            ("DELETE",) if revoke and path != "/api/data/api-keys/revoke-all" else None
        )
        allowed = known_methods.get(path, allowed)
        if allowed is None:
            return self._error(404, "Not Found")
        if method not in allowed:
            return self._error(405, "Method Not Allowed")
        if caller is None:
            return self._unauthorized()
        if path == "/api/data/me":
            return self._me(caller)
        if path == "/api/data/api-keys":
            return self._list(caller) if method == "GET" else self._create(caller, body)
        if path == "/api/data/api-keys/revoke-all":
            return self._revoke_all(caller)
        assert revoke is not None  # noqa: S101 - allowed is only set for a revoke path here
        return self._revoke(caller, revoke.group("key_id"))

    # -- endpoints ---------------------------------------------------------------------------

    def latency_seconds(self) -> float:
        """How long every API request waits before it is answered (the ``latency_ms`` variant)."""
        with self._lock:
            milliseconds = self._variants["latency_ms"]
        return milliseconds / 1000 if isinstance(milliseconds, int) else 0.0

    def _me(self, caller: _Key) -> Response:
        if caller.pending_me_failures > 0:
            caller.pending_me_failures -= 1
            return self._unauthorized()
        workspace = self._workspaces[caller.workspace_id]
        # A key acts as the user who made it (a seed may name a user it never added).
        user = workspace.users.get(caller.created_by) or _User(
            caller.created_by, "Unknown User", "unknown@example.com", "Admin"
        )
        return self._envelope(
            200,
            data={
                "id": user.id,
                "emailAddress": user.email,
                "fullName": user.full_name,
                "workSpaceId": workspace.id,
                "workSpaceName": workspace.name,
                "roleName": user.role,
                "isGlobalAdmin": True,
                "isAccountAdministrator": True,
                "workSpaceStatus": "Active",
                "workSpaceIsActive": True,
                "workSpaceCountry": "United States",
                "workSpaceCountryCode": "US",
                "workspaceCulture": "en-US",
                "userCulture": "en-US",
                "isSocial": False,
            },
        )

    def _list(self, caller: _Key) -> Response:
        include_expired = bool(self._variants["list_expired"])
        listed: list[object] = [
            self._key_dto(key, with_secret=False)
            for key in self._keys.values()
            if key.workspace_id == caller.workspace_id
            and not key.revoked
            and (include_expired or key.expires > self._time())
        ]
        listed.extend(self._list_entries.get(caller.workspace_id, []))
        return self._envelope(200, data=listed)

    def _create(self, caller: _Key, body: bytes) -> Response:
        try:
            document = json.loads(body or b"null")
        except ValueError:
            return self._validation("body", "The request body is not valid JSON.")
        token_name = document.get("tokenName") if isinstance(document, dict) else None
        if not isinstance(token_name, str) or not token_name:
            return self._validation("tokenName", "The TokenName field is required.")
        max_length = self._variants["max_name_length"]
        if isinstance(max_length, int) and len(token_name) > max_length:
            return self._validation(
                "tokenName", f"The TokenName field must be at most {max_length} characters."
            )
        live = [
            key
            for key in self._keys.values()
            if key.workspace_id == caller.workspace_id and not key.revoked
        ]
        max_keys = self._variants["max_keys"]
        if isinstance(max_keys, int) and len(live) >= max_keys:
            return self._error(400, f"A workspace may hold at most {max_keys} API keys.")
        if self._variants["duplicate_names"] == "deny" and any(
            key.name == token_name for key in live
        ):
            return self._validation("tokenName", "An API key with this name already exists.")
        creator = self._workspaces[caller.workspace_id].new_key_user_id or caller.created_by
        key_id, _ = self.add_key(caller.workspace_id, token_name, created_by=creator)
        created = self._keys[key_id]
        created.pending_me_failures = int(self._variants["propagation_failures"])  # type: ignore[call-overload]
        return self._envelope(200, data=self._key_dto(created, with_secret=True))

    def _revoke(self, caller: _Key, key_id: str) -> Response:
        target = self._keys.get(key_id)
        if target is None or target.workspace_id != caller.workspace_id or target.revoked:
            status = int(self._variants["revoke_unknown_status"])  # type: ignore[call-overload]
            if status == 200:
                return self._revoked_envelope()
            return self._error(status, "API key not found.")
        if target.id == caller.id and self._variants["revoke_self"] == "deny":
            return self._error(400, "An API key cannot revoke itself.")
        target.revoked = True
        return self._revoked_envelope()

    def _revoke_all(self, caller: _Key) -> Response:
        for key in self._keys.values():
            if key.workspace_id == caller.workspace_id:
                key.revoked = True
        return self._revoked_envelope()

    # -- pieces ------------------------------------------------------------------------------

    def _authenticated_key(self, headers: Mapping[str, str]) -> _Key | None:
        """The key the bearer token names, if it exists, is not revoked and has not expired."""
        key = self._bearer_key(headers)
        if key is None or key.revoked or key.expires <= self._time():
            return None
        return key

    def _bearer_key(self, headers: Mapping[str, str]) -> _Key | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        key_id = self._key_ids_by_secret.get(token.strip())
        return self._keys[key_id] if key_id is not None else None

    def _log_request(
        self, method: str, path: str, headers: Mapping[str, str], status: int | None
    ) -> None:
        logged = dict(headers)
        if "authorization" in logged:
            key = self._bearer_key(headers)
            # Never keep a secret in the log: the key's id is what a test wants to see anyway.
            logged["authorization"] = f"Bearer {key.id if key else 'unknown'}"
        self._log.append({"method": method, "path": path, "status": status, "headers": logged})

    def _format_expires(self, moment: datetime) -> str:
        style = self._variants["expires_format"]
        digits = int(self._variants["expires_fraction_digits"])  # type: ignore[call-overload]
        shown = moment.astimezone(_OFFSET_ZONE) if style == "offset" else moment.astimezone(UTC)
        text = shown.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            # .NET ticks are 100 ns: the seventh digit is always 0 for a Python datetime.
            text += "." + f"{shown.microsecond:06d}0"[:digits]
        if style == "z":
            return text + "Z"
        if style == "offset":
            return text + "+02:00"
        return text

    def _key_dto(self, key: _Key, *, with_secret: bool) -> dict[str, Any]:
        dto: dict[str, Any] = {
            "id": key.id,
            "createdBy": key.created_by,
            "expires": self._format_expires(key.expires),
            "name": key.name,
        }
        if with_secret:
            dto["apiKey"] = key.secret
        elif self._variants["list_api_key"] == "null":
            dto["apiKey"] = None
        elif self._variants["list_api_key"] == "empty":
            dto["apiKey"] = ""
        return dto

    @staticmethod
    def _astro_error(
        message: str, validation: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        return {
            "technicalError": None,
            "additionalErrors": None,
            "validationErrors": validation,
            "message": message,
        }

    def _envelope(
        self,
        status: int,
        *,
        success: bool = True,
        error: dict[str, Any] | None = None,
        data: object = None,
        include_data: bool = True,
    ) -> Response:
        document: dict[str, Any] = {}
        if error is not None or self._variants["error_on_success"] == "null":
            document["error"] = error
        document.update(success=success, hasError=not success, statusCode=status_name(status))
        if include_data:
            document["data"] = data
        return Response(status, _json_bytes(document), {"Content-Type": "application/json"})

    def _revoked_envelope(self) -> Response:
        return self._envelope(200, include_data=self._variants["revoke_data"] == "null")

    def _error(self, status: int, message: str) -> Response:
        return self._envelope(
            status, success=False, error=self._astro_error(message), include_data=False
        )

    def _validation(self, field_name: str, message: str) -> Response:
        return self._envelope(
            400,
            success=False,
            error=self._astro_error("Input Validation Failed", {field_name: [message]}),
            include_data=False,
        )

    def _unauthorized(self) -> Response:
        if self._variants["unauthorized_body"] == "empty":
            return Response(401, b"", {"WWW-Authenticate": "Bearer"})
        response = self._error(401, "Authentication Failed")
        return Response(401, response.body, {**response.headers, "WWW-Authenticate": "Bearer"})
