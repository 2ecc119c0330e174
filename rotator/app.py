"""Wiring: from validated Settings to the engine, API clients and sinks of a pass.

The CLI and ``serve`` both start passes through here, so both run the same code path. This is
the only module that turns settings into objects; the engine below it sees plain values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

from rotator.client import ProjectManagerClient
from rotator.engine import Engine, EngineConfig, Outcome, PassReport, Workspace
from rotator.errors import ConfigError
from rotator.metrics import ManagedKeySample, Metrics, UnmanagedKeySample
from rotator.models import ApiKey
from rotator.policy import RotationPolicy, rotation_due_at
from rotator.settings import Settings
from rotator.sinks.base import Sink
from rotator.sinks.file import FileSink


def utc_now() -> datetime:
    return datetime.now(UTC)


def engine_config(
    settings: Settings, *, dry_run: bool | None = None, emergency: bool = False
) -> EngineConfig:
    """The engine's view of ``settings``; ``dry_run`` overrides ROTATOR_DRY_RUN (``plan``);
    ``emergency`` takes ROTATOR_EMERGENCY_GRACE_HOURS as the grace (``rotate --now``)."""
    grace_hours = settings.emergency_grace_hours if emergency else settings.grace_hours
    return EngineConfig(
        policy=RotationPolicy(
            key_names=tuple(settings.key_names),
            exclude_key_names=tuple(settings.exclude_key_names),
            validity_days=settings.validity_days,
            rotate_before_days=settings.rotate_before_days,
            max_age_days=settings.max_age_days,
        ),
        grace=timedelta(hours=grace_hours),
        orphan_min_age=timedelta(minutes=settings.orphan_min_age_minutes),
        dry_run=settings.dry_run if dry_run is None else dry_run,
        max_failure_ratio=settings.max_failure_ratio,
        max_rotations_per_pass=settings.max_rotations_per_pass,
    )


def build_engine(
    settings: Settings,
    *,
    dry_run: bool | None = None,
    clock: Callable[[], datetime] = utc_now,
    stop_requested: threading.Event | None = None,
    emergency: bool = False,
) -> Engine:
    config = engine_config(settings, dry_run=dry_run, emergency=emergency)
    return Engine(config, clock=clock, stop_requested=stop_requested)


def build_sink(settings: Settings) -> Sink:
    """The configured sink of the (single) workspace."""
    # Settings admit only the sinks this version builds (a tagged union on ROTATOR_SINK).
    return FileSink(settings.sink.dir)


@contextmanager
def open_workspaces(
    settings: Settings, *, on_response: Callable[[str, str], None] | None = None
) -> Iterator[list[Workspace]]:
    """The configured workspaces with their API clients open; closes them on exit.

    The rotator's own credential is read here, at every pass, so a rotated
    ROTATOR_API_KEY_FILE is picked up without a restart.
    """
    with ExitStack() as stack:
        client = stack.enter_context(
            ProjectManagerClient(
                settings.api_url,
                settings.read_api_key(),
                integration_name=settings.integration_name,
                timeout_seconds=settings.http_timeout_seconds,
                max_retries=settings.http_max_retries,
                on_response=on_response,
            )
        )
        yield [
            Workspace(
                name=settings.workspace_name,
                provider=client,
                sink=build_sink(settings),
                expected_workspace_id=settings.workspace_id,
            )
        ]


def record_report(metrics: Metrics, report: PassReport, policy: RotationPolicy) -> None:
    """Translate a pass's report into metric updates."""
    for ws in report.workspaces:
        if ws.usable and not ws.locked:
            managed = [
                ManagedKeySample(
                    credential=s.credential,
                    key_id=s.key_id,
                    role=str(s.role),
                    expires=s.expires,
                    rotation_due=rotation_due_at(ApiKey(s.key_id, s.name, s.expires), policy),
                )
                for s in ws.inventory
                if s.managed
            ]
            unmanaged = [
                UnmanagedKeySample(key_name=s.name, key_id=s.key_id, expires=s.expires)
                for s in ws.inventory
                if not s.managed
            ]
            metrics.set_keys(ws.name, managed, unmanaged)
        outcomes = list(ws.outcomes.values())
        metrics.record_rotations(ws.name, "succeeded", outcomes.count(Outcome.ROTATED))
        metrics.record_rotations(ws.name, "failed", outcomes.count(Outcome.FAILED))
        metrics.record_rotations(ws.name, "rolled_back", ws.rolled_back)
        metrics.record_pass(ws.name, ended_at=utc_now(), succeeded=ws.succeeded, duration_s=None)
    metrics.pass_duration.observe(report.duration_s)


def run_pass_with_metrics(settings: Settings, engine: Engine, metrics: Metrics) -> PassReport:
    """One pass with the API requests counted and the outcome recorded in ``metrics``."""
    try:
        with open_workspaces(settings, on_response=metrics.observe_api) as workspaces:
            report = engine.run_pass(workspaces)
    except (ConfigError, ValueError):
        # The rotator's own credential could not be read (a rotated Secret mid-update?).
        metrics.record_pass(
            settings.workspace_name, ended_at=utc_now(), succeeded=False, duration_s=None
        )
        raise
    record_report(metrics, report, engine_config(settings).policy)
    return report


def push_metrics(settings: Settings, metrics: Metrics) -> None:
    """Push to ROTATOR_PUSHGATEWAY_URL (CronJob mode); the group is this deployment's own."""
    if not settings.pushgateway_url:
        return
    deployment = f"{settings.api_url}|{settings.workspace_name}|{build_sink(settings).describe()}"
    metrics.push(
        settings.pushgateway_url, deployment=deployment, workspaces=[settings.workspace_name]
    )
