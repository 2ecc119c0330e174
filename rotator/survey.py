"""What a pass reads before it acts, and what the read-only commands show: each workspace
surveyed (``me``, the key list, what the sink holds, every credential reconciled), its plan, its
inventory, and the workspaces listed twice (also across shards: the ``me`` of other shards'
entries). Nothing here changes anything.

It also holds the plain values a pass runs with (:class:`PassConfig`) and a workspace as a pass
sees it (:class:`Workspace`), which both the survey and the runner use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar

import structlog

from rotator.errors import ApiAuthError, ApiError, RotatorError, SinkError
from rotator.locks.base import PassLock
from rotator.models import ApiKey, Identity, Role, Secret, utc
from rotator.plan import (
    Action,
    PlanConfig,
    PlannedAction,
    allocate,
    hold_revokes,
    plan_workspace,
)
from rotator.policy import RotationPolicy, decide, is_managed
from rotator.reconcile import (
    CredentialView,
    Facts,
    ReconcileConfig,
    credentials_of,
    reconcile,
    sort_keys,
)
from rotator.report import KeyStatus
from rotator.rotation import KeyProvider, RotationConfig, expired_or_gone
from rotator.sinks.base import Sink
from rotator.upcoming import next_action


@dataclass(frozen=True)
class PassConfig:
    """The settings a pass obeys, as plain values (built by ``rotator.app`` from Settings)."""

    reconcile: ReconcileConfig
    rotation: RotationConfig = field(default_factory=RotationConfig)
    dry_run: bool = False
    max_failure_ratio: float = 0.5
    max_rotations_per_pass: int = 50
    concurrency: int = 8
    workspace_concurrency: int = 2
    #: When the next scheduled pass runs after a given instant (ROTATOR_SCHEDULE), or None when
    #: unknown: a rotation the budget leaves out whose key expires before then is a failure.
    next_pass_at: Callable[[datetime], datetime | None] | None = None
    #: What asked for this pass's rotations, kept in the rotation history: ``schedule``,
    #: ``forced`` (``rotate --now``), ``api`` or ``leak`` (serve's triggers).
    trigger: str = "schedule"


@dataclass(frozen=True)
class OtherShardEntry:
    """An entry of the workspaces file that another shard's pod takes (ROTATOR_SHARDS). This
    process only asks ``me`` with its credential, never its keys or its sink: an entry of its
    own answering for the same workspace id is one workspace listed twice across shards."""

    name: str
    #: The ROTATOR_SHARD_INDEX of the pod that takes it.
    shard: int
    #: ``GET /api/data/me`` asked with the entry's credential (read anew at each call).
    me: Callable[[], Identity]
    #: The entry's ``workspace_id``: an answer for another id is refused by its own pod, so it
    #: proves nothing here.
    expected_workspace_id: str | None = None


@dataclass(frozen=True)
class Unidentified:
    """An entry of the workspaces file that a pass could not identify (its ``me``, credential
    or sink failed first): it may be one of the pass's workspaces listed again, whose sink
    may hold a key of it, unless its ``workspace_id`` says which workspace it is."""

    name: str
    why: str
    #: The entry's ``workspace_id`` in the workspaces file: it can hold keys of no other.
    declared_workspace_id: str | None = None


@dataclass
class Workspace:
    """One workspace: its label, the API client holding its own credential, sink and lock."""

    name: str
    provider: KeyProvider
    sink: Sink
    lock: PassLock | None = None
    expected_workspace_id: str | None = None
    #: The base name of the rotator's own key here (rotated last), or None.
    self_key_name: str | None = None
    #: Reads the place the process takes this workspace's credential from, anew (for the own
    #: key's "never locked out" rule); None when that is not a file the rotator can re-read.
    credential_source: Callable[[], Secret] | None = None
    #: This workspace's own patterns and limits (its ``key_names`` and ``exclude_key_names``);
    #: None: the pass's policy.
    policy: RotationPolicy | None = None
    #: Why this workspace cannot be used in this pass (its credential file cannot be read), or
    #: None. Such a workspace is named and fails (exit 1); the others go on.
    unusable: str | None = None
    #: Other entries holding this one's very credential: one workspace listed twice, refused
    #: in every entry before anything is asked of the API.
    duplicate_of: tuple[str, ...] = ()
    #: The entries other shards' pods take (the same for every workspace of this process; empty
    #: unless ROTATOR_SHARDS is above 1): their ``me`` joins the search for one workspace listed
    #: twice, so a twin in another shard is refused here as one in this shard would be.
    other_shards: tuple[OtherShardEntry, ...] = ()


@dataclass(frozen=True)
class Survey:
    """One workspace read at one instant: who we are, its keys, each credential's view."""

    identity: Identity
    keys: tuple[ApiKey, ...]
    views: dict[str, CredentialView]
    #: Why the sink could not list the credentials it holds (the survey is incomplete: a
    #: credential whose keys all vanished may be hidden), or None.
    list_error: str | None = None
    #: Patterns of the workspace's ``key_names`` that select no listed key.
    unmatched: tuple[str, ...] = ()

    @property
    def incomplete(self) -> str | None:
        """Why this survey cannot be trusted to show every credential, or None."""
        if self.list_error is None:
            return None
        return f"the sink could not list the credentials it holds: {self.list_error}"


