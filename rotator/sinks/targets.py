"""Credentials routed to their targets: a workspace's sink as one :class:`Sink` over every place
its credentials are delivered.

:func:`routed` gives the workspace's sink. A credential whose base name matches a route's glob
(the first that matches wins) goes to that route's targets; any other to the workspace's own
sink. A route with one target is that target; a route with several is a :class:`TargetSet`.

A :class:`TargetSet` delivers one credential to several places, roll-forward and never
split-brain:

- **Writes** go to every target in turn, each with the version it was read at. A target that
  fails after another was written leaves the targets different: the error is then
  ``SinkUnavailableError`` (the outcome is settled by the next read, never guessed).
- **A read** reads every target and settles what they hold *from their hashes*. When they all
  hold the same record and secret, that is the state. When they differ, the state shown is the
  one of the target furthest along (the *leader*: it holds the newest key's secret, its record
  the most advanced), and every other target is named in ``SinkState.lagging``. The newest key
  is found from the records' own links (a record's current key replaced its previous one; a
  pending key replaces the current one); records whose links do not give one newest key are
  untrustworthy (``SinkMetadataError``: the credential is blocked, nothing is revoked). When no
  target holds the newest key's secret, the state shown is a record that names it pending over
  a hash that does not match, so it is settled as never delivered.
- **Catching up** (:meth:`TargetSet.catch_up`) copies the leader's secret, read back from a
  target that holds it and checked against its hash, to each lagging target in two phases
  (pending record, secret, read back); the rotation then writes the record to every target.

So a target that failed keeps the key it had (which still works) and the next pass brings it up
to date; the old key is retired only once every target holds the new one; a new key is rolled
back only when no target holds its secret.

The rotation history of a credential with several targets is written to every target that keeps
one, and read from the first of them; a routed credential's is its route's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from rotator.errors import (
    ConfigError,
    HistoryUnsupportedError,
    SinkError,
    SinkMetadataError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import BaseSink, Sink, SinkState, WorkloadRollout

#: ``(target, expected_version) -> new version``: one write to one target.
_Write = Callable[[Sink, str | None], str | None]


@dataclass(frozen=True)
class _Read:
    """One target's state, by its position in the set."""

    index: int
    state: SinkState


def _versions(text: str | None, count: int) -> list[str | None]:
    """Each target's version from the set's version token (None: nothing stored anywhere)."""
    if text is None:
        return [None] * count
    try:
        versions = json.loads(text)
    except ValueError:
        versions = None
    if not isinstance(versions, list) or len(versions) != count:
        raise SinkMetadataError("the version of a credential's targets is not one of this set")
    return [v if isinstance(v, str) else None for v in versions]


def _token(versions: Sequence[str | None]) -> str | None:
    if all(v is None for v in versions):
        return None
    return json.dumps(list(versions))


