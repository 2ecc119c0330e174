"""Pure reconciliation: a workspace's listed keys, what its sink holds, and ``now`` -> each
credential's view (which key is current, previous, pending, orphan, extra, unknown).

No I/O, no clock, no logging: the runner reads the provider and the sink and hands the results
in. The rules (docs/how-it-works.md):

- **Which credentials.** Those the listed keys select (their base name matches ROTATOR_KEY_NAMES
  and no exclude glob) plus those the sink holds metadata for that the globs still select. A key
  whose name holds a control character is never managed (``refused``): its replacement's name
  could not be parsed back, and it could not be shown safely; nor is a key whose id could not
  be put into a revoke URL as one path segment.
- **Which keys the rotator made.** A key is rotator-made when its name carries the marker and
  its ``createdBy`` is the rotator's own user (``me``); anything else is a person's key, never
  revoked unless the metadata names it as this credential's previous key.
- **Metadata is checked before it is trusted.** A record is *blocked* (no action at all on the
  credential) when: the sink could not be read; an id it names is no key id at all (not one path
  segment); the ids it names are not distinct; an id it names
  is listed under another credential's name; the current key it names is listed under another
  name than the record's ``key_name``; the sink holds a secret but the record names no key;
  the stored secret matches neither ``secret_sha256`` nor the pending hash; or the sink holds no
  secret although the record names a current key.
- **With a trusted record**: the key it holds is current, the key it replaced is previous, a
  pending key is settled by the stored hash (equal: delivered; else never delivered), and any
  other rotator-made key of the credential is an orphan (young while newer than the orphan
  minimum age, by the time in its name). A record naming a current key that is not listed any
  more (revoked, or expired and no longer listed) makes the credential ``missing``; its other
  rotator-made keys are then *unknown* (never revoked) until the replacement is delivered, since
  such a record cannot prove that none of them is the key the sink holds.
- **Without a record** (a first rotation, or a wiped sink): the newest person-made key is
  current (else the newest rotator-made one; ties of ``expires`` broken by the time in the
  name, then the id); other rotator-made keys are *unknown* and never
  revoked, since nothing proves they were never delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rotator.errors import SinkError
from rotator.models import (
    ApiKey,
    Decision,
    Role,
    SinkRecord,
    has_control_characters,
    is_safe_key_id,
    rotator_created_at,
    utc,
)
from rotator.policy import RotationPolicy, decide, is_managed, missing
from rotator.sinks.base import SinkState


@dataclass(frozen=True)
class ReconcileConfig:
    """The settings reconciliation reads, as plain values."""

    policy: RotationPolicy
    orphan_min_age: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class RefusedKey:
    """A listed key the rotator will not manage, and why (logged as ``key.refused``)."""

    key_id: str
    reason: str


@dataclass(frozen=True)
class CredentialView:
    """One credential as the provider and the sink show it at one instant."""

    credential: str
    #: What the sink held when read; None when it could not be read (then ``blocked`` says why).
    state: SinkState | None
    #: Why no action may be taken on this credential (unreadable or untrustworthy metadata).
    blocked: str | None = None
    current: ApiKey | None = None
    previous: ApiKey | None = None
    pending: ApiKey | None = None
    #: Whether the sink holds the pending key's secret (None: nothing is pending).
    pending_delivered: bool | None = None
    orphans: tuple[ApiKey, ...] = ()
    young_orphans: tuple[ApiKey, ...] = ()
    unknown: tuple[ApiKey, ...] = ()
    extras: tuple[ApiKey, ...] = ()
    #: The policy's verdict on the current key; ``missing`` when the held key is gone.
    decision: Decision | None = None

    @property
    def record(self) -> SinkRecord | None:
        return None if self.state is None else self.state.record

    @property
    def lagging(self) -> tuple[str, ...]:
        """The targets that do not hold what the view shows yet (several targets only)."""
        return () if self.state is None else self.state.lagging

    @property
    def is_missing(self) -> bool:
        return self.decision is not None and self.decision.reason == "missing"

    def roles(self) -> dict[str, Role]:
        """Each key of the credential by id, with its role."""
        roles: dict[str, Role] = {}
        for keys, role in (
            (self.orphans + self.young_orphans, Role.ORPHAN),
            (self.unknown, Role.UNKNOWN),
            (self.extras, Role.EXTRA),
            ((self.pending,) if self.pending else (), Role.PENDING),
            ((self.previous,) if self.previous else (), Role.PREVIOUS),
            ((self.current,) if self.current else (), Role.CURRENT),
        ):
            roles.update({k.id: role for k in keys})
        return roles


@dataclass(frozen=True)
class WorkspaceKeys:
    """A workspace's listed keys sorted into what the rotator may manage."""

    #: Managed keys by credential.
    by_credential: Mapping[str, tuple[ApiKey, ...]]
    #: Keys no ROTATOR_KEY_NAMES glob selects.
    unmanaged: tuple[ApiKey, ...]
    refused: tuple[RefusedKey, ...] = field(default=())


