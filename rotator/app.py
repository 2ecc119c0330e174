"""Wiring: from validated Settings to the workspaces of a pass (API client, sink, lock each),
the runner, and metrics. The one wiring for every command.

The CLI and ``serve`` both start passes through here, so both run the same code path. This is
the only module that turns settings into objects; the runner below it sees plain values. Each
sink backend and the Lease lock are imported lazily, when configured, so a missing extra is a
configuration error naming the ``pip install`` that fixes it, and an unused SDK is never loaded.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

from rotator.client import ProjectManagerClient
from rotator.errors import ConfigError
from rotator.locks.base import PassLock
from rotator.locks.file import FileLock
from rotator.logging import get_logger
from rotator.metrics import ManagedKeySample, Metrics, UnmanagedKeySample
from rotator.models import ApiKey, Secret
from rotator.policy import RotationPolicy, rotation_due_at
from rotator.reconcile import ReconcileConfig
from rotator.report import PassReport
from rotator.rotation import Outcome, RotationConfig
from rotator.runner import PassConfig, Runner, Workspace
from rotator.schedule import next_fire_times, parse_schedule
from rotator.settings import Settings, WorkspaceSettings, pass_lock_kind, read_api_key
from rotator.sinks import registry
from rotator.sinks.base import Sink, SinkContext

#: Signals that stop ``run-once`` and ``serve`` after the credentials in flight. SIGHUP is one:
#: its default action (a closed terminal, a supervisor's reload) would kill a pass between create
#: and deliver.
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def utc_now() -> datetime:
    return datetime.now(UTC)


def pass_config(
    settings: Settings,
    *,
    dry_run: bool | None = None,
    emergency: bool = False,
    grace_hours: float | None = None,
) -> PassConfig:
    """The runner's view of ``settings``; ``dry_run`` overrides ROTATOR_DRY_RUN (``plan``);
    ``emergency`` is ``rotate --now``: ROTATOR_EMERGENCY_GRACE_HOURS, no wait for restarts;
    ``grace_hours`` overrides either grace period for this run (``rotate --grace-hours``)."""
    if grace_hours is None:
        grace_hours = settings.emergency_grace_hours if emergency else settings.grace_hours
    return PassConfig(
        reconcile=ReconcileConfig(
            policy=policy_of(settings),
            orphan_min_age=timedelta(minutes=settings.orphan_min_age_minutes),
        ),
        rotation=RotationConfig(grace=timedelta(hours=grace_hours), emergency=emergency),
        dry_run=settings.dry_run if dry_run is None else dry_run,
        max_failure_ratio=settings.max_failure_ratio,
        max_rotations_per_pass=settings.max_rotations_per_pass,
        concurrency=settings.concurrency,
        workspace_concurrency=settings.workspace_concurrency,
        next_pass_at=partial(next_scheduled_pass, settings),
    )


def next_scheduled_pass(settings: Settings, now: datetime) -> datetime | None:
    """When ROTATOR_SCHEDULE next fires after ``now`` (the next pass, as far as it is known)."""
    trigger = parse_schedule(settings.schedule, settings.timezone)
    later = [t for t in next_fire_times(trigger, now, 2) if t > now]
    return later[0] if later else None


def policy_of(settings: Settings, ws: WorkspaceSettings | None = None) -> RotationPolicy:
    return RotationPolicy(
        key_names=tuple(ws.key_names if ws else settings.key_names),
        exclude_key_names=tuple(ws.exclude_key_names if ws else settings.exclude_key_names),
        validity_days=settings.validity_days,
        rotate_before_days=settings.rotate_before_days,
        max_age_days=settings.max_age_days,
    )


@dataclass(frozen=True)
class Hooks:
    """What a program embedding the rotator (its own tests, the model of the whole system)
    supplies instead of the defaults, passed down explicitly from ``cli.main``: the clock, a
    checkpoint called at each step boundary (to stop a pass exactly where a crash would), and
    sinks it built itself, by workspace name. A deployment never sets them."""

    clock: Callable[[], datetime] = utc_now
    checkpoint: Callable[[str, str], None] | None = None
    sinks: Mapping[str, Sink] = field(default_factory=dict)


#: What every command uses unless a caller embedding the rotator says otherwise.
NO_HOOKS: Final = Hooks()


def build_runner(  # noqa: PLR0913 - each a way a command runs a pass, named at the call
    settings: Settings,
    *,
    dry_run: bool | None = None,
    clock: Callable[[], datetime] | None = None,
    stop_requested: threading.Event | None = None,
    emergency: bool = False,
    grace_hours: float | None = None,
    hooks: Hooks = NO_HOOKS,
) -> Runner:
    config = pass_config(settings, dry_run=dry_run, emergency=emergency, grace_hours=grace_hours)
    return Runner(
        config,
        clock=clock or hooks.clock,
        checkpoint=hooks.checkpoint,
        stop_requested=stop_requested,
    )


# ------------------------------------------------------------------------- shards


def shard_of(workspace: str, shards: int) -> int:
    """The shard a workspace belongs to: a stable hash of its name (never Python's ``hash``,
    which changes between processes), so N pods agree whatever the order of the file."""
    digest = hashlib.sha256(workspace.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def my_workspaces(settings: Settings) -> list[WorkspaceSettings]:
    """The workspaces this process takes: all, or its shard's share."""
    return [
        ws
        for ws in settings.workspaces
        if settings.shards <= 1 or shard_of(ws.name, settings.shards) == settings.shard_index
    ]


