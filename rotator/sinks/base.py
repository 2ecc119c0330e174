"""The one interface every secret sink implements.

A sink stores, per credential (a base name within one workspace), the secret its consumer reads
and beside it a :class:`~rotator.models.SinkRecord` of metadata that never holds the secret. The
rotation drives a two-phase delivery through it (record pending, write secret, record current,
read back by hash); a sink only stores and reads back, it decides nothing.

Versions. :meth:`Sink.read` returns the record, the SHA-256 of the stored secret and an opaque
*version token* of what it read, all in one :class:`SinkState`. Every write takes the version
the caller last saw (``None``: nothing is stored yet) and returns the new one. A backend with
compare-and-set (Kubernetes ``resourceVersion``, Vault ``cas``, AWS version ids) makes the check
atomic; the others check under the workspace's pass lock. A mismatch raises
``SinkConflictError`` and changes nothing: the caller reads again and decides again, it never
overwrites.

Errors are :mod:`rotator.errors` ``SinkError`` subclasses:

- ``SinkUnavailableError`` (``state_unknown``): unreachable, timed out, or a write that may have
  landed; the caller does nothing irreversible and the next read settles it;
- ``SinkConflictError``: another writer changed the credential first (see above);
- ``SinkPermissionError``: the backend refused the sink's identity (RBAC, a policy, IAM);
- ``SinkMetadataError``: the stored metadata cannot be read or trusted;
- ``SinkNameError``: the credential cannot be stored under its name.

No message, ``repr`` or log line of a sink ever carries a secret or a token.

Consumers. A backend that can restart the programs reading a credential (Kubernetes workloads)
implements :meth:`Sink.rollout`; the others answer ``READY`` at once. The rotation calls it after
each delivery (which starts the restarts) and again before it retires a previous key, which it
does only once the answer is ``READY``.

Concurrency: a sink is used by several threads of one pass at once, never on the same
credential at the same time; calls on different credentials must be safe together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol, runtime_checkable

from rotator.errors import HistoryUnsupportedError, SinkError, SinkMetadataError
from rotator.models import Secret, SinkRecord, base_name, utc


@dataclass(frozen=True)
class SinkState:
    """What a sink holds for one credential, read at one moment."""

    #: The metadata, or None when the sink holds none for this credential.
    record: SinkRecord | None
    #: SHA-256 (lowercase hex) of the secret stored now, or None when there is none.
    secret_sha256: str | None
    #: Opaque token of what was read, passed back to the next write; None: nothing stored.
    version: str | None
    #: Targets of a credential delivered to several places that do not hold what this state
    #: shows (the record and the secret): the next delivery brings them up to date. Empty for
    #: a credential with one target.
    lagging: tuple[str, ...] = ()
    #: Key ids that a lagging target's record still names besides this record's: a consumer
    #: may hold them, so they are never taken for orphans while a target names them.
    held_elsewhere: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return self.record is None and self.secret_sha256 is None


EMPTY = SinkState(record=None, secret_sha256=None, version=None)


class RolloutState(StrEnum):
    """Whether the consumers of a credential run with what the sink delivered last."""

    #: Every consumer was restarted and is ready (or the sink has no consumers to restart).
    READY = "ready"
    #: A restart is under way.
    WAITING = "waiting"
    #: A restart did not finish in time; the previous key must stay.
    STALLED = "stalled"


@dataclass(frozen=True)
class WorkloadRollout:
    """One consumer's restart, as :meth:`Sink.rollout` found or started it."""

    kind: str
    name: str
    state: RolloutState
    #: True when this call issued the restart (log ``rollout.started``).
    started: bool = False


