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
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

import structlog

from rotator.client import ProjectManagerClient
from rotator.errors import ConfigError, HistoryUnsupportedError, RotatorError, SinkError
from rotator.events import Channel, Event
from rotator.history import HistoryEntry, entries_from_documents, newest_first
from rotator.locks.base import PassLock
from rotator.locks.file import FileLock
from rotator.logging import get_logger
from rotator.metrics import ManagedKeySample, Metrics, UnmanagedKeySample
from rotator.models import ApiKey, Identity, Secret
from rotator.notify import BUDGET_SECONDS, Notifier
from rotator.pass_events import crashed_pass_event, pass_events
from rotator.policy import RotationPolicy, rotation_due_at
from rotator.reconcile import ReconcileConfig
from rotator.report import PassReport
from rotator.rotation import Outcome, RotationConfig
from rotator.runner import Runner
from rotator.schedule import next_fire_times, parse_schedule
from rotator.settings import (
    FileSinkSettings,
    KubernetesSinkSettings,
    Settings,
    SinkSettings,
    WorkspaceSettings,
    pass_lock_kind,
    read_api_key,
)
from rotator.sinks import registry, targets
from rotator.sinks.base import Sink, SinkContext
from rotator.survey import OtherShardEntry, PassConfig, Unidentified, Workspace

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
    trigger: str | None = None,
) -> PassConfig:
    """The runner's view of ``settings``; ``dry_run`` overrides ROTATOR_DRY_RUN (``plan``);
    ``emergency`` is ``rotate --now``: ROTATOR_EMERGENCY_GRACE_HOURS, no wait for restarts;
    ``grace_hours`` overrides either grace period for this run (``rotate --grace-hours``);
    ``trigger`` is what the history records as having asked (default: ``forced`` for an
    emergency, else ``schedule``; serve's triggers give ``api`` or ``leak``)."""
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
        trigger=trigger or ("forced" if emergency else "schedule"),
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
    trigger: str | None = None,
) -> Runner:
    config = pass_config(
        settings, dry_run=dry_run, emergency=emergency, grace_hours=grace_hours, trigger=trigger
    )
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


def sink_routes(
    ws: WorkspaceSettings,
) -> tuple[list[SinkSettings], list[tuple[str, list[int]]]]:
    """The sinks a workspace needs, each once, and its routes over them: ``(settings, routes)``
    where ``settings[0]`` is the workspace's own sink and each route is ``(glob, [index into
    settings, ...])`` in the file's order. Targets with equal settings (the workspace's sink
    among them) are one sink: one client, one connection, one place written once."""
    distinct: list[SinkSettings] = [ws.sink]
    routes: list[tuple[str, list[int]]] = []
    for route in ws.credentials:
        indexes = []
        for target in route.targets:
            if target not in distinct:
                distinct.append(target)
            indexes.append(distinct.index(target))
        routes.append((route.name, indexes))
    return distinct, routes


def build_sink(settings: Settings, ws: WorkspaceSettings) -> Sink:
    """The configured sink of one workspace; its module (and SDK) is imported only now.

    With ``credentials:`` routes, one sink per distinct target besides the workspace's own,
    all behind :func:`rotator.sinks.targets.routed`; a sink built before one that fails is
    closed again.
    """
    distinct, routes = sink_routes(ws)
    if not routes:
        return registry.build(ws.sink, sink_context(settings, ws))
    built = build_sinks(settings, ws, distinct)
    try:
        return targets.routed(built[0], [(name, [built[i] for i in at]) for name, at in routes])
    except BaseException:
        close_sinks(built)
        raise


def sink_context(settings: Settings, ws: WorkspaceSettings) -> SinkContext:
    return SinkContext(workspace=ws.name, timeout_seconds=settings.http_timeout_seconds)


def build_sinks(
    settings: Settings, ws: WorkspaceSettings, each: Sequence[SinkSettings]
) -> list[Sink]:
    """A sink for each of ``each`` (settings of ``ws``'s sink or targets), in order; those
    built before one that fails are closed again."""
    built: list[Sink] = []
    try:
        for sink_settings in each:
            built.append(registry.build(sink_settings, sink_context(settings, ws)))
    except BaseException:
        close_sinks(built)
        raise
    return built