T = TypeVar("T")


@dataclass
class ReadOnly(Generic[T]):
    """The rows of a read-only command, and the workspaces that could not be read (by name)."""

    rows: list[T] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)
    #: Workspaces a pass would refuse (one workspace listed twice), and why.
    refused: dict[str, str] = field(default_factory=dict)
    #: The rows of the refused workspaces: never shown as theirs, but a name they hold is still
    #: theirs (``rotate`` without ``--workspace`` must see every workspace that holds it).
    refused_rows: list[T] = field(default_factory=list)
    #: Workspaces read only in part (the sink could not list what it holds), and why.
    incomplete: dict[str, str] = field(default_factory=dict)
    #: Patterns that select no key, by workspace.
    unmatched: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: The workspace id ``me`` answered for each workspace read.
    identities: dict[str, str | None] = field(default_factory=dict)
    #: Other shards' entries whose ``me`` failed, and why.
    unchecked: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows)


def survey(
    ws: Workspace,
    now: datetime,
    config: ReconcileConfig,
    log: structlog.typing.FilteringBoundLogger,
    named: Collection[str] = (),
) -> Survey:
    """Read the provider and the sink, and reconcile every credential. Changes nothing.

    ``named`` credentials (``rotate NAME --now``) are read from the sink even when no key and
    no sink list names them: a sink that cannot list must not hide a credential named outright.

    Raises ApiError when the workspace cannot be used (its credential refused, the API down),
    WorkspaceConfigError when its credential cannot even be read.
    """
    if ws.unusable is not None:
        raise WorkspaceConfigError(ws.unusable)
    identity = ws.provider.me()
    if ws.expected_workspace_id and identity.workspace_id != ws.expected_workspace_id:
        raise ApiAuthError("the credential answers for another workspace", endpoint="me")
    keys = ws.provider.list_keys()
    found = survey_keys(ws, keys, identity=identity, now=now, config=config, log=log, named=named)
    unmatched = unmatched_patterns(keys, (ws.policy or config.policy).key_names)
    for pattern in unmatched:
        # A typo, or quotes kept by `docker run --env-file`: the pass would manage nothing.
        log.warning("selector.unmatched", pattern=pattern)
    return replace(found, unmatched=unmatched)


def survey_keys(  # noqa: PLR0913 - the survey's inputs, each named at every call
    ws: Workspace,
    keys: Sequence[ApiKey],
    *,
    identity: Identity,
    now: datetime,
    config: ReconcileConfig,
    log: structlog.typing.FilteringBoundLogger,
    named: Collection[str] = (),
) -> Survey:
    policy = workspace_policy(config, ws)
    for skipped in getattr(keys, "skipped", ()):
        # Entries of the list the client could not read at all: named, never acted on.
        log.warning("key.skipped", key_id=skipped.id, key_name=skipped.name, reason=skipped.reason)
    grouped = sort_keys(keys, policy)
    for refused in grouped.refused:
        log.warning("key.refused", key_id=refused.key_id, reason=refused.reason)
    list_error = None
    try:
        remembered: Sequence[str] = ws.sink.list_credentials()
    except SinkError as exc:
        # Without the list a credential whose keys all vanished is invisible: the pass is
        # incomplete (exit 1), never a silent "nothing to do".
        log.error("sink.list_failed", error=str(exc))
        list_error = str(exc)
        remembered = ()
    credentials = credentials_of(grouped, [*remembered, *named], policy)
    problems = ws.sink.check_names(credentials)
    facts = Facts(
        all_keys={k.id: k for k in keys},
        me_user_id=identity.user_id,
        now=now,
        config=replace(config, policy=policy),
    )
    views: dict[str, CredentialView] = {}
    for credential in credentials:
        own = grouped.by_credential.get(credential, ())
        if credential in problems:
            views[credential] = CredentialView(
                credential, None, blocked=f"its name cannot be stored: {problems[credential]}"
            )
            continue
        try:
            state: Any = ws.sink.read(credential)
        except SinkError as exc:
            state = exc
        view = reconcile(credential, own, state, facts)
        if not own and view.record is None and credential not in remembered:
            continue  # named outright, but neither listed nor held: nothing of it exists here
        views[credential] = view
    return Survey(identity, tuple(keys), views, list_error=list_error)