@runtime_checkable
class Sink(Protocol):
    """Where one workspace's credentials are delivered."""

    #: The ROTATOR_SINK value of this backend (``file``, ``kubernetes``, ...), for logs.
    kind: str
    #: Whether :meth:`read_secret` can give a stored secret back (a lagging target of the same
    #: credential is brought up to date from a target that can).
    can_read_secret: bool

    def describe(self) -> str:
        """Where this sink writes, for logs and ``check-config``; never a secret or token."""

    def place_of(self, credential: str) -> str:
        """Where ``credential`` is stored, for people (``status -o wide``, a lagging target):
        a file's path, a namespace and Secret name, a Vault path, ...; never a secret."""

    def kind_of(self, credential: str) -> str:
        """The kind of the place(s) ``credential`` is delivered to (``rotation.delivered``'s
        ``sink``): this sink's ``kind``, or its targets' when the credential is routed."""

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        """Problems with storing these credentials together, by credential; no side effects.

        Collisions (two credentials mapping to one stored name) are reported for each of them,
        and so are names that can never be stored. A credential named here must not be read or
        written this pass; the others may.
        """

    def list_credentials(self) -> Sequence[str]:
        """The credentials this sink holds metadata for (the credentials it remembers)."""

    def read(self, credential: str) -> SinkState:
        """The stored record, the stored secret's hash and a version token, read together.

        ``SinkMetadataError`` when the metadata exists but cannot be parsed or trusted.
        """

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        """Replace the metadata durably; ``SinkConflictError`` when the version moved on."""

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        """Replace the secret durably; ``SinkConflictError`` when the version moved on."""

    def rollout(
        self, credential: str, delivered_at: datetime, now: datetime
    ) -> Sequence[WorkloadRollout]:
        """Make the consumers of ``credential`` pick up the delivery of ``delivered_at``.

        Restarts each consumer not yet restarted since then and reports every one's state; a
        restart not finished by the sink's deadline is ``STALLED``. Empty: nothing to restart.
        """

    def read_secret(self, credential: str) -> Secret:
        """The stored secret itself, to copy it to a lagging target of the same credential;
        ``SinkError`` when the backend cannot give it back (the exec sink)."""

    def catch_up(self, credential: str, state: SinkState) -> None:
        """Bring the targets ``state.lagging`` names up to ``state`` (the secret copied from a
        target that holds it, in two phases, read back); the caller then writes the record to
        every target. Only a credential with several targets ever lags."""

    def prepare(self) -> None:
        """Called once a pass, with the workspace's lock held, before any read or write: tidy
        what a killed pass may have left (the file sink's temporary files)."""

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        """The rotation history kept for ``credential`` (JSON objects, oldest first; empty
        when none is kept yet); ``HistoryUnsupportedError`` when this sink keeps none.

        Kept beside the metadata, apart from it: reading or writing the history never moves
        the credential's version token. ``SinkMetadataError`` when what is stored there is not
        a history of this workspace and credential.
        """

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """Replace the history kept for ``credential`` durably (called with the pass lock
        held, at most twice per credential per pass); entries are JSON objects of strings and
        nulls, never a secret."""

    def close(self) -> None:
        """Release connections; the sink is not used afterwards."""


@dataclass(frozen=True)
class SinkContext:
    """What a sink needs besides its own settings to build itself (``from_settings``)."""

    #: The workspace whose credentials it stores (its records name it).
    workspace: str
    #: Deadline of each request to the backend, in seconds (ROTATOR_HTTP_TIMEOUT_SECONDS).
    timeout_seconds: float = 10.0


class BaseSink:
    """The defaults of what most backends do not need, as httpx's ``BaseTransport`` has them:
    no consumers to restart, nothing to tidy before a pass, nothing to release. A backend
    subclasses it and implements the rest of :class:`Sink`."""

    kind: str
    can_read_secret: bool = False

    def kind_of(self, credential: str) -> str:
        """One place for every credential."""
        return self.kind

    def describe(self) -> str:
        """Where this sink writes; each backend says it in its own words."""
        return self.kind

    def place_of(self, credential: str) -> str:
        """Where the sink writes, when it has no finer name for one credential's place."""
        return self.describe()

    def rollout(
        self,
        credential: str,
        delivered_at: datetime,
        now: datetime,
    ) -> Sequence[WorkloadRollout]:
        """Nothing to restart: consumers read the backend when they need the key."""
        return ()

    def read_secret(self, credential: str) -> Secret:
        """A backend that cannot give a secret back: a target that lags behind is brought up to
        date from another target of the credential."""
        raise SinkError(f"the {self.kind} sink cannot read a stored secret back")

    def catch_up(self, credential: str, state: SinkState) -> None:
        """One target never lags behind itself."""
        if state.lagging:
            raise SinkError(f"the {self.kind} sink has one target; nothing can lag behind")

    def prepare(self) -> None:
        """Nothing a killed pass could have left behind."""

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        """No place for a history: a backend that has one overrides both history methods."""
        raise HistoryUnsupportedError(f"the {self.kind} sink keeps no rotation history")

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        raise HistoryUnsupportedError(f"the {self.kind} sink keeps no rotation history")

    def close(self) -> None:
        """Nothing to release."""


