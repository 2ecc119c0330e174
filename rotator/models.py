"""Frozen domain types shared by every layer: keys, secrets, decisions, sink records, key names.

Nothing here does I/O or reads settings. A secret is held only inside :class:`Secret`, whose
``repr`` and ``str`` never show it; code that must hand it on calls :meth:`Secret.reveal`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

#: Marker format of keys the rotator creates: ``<base>@<UTC YYYY-MM-DDTHH:MM:SSZ>`` (README).
#: DOTALL and ``\Z``: the rule covers every character a name may hold, a newline included.
_SUFFIX_RE = re.compile(r"^(?P<base>.*)@(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)\Z", re.DOTALL)
#: Characters no managed name may hold: C0/C1 controls, DEL, line and paragraph separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SUFFIX_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Secret:
    """A secret string that never shows itself in a ``repr``, ``str``, f-string or log."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: call only to hand it to the API or a sink."""
        return self._value

    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the secret's UTF-8 bytes (what sinks store for read-back)."""
        return hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class ApiKey:
    """A key as the API lists it; never the secret (List does not return it)."""

    id: str
    name: str
    expires: datetime  # timezone-aware, UTC
    created_by: str | None = None

    @property
    def base_name(self) -> str:
        return base_name(self.name)

    def made_by(self, user_id: str | None) -> bool:
        """Whether the rotator made this key: its name carries the marker *and* it was created
        by ``user_id``, the user the rotator's own credential acts as. A person can type a
        marker into a name, but cannot create a key as the rotator's user."""
        return (
            user_id is not None
            and self.created_by == user_id
            and rotator_created_at(self.name) is not None
        )


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only moment its secret is known."""

    key: ApiKey
    secret: Secret = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """What ``GET /api/data/me`` says about a credential."""

    user_id: str | None
    workspace_id: str | None
    workspace_name: str | None


class Reason(StrEnum):
    """Why a credential is (or is not) due for rotation (README, ``key.evaluated``)."""

    EXPIRING = "expiring"
    MAX_AGE = "max-age"
    MISSING = "missing"
    FORCED = "forced"
    NOT_DUE = "not-due"


@dataclass(frozen=True)
class Decision:
    """The policy's verdict on one key at one instant."""

    due: bool
    reason: Reason
    days_left: float
    age_days: float


class Role(StrEnum):
    """What a listed key is to the rotator (``status --json`` ``role``)."""

    CURRENT = "current"
    PREVIOUS = "previous"
    PENDING = "pending"
    ORPHAN = "orphan"
    EXTRA = "extra"
    UNKNOWN = "unknown"
    UNMANAGED = "unmanaged"
    #: Not a key: the row of a credential whose key the sink holds is no longer listed.
    MISSING = "missing"


@dataclass(frozen=True)
class SinkRecord:
    """A credential's metadata as a sink stores it beside the secret; never the secret.

    ``key_id`` is the key the sink holds; ``pending_*`` is set between the two phases of a
    delivery; ``previous_key_id`` stays after that key is revoked (README), and so does
    ``previous_secret_sha256``, the hash of the previous key's secret (what the record's
    ``secret_sha256`` was before the delivery): a leak report of a key already replaced is still
    recognised by it.
    """

    key_id: str | None = None
    key_name: str | None = None
    expires: datetime | None = None
    delivered_at: datetime | None = None
    secret_sha256: str | None = None
    previous_key_id: str | None = None
    previous_secret_sha256: str | None = None
    retire_previous_after: datetime | None = None
    pending_key_id: str | None = None
    pending_secret_sha256: str | None = None

    @property
    def has_pending(self) -> bool:
        return self.pending_key_id is not None

    def with_pending(self, key_id: str, secret_sha256: str) -> SinkRecord:
        return replace(self, pending_key_id=key_id, pending_secret_sha256=secret_sha256)

    def without_pending(self) -> SinkRecord:
        return replace(self, pending_key_id=None, pending_secret_sha256=None)


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def base_name(key_name: str) -> str:
    """A key's name without the rotator's ``@<UTC time>`` suffix (README, Key names)."""
    match = _SUFFIX_RE.match(key_name)
    return match.group("base") if match else key_name


def has_control_characters(name: str) -> bool:
    """Whether ``name`` holds a character no log line, file name or header should carry."""
    return _CONTROL_RE.search(name) is not None


def rotator_created_at(key_name: str) -> datetime | None:
    """When the rotator created a key, from its name; None for a key a person named."""
    match = _SUFFIX_RE.match(key_name)
    if match is None:
        return None
    return datetime.strptime(match.group("ts"), _SUFFIX_FORMAT).replace(tzinfo=UTC)


def rotator_key_name(base: str, now: datetime) -> str:
    """The ``tokenName`` of a replacement for credential ``base`` created at ``now``."""
    return f"{base}@{utc(now).strftime(_SUFFIX_FORMAT)}"


#: The file lock's name in its folder (the lock, the file sink that reserves the name beside
#: its files, and the settings that check the folder all mean this one file).
LOCK_FILE_NAME: Final = ".rotator.lock"

#: What a key id may be to go into a revoke path as is: one segment that no URL parser, proxy
#: or server can read as anything else (no '/', '?', '#', '%', whitespace, and not '.' or '..').
_SAFE_KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]+")


def is_safe_key_id(key_id: str) -> bool:
    """Whether ``key_id`` can be put in a revoke path as one segment: ``[A-Za-z0-9._-]+``,
    not ``.`` nor ``..``. The client refuses any other id, and a pass never manages one."""
    return bool(_SAFE_KEY_ID_RE.fullmatch(key_id)) and key_id not in (".", "..")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ``::1``): where plain http
    is allowed, for the bundled emulator and tests."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
