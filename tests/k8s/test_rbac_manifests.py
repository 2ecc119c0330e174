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


def _role_rules(component: str, file_name: str) -> list[Rule]:
    documents = _documents(COMPONENTS / component / file_name)
    roles = [doc for doc in documents if doc["kind"] == "Role"]
    bindings = [doc for doc in documents if doc["kind"] == "RoleBinding"]
    assert len(roles) == 1
    assert len(bindings) == 1
    assert bindings[0]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": roles[0]["metadata"]["name"],
    }
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": "rotator"}]
    return [Rule.from_manifest(rule) for rule in roles[0]["rules"]]


@pytest.mark.parametrize(
    ("component", "file_name"),
    [("kubernetes-sink", "rbac-kubernetes-sink.yaml"), ("lease-lock", "rbac-lease-lock.yaml")],
)
def test_each_component_is_a_kustomize_component_with_its_rbac(
    component: str, file_name: str
) -> None:
    (kustomization,) = _documents(COMPONENTS / component / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert kustomization["kind"] == "Component"
    assert kustomization["resources"] == [file_name]
    # The base mounts no service-account token; the component must, or nothing can call the API.
    targets = {patch["target"]["kind"] for patch in kustomization["patches"]}
    assert targets == {"ServiceAccount", "Deployment", "CronJob"}
    assert all(
        "automountServiceAccountToken" in patch["patch"] for patch in kustomization["patches"]
    )


@pytest.fixture
def sink_with_role(cluster: Cluster) -> Iterator[KubernetesSink]:
    kubeconfig = cluster.identity(
        SERVICE_ACCOUNT, _role_rules("kubernetes-sink", "rbac-kubernetes-sink.yaml")
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


def _workload(name: str) -> dict[str, object]:
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
    cluster.server.create_object("Deployment", NAMESPACE, _workload("billing-sync"))
    cluster.server.create_object("StatefulSet", NAMESPACE, _workload("report-worker"))
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


def test_the_sink_role_refuses_workloads_it_does_not_name(
    sink_with_role: KubernetesSink, cluster: Cluster
) -> None:
    cluster.server.create_object("Deployment", NAMESPACE, _workload("crm-web"))
    now = datetime.now(UTC)
    with pytest.raises(SinkPermissionError, match="403"):
        sink_with_role.rollout("crm-export", now, now)


def test_the_lease_role_allows_taking_renewing_and_releasing(cluster: Cluster) -> None:
    kubeconfig = cluster.identity(
        SERVICE_ACCOUNT, _role_rules("lease-lock", "rbac-lease-lock.yaml")
    )
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