def rollout_state(workloads: Sequence[WorkloadRollout]) -> RolloutState:
    """The state of a credential's consumers as one: stalled beats waiting beats ready."""
    states = {w.state for w in workloads}
    for state in (RolloutState.STALLED, RolloutState.WAITING):
        if state in states:
            return state
    return RolloutState.READY


def name_problems(
    credentials: Collection[str],
    *,
    stored_name: Callable[[str], str],
    problem: Callable[[str], str | None],
    what: str,
) -> dict[str, str]:
    """``check_names`` for a backend: each credential's own ``problem`` (a name that can never be
    stored), and for every credentials that map to one ``stored_name`` a problem naming the
    others, for each of them (a collision is never an overwrite). ``what`` names the stored
    name in the message ("file name", "Secret name", ...)."""
    problems: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for credential in dict.fromkeys(credentials):
        own = problem(credential)
        if own is not None:
            problems[credential] = own
        else:
            by_name.setdefault(stored_name(credential), []).append(credential)
    for name, sharing in by_name.items():
        if len(sharing) < 2:
            continue
        for credential in sharing:
            others = ", ".join(repr(other) for other in sharing if other != credential)
            problems[credential] = f"{what} {name!r} is also that of {others}"
    return problems


def format_time(value: datetime) -> str:
    """How every sink stores a time: ISO 8601 UTC with ``Z``; microseconds only when the instant
    has some (``2026-11-27T03:00:00Z``), so a record round-trips exactly."""
    return utc(value).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A stored time (ISO 8601 with an offset, ``Z`` included) in UTC; ValueError otherwise: a
    time without an offset would be a guess."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a time without an offset is ambiguous")
    return value.astimezone(UTC)


#: The fields of a SinkRecord, as each sink stores them.
RECORD_FIELDS: Final = tuple(f.name for f in fields(SinkRecord))
_HASH_FIELDS: Final = frozenset(
    {"secret_sha256", "previous_secret_sha256", "pending_secret_sha256"}
)
_TIME_FIELDS: Final = frozenset({"expires", "delivered_at", "retire_previous_after"})
_PENDING_FIELDS: Final = ("pending_key_id", "pending_secret_sha256")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: object) -> bool:
    """Whether ``value`` is a SHA-256 as every sink stores one: exactly 64 lowercase hex digits.

    The whole string must match: a hash followed by a newline is not that hash (a pattern
    anchored with ``$`` alone would take it).
    """
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def record_from_fields(
    values: Mapping[str, str | None],
    *,
    where: str,
    key_of: Callable[[str], str],
    credential: str,
) -> SinkRecord:
    """A SinkRecord from a sink's stored strings, by field name (a missing field is None), with
    every check a record must pass before it is trusted: hashes are lowercase hex SHA-256, times
    ISO 8601 with an offset, the pending fields come together, and the key it names is of
    ``credential``. SinkMetadataError names ``where`` and the stored key (``key_of``), never a
    value."""
    parsed: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = values.get(name)
        if value is None:
            parsed[name] = None
        elif name in _HASH_FIELDS and not is_sha256_hex(value):
            raise SinkMetadataError(f"{where}: {key_of(name)} is not a lowercase hex SHA-256")
        elif name in _TIME_FIELDS:
            try:
                parsed[name] = parse_time(value)
            except ValueError:
                # Chain nothing: the ValueError quotes the stored text.
                raise SinkMetadataError(
                    f"{where}: {key_of(name)} is not an ISO 8601 time with an offset"
                ) from None
        else:
            parsed[name] = value
    if (parsed["pending_key_id"] is None) != (parsed["pending_secret_sha256"] is None):
        raise SinkMetadataError(
            f"{where}: {key_of('pending_key_id')} and {key_of('pending_secret_sha256')} "
            "must come together"
        )
    record = SinkRecord(**parsed)
    if record.key_name is not None and base_name(record.key_name) != credential:
        raise SinkMetadataError(f"{where} names a key of another credential, not of {credential!r}")
    return record