class TargetSet(BaseSink):
    """One credential's several targets, as one sink (see the module's docstring)."""

    can_read_secret = True

    def __init__(self, targets: Sequence[Sink]) -> None:
        if len(targets) < 2:
            raise ValueError("a target set has at least two targets")
        unreadable = [t.describe() for t in targets if not t.can_read_secret]
        if len(unreadable) > 1:
            # Were the one written first to fail, nothing could bring the other up to date.
            raise ConfigError(
                [
                    "a credential may have at most one target that cannot give its secret "
                    f"back (the exec sink); these are several: {', '.join(unreadable)}"
                ]
            )
        # Targets that can give the secret back are written first: a target that fails after
        # them is brought up to date from one of them.
        self._targets = tuple(sorted(targets, key=lambda t: not t.can_read_secret))
        self.kind = "+".join(dict.fromkeys(t.kind for t in targets))

    @property
    def targets(self) -> tuple[Sink, ...]:
        return self._targets

    def describe(self) -> str:
        return " and ".join(t.describe() for t in self._targets)

    def place_of(self, credential: str) -> str:
        return ", ".join(t.place_of(credential) for t in self._targets)

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        problems: dict[str, str] = {}
        for target in self._targets:
            for credential, problem in target.check_names(credentials).items():
                problems.setdefault(credential, problem)
        return problems

    def list_credentials(self) -> Sequence[str]:
        found: set[str] = set()
        for target in self._targets:
            found.update(target.list_credentials())
        return sorted(found)

    # -- reading ------------------------------------------------------------------------------

    def read(self, credential: str) -> SinkState:
        reads = [_Read(i, t.read(credential)) for i, t in enumerate(self._targets)]
        version = _token([r.state.version for r in reads])
        first = reads[0].state
        if all(_same(r.state, first) for r in reads):
            return SinkState(first.record, first.secret_sha256, version)
        leader = self._leader(reads)
        lagging = tuple(
            self._targets[r.index].place_of(credential) for r in reads if not _same(r.state, leader)
        )
        named = {
            key_id
            for r in reads
            if r.state.record is not None
            for key_id in _key_ids(r.state.record)
        }
        held = frozenset(named - set(_key_ids(leader.record)) if leader.record else named)
        return SinkState(
            leader.record, leader.secret_sha256, version, lagging=lagging, held_elsewhere=held
        )

    @staticmethod
    def _leader(reads: Sequence[_Read]) -> SinkState:
        """The state of the target furthest along, settled from the records and hashes."""
        records = [r.state.record for r in reads if r.state.record is not None]
        if not records:
            # Secrets without any record: nothing proves which key any of them is.
            raise SinkMetadataError("the credential's targets hold secrets but no metadata")
        newest, digest = _newest_key(records)
        holders = [r.state for r in reads if r.state.secret_sha256 == digest]
        if holders:
            # Among those holding the newest secret, one whose record names it current first.
            holders.sort(key=lambda s: 0 if s.record and s.record.key_id == newest else 1)
            return holders[0]
        # No target holds the newest key's secret: show it pending over what is held, so that
        # it is settled as never delivered (revoked) and the pending fields cleared.
        for r in reads:
            record = r.state.record
            if record is not None and record.pending_key_id == newest:
                return r.state
        # The newest key is current in a record whose secret no target holds: a lost secret.
        raise SinkMetadataError(
            f"no target of the credential holds the secret of key {newest}, which a record "
            "names current"
        )

    # -- writing ------------------------------------------------------------------------------

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        return self._each(
            expected_version,
            lambda target, version: target.write_record(
                credential, record, expected_version=version
            ),
        )

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        return self._each(
            expected_version,
            lambda target, version: target.write_secret(
                credential, secret, expected_version=version
            ),
        )

    def _each(self, expected_version: str | None, write: _Write) -> str | None:
        versions = _versions(expected_version, len(self._targets))
        for index, target in enumerate(self._targets):
            try:
                versions[index] = write(target, versions[index])
            except SinkError as exc:
                if index == 0:
                    raise  # nothing was written: the error is the whole answer
                raise SinkUnavailableError(
                    f"{target.describe()}: {exc} (the targets before it were written; the next "
                    "pass settles them from their hashes)"
                ) from exc
        return _token(versions)

    def read_secret(self, credential: str) -> Secret:
        problems = []
        for target in self._targets:
            try:
                return target.read_secret(credential)
            except SinkError as exc:
                problems.append(f"{target.describe()}: {exc}")
        raise SinkError("no target can give the secret back: " + "; ".join(problems))

    def catch_up(self, credential: str, state: SinkState) -> None:
        """Copy the leader's secret to every target that does not hold it (two phases each)."""
        record = state.record
        digest = state.secret_sha256
        if record is None or digest is None:
            raise SinkError("nothing to catch up from: no target holds a delivered secret")
        key_id = record.pending_key_id or record.key_id
        if key_id is None:
            raise SinkError("nothing to catch up from: the record names no key")
        reads = [t.read(credential) for t in self._targets]
        secret: Secret | None = None
        for target, own in zip(self._targets, reads, strict=True):
            if own.secret_sha256 == digest:
                continue
            if secret is None:
                secret = self._secret_of(credential, reads, digest)
            mine = own.record
            # Its own record with the new key pending (a crash here is settled by hash); a
            # record that already names the key, or none, gives way to one naming it pending.
            base = mine if mine is not None and key_id not in _key_ids(mine) else SinkRecord()
            version = target.write_record(
                credential, base.with_pending(key_id, digest), expected_version=own.version
            )
            target.write_secret(credential, secret, expected_version=version)
            if target.read(credential).secret_sha256 != digest:
                raise SinkError(f"{target.describe()}: read-back: the secret did not land")

    def _secret_of(self, credential: str, reads: Sequence[SinkState], digest: str) -> Secret:
        """The secret whose hash is ``digest``, read from a target that holds it."""
        problems = []
        for target, own in zip(self._targets, reads, strict=True):
            if own.secret_sha256 != digest:
                continue
            try:
                secret = target.read_secret(credential)
            except SinkError as exc:
                problems.append(f"{target.describe()}: {exc}")
                continue
            if secret.sha256() == digest:
                return secret
            problems.append(f"{target.describe()}: changed while it was read")
        raise SinkError(
            "no target holding the new key can give its secret back ("
            + "; ".join(problems)
            + "): `rotator rotate --now` replaces the key on every target"
        )

    # -- the rest -----------------------------------------------------------------------------

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        """The history of the first target that keeps one (every write goes to each)."""
        unsupported: HistoryUnsupportedError | None = None
        for target in self._targets:
            try:
                return target.read_history(credential)
            except HistoryUnsupportedError as exc:
                unsupported = exc
        raise unsupported or HistoryUnsupportedError("no target keeps a rotation history")

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """The history into every target that keeps one; the first failure is raised once each
        was tried (a target that missed it gets it again at the next write)."""
        failures: list[SinkError] = []
        kept = 0
        for target in self._targets:
            try:
                target.write_history(credential, entries)
                kept += 1
            except HistoryUnsupportedError:
                continue
            except SinkError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        if not kept:
            raise HistoryUnsupportedError("no target keeps a rotation history")

    def rollout(
        self, credential: str, delivered_at: datetime, now: datetime
    ) -> Sequence[WorkloadRollout]:
        return [w for t in self._targets for w in t.rollout(credential, delivered_at, now)]

    def prepare(self) -> None:
        for target in self._targets:
            target.prepare()

    def close(self) -> None:
        for target in self._targets:
            target.close()