def close_sinks(sinks: Iterable[Sink]) -> None:
    """Close each sink, whatever the others do (the failure being raised, if any, is the one
    to report)."""
    for sink in sinks:
        with suppress(Exception):
            sink.close()


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

    Sharded (ROTATOR_SHARDS above 1), the entries other shards take are known too: by their
    credential's hash now (one credential in two entries), and as ``other_shards`` whose ``me``
    a pass (and ``plan``, ``status``) asks, through one client of their own, to find one
    workspace listed twice under two admin keys. Nothing else of theirs is read or opened.
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
        elsewhere: list[OtherShardEntry] = []
        asker: ProjectManagerClient | None = None
        for ws in settings.workspaces:
            if ws.name in taken:
                continue
            try:
                other = credential_provider(ws)
            except ConfigError:
                continue  # an unreadable credential proves nothing (its own pod says so)
            # Another shard's entry holding this very credential is this workspace listed
            # twice too: refused here, as that shard's pod refuses its entry.
            by_credential.setdefault(other().sha256(), []).append(ws.name)
            if asker is None:
                # One client for every other shard's entry, asking only `me` with the
                # credential given: it has none of its own.
                asker = stack.enter_context(
                    ProjectManagerClient(
                        settings.api_url,
                        _unreadable("asks only with another shard's entry's credential"),
                        integration_name=settings.integration_name,
                        timeout_seconds=settings.http_timeout_seconds,
                        max_retries=settings.http_max_retries,
                        on_response=on_response,
                        stop=stop,
                    )
                )
            elsewhere.append(
                OtherShardEntry(
                    name=ws.name,
                    shard=shard_of(ws.name, settings.shards),
                    me=partial(_me_with, asker, other),
                    expected_workspace_id=ws.workspace_id,
                )
            )
        for workspace in workspaces:
            # Their twins under another admin key are found by `me`, when a pass surveys.
            workspace.other_shards = tuple(elsewhere)
        for names in by_credential.values():
            for workspace in workspaces:
                if len(names) > 1 and workspace.name in names:
                    workspace.duplicate_of = tuple(n for n in names if n != workspace.name)
        yield workspaces


def _me_with(client: ProjectManagerClient, credential: Callable[[], Secret]) -> Identity:
    """``me`` asked with ``credential`` as it reads now (an entry of another shard)."""
    return client.me(credential())


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


# ------------------------------------------------------------------ Kubernetes Events


def kubernetes_events_channel(
    settings: Settings, workspaces: Sequence[WorkspaceSettings] | None = None
) -> Channel | None:
    """The channel recording Kubernetes Events on the Secrets of ``workspaces`` (by default this
    process's) that deliver to the Kubernetes sink (their own, or a target of their
    ``credentials:`` routes); None when none does.

    Its resolver places a credential as the sink that holds it places it (its route's
    Kubernetes targets, else the workspace's sink when it is Kubernetes): the namespace (else the
    pod's own), the Secret's name by the template, the workloads restarted for it, the
    kubeconfig.
    """
    from rotator.kube import own_namespace  # noqa: PLC0415 - only with the Kubernetes sink
    from rotator.kube_events import CredentialObjects, KubernetesEventsChannel  # noqa: PLC0415
    from rotator.sinks.kubernetes import restarted_workloads, secret_name_for  # noqa: PLC0415

    chosen = my_workspaces(settings) if workspaces is None else workspaces
    by_name = {
        ws.name: ws
        for ws in chosen
        if any(isinstance(s, KubernetesSinkSettings) for s in sink_routes(ws)[0])
    }
    if not by_name:
        return None

    def resolve(workspace: str, credential: str) -> list[CredentialObjects]:
        ws = by_name.get(workspace)
        if ws is None:
            return []
        return [
            CredentialObjects(
                namespace=sink.namespace or own_namespace(),
                secret=secret_name_for(sink.secret_name, workspace, credential),
                workloads=tuple(restarted_workloads(sink.restart, credential)),
                kubeconfig=sink.kubeconfig,
            )
            for sink in ws.targets_of(credential)
            if isinstance(sink, KubernetesSinkSettings)
        ]

    return KubernetesEventsChannel(resolve)


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
    notifier = build_notifier(settings, metrics)
    report_unconfigured(settings)
    try:
        with open_workspaces(
            settings, on_response=metrics.observe_api, stop=stop, sinks=sinks
        ) as workspaces:
            report = run_pass(runner, workspaces, notifier)
    except BaseException:
        metrics.record_crashed_pass(names, ended_at=utc_now())
        raise
    record_report(metrics, report, settings)
    return report


