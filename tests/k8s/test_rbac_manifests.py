"""The RBAC the kustomize components grant is exactly enough: the sink and the Lease lock run with
the Roles' own rules loaded into the stand-in's authorizer, and what the rules leave out is
refused (403)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.errors import SinkPermissionError
from rotator.locks.lease import LeaseLock
from rotator.models import Secret, SinkRecord
from rotator.sinks.kubernetes import KubernetesSink
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import NAMESPACE, Cluster

COMPONENTS = Path(__file__).resolve().parents[2] / "config" / "kubernetes" / "components"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:rotator"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def role_rules(component: str, workloads: list[str] | None = None) -> list[Rule]:
    """The rules of a component's Role, checked to be bound to the rotator's ServiceAccount.

    ``workloads`` stands for the edit the component asks of ops: its placeholder
    ``resourceNames`` replaced by the workloads they restart.
    """
    (role,) = _documents(COMPONENTS / component / "role.yaml")
    (binding,) = _documents(COMPONENTS / component / "rolebinding.yaml")
    assert role["kind"] == "Role"
    assert binding["kind"] == "RoleBinding"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rotator"}]
    rules = []
    for written in role["rules"]:
        rule = written
        if workloads is not None and written.get("resourceNames") == ["example-consumer"]:
            rule = {**written, "resourceNames": workloads}
        rules.append(Rule.from_manifest(rule))
    return rules


@pytest.mark.parametrize("component", ["kubernetes-sink", "lease-lock"])
def test_each_component_is_a_kustomize_component_with_its_rbac(component: str) -> None:
    (kustomization,) = _documents(COMPONENTS / component / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"
    assert kustomization["resources"] == ["role.yaml", "rolebinding.yaml"]
    # The base mounts no service-account token; the component must, or nothing can call the API.
    mounts = [p for p in kustomization["patches"] if "automountServiceAccountToken" in str(p)]
    assert {p["target"]["kind"] for p in mounts} == {"Deployment", "CronJob"}


@pytest.fixture
def sink_with_role(cluster: Cluster) -> Iterator[KubernetesSink]:
    kubeconfig = cluster.identity(
        SERVICE_ACCOUNT, role_rules("kubernetes-sink", ["billing-sync", "report-worker"])
    )
    sink = KubernetesSink(
        namespace=NAMESPACE,
        workspace="acme",
        kubeconfig=kubeconfig,
        restart=[
            ("billing-*", [("Deployment", "billing-sync"), ("StatefulSet", "report-worker")]),
            ("crm-*", [("Deployment", "crm-web")]),
        ],
    )
    yield sink
    sink.close()


def workload_body(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
        },
    }


def test_the_sink_role_allows_a_whole_delivery_and_the_example_restarts(
    sink_with_role: KubernetesSink, cluster: Cluster
) -> None:
    cluster.server.create_object("Deployment", NAMESPACE, workload_body("billing-sync"))
    cluster.server.create_object("StatefulSet", NAMESPACE, workload_body("report-worker"))
    secret = Secret("pm-key-value")
    record = SinkRecord(key_id="k1", key_name="billing-sync@2026-11-27T03:00:00Z")
    sink = sink_with_role
    version = sink.write_record(
        "billing-sync", SinkRecord().with_pending("k1", secret.sha256()), expected_version=None
    )
    version = sink.write_secret("billing-sync", secret, expected_version=version)
    sink.write_record("billing-sync", record, expected_version=version)
    assert sink.read("billing-sync").record == record
    assert list(sink.list_credentials()) == ["billing-sync"]
    now = datetime.now(UTC)
    assert all(w.started for w in sink.rollout("billing-sync", now, now))
    assert {r.code for r in cluster.server.requests if r.user == SERVICE_ACCOUNT} <= {200, 201}


def test_the_sink_role_allows_creating_events_and_nothing_more_on_them(cluster: Cluster) -> None:
    rules = role_rules("kubernetes-sink")
    for verb in ("create",):
        assert any(rule.allows(verb, "events.k8s.io", "events", None) for rule in rules)
    for verb in ("get", "list", "update", "patch", "delete"):
        assert not any(rule.allows(verb, "events.k8s.io", "events", "e") for rule in rules), verb
    assert not any(rule.allows("create", "", "events", None) for rule in rules)


def test_the_sink_role_refuses_workloads_it_does_not_name(
    sink_with_role: KubernetesSink, cluster: Cluster
) -> None:
    cluster.server.create_object("Deployment", NAMESPACE, workload_body("crm-web"))
    now = datetime.now(UTC)
    with pytest.raises(SinkPermissionError, match="403"):
        sink_with_role.rollout("crm-export", now, now)


def test_the_lease_role_allows_taking_renewing_and_releasing(cluster: Cluster) -> None:
    kubeconfig = cluster.identity(SERVICE_ACCOUNT, role_rules("lease-lock"))
    lock = LeaseLock(
        namespace=NAMESPACE,
        name="key-rotator-acme",
        holder_identity="pass-1",
        duration=timedelta(seconds=3),
        kubeconfig=kubeconfig,
    )
    with lock.hold() as held:
        held.check()
    with lock.hold() as held:  # the released Lease is taken again by update
        held.check()
    assert {r.code for r in cluster.server.requests if r.user == SERVICE_ACCOUNT} <= {200, 201, 404}
    assert cluster.server.requests_for("update", "leases")[-1].code == 200
