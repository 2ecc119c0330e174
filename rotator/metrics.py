"""Prometheus metrics of the rotator: their names, labels and how they are updated and pushed.

Every metric lives in one :class:`Metrics` object with its own registry (no global state), so
``serve`` exposes it on ``/metrics`` and ``run-once`` pushes it to a Pushgateway. Names and
labels are part of the contract with ops (README.md lists them); labels carry workspace labels,
credential (base) names, key names and key ids, never a secret.

This module knows nothing of the engine: callers translate a pass's report into the primitive
updates below.

Memory stays flat however many passes a process runs: a key series is updated in place and
removed only when its key (or label set) is gone, counters are labelled by bounded values
(endpoint, HTTP status, result), and nothing is kept per pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import pushadd_to_gateway

# ``*_created`` series double every counter for no use on dashboards; Pushgateway keeps them stale.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Pass durations seen in practice: a handful of API calls per credential, up to minutes.
_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


@dataclass(frozen=True)
class ManagedKeySample:
    credential: str
    key_id: str
    role: str
    expires: datetime
    rotation_due: datetime


@dataclass(frozen=True)
class UnmanagedKeySample:
    key_name: str
    key_id: str
    expires: datetime


#: The values of ``rotator_rotations_total``'s ``result`` label.
ROTATION_RESULTS: Final = ("succeeded", "failed", "rolled_back")
#: The values of ``rotator_notifications_total``'s ``result`` label.
NOTIFICATION_RESULTS: Final = ("sent", "failed")


class Metrics:
    """The rotator's metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.managed_key_expiry = Gauge(
            "rotator_managed_key_expiry_timestamp_seconds",
            "When a key the rotator manages expires (Unix time).",
            ["workspace", "credential", "key_id", "role"],
            registry=r,
        )
        self.managed_key_rotation_due = Gauge(
            "rotator_managed_key_rotation_due_timestamp_seconds",
            "When the current key of a managed credential becomes due for rotation (Unix time).",
            ["workspace", "credential", "key_id"],
            registry=r,
        )
        self.unmanaged_key_expiry = Gauge(
            "rotator_unmanaged_key_expiry_timestamp_seconds",
            "When a key the rotator does not manage expires (Unix time): people must act.",
            ["workspace", "key_name", "key_id"],
            registry=r,
        )
        self.rotations = Counter(
            "rotator_rotations",
            "Rotations attempted, by result (succeeded, failed, rolled_back).",
            ["workspace", "result"],
            registry=r,
        )
        self.api_requests = Counter(
            "rotator_api_requests",
            "Requests to the ProjectManager API, by endpoint and HTTP status ('error': no answer).",
            ["endpoint", "status"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "rotator_pass_duration_seconds",
            "How long a pass took.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.last_pass = Gauge(
            "rotator_last_pass_timestamp_seconds",
            "When the last pass over a workspace ended (Unix time).",
            ["workspace"],
            registry=r,
        )
        self.last_successful_pass = Gauge(
            "rotator_last_successful_pass_timestamp_seconds",
            "When the last pass over a workspace that left nothing undone ended (Unix time).",
            ["workspace"],
            registry=r,
        )
        self.last_pass_success = Gauge(
            "rotator_last_pass_success",
            "1 when the last pass over a workspace left nothing undone, else 0.",
            ["workspace"],
            registry=r,
        )
        self.own_key_waiting = Gauge(
            "rotator_own_key_switch_pending",
            "1 while the rotator's own previous key is kept because the process does not read "
            "its new key from its credential source yet (two working keys), else 0.",
            ["workspace"],
            registry=r,
        )
        self.selector_unmatched = Gauge(
            "rotator_selector_unmatched_patterns",
            "Patterns of ROTATOR_KEY_NAMES (or a workspace's key_names) that selected no key in "
            "the last pass over a workspace: a typo manages nothing.",
            ["workspace"],
            registry=r,
        )
        self.notifications = Counter(
            "rotator_notifications",
            "Notifications (apprise: one message per URL) and webhooks (one per event) by "
            "channel and result (sent, failed); a failed one never changes a pass's result.",
            ["channel", "result"],
            registry=r,
        )
        self.shards = Gauge(
            "rotator_shards",
            "ROTATOR_SHARDS of the process that pushed (an alert compares it with the shards "
            "that reported).",
            registry=r,
        )
        #: The key series each workspace has now, to remove those whose key went away.
        self._key_series: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}

    def observe_api(self, endpoint: str, status: str) -> None:
        """Count one API request (the client's ``on_response`` hook)."""
        self.api_requests.labels(endpoint=endpoint, status=status).inc()

    def set_keys(
        self,
        workspace: str,
        managed: Iterable[ManagedKeySample],
        unmanaged: Iterable[UnmanagedKeySample],
    ) -> None:
        """Make the key series of ``workspace`` these keys: each one set in place, and only
        those whose key (or role) is gone removed."""
        series: set[tuple[Gauge, tuple[str, ...]]] = set()
        labels: tuple[str, ...]
        for m in managed:
            labels = (workspace, m.credential, m.key_id, m.role)
            self.managed_key_expiry.labels(*labels).set(m.expires.timestamp())
            series.add((self.managed_key_expiry, labels))
            if m.role == "current":
                due_labels = (workspace, m.credential, m.key_id)
                self.managed_key_rotation_due.labels(*due_labels).set(m.rotation_due.timestamp())
                series.add((self.managed_key_rotation_due, due_labels))
        for u in unmanaged:
            labels = (workspace, u.key_name, u.key_id)
            self.unmanaged_key_expiry.labels(*labels).set(u.expires.timestamp())
            series.add((self.unmanaged_key_expiry, labels))
        for gauge, labels in self._key_series.get(workspace, set()) - series:
            gauge.remove(*labels)
        self._key_series[workspace] = series

    def start_workspaces(self, workspaces: Iterable[str]) -> None:
        """Create each workspace's rotation counters at 0 before its first pass.

        A counter series that first appears already at 1 is invisible to ``increase()`` and
        ``rate()`` (Prometheus has no earlier sample to compare with): without this, the
        dashboard's "rotations by result" would miss every rotation of a process's first pass.
        """
        for workspace in workspaces:
            for result in ROTATION_RESULTS:
                self.rotations.labels(workspace=workspace, result=result)

    def start_channels(self, channels: Iterable[str]) -> None:
        """Create each configured channel's notification counters at 0 (as
        :meth:`start_workspaces` does, so that the first failure shows in ``increase()``)."""
        for channel in channels:
            for result in NOTIFICATION_RESULTS:
                self.notifications.labels(channel=channel, result=result)

    def record_notification(self, channel: str, result: str) -> None:
        """One notification or webhook ``sent`` or ``failed`` (a channel's counter hook)."""
        self.notifications.labels(channel=channel, result=result).inc()

    def record_rotations(self, workspace: str, result: str, count: int) -> None:
        counter = self.rotations.labels(workspace=workspace, result=result)
        if count:
            counter.inc(count)

    def record_pass(
        self, workspace: str, *, ended_at: datetime, succeeded: bool, duration_s: float | None
    ) -> None:
        """The outcome of a pass over ``workspace``."""
        stamp = ended_at.timestamp()
        self.last_pass.labels(workspace=workspace).set(stamp)
        self.last_pass_success.labels(workspace=workspace).set(1 if succeeded else 0)
        if succeeded:
            self.last_successful_pass.labels(workspace=workspace).set(stamp)
        if duration_s is not None:
            self.pass_duration.observe(duration_s)

    def record_crashed_pass(
        self, workspaces: Iterable[str], *, ended_at: datetime, duration_s: float | None = None
    ) -> None:
        """A pass that crashed (an unexpected exception) counts as failed for each workspace it
        was to cover: ``last_pass_success`` 0 and ``last_pass_timestamp`` now, the last
        successful time left as it was, the duration observed once if known. The key series
        stay: what the last good listing said is still the best knowledge there is."""
        stamp = ended_at.timestamp()
        for workspace in workspaces:
            self.last_pass.labels(workspace=workspace).set(stamp)
            self.last_pass_success.labels(workspace=workspace).set(0)
        if duration_s is not None:
            self.pass_duration.observe(duration_s)

    def exposition(self) -> bytes:
        """The text format ``/metrics`` serves."""
        return bytes(generate_latest(self.registry))

    def push(
        self,
        gateway_url: str,
        *,
        deployment: str,
        workspaces: Iterable[str],
        shard: int | None = None,
    ) -> None:
        """Push to a Pushgateway (``run-once`` in a CronJob).

        The grouping key names the job, a short hash of ``deployment`` and, for a single
        workspace, its name, so that two deployments (or workspaces) never overwrite each
        other's group. ``pushadd`` (POST)
        replaces only the metrics pushed now: a failed pass does not push
        ``rotator_last_successful_pass_timestamp_seconds``, so the gateway keeps the last good one,
        and a CronJob that stopped running shows up as an old "last successful pass". With
        sharding, ``shard`` joins the grouping key, so the pods of one Indexed Job never
        overwrite each other's group.
        """
        names = sorted(workspaces)
        digest = hashlib.sha256(deployment.encode()).hexdigest()[:12]
        grouping = {"deployment": digest} | ({} if shard is None else {"shard": str(shard)})
        if len(names) == 1:
            # One workspace: its name in the group, as it always was. Several: each series
            # keeps its own workspace label (a group label would overwrite it).
            grouping["workspace"] = names[0]
        pushadd_to_gateway(
            gateway_url,
            job="key-rotator",
            registry=self.registry,
            grouping_key=grouping,
            timeout=10,
        )
