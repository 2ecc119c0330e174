"""config/kubernetes/examples/several-namespaces: one rotator delivering to Secrets of several
namespaces through its workspaces file's ``credentials:`` routes, with a Role and a RoleBinding
per namespace and nothing cluster-wide.

It renders and validates strictly like the overlays (tests/deploy/test_kubernetes.py); its RBAC
is read from the render: where the rotator's ServiceAccount may write Secrets, and which
workloads it may restart there, must be exactly what the workspaces file's targets need.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.settings import KubernetesSinkSettings, parse_settings
from tests.deploy.support import (
    KUBERNETES,
    config_map_data,
    documents,
    kustomize,
    of_kind,
    run,
    tool,
)

EXAMPLE = KUBERNETES / "examples" / "several-namespaces"
ROTATOR_NAMESPACE = "key-rotator"
SECRET_VERBS = {"get", "list", "create", "update", "patch"}


@cache
def _render() -> str:
    return kustomize(EXAMPLE)


def _docs() -> list[dict[str, Any]]:
    return documents(_render())


@pytest.mark.parametrize("version", ["1.31.0", "1.37.0"])
def test_it_renders_and_validates_strictly(version: str) -> None:
    result = run(
        tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, "-", stdin=_render()
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _rights() -> dict[str, tuple[set[str], set[str]]]:
    """By namespace: the verbs the rotator's ServiceAccount has on Secrets there, and the
    workloads (Kind/name) it may restart, from the rendered Roles and RoleBindings."""
    docs = _docs()
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(docs, "Role")}
    rights: dict[str, tuple[set[str], set[str]]] = {}
    kinds = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}
    for binding in of_kind(docs, "RoleBinding"):
        namespace = binding["metadata"]["namespace"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rotator", "namespace": ROTATOR_NAMESPACE}
        ]
        assert binding["roleRef"]["kind"] == "Role"
        role = roles[(namespace, binding["roleRef"]["name"])]
        verbs, workloads = rights.setdefault(namespace, (set(), set()))
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            if "secrets" in rule["resources"]:
                verbs |= set(rule["verbs"])
            if "events" in rule["resources"]:
                assert (rule["apiGroups"], rule["verbs"]) == (["events.k8s.io"], ["create"])
            for resource in set(rule["resources"]) & set(kinds):
                assert {"get", "patch"} == set(rule["verbs"]), rule
                workloads |= {f"{kinds[resource]}/{name}" for name in rule["resourceNames"]}
    return rights


def test_nothing_cluster_wide_and_secrets_only_where_the_rotator_delivers() -> None:
    docs = _docs()
    kinds = {document["kind"] for document in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Namespace"}
    rights = _rights()
    # The billing and reports targets, and the rotator's own namespace (its sink): no other.
    assert {ns for ns, (verbs, _) in rights.items() if verbs & {"create", "update"}} == {
        "billing",
        "reports",
        ROTATOR_NAMESPACE,
    }
    for namespace in ("billing", "reports"):
        assert rights[namespace][0] == SECRET_VERBS


def test_each_kubernetes_target_may_write_its_secrets_and_restart_its_workloads(
    tmp_path: Path,
) -> None:
    text = config_map_data(_docs(), "rotator-workspaces")["workspaces.yaml"]
    path = tmp_path / "workspaces.yaml"
    path.write_text(text)
    settings = parse_settings({"ROTATOR_WORKSPACES_FILE": str(path), "ROTATOR_SINK": "kubernetes"})
    rights = _rights()
    needed: dict[str, set[str]] = {}
    for ws in settings.workspaces:
        assert ws.credentials, f"{ws.name}: the example routes credentials"
        for route in ws.credentials:
            for target in route.targets:
                assert isinstance(target, KubernetesSinkSettings)
                assert target.namespace is not None
                assert rights[target.namespace][0] == SECRET_VERBS, target.namespace
                restarted = {
                    f"{kind}/{name}" for _, workloads in target.restart for kind, name in workloads
                }
                needed.setdefault(target.namespace, set()).update(restarted)
    for namespace, workloads in needed.items():
        granted = rights[namespace][1]
        assert workloads <= granted, namespace
        # No workload by name beyond those the targets restart (whatever its kind).
        assert {w.split("/")[1] for w in granted} == {w.split("/")[1] for w in workloads}
    assert set(needed) == {"billing", "reports"}


def test_the_example_file_is_the_one_mounted() -> None:
    mounted = yaml.safe_load(config_map_data(_docs(), "rotator-workspaces")["workspaces.yaml"])
    written = yaml.safe_load((EXAMPLE / "rotator" / "workspaces.yaml").read_text())
    assert mounted == written