def unmatched_patterns(keys: Iterable[ApiKey], patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns that select no listed key's base name (exclusions aside)."""
    names = {k.base_name for k in keys}
    return tuple(p for p in patterns if not any(fnmatchcase(n, p) for n in names))


def workspace_policy(config: ReconcileConfig, ws: Workspace) -> RotationPolicy:
    """The policy of a workspace: its own patterns (or the pass's), and its own key is managed
    when named, whatever the globs say."""
    policy = ws.policy or config.policy
    if ws.self_key_name and not is_managed(ws.self_key_name, policy):
        policy = replace(policy, key_names=(*policy.key_names, ws.self_key_name))
    return policy


def own_key_waiting(ws: Workspace, found: Survey) -> bool:
    """Whether the rotator's own previous key is kept because the process's credential source
    does not hold the key its sink delivered (checked by hash; the pass also asks ``me``)."""
    view = found.views.get(ws.self_key_name or "")
    if view is None or view.previous is None or view.record is None:
        return False
    try:
        held = (ws.credential_source or never_switched)()
    except RotatorError:
        return True
    return held.sha256() != view.record.secret_sha256


def in_sink(view: CredentialView | None, key_id: str) -> bool | None:
    """Whether the sink holds ``key_id``'s secret now (its current or a delivered pending key);
    None when the sink could not be read."""
    if view is None or view.state is None:
        return None
    record, held = view.record, view.state.secret_sha256
    if record is None or held is None:
        return False
    if key_id == record.key_id:
        return held == record.secret_sha256
    return key_id == record.pending_key_id and held == record.pending_secret_sha256


def inventory(
    ws: Workspace, found: Survey, now: datetime, config: ReconcileConfig
) -> list[KeyStatus]:
    """Every listed key with its role, plus a row for each remembered credential with no key.

    The rotator's own previous key, kept until the process reads its new key, shows the reason
    ``waiting-for-credential-source``. A credential whose keys are all gone is one row with role
    ``missing``, whatever else (orphans, extras) it still has.
    """
    policy = workspace_policy(config, ws)
    dating = replace(config, policy=policy)
    waiting = own_key_waiting(ws, found)
    out: list[KeyStatus] = []
    for key in sorted(found.keys, key=lambda k: (k.base_name, k.expires)):
        decision = decide(key, now, policy)
        view = found.views.get(key.base_name)
        role, due, reason = Role.UNMANAGED, False, "unmanaged"
        if view is not None and view.blocked is not None:
            role, reason = Role.UNKNOWN, "blocked"
        elif view is not None:
            role = view.roles().get(key.id, Role.UNKNOWN)
            if role is Role.CURRENT and view.decision is not None:
                due, reason = view.decision.due, str(view.decision.reason)
            elif role is Role.PREVIOUS and waiting and key.base_name == ws.self_key_name:
                reason = "waiting-for-credential-source"
            else:
                reason = str(role)
        out.append(
            KeyStatus(
                workspace=ws.name,
                name=key.name,
                credential=key.base_name,
                key_id=key.id,
                expires=key.expires,
                days_left=round(decision.days_left, 3),
                age_days=round(decision.age_days, 3),
                managed=view is not None,
                due=due,
                reason=reason,
                role=role,
                in_sink=in_sink(view, key.id) if view is not None else False,
                lagging=view.lagging if view is not None and role is Role.CURRENT else (),
                **next_action(view, key, role, now=now, config=dating).fields(),
            )
        )
    listed = {k.base_name for k in found.keys}
    for credential, view in sorted(found.views.items()):
        if view.record is None or not (view.is_missing or view.blocked) or view.current:
            continue
        if view.blocked and credential in listed:
            continue  # its listed keys already show as blocked
        out.append(
            KeyStatus(
                workspace=ws.name,
                name=credential,
                credential=credential,
                key_id=view.record.key_id,
                expires=view.record.expires,
                days_left=None,
                age_days=None,
                managed=True,
                due=view.blocked is None,
                reason="blocked" if view.blocked else "missing",
                role=Role.UNKNOWN if view.blocked else Role.MISSING,
                in_sink=in_sink(view, view.record.key_id or ""),
                **next_action(view, None, Role.MISSING, now=now, config=dating).fields(),
            )
        )
    return out


def plan_of(ws: Workspace, found: Survey, now: datetime, config: PassConfig,
            forced: Collection[str] | None = None) -> list[PlannedAction]:  # fmt: skip
    """The actions a pass takes in ``ws`` (its own policy); the self key's rotation, if any,
    last."""
    plan = PlanConfig(policy=workspace_policy(config.reconcile, ws), grace=config.rotation.grace)
    actions = plan_workspace(ws.name, found.views.values(), now, plan, forced=forced)
    if ws.self_key_name is None:
        return actions
    mine = [a for a in actions if a.credential == ws.self_key_name]
    starts = next((i for i, a in enumerate(mine) if a.action is Action.ROTATE), len(mine))
    own = mine[starts:]  # its rotation and the grace-0 retire that follows it
    return [a for a in actions if a not in own] + own


def duplicates(identities: Iterable[tuple[str, Identity]]) -> dict[str, list[str]]:
    """Workspaces listed twice: each entry's name -> the other entries answering ``me`` for the
    same workspace id (identity is the id, never the name in the file)."""
    by_id: dict[str, list[str]] = {}
    for name, identity in identities:
        if identity.workspace_id is not None:  # an answer without an id proves nothing
            by_id.setdefault(identity.workspace_id, []).append(name)
    return {
        name: [other for other in names if other != name]
        for names in by_id.values()
        if len(names) > 1
        for name in names
    }


def listed_twice(
    surveyed: Sequence[tuple[Workspace, Survey]],
    log: structlog.typing.FilteringBoundLogger,
    unchecked: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """This process's entries that are one workspace listed twice: each surveyed entry's name
    -> the other entries answering ``me`` for its workspace id, of this process (by their
    survey) or of another shard (``other_shards``, asked now; named with their shard). The
    other shards' entries whose ``me`` failed go into ``unchecked`` (name -> why)."""
    elsewhere = other_shard_identities([ws for ws, _found in surveyed], log, unchecked)
    labels = {name: f"{name} (shard {shard})" for name, shard, _identity in elsewhere}
    twice = duplicates(
        [
            *((ws.name, found.identity) for ws, found in surveyed),
            *((name, identity) for name, _shard, identity in elsewhere),
        ]
    )
    return {
        ws.name: [labels.get(other, other) for other in twice[ws.name]]
        for ws, _found in surveyed
        if ws.name in twice
    }


def other_shard_identities(
    workspaces: Sequence[Workspace],
    log: structlog.typing.FilteringBoundLogger,
    unchecked: dict[str, str] | None = None,
) -> list[tuple[str, int, Identity]]:
    """``(name, shard, me's answer)`` of each entry other shards take, asked once each; none
    when ``workspaces`` is empty (nothing here could be refused). An entry that answers for
    another id than its ``workspace_id`` is refused by its own pod, so it acts nowhere and is
    left out. One whose ``me`` fails proves nothing either way: it is left out, logged as
    ``workspace.twin_unchecked`` (error) and put in ``unchecked``, which fails the pass."""
    entries = {entry.name: entry for ws in workspaces for entry in ws.other_shards}
    found: list[tuple[str, int, Identity]] = []
    for name, entry in entries.items():
        try:
            identity = entry.me()
        except (RotatorError, ValueError) as exc:
            log.error("workspace.twin_unchecked", other=name, shard=entry.shard, error=str(exc))
            if unchecked is not None:
                unchecked[name] = str(exc)
            continue
        expected = entry.expected_workspace_id
        if expected and identity.workspace_id != expected:
            continue  # its own pod refuses it: it acts nowhere
        found.append((name, entry.shard, identity))
    return found


def exposed_to(
    suspects: Mapping[str, str | None], identities: Mapping[str, str | None]
) -> set[str]:
    """The workspaces (name -> the id ``me`` answered) that an entry a pass could not identify
    (name -> the ``workspace_id`` it declares, or None) may be listed again as: every one when
    any such entry declares none, else those of an id one declares (or of no id known). There,
    no key another sink could hold is revoked (:func:`rotator.plan.hold_revokes`)."""
    ids = set(suspects.values())
    if not ids:
        return set()
    return {name for name, id_ in identities.items() if None in ids or id_ is None or id_ in ids}


def declared_ids(workspaces: Sequence[Workspace]) -> dict[str, str | None]:
    """Each entry's ``workspace_id`` from the workspaces file (None: not written down), by
    name: the workspaces of this process and the entries other shards take."""
    declared = {e.name: e.expected_workspace_id for ws in workspaces for e in ws.other_shards}
    declared.update((ws.name, ws.expected_workspace_id) for ws in workspaces)
    return declared


def duplicate_error(others: Sequence[str], workspace_id: str | None) -> str:
    """Why an entry is refused as one workspace listed twice (``workspace_id`` None: the
    entries hold the very same credential)."""
    same = (
        f"its credential answers for workspace id {workspace_id}, as that of"
        if workspace_id is not None
        else "its credential is the very one of"
    )
    return f"{same} {', '.join(others)}: one workspace listed twice; nothing is done in either"


# --------------------------------------------------------------------------- the pass


def never_switched() -> Secret:
    """The credential source of a process whose own key is a fixed value (ROTATOR_API_KEY): it
    never reads a delivered key, so its previous own key is never revoked."""
    raise WorkspaceConfigError("the rotator's credential is not read from a file it re-reads")


class WorkspaceConfigError(RotatorError):
    """A workspace's set-up keeps a rule from being met (its own key's source is fixed)."""


def read_only(
    workspaces: Sequence[Workspace],
    rows_of: Callable[[Workspace, Survey], list[T]],
    *,
    now: datetime,
    config: ReconcileConfig,
    log: structlog.typing.FilteringBoundLogger,
) -> ReadOnly[T]:
    """``rows_of`` each workspace's survey (``plan``, ``status``), with the workspaces that
    could not be read, were refused (listed twice, also with an entry of another shard, as a
    pass refuses them), or were read only in part, named."""
    result: ReadOnly[T] = ReadOnly()
    surveyed: list[tuple[Workspace, Survey]] = []
    for ws in workspaces:
        ws_log = log.bind(workspace=ws.name)
        if ws.duplicate_of:
            error = duplicate_error(ws.duplicate_of, None)
            ws_log.error("workspace.duplicate", error=error)
            result.refused[ws.name] = error
            continue
        try:
            found = survey(ws, now, config, ws_log)
        except (ApiError, WorkspaceConfigError) as exc:
            ws_log.error("workspace.unusable", error=str(exc))
            result.unusable[ws.name] = str(exc)
            continue
        surveyed.append((ws, found))
        result.identities[ws.name] = found.identity.workspace_id
    twice = listed_twice(surveyed, log, result.unchecked)
    for ws, found in surveyed:
        if ws.name in twice:
            error = duplicate_error(twice[ws.name], found.identity.workspace_id)
            log.error("workspace.duplicate", workspace=ws.name, error=error)
            result.refused[ws.name] = error
            result.refused_rows.extend(rows_of(ws, found))
            continue
        if found.incomplete is not None:
            result.incomplete[ws.name] = found.incomplete
        if found.unmatched:
            result.unmatched[ws.name] = found.unmatched
        result.rows.extend(rows_of(ws, found))
    return result


def own_key_running_out(  # noqa: PLR0913 - what the check reads, each named at the call
    ws: Workspace,
    found: Survey,
    *,
    now: datetime,
    pass_started: datetime,
    config: ReconcileConfig,
    log: structlog.typing.FilteringBoundLogger,
) -> str | None:
    """Why the pass fails although each rotation went well: the rotator does not run on the
    own key its sink holds (its credential source never got it), that key was delivered
    before this pass (so a mounted Secret had a whole interval to catch up), and the keys
    it may still run on expire within ROTATOR_ROTATE_BEFORE_DAYS. None while it is fine.

    Checked at the end of every pass, whatever was planned: a switch that never happens
    must not hide behind a pass with nothing to do for the own credential.
    """
    own = ws.self_key_name
    if own is None:
        return None
    try:
        record = ws.sink.read(own).record
    except SinkError:
        return None  # the credential's own failure says so
    if record is None or record.secret_sha256 is None or record.delivered_at is None:
        return None
    try:
        held: Secret | None = (ws.credential_source or never_switched)()
    except RotatorError:
        held = None
    if held is not None and held.sha256() == record.secret_sha256:
        return None  # it runs on the key its sink holds
    if utc(record.delivered_at) >= utc(pass_started):
        return None  # delivered in this pass: give the source until the next one
    policy = workspace_policy(config, ws)
    # The key it runs on is one of its other live keys; which one, only its secret says.
    others = [
        k for k in found.keys if k.base_name == own and k.id != record.key_id
        and not expired_or_gone(k.id, found.keys, now)
    ]  # fmt: skip
    if not others:
        return None
    soonest = min(others, key=lambda k: k.expires)
    left = decide(soonest, now, policy).days_left
    if left >= policy.rotate_before_days:
        return None
    error = (
        f"the rotator does not run on its key {record.key_id} that its sink holds, and its "
        f"other key {soonest.id} expires in {left:.1f} days: the new key was delivered where "
        "the rotator does not read its credential (point its credential file at it)"
    )
    log.error(
        "self.waiting", credential=own, key_id=soonest.id, days_left=round(left, 3),
        error=error,
    )  # fmt: skip
    return error


def log_evaluations(
    found: Survey, forced: Collection[str] | None, log: structlog.typing.FilteringBoundLogger
) -> None:
    """``key.evaluated`` for each credential a pass may act on (``forced`` when named to
    ``rotate --now``), and ``key.unknown`` for rotator-made keys no metadata can judge."""
    for credential, view in found.views.items():
        if forced is not None and credential in forced and view.blocked is None:
            log.info(
                "key.evaluated",
                credential=credential,
                key_id=view.current.id if view.current else None,
                due=True,
                reason="forced",
                days_left=round(view.decision.days_left, 3) if view.decision else 0.0,
            )
        elif forced is None and view.decision is not None and view.blocked is None:
            log.info(
                "key.evaluated",
                credential=credential,
                key_id=view.current.id if view.current else (
                    view.record.key_id if view.record else None
                ),
                due=view.decision.due,
                reason=str(view.decision.reason),
                days_left=round(view.decision.days_left, 3),
            )  # fmt: skip
    for credential, view in found.views.items():
        if view.unknown:
            log.warning(
                "key.unknown",
                credential=credential,
                key_ids=[k.id for k in view.unknown],
                detail="rotator-made keys, but the sink holds no metadata to judge them",
            )


def plan_and_inventory(
    workspaces: Sequence[Workspace],
    config: PassConfig,
    *,
    now: datetime,
    log: structlog.typing.FilteringBoundLogger,
    days_to_next_pass: float | None,
) -> tuple[ReadOnly[PlannedAction], list[KeyStatus]]:
    """What a pass would do now over ``workspaces`` (the budget handed out over all of them, as
    a pass would) and every key's status, from one read of each workspace. Changes nothing."""
    both = read_only(
        workspaces,
        lambda ws, found: [
            (plan_of(ws, found, now, config), inventory(ws, found, now, config.reconcile))
        ],
        now=now,
        config=config.reconcile,
        log=log,
    )
    actions = allocate(
        [a for planned, _ in both.rows for a in planned],
        config.max_rotations_per_pass,
        days_to_next_pass=days_to_next_pass,
    )
    # What a pass holds back beside an entry it cannot identify, the plan shows held back: as
    # in the pass, every entry that was not identified (unusable, or refused for holding another
    # entry's very credential, before any request), and other shards' whose `me` failed.
    declared = declared_ids(workspaces)
    unread = [ws.name for ws in workspaces if ws.name not in both.identities]
    suspects = {name: declared.get(name) for name in [*unread, *both.unchecked]}
    actions = hold_revokes(actions, exposed_to(suspects, both.identities))
    plan = ReadOnly(
        actions,
        unusable=both.unusable,
        refused=both.refused,
        incomplete=both.incomplete,
        unmatched=both.unmatched,
        refused_rows=[a for planned, _ in both.refused_rows for a in planned],
    )
    return plan, [row for _, rows in both.rows for row in rows]