def _same(a: SinkState, b: SinkState) -> bool:
    return a.record == b.record and a.secret_sha256 == b.secret_sha256


def _key_ids(record: SinkRecord) -> tuple[str, ...]:
    ids = (record.key_id, record.previous_key_id, record.pending_key_id)
    return tuple(i for i in ids if i is not None)


def _newest_key(records: Iterable[SinkRecord]) -> tuple[str, str | None]:
    """The newest key the records name (current or pending) and its secret's hash.

    A record links its previous key to its current one, and its current key to its pending one:
    the newest is the one no link leads away from. Anything but exactly one such key, or two
    records giving one key two hashes, cannot be settled from the records: SinkMetadataError.
    """
    newer: dict[str, set[str]] = {}
    hashes: dict[str, str | None] = {}
    candidates: set[str] = set()
    for record in records:
        for key_id, digest in (
            (record.key_id, record.secret_sha256),
            (record.pending_key_id, record.pending_secret_sha256),
        ):
            if key_id is None:
                continue
            candidates.add(key_id)
            if hashes.setdefault(key_id, digest) != digest and digest is not None:
                if hashes[key_id] is None:
                    hashes[key_id] = digest
                else:
                    raise SinkMetadataError(
                        f"the credential's targets give key {key_id} two different hashes"
                    )
        for older, younger in (
            (record.previous_key_id, record.key_id),
            (record.key_id, record.pending_key_id),
        ):
            if older is not None and younger is not None:
                newer.setdefault(older, set()).add(younger)
    heads = sorted(k for k in candidates if not newer.get(k))
    if len(heads) != 1:
        raise SinkMetadataError(
            "the credential's targets disagree and their records do not say which key is newest"
        )
    return heads[0], hashes.get(heads[0])