def run_pass(
    runner: Runner,
    workspaces: list[Workspace],
    notifier: Notifier,
    *,
    forced: set[str] | None = None,
    unidentified: Sequence[Unidentified] = (),
) -> PassReport:
    """The one place every pass goes through (``run-once``, ``serve``, ``rotate``): the
    runner's pass, then its events out to the configured channels (a crash too, before it goes
    on up). Telling never changes the report, nor raises."""
    try:
        report = runner.run_pass(workspaces, forced=forced, unidentified=unidentified)
    except Exception as exc:
        run_id = uuid.uuid4().hex
        crashed = partial(crashed_pass_event, run_id, utc_now(), exc)
        _tell(notifier, lambda: [crashed()], run_id)
        raise
    _tell(notifier, partial(pass_events, report), report.run_id)
    return report


def _tell(notifier: Notifier, events_of: Callable[[], list[Event]], run_id: str) -> None:
    """Send what ``events_of`` makes; a bug in making them is logged, never raised."""
    try:
        made = events_of()
    except Exception as exc:  # noqa: BLE001 - telling must never change a pass's result
        get_logger().error("notify.failed", channel="all", run_id=run_id, error=type(exc).__name__)
        return
    notifier.send(made, run_id=run_id)


# ------------------------------------------------------------------ notifications


def build_channels(settings: Settings, metrics: Metrics | None = None) -> list[Channel]:
    """The configured channels (Apprise, the webhook); each library is imported only now.
    ``metrics`` counts their deliveries (``rotator_notifications_total``)."""
    count = metrics.record_notification if metrics is not None else None
    channels: list[Channel] = []
    try:
        if settings.notify_urls:
            from rotator.notify.apprise_channel import AppriseChannel  # noqa: PLC0415

            urls = [url.get_secret_value() for url in settings.notify_urls]
            channels.append(AppriseChannel(urls, budget_seconds=BUDGET_SECONDS, count=count))
        if settings.webhook_url is not None and settings.webhook_secret is not None:
            from rotator.notify.webhook import WebhookChannel  # noqa: PLC0415

            secret = Secret(settings.webhook_secret.get_secret_value())
            channels.append(
                WebhookChannel(
                    settings.webhook_url, secret, budget_seconds=BUDGET_SECONDS, count=count
                )
            )
    except ImportError as exc:
        raise ConfigError([str(exc)]) from None
    if metrics is not None:
        metrics.start_channels(c.name for c in channels)
    return channels


def build_notifier(settings: Settings, metrics: Metrics | None = None) -> Notifier:
    """What a pass's end tells its events to (no channel: nothing is sent). Kubernetes Events
    are a record kept on the objects involved: they get every event, whatever
    ROTATOR_NOTIFY_ON selects for people and machines."""
    kubernetes = kubernetes_events_channel(settings)
    return Notifier(
        build_channels(settings, metrics),
        settings.notify_on,
        every_event=[kubernetes] if kubernetes is not None else [],
    )


# ------------------------------------------------------------------- rotate --now


class RotateRefusedError(ConfigError):
    """``rotate --now`` (or a trigger of ``serve``) refused before anything changed.

    A ConfigError, so the CLI shows it as one (exit 2); ``reason`` tells the trigger endpoints
    which answer it is: ``dry-run``, ``unknown-workspace``, ``unknown-credential`` (404),
    ``ambiguous`` (a name in several workspaces without one named).
    """

    def __init__(self, problems: list[str], *, reason: str) -> None:
        super().__init__(problems)
        self.reason = reason


@dataclass(frozen=True)
class RotateResult:
    """What ``rotate_now`` did: the pass's report, and the names no workspace manages."""

    report: PassReport
    unknown: tuple[str, ...] = ()


#: Between two tries of a workspace whose lock another process holds (``lock_wait_seconds``).
_LOCK_RETRY_SECONDS: Final = 1.0


