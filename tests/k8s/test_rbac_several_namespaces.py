"""The Role of each target namespace in config/kubernetes/examples/several-namespaces is enough
for the kubernetes sink there: a whole delivery and the restart its target names run with the
Role's own rules loaded into the stand-in's authorizer, and another workload is refused (403);
the Kubernetes Events channel records on the Secret there.

Which namespaces hold such a Role (and that nothing is cluster-wide) is read from the render in
tests/deploy/test_several_namespaces.py: the stand-in's rules do not look at namespaces.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rotator.errors import SinkPermissionError
from rotator.events import Event
from rotator.kube_events import CredentialObjects, KubernetesEventsChannel
from rotator.models import Secret, SinkRecord
from rotator.sinks.kubernetes import KubernetesSink
from tests.deploy.support import KUBERNETES, documents, kustomize, of_kind
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import Cluster

SERVICE_ACCOUNT = "system:serviceaccount:key-rotator:rotator"


def _rules(namespace: str) -> list[Rule]:
    docs = documents(kustomize(KUBERNETES / "examples" / "several-namespaces"))
    (role,) = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == namespace]
    return [Rule.from_manifest(rule) for rule in role["rules"]]


def _workload(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
        },
    }


@pytest.mark.parametrize(
    ("namespace", "kind", "workload"),
    [("billing", "Deployment", "billing-sync"), ("reports", "StatefulSet", "report-worker")],
)
def test_a_target_namespaces_role_allows_a_delivery_and_its_restart(
    cluster: Cluster, namespace: str, kind: str, workload: str
) -> None:
    kubeconfig = cluster.identity(SERVICE_ACCOUNT, _rules(namespace))
    cluster.server.create_object(kind, namespace, _workload(workload))
    cluster.server.create_object("Deployment", namespace, _workload("other-app"))
    sink = KubernetesSink(
        namespace=namespace,
        workspace="acme-eu",
        secret_name_template="pm-{workspace}-{credential}",
        kubeconfig=kubeconfig,
        restart=[("billing-*", [(kind, workload)]), ("other-*", [("Deployment", "other-app")])],
    )
    try:
        secret = Secret("pm-key-value")
        version = sink.write_record(
            "billing-x", SinkRecord().with_pending("k1", secret.sha256()), expected_version=None
        )
        version = sink.write_secret("billing-x", secret, expected_version=version)
        record = SinkRecord(key_id="k1", key_name="billing-x@2026-11-27T03:00:00Z")
        sink.write_record("billing-x", record, expected_version=version)
        assert sink.read("billing-x").record == record
        assert cluster.server.secret_data(namespace, "pm-acme-eu-billing-x", "api-key") == (
            b"pm-key-value"
        )
        now = datetime.now(UTC)
        assert all(w.started for w in sink.rollout("billing-x", now, now))
        with pytest.raises(SinkPermissionError, match="403"):
            sink.rollout("other-x", now, now)
    finally:
        sink.close()
    # The Events channel records what it did on the Secret, in that namespace.
    secret_name = "pm-acme-eu-billing-x"
    channel = KubernetesEventsChannel(
        lambda _w, _c: [CredentialObjects(namespace, secret_name, (), kubeconfig)]
    )
    channel.send(
        [Event(type="rotation.delivered", id="r:1", time=now, workspace="acme-eu", credential="c")]
    )
    created = cluster.server.requests_for("create", "events")
    assert [r.code for r in created] == [201]
    assert [e["regarding"]["name"] for e in cluster.server.objects("Event", namespace)] == [
        secret_name
    ]
