"""Consumers restarted after a delivery: ``KubernetesSink.rollout`` against the stand-in, whose
test-driven "controller" completes a rollout or leaves it hanging."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rotator.errors import SinkError, SinkPermissionError
from rotator.sinks.base import RolloutState, WorkloadRollout, rollout_state
from rotator.sinks.kubernetes import KubernetesSink
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import NAMESPACE, Cluster

DELIVERED = datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC)
TIMEOUT = timedelta(minutes=30)


def _workload(
    kind: str, name: str, replicas: int = 2, restarted_at: str | None = None
) -> dict[str, object]:
    labels = {"app": name}
    template: dict[str, object] = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    if restarted_at is not None:
        template["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": restarted_at}  # type: ignore[index]
    spec: dict[str, object] = {"selector": {"matchLabels": labels}, "template": template}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {"metadata": {"name": name}, "spec": spec}


@pytest.fixture
def make_sink(cluster: Cluster) -> Iterator[Callable[..., KubernetesSink]]:
    opened: list[KubernetesSink] = []

    def make(restart: object, **overrides: object) -> KubernetesSink:
        values: dict[str, object] = {
            "namespace": NAMESPACE,
            "workspace": "acme",
            "kubeconfig": cluster.kubeconfig,
            "restart": restart,
            "rollout_timeout": TIMEOUT,
        }
        values.update(overrides)
        sink = KubernetesSink(**values)  # type: ignore[arg-type]
        opened.append(sink)
        return sink

    yield make
    for sink in opened:
        sink.close()


def _restarted_at(cluster: Cluster, kind: str, name: str) -> str | None:
    stored = cluster.server.get_object(kind, NAMESPACE, name)
    assert stored is not None
    annotations = stored["spec"]["template"]["metadata"].get("annotations", {})
    return annotations.get("kubectl.kubernetes.io/restartedAt")


def test_no_consumers_configured_is_ready_at_once(make_sink: Callable[..., KubernetesSink]) -> None:
    sink = make_sink(())
    assert sink.rollout("billing-sync", DELIVERED, DELIVERED) == []


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_a_rollout_that_completes(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster, kind: str
) -> None:
    cluster.server.create_object(kind, NAMESPACE, _workload(kind, "billing-web"))
    cluster.server.complete_rollout(kind, NAMESPACE, "billing-web")  # running, before the delivery
    sink = make_sink([("billing-*", [(kind, "billing-web")])])

    first = sink.rollout("billing-sync", DELIVERED, DELIVERED + timedelta(seconds=1))
    assert first == [WorkloadRollout(kind, "billing-web", RolloutState.WAITING, started=True)]
    assert _restarted_at(cluster, kind, "billing-web") == "2026-11-27T03:00:01.250000Z"
    stored = cluster.server.get_object(kind, NAMESPACE, "billing-web")
    assert stored is not None and stored["metadata"]["generation"] == 2

    # The controller has not seen generation 2 yet: still waiting, and no second restart.
    second = sink.rollout("billing-sync", DELIVERED, DELIVERED + timedelta(seconds=5))
    assert second == [WorkloadRollout(kind, "billing-web", RolloutState.WAITING, started=False)]

    cluster.server.complete_rollout(kind, NAMESPACE, "billing-web")
    done = sink.rollout("billing-sync", DELIVERED, DELIVERED + timedelta(minutes=2))
    assert done == [WorkloadRollout(kind, "billing-web", RolloutState.READY, started=False)]
    assert rollout_state(done) is RolloutState.READY
    plural = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
    patches = cluster.server.requests_for("patch", plural[kind], "billing-web")
    assert len(patches) == 1
    assert patches[0].content_type == "application/strategic-merge-patch+json"


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_a_rollout_that_hangs_is_stalled_after_the_timeout(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster, kind: str
) -> None:
    cluster.server.create_object(kind, NAMESPACE, _workload(kind, "billing-web"))
    sink = make_sink([("billing-sync", [(kind, "billing-web")])])
    assert sink.rollout("billing-sync", DELIVERED, DELIVERED)[0].started
    cluster.server.hang_rollout(kind, NAMESPACE, "billing-web")
    within = sink.rollout("billing-sync", DELIVERED, DELIVERED + TIMEOUT)
    assert [w.state for w in within] == [RolloutState.WAITING]
    after = sink.rollout("billing-sync", DELIVERED, DELIVERED + TIMEOUT + timedelta(seconds=1))
    assert after == [WorkloadRollout(kind, "billing-web", RolloutState.STALLED, started=False)]
    assert len(cluster.server.requests_for("patch", kind.lower() + "s", "billing-web")) == 1


def test_a_restart_after_the_delivery_counts_and_an_older_one_does_not(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    # A person ran `kubectl rollout restart` after the delivery (kubectl writes local time).
    cluster.server.create_object(
        "Deployment",
        NAMESPACE,
        _workload("Deployment", "web", restarted_at="2026-11-27T04:10:00+01:00"),
    )
    cluster.server.create_object(
        "Deployment", NAMESPACE, _workload("Deployment", "api", restarted_at="2026-11-27T03:00:01Z")
    )
    cluster.server.create_object(
        "Deployment", NAMESPACE, _workload("Deployment", "odd", restarted_at="yesterday")
    )
    sink = make_sink([("*", [("Deployment", "web"), ("Deployment", "api"), ("Deployment", "odd")])])
    results = {w.name: w.started for w in sink.rollout("billing-sync", DELIVERED, DELIVERED)}
    assert results == {"web": False, "api": True, "odd": True}
    assert _restarted_at(cluster, "Deployment", "web") == "2026-11-27T04:10:00+01:00"


def test_a_later_delivery_restarts_again(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    cluster.server.create_object("Deployment", NAMESPACE, _workload("Deployment", "web"))
    sink = make_sink([("billing-sync", [("Deployment", "web")])])
    assert sink.rollout("billing-sync", DELIVERED, DELIVERED)[0].started
    later = DELIVERED + timedelta(days=30)
    assert sink.rollout("billing-sync", later, later)[0].started
    assert _restarted_at(cluster, "Deployment", "web") == "2026-12-27T03:00:01.250000Z"


def test_globs_choose_the_workloads_and_each_is_restarted_once(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    for name in ("web", "worker", "crm"):
        cluster.server.create_object("Deployment", NAMESPACE, _workload("Deployment", name))
    sink = make_sink(
        [
            ("billing-*", [("Deployment", "web"), ("Deployment", "worker")]),
            ("billing-sync", [("Deployment", "web")]),
            ("crm-*", [("Deployment", "crm")]),
        ]
    )
    results = sink.rollout("billing-sync", DELIVERED, DELIVERED)
    assert [(w.name, w.started) for w in results] == [("web", True), ("worker", True)]
    assert _restarted_at(cluster, "Deployment", "crm") is None
    assert sink.rollout("reports", DELIVERED, DELIVERED) == []


def test_a_workload_scaled_to_zero_is_ready(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    cluster.server.create_object(
        "Deployment", NAMESPACE, _workload("Deployment", "web", replicas=0)
    )
    sink = make_sink([("*", [("Deployment", "web")])])
    sink.rollout("billing-sync", DELIVERED, DELIVERED)
    cluster.server.complete_rollout("Deployment", NAMESPACE, "web")
    assert [w.state for w in sink.rollout("billing-sync", DELIVERED, DELIVERED)] == [
        RolloutState.READY
    ]


def test_a_missing_workload_is_a_sink_error(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    sink = make_sink([("*", [("StatefulSet", "gone")])])
    with pytest.raises(SinkError, match="does not exist") as caught:
        sink.rollout("billing-sync", DELIVERED, DELIVERED)
    assert "StatefulSet rotator-test/gone" in str(caught.value)
    assert "ROTATOR_SINK_KUBERNETES_RESTART" in str(caught.value)


def test_a_forbidden_workload_is_a_permission_error(
    make_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    cluster.server.create_object("Deployment", NAMESPACE, _workload("Deployment", "web"))
    cluster.server.create_object("Deployment", NAMESPACE, _workload("Deployment", "api"))
    may_restart_web = cluster.identity(
        "system:serviceaccount:rotator-test:rotator",
        [Rule.of({"get", "patch"}, {"deployments"}, {"apps"}, {"web"})],
    )
    sink = make_sink([("*", [("Deployment", "web")])], kubeconfig=may_restart_web)
    assert sink.rollout("billing-sync", DELIVERED, DELIVERED)[0].started
    other = make_sink([("*", [("Deployment", "api")])], kubeconfig=may_restart_web)
    with pytest.raises(SinkPermissionError, match="403"):
        other.rollout("billing-sync", DELIVERED, DELIVERED)
    only_get = cluster.identity("reader", [Rule.of({"get"}, {"deployments"}, {"apps"})])
    reader = make_sink([("*", [("Deployment", "api")])], kubeconfig=only_get)
    with pytest.raises(SinkPermissionError, match="cannot patch"):
        reader.rollout("billing-sync", DELIVERED, DELIVERED)
    assert _restarted_at(cluster, "Deployment", "api") is None