def rotate_now(  # noqa: PLR0913 - each what a caller of `rotate --now` chooses, named at the call
    settings: Settings,
    names: Collection[str],
    *,
    all_managed: bool = False,
    workspace: str | None = None,
    grace_hours: float | None = None,
    trigger: str = "forced",
    refuse_unknown_first: bool = False,
    lock_wait_seconds: float = 0.0,
    stop: threading.Event | None = None,
    on_response: Callable[[str, str], None] | None = None,
    hooks: Hooks = NO_HOOKS,
) -> RotateResult:
    """``rotate NAME... --now`` and ``rotate --all --now``: the named credentials (or every
    managed one of ``workspace``, else of every workspace) rotated at once, whatever the policy,
    with ROTATOR_EMERGENCY_GRACE_HOURS (or ``grace_hours``). The one code path of the command and
    of ``serve``'s triggers.

    ``trigger`` says who asked (``forced``: the command; ``api``, ``leak``: ``serve``); it is on
    every log line of the pass, and in the rotation history. Refused, with nothing changed
    (RotateRefusedError): under ROTATOR_DRY_RUN, an unknown ``workspace``, a name managed in
    several workspaces without ``workspace``; and with ``refuse_unknown_first``, a name that is
    not managed (checked before the lock is taken; otherwise such names are only reported, in
    ``RotateResult.unknown``).
    ``lock_wait_seconds``: a workspace whose lock another process holds is tried again, once a
    second, for that long (unless ``stop`` is set) before the pass reports it locked.
    """
    if settings.dry_run:
        # An emergency action (a leaked key) must never look done while nothing changed.
        raise RotateRefusedError(
            ["ROTATOR_DRY_RUN: is true, and rotate changes keys: unset it to rotate, or use "
             "`rotator plan` to see what a pass would do"],
            reason="dry-run",
        )  # fmt: skip
    configured = [ws.name for ws in settings.workspaces]
    if workspace is not None and workspace not in configured:
        raise RotateRefusedError(
            [f"--workspace: no workspace {workspace!r} is configured (there are: "
             f"{', '.join(configured)})"],
            reason="unknown-workspace",
        )  # fmt: skip
    wanted = set(names)
    runner = build_runner(
        settings, emergency=True, grace_hours=grace_hours, stop_requested=stop, hooks=hooks,
        trigger=trigger,
    )  # fmt: skip
    reader = build_runner(settings, dry_run=True, hooks=hooks)
    deadline = time.monotonic() + lock_wait_seconds
    with (
        structlog.contextvars.bound_contextvars(trigger=trigger),
        open_workspaces(
            settings, on_response=on_response, stop=stop, sinks=hooks.sinks
        ) as workspaces,
    ):
        chosen = [w for w in workspaces if workspace in (None, w.name)]
        unidentified: list[Unidentified] = []
        if workspace is not None and not chosen:
            raise RotateRefusedError(
                [f"--workspace: workspace {workspace!r} is another shard's (ROTATOR_SHARDS)"],
                reason="unknown-workspace",
            )
        if workspace is not None and len(workspaces) > 1:
            # Its twin under another admin key is known only by reading every entry's `me`:
            # rotating in one entry alone would revoke the key the other entry's sink holds.
            # With its twins in the pass, the pass refuses them all (workspace.duplicate, exit
            # 1), nothing done in either, as a scheduled pass does.
            found = reader.inventory(workspaces)
            if workspace in found.refused:
                chosen = [w for w in workspaces if w.name == workspace or w.name in found.refused]
            # An entry left out whose `me` failed may be its twin all the same: the pass then
            # revokes nothing that entry's sink could hold (and fails).
            unidentified = [
                Unidentified(w.name, found.unusable[w.name], w.expected_workspace_id)
                for w in workspaces
                if w.name in found.unusable and w not in chosen
            ]
        if all_managed:
            # Every credential managed in the chosen workspaces, as status shows them now.
            wanted = {row.credential for row in reader.inventory(chosen).rows if row.managed}
        else:
            if workspace is None and len(chosen) > 1:
                refuse_ambiguous(reader, chosen, wanted)
            if refuse_unknown_first:
                refuse_unmanaged(reader, chosen, wanted)
        notifier = build_notifier(settings)
        report = run_pass(runner, chosen, notifier, forced=wanted, unidentified=unidentified)
        while (
            any(w.locked for w in report.workspaces)
            and time.monotonic() < deadline
            and not (stop is not None and stop.is_set())
        ):
            # Another process's pass holds a lock: nothing was done there; try again shortly.
            (stop or threading.Event()).wait(min(_LOCK_RETRY_SECONDS, deadline - time.monotonic()))
            report = run_pass(runner, chosen, notifier, forced=wanted, unidentified=unidentified)
    usable = [w for w in report.workspaces if w.usable and not w.locked]
    unknown = sorted(n for n in wanted if usable and all(n in w.not_found for w in usable))
    return RotateResult(report, () if all_managed else tuple(unknown))


