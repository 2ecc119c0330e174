"""The Kubernetes sink in the contract suite: the real client against the loopback stand-in.

``forbidden`` is a service account whose RBAC allows reading Secrets but no writes;
``unavailable`` a kubeconfig whose server port is closed; ``lose_next_answer`` makes the
stand-in apply the next write and then drop the connection without answering.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.sinks.kubernetes import KubernetesSink
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import NAMESPACE, Cluster
from tests.sinks.backends import Backend

WORKSPACE = "acme"


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    cluster: Cluster = request.getfixturevalue("cluster")
    opened: list[KubernetesSink] = []

    def open_sink(kubeconfig: Path) -> KubernetesSink:
        sink = KubernetesSink(namespace=NAMESPACE, workspace=WORKSPACE, kubeconfig=kubeconfig)
        opened.append(sink)
        return sink

    sink = open_sink(cluster.kubeconfig)

    def consumer_reads(credential: str) -> str | None:
        data = cluster.server.secret_data(NAMESPACE, sink.secret_name(credential), "api-key")
        return None if data is None else data.decode()

    reader = cluster.identity(
        f"system:serviceaccount:{NAMESPACE}:reader",
        [Rule.of({"get", "list"}, {"secrets"}, {""})],
    )

    def close_all() -> None:
        for handle in opened:
            handle.close()

    return Backend(
        sink=sink,
        reopen=lambda: open_sink(cluster.kubeconfig),
        consumer_reads=consumer_reads,
        unavailable=lambda: open_sink(cluster.unreachable()),
        forbidden=lambda: open_sink(reader),
        lose_next_answer=cluster.server.drop_next_answer,
        cleanups=[close_all],
    )