def sort_keys(keys: Iterable[ApiKey], policy: RotationPolicy) -> WorkspaceKeys:
    """Group the listed keys by credential, setting aside unmanaged and refused ones."""
    by_credential: dict[str, list[ApiKey]] = {}
    unmanaged: list[ApiKey] = []
    refused: list[RefusedKey] = []
    for key in keys:
        if has_control_characters(key.name):
            refused.append(RefusedKey(key.id, "its name holds a control character"))
            continue
        if not is_safe_key_id(key.id):
            refused.append(RefusedKey(key.id, "its id cannot be used in a URL path"))
            continue
        if is_managed(key.base_name, policy):
            by_credential.setdefault(key.base_name, []).append(key)
        else:
            unmanaged.append(key)
    return WorkspaceKeys(
        by_credential={c: tuple(ks) for c, ks in sorted(by_credential.items())},
        unmanaged=tuple(unmanaged),
        refused=tuple(refused),
    )


def credentials_of(
    keys: WorkspaceKeys, remembered: Iterable[str], policy: RotationPolicy
) -> list[str]:
    """The credentials of a pass: those the listed keys select, plus those the sink remembers
    that the globs still select (their keys may all have vanished)."""
    names = set(keys.by_credential)
    names.update(c for c in remembered if is_managed(c, policy) and not has_control_characters(c))
    return sorted(names)


@dataclass(frozen=True)
class Facts:
    """What every credential of one workspace is reconciled against."""

    #: Every listed key of the workspace by id (to spot a record naming another's key).
    all_keys: Mapping[str, ApiKey]
    #: The user the rotator's own credential acts as (the maker of rotator-made keys).
    me_user_id: str | None
    now: datetime
    config: ReconcileConfig


def reconcile(
    credential: str, keys: Sequence[ApiKey], state: SinkState | SinkError, facts: Facts
) -> CredentialView:
    """The view of ``credential`` from its listed ``keys`` and what its sink holds."""
    all_keys, me_user_id, now, config = facts.all_keys, facts.me_user_id, facts.now, facts.config
    if isinstance(state, SinkError):
        return CredentialView(credential, None, blocked=f"the sink could not be read: {state}")
    record = state.record
    if record is None:
        return _without_record(credential, keys, state, facts)
    problem = _untrustworthy(credential, record, state, all_keys)
    if problem is not None:
        return CredentialView(credential, state, blocked=problem)

    by_id = {k.id: k for k in keys}
    current = by_id.get(record.key_id) if record.key_id else None
    previous = by_id.get(record.previous_key_id) if record.previous_key_id else None
    pending = by_id.get(record.pending_key_id) if record.pending_key_id else None
    pending_delivered = None
    if record.pending_key_id is not None:
        pending_delivered = (
            state.secret_sha256 is not None and state.secret_sha256 == record.pending_secret_sha256
        )
    held = {record.key_id, record.previous_key_id, record.pending_key_id}
    orphans: list[ApiKey] = []
    young: list[ApiKey] = []
    extras: list[ApiKey] = []
    unknown: list[ApiKey] = []
    for key in keys:
        if key.id in held:
            continue
        if key.id in state.held_elsewhere:
            unknown.append(key)  # a lagging target still names it: its consumers may hold it
            continue
        created = rotator_created_at(key.name)
        if created is None or not key.made_by(me_user_id):
            extras.append(key)
        elif utc(now) - created >= config.orphan_min_age:
            orphans.append(key)
        else:
            young.append(key)
    decision = None
    if current is not None:
        decision = decide(current, now, config.policy)
    elif not (pending_delivered and pending is not None):
        # The key the sink holds is gone (or it never held one): rotate at once. Its other
        # rotator-made keys are unknown until the replacement is delivered: the record that
        # named a key no longer listed cannot prove that none of them is the one held (a
        # person's edit of key_id), and an orphan is revoked before the new key lands.
        decision = missing()
        unknown, orphans, young = [*unknown, *orphans, *young], [], []
    return CredentialView(
        credential,
        state,
        current=current,
        previous=previous,
        pending=pending,
        pending_delivered=pending_delivered,
        orphans=tuple(orphans),
        young_orphans=tuple(young),
        unknown=tuple(unknown),
        extras=tuple(extras),
        decision=decision,
    )