def refuse_ambiguous(reader: Runner, workspaces: list[Workspace], wanted: set[str]) -> None:
    """Without a workspace named, a name managed in several workspaces is refused before
    anything changes: rotating it everywhere would revoke every one of those keys at once."""
    holders: dict[str, list[str]] = {}
    found = reader.inventory(workspaces)
    for row in [*found.rows, *found.refused_rows]:
        if (
            row.managed
            and row.credential in wanted
            and row.workspace not in holders.get(row.credential, [])
        ):
            holders.setdefault(row.credential, []).append(row.workspace)
    problems = [
        f"{name}: is managed in several workspaces ({', '.join(sorted(where))}): name one with "
        "--workspace; nothing was changed"
        for name, where in sorted(holders.items())
        if len(where) > 1
    ]
    unknown = {**found.unusable, **found.incomplete, **found.refused}
    if not problems and unknown:
        # A workspace that could not be read (or whose sink could not list what it holds, or
        # that is refused as listed twice) may hold the name too: not knowing is refusing.
        unread = ", ".join(sorted(unknown))
        problems = [
            f"{name}: workspace {unread} could not be read, so it is not known whether the name "
            "is managed in more than one workspace: name one with --workspace; nothing was "
            "changed"
            for name in sorted(wanted)
        ]
    if problems:
        raise RotateRefusedError(problems, reason="ambiguous")


def refuse_unmanaged(reader: Runner, workspaces: list[Workspace], wanted: set[str]) -> None:
    """A name no readable workspace manages is refused before anything changes. A workspace that
    could not be read (or listed only in part) may manage it: then the pass decides."""
    found = reader.inventory(workspaces)
    if found.unusable or found.incomplete or found.refused:
        return
    managed = {row.credential for row in found.rows if row.managed}
    unknown = sorted(wanted - managed)
    if unknown:
        raise RotateRefusedError(
            [f"{name}: {NOT_MANAGED}; nothing was changed" for name in unknown],
            reason="unknown-credential",
        )


#: Why a name given to ``rotate`` is not rotated.
NOT_MANAGED: Final = (
    "no credential of that name is managed here (no listed key has that base name, or "
    "ROTATOR_KEY_NAMES / ROTATOR_EXCLUDE_KEY_NAMES leave it out)"
)


# ------------------------------------------------------------------------- leaks


@dataclass(frozen=True)
class LeakMatch:
    """A key a leak report's secret is: a credential's current key, or its previous one."""

    workspace: str
    credential: str
    key_id: str | None
    #: ``current`` (what the sink holds, or the key its record names current) or ``previous``.
    role: str
    #: Whether the API still lists the key (a previous key already revoked is harmless now).
    live: bool


@dataclass
class LeakSearch:
    """What a leak report matched, and the workspaces whose sinks could not all be read (a key
    of theirs may have leaked unseen)."""

    matches: list[LeakMatch] = field(default_factory=list)
    unread: dict[str, str] = field(default_factory=dict)


def match_leak(
    settings: Settings,
    secret_sha256: str,
    *,
    on_response: Callable[[str, str], None] | None = None,
    stop: threading.Event | None = None,
    hooks: Hooks = NO_HOOKS,
) -> LeakSearch:
    """Every credential of every workspace whose sink holds ``secret_sha256`` as the hash of its
    current key (the stored secret's, or the record's ``secret_sha256``) or of its previous key
    (``previous_secret_sha256``). Reads only: sinks' lists and records, and the API's key list
    of a workspace with a previous key matched (whether that key is still alive)."""
    found = LeakSearch()
    with open_workspaces(settings, on_response=on_response, stop=stop, sinks=hooks.sinks) as opened:
        for ws in opened:
            if ws.unusable is not None:
                found.unread[ws.name] = ws.unusable
                continue
            try:
                matches = _sink_matches(ws, secret_sha256, found)
                if any(m.role == "previous" for m in matches):
                    listed = {key.id for key in ws.provider.list_keys()}
                    matches = [
                        replace(m, live=m.key_id in listed) if m.role == "previous" else m
                        for m in matches
                    ]
            except RotatorError as exc:
                found.unread[ws.name] = str(exc)
                continue
            found.matches.extend(matches)
    return found