# ------------------------------------------------------------------- sinks, locks


def build_sink(settings: Settings, ws: WorkspaceSettings) -> Sink:
    """The configured sink of one workspace; its module (and SDK) is imported only now."""
    context = SinkContext(workspace=ws.name, timeout_seconds=settings.http_timeout_seconds)
    return registry.build(ws.sink, context)


def build_lock(settings: Settings, ws: WorkspaceSettings) -> PassLock:
    """The pass lock of one workspace (ROTATOR_LOCK): a Lease in a cluster, else a file."""
    # The settings decide, so that check-config has checked the lock this builds.
    if pass_lock_kind(settings.lock) == "lease":
        try:
            from rotator.locks.lease import (  # noqa: PLC0415
                LeaseLock,
                default_holder_identity,
                lease_name,
            )
        except ImportError:
            raise ConfigError(
                [
                    "ROTATOR_LOCK: the Lease lock needs the kubernetes extra: "
                    "pip install 'key-rotator[kubernetes]'"
                ]
            ) from None
        kubeconfig = ws.sink.kubeconfig if ws.sink.kind == "kubernetes" else None
        return LeaseLock(
            namespace=settings.lease_namespace,
            name=lease_name(ws.name),
            holder_identity=default_holder_identity(),
            duration=timedelta(seconds=settings.lease_duration_seconds),
            kubeconfig=kubeconfig,
            request_timeout=timedelta(seconds=settings.http_timeout_seconds),
        )
    directory = ws.lock_dir
    if directory is None and ws.sink.kind == "file":
        directory = ws.sink.dir
    if directory is None:
        raise ConfigError(
            [
                "ROTATOR_LOCK_DIR: required when the pass lock is a file and the sink is "
                f"{ws.sink.kind!r} (or set ROTATOR_LOCK=lease in a cluster)"
            ]
        )
    return FileLock(Path(directory))


@contextmanager
def open_workspaces(
    settings: Settings,
    *,
    on_response: Callable[[str, str], None] | None = None,
    stop: threading.Event | None = None,
    sinks: Mapping[str, Sink] | None = None,
) -> Iterator[list[Workspace]]:
    """This process's workspaces with their API clients and sinks open; closes them on exit.

    Each workspace's own credential is read from its source at every request, so a rotated
    ROTATOR_API_KEY_FILE (or ``api_key_file``) is picked up at once, without a restart. ``stop``
    ends the client's waits between retries at once (SIGTERM). ``sinks`` (``Hooks.sinks``) are
    used as given for the workspaces they name, instead of building them.
    """
    with ExitStack() as stack:
        workspaces: list[Workspace] = []
        #: Which entries hold one credential (by its hash): one workspace listed twice, whatever
        #: the API answers this time (an entry that fails to open must not leave its twin alone).
        by_credential: dict[str, list[str]] = {}
        for ws in my_workspaces(settings):
            unusable = None
            try:
                provider = credential_provider(ws)
            except ConfigError as exc:
                # Its credential file is gone or bad: this workspace's problem for this pass
                # alone (named, exit 1); the others are still served.
                unusable = "; ".join(exc.problems)
                provider = _unreadable(unusable)
            else:
                by_credential.setdefault(provider().sha256(), []).append(ws.name)
            client = stack.enter_context(
                ProjectManagerClient(
                    settings.api_url,
                    provider,
                    integration_name=settings.integration_name,
                    timeout_seconds=settings.http_timeout_seconds,
                    max_retries=settings.http_max_retries,
                    on_response=on_response,
                    stop=stop,
                )
            )
            given = (sinks or {}).get(ws.name)
            sink = given if given is not None else build_sink(settings, ws)
            stack.callback(sink.close)
            workspaces.append(
                Workspace(
                    name=ws.name,
                    provider=client,
                    sink=sink,
                    lock=build_lock(settings, ws),
                    expected_workspace_id=ws.workspace_id,
                    self_key_name=ws.self_key_name,
                    credential_source=partial(read_api_key, ws) if ws.api_key_file else None,
                    policy=policy_of(settings, ws),
                    unusable=unusable,
                )
            )
        taken = {workspace.name for workspace in workspaces}
        for ws in settings.workspaces:
            if ws.name not in taken:
                # Another shard's entry holding this very credential is this workspace listed
                # twice too: refused here, as that shard's pod refuses its entry.
                with suppress(ConfigError):
                    by_credential.setdefault(credential_provider(ws)().sha256(), []).append(ws.name)
        for names in by_credential.values():
            for workspace in workspaces:
                if len(names) > 1 and workspace.name in names:
                    workspace.duplicate_of = tuple(n for n in names if n != workspace.name)
        yield workspaces