def record_to_document(
    record: SinkRecord, *, credential: str, workspace: str | None = None
) -> dict[str, str | None]:
    """The JSON document of ``record`` (the file sink's ``B.meta.json``, what the exec sink's
    program is given): the credential's own name, the workspace when the sink knows it, every
    field with times as :func:`format_time`, and the pending fields only when set."""
    document: dict[str, str | None] = {"credential": credential}
    if workspace is not None:
        document["workspace"] = workspace
    for name in RECORD_FIELDS:
        value = getattr(record, name)
        if name in _PENDING_FIELDS and value is None:
            # The pending fields exist only between the two phases of a delivery.
            continue
        document[name] = format_time(value) if isinstance(value, datetime) else value
    return document


def record_from_document(
    document: object, *, where: str, credential: str, workspace: str | None = None
) -> SinkRecord:
    """The record of ``credential`` in a parsed JSON document (:func:`record_to_document`'s
    shape), through :func:`record_from_fields` and its checks.

    A document that names another credential, or (when ``workspace`` is given) another
    workspace, is never taken for this one: SinkMetadataError. A document that names neither is
    one written before records carried them, and is read as this credential's and workspace's,
    as the other sinks read their older records. Errors name ``where`` and the field, never a
    value.
    """
    if not isinstance(document, dict):
        raise SinkMetadataError(f"{where} does not hold a JSON object")
    owners = {"credential": credential, "workspace": workspace}
    for field_name, own in owners.items():
        named = document.get(field_name)
        if named is None or own is None:
            continue
        if not isinstance(named, str):
            raise SinkMetadataError(f"{where}: {field_name} is not a string")
        if named != own:
            # The foreign name is ours to show: it is a credential's or a workspace's name.
            raise SinkMetadataError(
                f"{where} is the record of {field_name} {named!r}, not {own!r}"
                if field_name == "workspace"
                else f"{where} is the record of another credential, not {own!r}"
            )
    values: dict[str, str | None] = {}
    for name in RECORD_FIELDS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise SinkMetadataError(f"{where}: {name} is not a string")
        values[name] = value
    return record_from_fields(values, where=where, key_of=lambda name: name, credential=credential)


#: The format of a stored history document (:func:`history_to_document`).
HISTORY_FORMAT: Final = "1"
#: Most entries a history keeps per credential: a bound on what each backend stores (50
#: entries of a few hundred bytes each fit an annotation, a tag-less secret or a small file).
HISTORY_MAX_ENTRIES: Final = 50


def history_to_document(
    entries: Sequence[Mapping[str, Any]], *, credential: str, workspace: str | None
) -> dict[str, Any]:
    """The JSON document a sink stores a credential's history as: its format, the workspace
    and credential it belongs to (so that it is never taken for another's), and the entries
    (the last :data:`HISTORY_MAX_ENTRIES`)."""
    return {
        "format": HISTORY_FORMAT,
        "workspace": workspace,
        "credential": credential,
        "entries": [dict(entry) for entry in entries][-HISTORY_MAX_ENTRIES:],
    }


def history_from_document(
    document: object, *, where: str, credential: str, workspace: str | None
) -> list[dict[str, Any]]:
    """The entries of a stored history document, checked: a history of another credential or
    workspace, or of an unknown format, is ``SinkMetadataError`` naming ``where``; an entry
    must be an object of strings and nulls. Errors never quote a value."""
    if not isinstance(document, dict):
        raise SinkMetadataError(f"{where} does not hold a JSON object")
    if document.get("format") != HISTORY_FORMAT:
        raise SinkMetadataError(f"{where}: not a history of format {HISTORY_FORMAT}")
    if document.get("credential") != credential:
        raise SinkMetadataError(f"{where} is the history of another credential, not {credential!r}")
    named = document.get("workspace")
    if workspace is not None and named is not None and named != workspace:
        raise SinkMetadataError(f"{where} is the history of workspace {named!r}, not {workspace!r}")
    entries = document.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in entry.items())
        for entry in entries
    ):
        raise SinkMetadataError(f"{where}: entries is not a list of objects of strings")
    return [dict(entry) for entry in entries]