class RoutedSink(BaseSink):
    """A workspace's sink with credential routes (see :func:`routed`)."""

    def __init__(self, default: Sink, routes: Sequence[tuple[str, Sink]]) -> None:
        self._default = default
        self._routes = tuple(routes)
        self.kind = default.kind
        sinks: dict[int, Sink] = {id(default): default}
        for _, sink in self._routes:
            for part in sink.targets if isinstance(sink, TargetSet) else (sink,):
                sinks.setdefault(id(part), part)
        self._all = tuple(sinks.values())

    def sink_of(self, credential: str) -> Sink:
        """Where ``credential`` is delivered: its first matching route's targets, else the
        workspace's own sink."""
        for pattern, sink in self._routes:
            if fnmatchcase(credential, pattern):
                return sink
        return self._default

    def kind_of(self, credential: str) -> str:
        return self.sink_of(credential).kind

    def place_of(self, credential: str) -> str:
        return self.sink_of(credential).place_of(credential)

    def describe(self) -> str:
        routes = "; ".join(f"{pattern} -> {sink.describe()}" for pattern, sink in self._routes)
        return f"{self._default.describe()}; {routes}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        by_sink: dict[int, tuple[Sink, list[str]]] = {}
        for credential in credentials:
            sink = self.sink_of(credential)
            by_sink.setdefault(id(sink), (sink, []))[1].append(credential)
        problems: dict[str, str] = {}
        for sink, names in by_sink.values():
            problems.update(sink.check_names(names))
        return problems

    def list_credentials(self) -> Sequence[str]:
        """What each place remembers, for the credentials routed there (a credential another
        route's place still remembers from before a route changed is not this one's)."""
        found: set[str] = set()
        seen: set[int] = set()
        for sink in (self._default, *(s for _, s in self._routes)):
            if id(sink) in seen:
                continue
            seen.add(id(sink))
            found.update(c for c in sink.list_credentials() if self.sink_of(c) is sink)
        return sorted(found)

    def read(self, credential: str) -> SinkState:
        return self.sink_of(credential).read(credential)

    def read_secret(self, credential: str) -> Secret:
        return self.sink_of(credential).read_secret(credential)

    def catch_up(self, credential: str, state: SinkState) -> None:
        self.sink_of(credential).catch_up(credential, state)

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        return self.sink_of(credential).write_record(
            credential, record, expected_version=expected_version
        )

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        return self.sink_of(credential).write_secret(
            credential, secret, expected_version=expected_version
        )

    def rollout(
        self, credential: str, delivered_at: datetime, now: datetime
    ) -> Sequence[WorkloadRollout]:
        return self.sink_of(credential).rollout(credential, delivered_at, now)

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        return self.sink_of(credential).read_history(credential)

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        self.sink_of(credential).write_history(credential, entries)

    def prepare(self) -> None:
        for sink in self._all:
            sink.prepare()

    def close(self) -> None:
        for sink in self._all:
            sink.close()


def routed(default: Sink, routes: Sequence[tuple[str, Sequence[Sink]]]) -> Sink:
    """The workspace's sink: a credential whose base name matches a route's glob (first match
    wins) goes to that route's targets (one or several); any other to ``default``. Targets are
    given as built sink instances: one instance per distinct place, shared by the routes that
    name it, so that its name checks see every credential it stores."""
    if not routes:
        return default
    built: list[tuple[str, Sink]] = []
    for pattern, targets in routes:
        if not targets:
            raise ValueError(f"route {pattern!r} has no target")
        built.append((pattern, targets[0] if len(targets) == 1 else TargetSet(targets)))
    return RoutedSink(default, built)


__all__ = ["RoutedSink", "TargetSet", "routed"]