def _unreadable(problem: str) -> Callable[[], Secret]:
    """The credential provider of a workspace whose credential could not be read: never used
    (the runner refuses the workspace first), and raising if it were."""

    def provide() -> Secret:
        raise ConfigError([problem])

    return provide


def credential_provider(ws: WorkspaceSettings) -> Callable[[], Secret]:
    """The workspace's own credential, read anew at each call from its file; the last good one
    while the file is briefly unreadable (a mounted Secret being swapped by the kubelet)."""
    last = [read_api_key(ws)]  # read now: a bad credential file is exit 2 before any request

    def provide() -> Secret:
        if ws.api_key_file is not None:
            with suppress(ConfigError):
                current = read_api_key(ws)
                if current != last[0]:
                    # The file now holds another key (the rotator's own, rotated): use it.
                    get_logger().info("self.switched", workspace=ws.name)
                last[0] = current
        return last[0]

    return provide


# ------------------------------------------------------------------------ metrics


def record_report(metrics: Metrics, report: PassReport, settings: Settings) -> None:
    """Translate a pass's report into metric updates."""
    policies = {w.name: policy_of(settings, w) for w in settings.workspaces}
    for ws in report.workspaces:
        policy = policies.get(ws.name) or policy_of(settings)
        if ws.usable and not ws.locked:
            metrics.selector_unmatched.labels(workspace=ws.name).set(len(ws.unmatched_patterns))
            managed = [
                ManagedKeySample(
                    credential=s.credential,
                    key_id=s.key_id or "",
                    role=str(s.role),
                    expires=s.expires or report.started_at,
                    rotation_due=rotation_due_at(
                        ApiKey(s.key_id or "", s.name, s.expires or report.started_at), policy
                    ),
                )
                for s in ws.inventory
                if s.managed and s.expires is not None
            ]
            unmanaged = [
                UnmanagedKeySample(key_name=s.name, key_id=s.key_id or "", expires=s.expires)
                for s in ws.inventory
                if not s.managed and s.expires is not None
            ]
            metrics.set_keys(ws.name, managed, unmanaged)
        outcomes = list(ws.outcomes.values())
        metrics.record_rotations(ws.name, "succeeded", outcomes.count(Outcome.ROTATED))
        metrics.record_rotations(ws.name, "failed", outcomes.count(Outcome.FAILED))
        metrics.record_rotations(ws.name, "rolled_back", ws.rolled_back)
        metrics.record_pass(ws.name, ended_at=utc_now(), succeeded=ws.succeeded, duration_s=None)
        if ws.usable and not ws.locked:
            metrics.own_key_waiting.labels(workspace=ws.name).set(1 if ws.own_key_waiting else 0)
    metrics.pass_duration.observe(report.duration_s)


def run_pass_with_metrics(
    settings: Settings,
    runner: Runner,
    metrics: Metrics,
    *,
    stop: threading.Event | None = None,
    sinks: Mapping[str, Sink] | None = None,
) -> PassReport:
    """One pass with the API requests counted and the outcome recorded in ``metrics``.

    A pass that crashed (an error no rule foresaw, a credential file gone) counts as failed in
    every workspace's metrics before the error goes on up.
    """
    names = [ws.name for ws in my_workspaces(settings)]
    metrics.start_workspaces(names)
    report_unconfigured(settings)
    try:
        with open_workspaces(
            settings, on_response=metrics.observe_api, stop=stop, sinks=sinks
        ) as workspaces:
            report = runner.run_pass(workspaces)
    except BaseException:
        metrics.record_crashed_pass(names, ended_at=utc_now())
        raise
    record_report(metrics, report, settings)
    return report