def _without_record(
    credential: str, keys: Sequence[ApiKey], state: SinkState, facts: Facts
) -> CredentialView:
    me_user_id, now, config = facts.me_user_id, facts.now, facts.config
    made = [k for k in keys if k.made_by(me_user_id)]
    people = [k for k in keys if not k.made_by(me_user_id)]
    pool = people or made
    current = max(pool, key=_newest_first) if pool else None
    return CredentialView(
        credential,
        state,
        current=current,
        unknown=tuple(k for k in made if k is not current),
        extras=tuple(k for k in people if k is not current),
        decision=decide(current, now, config.policy) if current else None,
    )


def _newest_first(key: ApiKey) -> tuple[datetime, datetime, str]:
    """Which key is the newest: by ``expires``; keys made in the same second tie, so then by the
    time in the rotator's marker, then by id, so every pass picks the same one."""
    made_at = rotator_created_at(key.name) or datetime.min.replace(tzinfo=UTC)
    return (utc(key.expires), made_at, key.id)


def _untrustworthy(
    credential: str, record: SinkRecord, state: SinkState, all_keys: Mapping[str, ApiKey]
) -> str | None:
    """Why ``record`` cannot be trusted with what the sink holds, or None."""
    ids = [i for i in (record.key_id, record.previous_key_id, record.pending_key_id) if i]
    if not all(is_safe_key_id(i) for i in ids):
        return "the metadata names a key id no key can have"
    if len(ids) != len(set(ids)):
        return "the metadata names one key in two roles (current, previous, pending)"
    for key_id in ids:
        listed = all_keys.get(key_id)
        if listed is not None and listed.base_name != credential:
            return f"the metadata names key {key_id}, which belongs to {listed.base_name!r}"
    current = all_keys.get(record.key_id) if record.key_id is not None else None
    if current is not None and record.key_name is not None and current.name != record.key_name:
        # Another key of the same credential put in by hand: trusted, it would make the key the
        # sink really holds an orphan, revoked under the consumer.
        return (
            f"the metadata names key {record.key_id} as {record.key_name!r}, but the API lists "
            f"it as {current.name!r}"
        )
    if record.key_id is None and record.pending_key_id is None:
        return "the metadata names no key"
    if state.secret_sha256 is not None:
        if record.key_id is None and state.secret_sha256 != record.pending_secret_sha256:
            return "the sink holds a secret but its metadata names no key for it"
        known = {record.secret_sha256, record.pending_secret_sha256}
        if record.secret_sha256 is not None and state.secret_sha256 not in known:
            return "the stored secret matches neither the metadata's hash nor the pending one"
    elif record.key_id is not None and record.secret_sha256 is not None:
        return f"the sink holds no secret, yet its metadata names key {record.key_id}"
    return None
