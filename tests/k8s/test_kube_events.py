"""The Kubernetes Events channel against the stand-in API server: the Events it creates (on the
Secret, on the restarted workloads), what it leaves out, and that a refusal (403), a server
that is not there or one that hangs is logged as ``notify.failed`` and never raised, within the
channel's own timeout. The wiring from settings places each credential as the sink does."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from rotator.app import kubernetes_events_channel
from rotator.events import Event
from rotator.kube_events import (
    CHANNEL,
    REPORTING_CONTROLLER,
    CredentialObjects,
    KubernetesEventsChannel,
)
from rotator.settings import parse_settings
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import NAMESPACE, Cluster
from tests.k8s.test_rbac_manifests import SERVICE_ACCOUNT, role_rules, workload_body

WHEN = datetime(2026, 11, 27, 3, 0, 0, 250000, tzinfo=UTC)
SECRET = "pm-api-key-billing-sync"
INSTANCE = "rotator-5c9d8-x2v7q"


def _event(type_: str, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "id": f"run-1:{type_}",
        "time": WHEN,
        "workspace": "acme",
        "credential": "billing-sync",
    }
    values.update(fields)
    return Event(type=type_, **values)


def _channel(
    kubeconfig: Path,
    workloads: Sequence[tuple[str, str]] = (),
    *,
    timeout: float = 5.0,
    request_timeout: float = 2.0,
) -> KubernetesEventsChannel:
    def resolve(workspace: str, credential: str) -> list[CredentialObjects]:
        if workspace != "acme" or credential != "billing-sync":
            return []
        return [CredentialObjects(NAMESPACE, SECRET, tuple(workloads), kubeconfig)]

    return KubernetesEventsChannel(
        resolve,
        timeout_seconds=timeout,
        request_timeout_seconds=request_timeout,
        reporting_instance=INSTANCE,
    )


def _events(cluster: Cluster) -> list[dict[str, Any]]:
    return sorted(
        cluster.server.objects("Event", NAMESPACE),
        key=lambda e: (e["reason"], e["regarding"]["name"]),
    )


def test_rotated_retired_and_failed_are_events_on_the_secret(cluster: Cluster) -> None:
    channel = _channel(cluster.kubeconfig)
    with capture_logs() as logs:
        channel.send(
            [
                _event("rotation.delivered", key_id="k2", previous_key_id="k1", reason="expiring"),
                _event("rotation.revoked", key_id="k1"),
                _event("rotation.failed", reason="verify", detail="verify: HTTP 401"),
            ]
        )
    events = _events(cluster)
    assert [(e["reason"], e["type"], e["action"]) for e in events] == [
        ("Retired", "Normal", "Retire"),
        ("Rotated", "Normal", "Rotate"),
        ("RotationFailed", "Warning", "Rotate"),
    ]
    for event in events:
        assert event["regarding"] == {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": SECRET,
            "namespace": NAMESPACE,
        }
        assert "related" not in event
        assert event["reportingController"] == REPORTING_CONTROLLER
        assert event["reportingInstance"] == INSTANCE
        assert event["eventTime"] == "2026-11-27T03:00:00.250000Z"
        assert event["metadata"]["name"].startswith(f"{SECRET}.")
    retired, rotated, failed = (e["note"] for e in events)
    assert rotated == (
        "A new key was delivered (credential billing-sync, key k2, previous key k1, "
        "reason expiring)."
    )
    assert retired == "The previous key was revoked (credential billing-sync, key k1)."
    assert failed.endswith("(credential billing-sync, reason verify). verify: HTTP 401")
    assert [log for log in logs if log["event"] == "notify.sent"] == [
        {"event": "notify.sent", "log_level": "info", "channel": CHANNEL, "events": 3}
    ]
    assert not [log for log in logs if log["event"] == "notify.failed"]


def test_a_stalled_rollout_is_an_event_on_each_restartedworkload_body(cluster: Cluster) -> None:
    workloads = [("Deployment", "billing-sync"), ("StatefulSet", "report-worker")]
    deployment = cluster.server.create_object(
        "Deployment", NAMESPACE, workload_body("billing-sync")
    )
    _channel(cluster.kubeconfig, workloads).send([_event("rollout.stalled")])
    events = _events(cluster)
    # `kubectl describe` finds a workload's Events by its uid: the one that exists is named by it;
    # the one that does not (404) still gets its Event, by name.
    assert events[0]["regarding"]["uid"] == deployment["metadata"]["uid"]
    assert "uid" not in events[1]["regarding"]
    assert [(e["regarding"]["kind"], e["regarding"]["name"]) for e in events] == [
        ("Deployment", "billing-sync"),
        ("StatefulSet", "report-worker"),
    ]
    for event in events:
        assert (event["reason"], event["type"], event["action"]) == (
            "RolloutStalled",
            "Warning",
            "Restart",
        )
        assert event["regarding"]["apiVersion"] == "apps/v1"
        assert event["regarding"]["namespace"] == NAMESPACE
        assert event["related"]["kind"] == "Secret"
        assert event["related"]["name"] == SECRET
        assert "Deployment/billing-sync, StatefulSet/report-worker" in event["note"]


def test_a_stalled_rollout_naming_its_workload_regards_that_one(cluster: Cluster) -> None:
    workloads = [("Deployment", "billing-sync"), ("StatefulSet", "report-worker")]
    stalled = _event("rollout.stalled", detail="StatefulSet/report-worker: 1 of 3 updated")
    _channel(cluster.kubeconfig, workloads).send([stalled])
    (event,) = _events(cluster)
    assert event["regarding"]["name"] == "report-worker"


def test_a_stalled_rollout_without_workloads_regards_the_secret(cluster: Cluster) -> None:
    _channel(cluster.kubeconfig).send([_event("rollout.stalled")])
    (event,) = _events(cluster)
    assert event["regarding"]["kind"] == "Secret"
    assert event["reason"] == "RolloutStalled"


def test_a_whole_second_is_sent_with_microseconds(cluster: Cluster) -> None:
    whole = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)
    _channel(cluster.kubeconfig).send([_event("rotation.delivered", time=whole)])
    (event,) = _events(cluster)
    assert event["eventTime"] == "2026-11-27T03:00:00.000001Z"


def test_the_same_event_sent_twice_is_one_kubernetes_event(cluster: Cluster) -> None:
    channel = _channel(cluster.kubeconfig)
    delivered = _event("rotation.delivered", key_id="k2")
    channel.send([delivered])
    with capture_logs() as logs:
        channel.send([delivered])
    assert len(_events(cluster)) == 1
    assert [r.code for r in cluster.server.requests_for("create", "events")] == [201, 409]
    assert not [log for log in logs if log["event"] == "notify.failed"]


def test_events_about_no_secret_send_nothing(cluster: Cluster) -> None:
    _channel(cluster.kubeconfig).send(
        [
            _event("pass.failed", workspace=None, credential=None),
            _event("rotation.delivered", credential="another"),
            _event("leak.unmatched"),
            _event("rotation.delivered", workspace=None),
        ]
    )
    assert cluster.server.requests == []


def test_a_long_detail_is_cut_to_the_servers_limit(cluster: Cluster) -> None:
    _channel(cluster.kubeconfig).send([_event("rotation.failed", detail="é" * 2000)])
    (event,) = _events(cluster)
    assert len(event["note"].encode()) <= 1024
    assert event["note"].endswith("...")


def test_a_note_is_blanked_of_anything_that_looks_like_a_secret(cluster: Cluster) -> None:
    # An event never carries one; a detail quoting a request is blanked as a log line would be.
    detail = "deliver: Authorization: Bearer eyJhbGciOi.payload token=pm_live_0123456789"
    _channel(cluster.kubeconfig).send([_event("rotation.failed", detail=detail)])
    (event,) = _events(cluster)
    assert "eyJhbGciOi" not in event["note"]
    assert "pm_live_0123456789" not in event["note"]
    assert event["note"].startswith("A rotation failed")


def test_a_denied_create_is_logged_not_raised(cluster: Cluster) -> None:
    kubeconfig = cluster.identity(SERVICE_ACCOUNT, [Rule.of(["*"], ["secrets"], [""])])
    channel = _channel(kubeconfig)
    with capture_logs() as logs:
        channel.send([_event("rotation.delivered", key_id="k2"), _event("rotation.revoked")])
    failed = [log for log in logs if log["event"] == "notify.failed"]
    assert [(f["channel"], f["type"], f["credential"]) for f in failed] == [
        (CHANNEL, "rotation.delivered", "billing-sync"),
        (CHANNEL, "rotation.revoked", "billing-sync"),
    ]
    assert "HTTP 403" in failed[0]["error"]
    assert f"create Event {NAMESPACE}/{SECRET}." in failed[0]["error"]
    assert not [log for log in logs if log["event"] == "notify.sent"]
    assert _events(cluster) == []


def test_the_kubernetes_sink_role_allows_the_events(cluster: Cluster) -> None:
    kubeconfig = cluster.identity(SERVICE_ACCOUNT, role_rules("kubernetes-sink", ["billing-sync"]))
    deployment = cluster.server.create_object(
        "Deployment", NAMESPACE, workload_body("billing-sync")
    )
    channel = _channel(kubeconfig, [("Deployment", "billing-sync")])
    with capture_logs() as logs:
        channel.send([_event("rotation.delivered"), _event("rollout.stalled")])
    stalled, rotated = (e["regarding"] for e in _events(cluster))
    assert rotated["kind"] == "Secret"
    assert stalled["uid"] == deployment["metadata"]["uid"]
    assert not [log for log in logs if log["event"] == "notify.failed"]
    assert {r.code for r in cluster.server.requests} == {200, 201}


def test_an_unreachable_server_is_logged_and_asked_once(cluster: Cluster) -> None:
    channel = _channel(cluster.unreachable(), timeout=3.0, request_timeout=1.0)
    started = time.monotonic()
    with capture_logs() as logs:
        channel.send([_event("rotation.delivered"), _event("rotation.revoked")])
    assert time.monotonic() - started < 3.0
    failed = [log for log in logs if log["event"] == "notify.failed"]
    assert len(failed) == 2
    assert "no answer" in failed[0]["error"]
    assert "did not answer an earlier Event" in failed[1]["error"]


def test_a_hanging_server_costs_no_more_than_the_timeout(cluster: Cluster) -> None:
    for _ in range(3):
        cluster.server.delay_next(5.0, verbs=["create"], resource="events")
    channel = _channel(cluster.kubeconfig, timeout=1.5, request_timeout=0.5)
    started = time.monotonic()
    with capture_logs() as logs:
        channel.send([_event("rotation.delivered"), _event("rotation.revoked")])
    assert time.monotonic() - started < 1.5
    assert len([log for log in logs if log["event"] == "notify.failed"]) == 2


def test_a_send_that_runs_out_of_time_stops_asking(cluster: Cluster) -> None:
    # The first create is answered, slowly; what is left of the send is less than a request.
    cluster.server.delay_next(0.5, verbs=["create"], resource="events")
    channel = _channel(cluster.kubeconfig, timeout=1.2, request_timeout=1.0)
    with capture_logs() as logs:
        channel.send([_event("rotation.delivered"), _event("rotation.revoked")])
    assert [e["reason"] for e in _events(cluster)] == ["Rotated"]
    (failed,) = [log for log in logs if log["event"] == "notify.failed"]
    assert failed["type"] == "rotation.revoked"
    assert failed["error"] == "not sent: the channel's 1.2 s were spent"
    assert len(cluster.server.requests_for("create", "events")) == 1


def test_a_configuration_that_cannot_load_is_logged(tmp_path: Path) -> None:
    with capture_logs() as logs:
        _channel(tmp_path / "no-such-kubeconfig").send([_event("rotation.delivered")])
    (failed,) = [log for log in logs if log["event"] == "notify.failed"]
    assert "is not a file" in failed["error"]


def test_a_resolver_that_breaks_is_logged_not_raised() -> None:
    def broken(workspace: str, credential: str) -> list[CredentialObjects]:
        raise KeyError(credential)

    with capture_logs() as logs:
        KubernetesEventsChannel(broken).send([_event("rotation.delivered")])
    assert [(log["event"], log["error"]) for log in logs] == [
        ("notify.failed", "unexpected KeyError")
    ]


# -- the wiring from settings ---------------------------------------------------------------------


def _environ(**extra: str) -> dict[str, str]:
    return {
        "ROTATOR_API_KEY": "pm_local_admin_key_0123456789",
        "ROTATOR_KEY_NAMES": "*",
        "ROTATOR_WORKSPACE_NAME": "acme",
        **extra,
    }


def test_no_channel_without_the_kubernetes_sink(tmp_path: Path) -> None:
    settings = parse_settings(_environ(ROTATOR_SINK_FILE_DIR=str(tmp_path)))
    assert kubernetes_events_channel(settings) is None


def test_the_channel_places_each_credential_as_the_sink_does(cluster: Cluster) -> None:
    settings = parse_settings(
        _environ(
            ROTATOR_SINK="kubernetes",
            ROTATOR_SINK_KUBERNETES_KUBECONFIG=str(cluster.kubeconfig),
            ROTATOR_SINK_KUBERNETES_NAMESPACE="billing",
            ROTATOR_SINK_KUBERNETES_SECRET_NAME="pm-{workspace}-{credential}",
            ROTATOR_SINK_KUBERNETES_RESTART="billing-*=Deployment/billing-web",
        )
    )
    channel = kubernetes_events_channel(settings)
    assert channel is not None
    assert channel.name == CHANNEL
    assert repr(channel).startswith("KubernetesEventsChannel(instance=")
    channel.send(
        [
            _event("rotation.delivered", credential="Billing_Sync"),
            _event("rollout.stalled", credential="billing-sync"),
            _event("rotation.delivered", workspace="another"),
        ]
    )
    events = sorted(cluster.server.objects("Event", "billing"), key=lambda e: e["reason"])
    assert [(e["reason"], e["regarding"]["kind"], e["regarding"]["name"]) for e in events] == [
        ("RolloutStalled", "Deployment", "billing-web"),
        ("Rotated", "Secret", "pm-acme-billing-sync"),
    ]
    assert events[0]["related"]["name"] == "pm-acme-billing-sync"


def test_each_workspace_records_in_its_own_namespace(cluster: Cluster, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("pm_local_admin_key_0123456789")
    workspaces = tmp_path / "workspaces.yaml"
    workspaces.write_text(
        "workspaces:\n"
        f"  - {{name: eu, api_key_file: {key}, sink: {{namespace: acme-eu}}}}\n"
        f"  - {{name: us, api_key_file: {key}}}\n"
    )
    settings = parse_settings(
        {
            "ROTATOR_WORKSPACES_FILE": str(workspaces),
            "ROTATOR_KEY_NAMES": "*",
            "ROTATOR_SINK": "kubernetes",
            "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(cluster.kubeconfig),
        }
    )
    channel = kubernetes_events_channel(settings)
    assert channel is not None
    channel.send([_event("rotation.delivered", workspace=w) for w in ("eu", "us", "acme")])
    placed = {
        namespace: [e["regarding"]["name"] for e in cluster.server.objects("Event", namespace)]
        for namespace in ("acme-eu", "default")
    }
    # Unset, the namespace is the pod's own: outside a pod, "default".
    assert placed == {
        "acme-eu": ["pm-api-key-billing-sync"],
        "default": ["pm-api-key-billing-sync"],
    }
    assert len(cluster.server.requests_for("create", "events")) == 2
