"""``check-config --online``: look at what the settings name, for real, and change nothing.

For each workspace this process takes: ``me`` with its credential (the user and workspace it
answers for), the keys each pattern selects, whether the sink can list and read what it holds
(and each target of its ``credentials:`` routes on its own, built for the check and closed),
whether the pass lock can be taken (a Lease is taken and released at once), and whether the
rotator's own key is delivered where the rotator reads its credential. Only GET requests go to
the API (``me``, the key list) and only the sink's read calls (``list_credentials``, ``read``):
no key is created or revoked, nothing is written to a sink. A file lock whose ``.rotator.lock``
does not exist yet is not created: its folder is checked instead (a pass creates it).

Each check is ``ok``, ``warning`` (a pass would run, but perhaps not as meant) or ``error`` (a
pass could not serve the workspace); a workspace with an error is not usable (exit 1).

Must not know: how results are shown (the CLI renders them), the plan's rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from rotator.app import build_sinks, close_sinks, open_workspaces, policy_of, sink_routes
from rotator.errors import ApiAuthError, ApiError, LockError, LockHeldError, RotatorError, SinkError
from rotator.locks.file import FileLock
from rotator.models import ApiKey, Secret
from rotator.policy import RotationPolicy, is_managed
from rotator.reconcile import ReconcileConfig
from rotator.settings import Settings, WorkspaceSettings, read_api_key
from rotator.sinks.base import Sink
from rotator.survey import Workspace, workspace_policy

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass(frozen=True)
class Check:
    """One thing looked at: what (``credential``, ``keys``, ``sink``, ``lock``, ``own key``),
    how it went, and what was found."""

    check: str
    status: str
    detail: str


@dataclass
class WorkspaceChecks:
    """Every check of one workspace."""

    workspace: str
    checks: list[Check] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return all(c.status != ERROR for c in self.checks)

    def add(self, check: str, status: str, detail: str) -> None:
        self.checks.append(Check(check, status, detail))


def check_online(settings: Settings) -> list[WorkspaceChecks]:
    """Look at every workspace this process takes, changing nothing."""
    configs = {ws.name: ws for ws in settings.workspaces}
    reconcile = ReconcileConfig(policy_of(settings))
    out: list[WorkspaceChecks] = []
    with open_workspaces(settings) as opened:
        for ws in opened:
            config = configs[ws.name]
            result = WorkspaceChecks(ws.name)
            policy = workspace_policy(reconcile, ws)  # its own patterns, its own key included
            keys = _credential_and_keys(config, ws, policy, result)
            managed = sorted({k.base_name for k in keys if is_managed(k.base_name, policy)})
            _sink(ws.sink, managed, result)
            check_targets(settings, config, managed, result)
            _lock(ws, result)
            _own_key(config, ws, result)
            out.append(result)
    return out


def _credential_and_keys(
    config: WorkspaceSettings, ws: Workspace, policy: RotationPolicy, result: WorkspaceChecks
) -> list[ApiKey]:
    """``me``, then the key list; the keys (empty when either failed)."""
    try:
        identity = ws.provider.me()
    except ApiAuthError as exc:
        result.add("credential", ERROR, f"the API refused the rotator's credential: {exc}")
        return []
    except ApiError as exc:
        result.add("credential", ERROR, f"the API could not be reached: {exc}")
        return []
    if ws.expected_workspace_id and identity.workspace_id != ws.expected_workspace_id:
        result.add(
            "credential",
            ERROR,
            f"answers for workspace id {identity.workspace_id}, not the configured "
            f"{ws.expected_workspace_id}",
        )
        return []
    named = f" ({identity.workspace_name})" if identity.workspace_name else ""
    result.add(
        "credential",
        OK,
        f"answers as user {identity.user_id} in workspace {identity.workspace_id}{named}",
    )
    try:
        keys = list(ws.provider.list_keys())
    except ApiError as exc:
        result.add("keys", ERROR, f"the key list could not be read: {exc}")
        return []
    names = sorted({k.base_name for k in keys})
    selected = [n for n in names if is_managed(n, policy)]
    result.add(
        "keys",
        OK,
        f"{len(keys)} listed, {len(selected)} managed credential(s): "
        + (", ".join(selected) or "none"),
    )
    for pattern in config.key_names:
        matched = [n for n in names if fnmatchcase(n, pattern)]
        kept = [n for n in matched if is_managed(n, policy)]
        if not matched:
            result.add(
                "keys", WARNING, f"the pattern {pattern!r} selects no key (a typo, or quotes kept)"
            )
        else:
            excluded = sorted(set(matched) - set(kept))
            but = f" (excluded: {', '.join(excluded)})" if excluded else ""
            result.add(
                "keys", OK, f"the pattern {pattern!r} selects {', '.join(kept) or 'none'}{but}"
            )
    return keys


def _sink(sink: Sink, managed: list[str], result: WorkspaceChecks, check: str = "sink") -> None:
    """The sink's list, then a read of every managed credential: read calls only."""
    where = sink.describe()
    try:
        remembered = list(sink.list_credentials())
    except SinkError as exc:
        result.add(check, ERROR, f"{where}: cannot list what it holds: {exc}")
        return
    problems: list[str] = []
    holding = 0
    for credential in sorted(set(managed) | set(remembered)):
        try:
            state = sink.read(credential)
        except SinkError as exc:
            problems.append(f"{credential}: {exc}")
            continue
        holding += state.secret_sha256 is not None
    for problem in problems:
        result.add(check, ERROR, f"{where}: cannot read {problem}")
    result.add(
        check,
        OK if not problems else WARNING,
        f"{where}: lists {len(remembered)} credential(s); holds a key for {holding} of "
        f"{len(set(managed) | set(remembered))}",
    )