def deployment_id(settings: Settings) -> str:
    """What tells this deployment's pushed metrics apart from another's (hashed by Metrics).

    For one workspace with the file sink it is what it always was (API URL, workspace, the
    sink's folder), so an upgrade keeps pushing into the same group instead of leaving a stale
    one behind; the shard, when sharded, is a label of the group of its own.
    """
    names = ",".join(ws.name for ws in settings.workspaces)
    sink = settings.sink
    where = f"file:{os.path.abspath(sink.dir)}" if sink.kind == "file" else sink.kind
    return f"{settings.api_url}|{names}|{where}"


def push_metrics(settings: Settings, metrics: Metrics) -> None:
    """Push to ROTATOR_PUSHGATEWAY_URL (CronJob mode); the group is this shard's own."""
    if not settings.pushgateway_url:
        return
    sharded = settings.shards > 1
    metrics.shards.set(settings.shards)
    metrics.push(
        settings.pushgateway_url,
        deployment=deployment_id(settings),
        workspaces=[ws.name for ws in my_workspaces(settings)],
        shard=settings.shard_index if sharded else None,
    )


def unconfigured_workspaces(settings: Settings) -> dict[str, list[str]]:
    """Workspaces the file sink holds records of that the workspaces file no longer lists, with
    the credentials recorded there: a previous key in its grace period there is never retired
    by anyone, so ops must be told. (Only the file sink's layout is known here: one subfolder
    per workspace under ROTATOR_SINK_FILE_DIR.)"""
    sink = settings.sink
    if not settings.workspaces_file or sink.kind != "file":
        return {}
    root = Path(sink.dir)
    configured = {ws.name for ws in settings.workspaces}
    found: dict[str, list[str]] = {}
    with suppress(OSError):
        for folder in sorted(root.iterdir()):
            if folder.name in configured or not folder.is_dir() or folder.is_symlink():
                continue
            records = sorted(p.name.removesuffix(".meta.json") for p in folder.glob("*.meta.json"))
            if records:
                found[folder.name] = records
    return found


def report_unconfigured(settings: Settings) -> dict[str, list[str]]:
    """Log ``workspace.unconfigured`` for each workspace the sink still holds records of."""
    found = unconfigured_workspaces(settings)
    for name, credentials in found.items():
        get_logger().warning(
            "workspace.unconfigured",
            workspace=name,
            credentials=credentials,
            detail="the sink holds records of a workspace the workspaces file no longer lists; "
            "its keys (a previous key in its grace period too) are no longer managed",
        )
    return found


def config_warnings(settings: Settings) -> list[str]:
    """What ``check-config`` warns about: set-ups that work but may not do what ops meant."""
    warnings: list[str] = []
    for ws in settings.workspaces:
        where = f" (workspace {ws.name})" if settings.workspaces_file else ""
        for pattern in (*ws.key_names, *ws.exclude_key_names):
            if len(pattern) >= 2 and pattern[0] == pattern[-1] and pattern[0] in "'\"":
                # `docker run --env-file` and some env-file readers keep quotes: this pattern
                # would then select only names that begin and end with a quote.
                warnings.append(
                    f"ROTATOR_KEY_NAMES{where}: the pattern {pattern} is quoted; the quotes are "
                    "part of it, so it selects no key (remove them)"
                )
        wildcards = any("*" in p or "?" in p or "[" in p for p in ws.key_names)
        if ws.self_key_name is None and wildcards:
            # The API cannot tell which listed key is the rotator's own: a wildcard may select
            # it, and rotating it with a grace period could end with the rotator locked out.
            warnings.append(
                f"ROTATOR_KEY_NAMES has wildcards and ROTATOR_SELF_KEY_NAME is unset{where}: "
                "make sure neither selects the rotator's own key (add it to "
                "ROTATOR_EXCLUDE_KEY_NAMES, or name it in ROTATOR_SELF_KEY_NAME)"
            )
        if ws.self_key_name is not None and ws.sink.kind == "file":
            from rotator.sinks.file import file_name  # noqa: PLC0415

            target = Path(ws.sink.dir, file_name(ws.self_key_name)).resolve()
            source = ws.api_key_file.resolve() if ws.api_key_file else None
            if source != target:
                warnings.append(
                    f"ROTATOR_SELF_KEY_NAME{where}: the rotator's new key is delivered to "
                    f"{target}, but its credential is read from "
                    f"{source or 'ROTATOR_API_KEY'}; the old key is never revoked until the "
                    "two agree (point ROTATOR_API_KEY_FILE at the delivered file)"
                )
    return warnings