def _sink_matches(ws: Workspace, secret_sha256: str, found: LeakSearch) -> list[LeakMatch]:
    """The credentials of ``ws``'s sink holding that hash; a credential that cannot be read is
    noted in ``found.unread`` and the others still searched."""
    matches: list[LeakMatch] = []
    for credential in ws.sink.list_credentials():
        try:
            state = ws.sink.read(credential)
        except SinkError as exc:
            found.unread.setdefault(ws.name, f"{credential}: {exc}")
            continue
        record = state.record
        if state.secret_sha256 == secret_sha256 or (
            record is not None and record.secret_sha256 == secret_sha256
        ):
            # The stored secret may be a pending key whose delivery was not finished yet.
            pending = record is not None and record.pending_secret_sha256 == secret_sha256
            key_id = (record.pending_key_id if pending else record.key_id) if record else None
            matches.append(LeakMatch(ws.name, credential, key_id, "current", live=True))
        elif record is not None and record.previous_secret_sha256 == secret_sha256:
            matches.append(
                LeakMatch(ws.name, credential, record.previous_key_id, "previous", live=True)
            )
    return matches


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
    # A file target's folder may be one of root's too: it is no workspace's subfolder.
    target_folders = {
        os.path.abspath(target.dir)
        for ws in settings.workspaces
        for route in ws.credentials
        for target in route.targets
        if isinstance(target, FileSinkSettings)
    }
    found: dict[str, list[str]] = {}
    with suppress(OSError):
        for folder in sorted(root.iterdir()):
            if folder.name in configured or not folder.is_dir() or folder.is_symlink():
                continue
            if os.path.abspath(folder) in target_folders:
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
        own_targets = ws.targets_of(ws.self_key_name) if ws.self_key_name is not None else ()
        if own_targets and all(t.kind == "file" for t in own_targets):
            # Only files can be compared here: a Secret or a Vault path may be what is mounted.
            from rotator.sinks.file import file_name  # noqa: PLC0415

            delivered = [
                Path(t.dir, file_name(str(ws.self_key_name))).resolve()
                for t in own_targets
                if isinstance(t, FileSinkSettings)
            ]
            source = ws.api_key_file.resolve() if ws.api_key_file else None
            if source not in delivered:
                warnings.append(
                    f"ROTATOR_SELF_KEY_NAME{where}: the rotator's new key is delivered to "
                    f"{' and '.join(map(str, delivered))}, but its credential is read from "
                    f"{source or 'ROTATOR_API_KEY'}; the old key is never revoked until the "
                    "two agree (point ROTATOR_API_KEY_FILE at the delivered file)"
                )
    return warnings


# ------------------------------------------------------------------------ history


@dataclass
class HistoryRead:
    """What ``rotator history`` read: every shown entry of every workspace, and what could not
    be read (by workspace: why), and the workspaces whose sink keeps no history."""

    entries: list[HistoryEntry] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)


def read_history(settings: Settings, *, hooks: Hooks = NO_HOOKS) -> HistoryRead:
    """The rotation history every workspace's sink keeps, read-only and without the lock: the
    credentials each sink lists, and each one's history. Changes nothing."""
    found = HistoryRead()
    with open_workspaces(settings, sinks=hooks.sinks) as workspaces:
        for ws in workspaces:
            problems = found.problems.setdefault(ws.name, [])
            try:
                credentials = ws.sink.list_credentials()
            except SinkError as exc:
                problems.append(f"the sink could not list its credentials: {exc}")
                continue
            for credential in credentials:
                try:
                    documents = ws.sink.read_history(credential)
                    found.entries += entries_from_documents(
                        documents, workspace=ws.name, credential=credential
                    )
                except HistoryUnsupportedError as exc:
                    found.unsupported[ws.name] = str(exc)
                    break
                except (SinkError, ValueError) as exc:
                    problems.append(f"{credential}: the history cannot be read: {exc}")
    found.problems = {name: listed for name, listed in found.problems.items() if listed}
    found.entries = newest_first(found.entries)
    return found