def check_targets(
    settings: Settings, config: WorkspaceSettings, managed: list[str], result: WorkspaceChecks
) -> None:
    """Each target of the workspace's routes besides its own sink (checked as ``sink``), on its
    own (``target``): its list, and a read of each managed credential routed to it (the first
    entry that matches); a sink of its own for each, closed after. Read calls only."""
    distinct, _ = sink_routes(config)
    sinks = build_sinks(settings, config, distinct[1:])
    try:
        for target, sink in zip(distinct[1:], sinks, strict=True):
            routed = [c for c in managed if target in config.targets_of(c)]
            _sink(sink, routed, result, check="target")
    finally:
        close_sinks(sinks)


def _lock(ws: Workspace, result: WorkspaceChecks) -> None:
    lock = ws.lock
    if lock is None:
        return
    where = lock.describe()
    if isinstance(lock, FileLock) and not lock.path.exists():
        # Taking it would create the file (and perhaps its folder): look, do not touch.
        folder = _nearest_folder(lock.path.parent)
        if os.access(folder, os.W_OK | os.X_OK):
            result.add("lock", OK, f"{where}: not there yet; the first pass creates it")
        else:
            result.add("lock", ERROR, f"{where}: {folder} is not writable by this process")
        return
    try:
        with lock.hold():
            pass
    except LockHeldError as exc:
        result.add("lock", WARNING, f"{where}: held by another pass now ({exc})")
    except LockError as exc:
        result.add("lock", ERROR, f"{where}: cannot be taken: {exc}")
    else:
        result.add("lock", OK, f"{where}: taken and released")


def _nearest_folder(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _own_key(config: WorkspaceSettings, ws: Workspace, result: WorkspaceChecks) -> None:
    """Whether the own key's target holds the key the rotator runs on (never revoked else)."""
    own = config.self_key_name
    if own is None:
        return
    if config.api_key_file is None:
        result.add(
            "own key",
            WARNING,
            f"{own} is delivered to the sink, but the rotator's credential is ROTATOR_API_KEY, "
            "which it never reads again: its old key is never revoked (use ROTATOR_API_KEY_FILE)",
        )
        return
    try:
        held = ws.sink.read(own).secret_sha256
        runs_on: Secret = read_api_key(config)
    except (SinkError, RotatorError) as exc:
        result.add("own key", ERROR, f"{own}: cannot be compared: {exc}")
        return
    if held is None:
        result.add(
            "own key",
            WARNING,
            f"the sink holds no key for {own} yet: once it does, {config.api_key_file} must read "
            "what the sink delivers (mount or point it there), or the old own key is never revoked",
        )
    elif held == runs_on.sha256():
        result.add(
            "own key", OK, f"the sink's key for {own} is the one the rotator reads from "
            f"{config.api_key_file}"
        )  # fmt: skip
    else:
        result.add(
            "own key",
            WARNING,
            f"the sink's key for {own} is not the one in {config.api_key_file}: the rotator does "
            "not read its credential where its own key is delivered; its old key would never "
            "be revoked",
        )


__all__ = ["ERROR", "OK", "WARNING", "Check", "WorkspaceChecks", "check_online", "check_targets"]
