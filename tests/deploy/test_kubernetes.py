"""The kustomizations in config/kubernetes/ render, validate, and say what the rotator needs.

Each overlay is rendered with ``kubectl kustomize`` (kubectl from the dev extra) and the output
validated offline against the Kubernetes API schemas by ``kubernetes-validate --strict``
(unknown fields are errors), for the newest Kubernetes and for 1.31, the oldest with every
field used here (podFailurePolicy, CronJob timeZone). There is no API server here: what an
admission step would check is asserted from the rendered YAML instead: the pods' security
settings, the CronJob's and the Indexed Job's settings, the Deployment's, and RBAC that stays
namespaced with the verbs each component documents.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.settings import Settings, describe_variables, load_settings
from tests.deploy.support import (
    KUBERNETES,
    OVERLAYS,
    UID,
    config_map_data,
    container_env,
    documents,
    kustomize,
    mount_of,
    of_kind,
    one,
    pod_specs,
    rendered,
    run,
    tool,
)

#: Oldest and newest Kubernetes the rendered manifests are validated against.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
FILE_SINK_OVERLAYS = ("cronjob", "service")


def _composed(
    tmp_path: Path, overlay: str, *components: str, namespace: str = "key-rotator"
) -> str:
    """Render a kustomization of the kind operations.md tells ops to write: a namespace, one
    of the overlays, and components."""
    relative = os.path.relpath(KUBERNETES, tmp_path)
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        f"namespace: {namespace}",
        "resources:",
        f"  - {relative}/overlays/{overlay}",
    ]
    if components:
        lines.append("components:")
        lines.extend(f"  - {relative}/components/{name}" for name in components)
    (tmp_path / "kustomization.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kustomize(tmp_path)


def _all_renders(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every overlay as it is, plus each file-sink overlay switched to the kubernetes sink in a
    namespace, as operations.md shows."""
    renders = {name: documents(rendered(name)) for name in OVERLAYS}
    for overlay in FILE_SINK_OVERLAYS:
        folder = tmp_path / f"{overlay}-kubernetes-sink"
        folder.mkdir()
        renders[folder.name] = documents(
            _composed(folder, overlay, "kubernetes-sink", "lease-lock")
        )
    return renders


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    return _all_renders(tmp_path_factory.mktemp("renders"))


def _the_container(spec: dict[str, Any]) -> dict[str, Any]:
    containers = spec["containers"]
    assert [container["name"] for container in containers] == ["rotator"]
    return dict(containers[0])


def _settings_env(docs: list[dict[str, Any]], tmp_path: Path) -> tuple[dict[str, str], Settings]:
    """The environment the rotator container gets (ConfigMap, then its own env, which wins),
    and the settings the rotator makes of it. The mounted key file does not exist here: a
    temporary one stands in (the settings read it now)."""
    (_, spec), *_ = pod_specs(docs)
    env = config_map_data(docs) | container_env(_the_container(spec))
    key_file = tmp_path / "api-key"
    key_file.write_text("not-a-real-key\n", encoding="utf-8")
    return env, load_settings(env | {"ROTATOR_API_KEY_FILE": str(key_file)})


# --- valid ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay: str, version: str) -> None:
    result = run(
        tool("kubernetes-validate"),
        "--strict",
        "--quiet",
        "-k",
        version,
        "-",
        stdin=rendered(overlay),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compositions_of_operations_md_validate_strictly(tmp_path: Path) -> None:
    for name, docs in _all_renders(tmp_path).items():
        if name in OVERLAYS:
            continue
        text = "\n---\n".join(yaml.safe_dump(doc) for doc in docs)
        result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-", stdin=text)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_the_validator_rejects_an_unknown_field() -> None:
    """--strict really is strict: a misspelt field fails (so a pass above means something)."""
    broken = rendered("cronjob").replace("concurrencyPolicy:", "concurrencyPolicyy:")
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-", stdin=broken)
    assert result.returncode != 0
    assert "concurrencyPolicyy" in result.stdout + result.stderr


def test_base_and_components_are_namespace_agnostic() -> None:
    for path in [*KUBERNETES.rglob("*.yaml")]:
        for document in documents(path.read_text(encoding="utf-8")):
            if "metadata" in document:
                assert "namespace" not in document["metadata"], path
            for subject in document.get("subjects", []):
                assert "namespace" not in subject, path


# --- every pod ---------------------------------------------------------------------------------


def test_every_pod_runs_locked_down(renders: dict[str, list[dict[str, Any]]]) -> None:
    seen = 0
    for name, docs in renders.items():
        shutdown = int(config_map_data(docs)["ROTATOR_SHUTDOWN_TIMEOUT_SECONDS"])
        for where, spec in pod_specs(docs):
            seen += 1
            at = f"{name}: {where}"
            assert spec["enableServiceLinks"] is False, at
            assert spec["serviceAccountName"] == "rotator", at
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, at
            assert pod["runAsUser"] == UID, at
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, at
            # Killed between create and deliver otherwise: the rotator must give up first.
            assert spec["terminationGracePeriodSeconds"] >= shutdown + 10, at
            tmp = [volume["name"] for volume in spec["volumes"] if "emptyDir" in volume]
            assert tmp, f"{at}: no emptyDir"
            for container in spec["containers"] + spec.get("initContainers", []):
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, at
                assert context["allowPrivilegeEscalation"] is False, at
                assert context["capabilities"] == {"drop": ["ALL"]}, at
                assert context.get("privileged", False) is False, at
                assert context.get("runAsNonRoot", True) is True, at
                assert context.get("runAsUser", UID) == UID, at
                resources = container["resources"]
                assert resources["requests"]["memory"] == "64Mi", at
                assert resources["limits"]["memory"] == "128Mi", at
                assert "cpu" in resources["requests"], at
                assert mount_of(container, tmp[0]) == "/tmp", at
                # A subPath mount of a Secret never sees updates: a rotated key would not arrive.
                assert all("subPath" not in mount for mount in container["volumeMounts"]), at
    assert seen == len(renders)


def test_the_token_is_mounted_only_where_a_component_needs_the_api(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    for name, docs in renders.items():
        needs_api = bool(of_kind(docs, "RoleBinding"))
        for where, spec in pod_specs(docs):
            assert spec["automountServiceAccountToken"] is needs_api, f"{name}: {where}"
        if not needs_api:
            assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", FILE_SINK_OVERLAYS)
def test_the_pods_settings_load(overlay: str, tmp_path: Path) -> None:
    docs = documents(rendered(overlay))
    env, settings = _settings_env(docs, tmp_path)
    assert settings.sink.kind == "file"
    assert settings.api_key is None, "the key comes from the mounted Secret, never the env"
    (_, spec), *_ = pod_specs(docs)
    container = _the_container(spec)
    # The key file is in the mounted Secret rotator-api-key, the sink's folder on the claim.
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    key_volume = next(
        name
        for name, volume in volumes.items()
        if volume.get("secret", {}).get("secretName") == "rotator-api-key"
    )
    assert volumes[key_volume]["secret"]["defaultMode"] == 0o440
    assert Path(env["ROTATOR_API_KEY_FILE"]).parent == Path(mount_of(container, key_volume))
    claim_volume = next(
        name for name, volume in volumes.items() if "persistentVolumeClaim" in volume
    )
    claim = volumes[claim_volume]["persistentVolumeClaim"]["claimName"]
    assert one(docs, "PersistentVolumeClaim")["metadata"]["name"] == claim
    assert Path(mount_of(container, claim_volume)) in Path(env["ROTATOR_SINK_FILE_DIR"]).parents


def test_every_rotator_variable_of_every_pod_is_a_setting(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    known = set(describe_variables())
    for name, docs in renders.items():
        (_, spec), *_ = pod_specs(docs)
        env = config_map_data(docs) | container_env(_the_container(spec))
        assert set(env) - known == set(), name
        assert "ROTATOR_API_KEY" not in env, name
        if env.get("ROTATOR_SINK", "file") != "file":
            # A sink variable of another sink is an error (exit 2).
            assert not [variable for variable in env if variable.startswith("ROTATOR_SINK_FILE")]


# --- run-once ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", ["cronjob", "sharded"])
def test_the_cronjob_runs_one_pass_at_a_time(overlay: str) -> None:
    docs = documents(rendered(overlay))
    cronjob = one(docs, "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 86400
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    # Switching between serve and run-once keeps the time of day.
    assert spec["schedule"] == config_map_data(docs)["ROTATOR_SCHEDULE"]
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] > 0
    assert job["activeDeadlineSeconds"] > 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert _the_container(pod)["args"] == ["run-once"]
    # Exit 2 is a configuration error: retrying cannot help, the Job fails at once.
    fail_job = [rule for rule in job["podFailurePolicy"]["rules"] if rule["action"] == "FailJob"]
    assert fail_job == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "rotator", "operator": "In", "values": [2]},
        }
    ]


def test_the_single_cronjob_retries_a_few_times() -> None:
    job = one(documents(rendered("cronjob")), "CronJob")["spec"]["jobTemplate"]["spec"]
    assert 0 < job["backoffLimit"] <= 3
    assert "completionMode" not in job


def test_the_sharded_cronjob_is_an_indexed_job_of_rotator_shards_pods() -> None:
    docs = documents(rendered("sharded"))
    job = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]
    env = config_map_data(docs) | container_env(_the_container(job["template"]["spec"]))
    shards = int(env["ROTATOR_SHARDS"])
    assert shards > 1
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == shards
    # Each pod's share comes from JOB_COMPLETION_INDEX, which Kubernetes sets.
    assert "ROTATOR_SHARD_INDEX" not in env
    # Several workspaces, each with its own credential: no single key file.
    assert "ROTATOR_API_KEY_FILE" not in env
    assert env["ROTATOR_SINK"] == "kubernetes"
    assert not of_kind(docs, "PersistentVolumeClaim")


def test_the_sharded_workspaces_file_is_mounted_and_names_mounted_keys() -> None:
    docs = documents(rendered("sharded"))
    spec = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = _the_container(spec)
    env = config_map_data(docs) | container_env(container)
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    workspaces_path = Path(env["ROTATOR_WORKSPACES_FILE"])
    config_volume = next(
        name
        for name, volume in volumes.items()
        if volume.get("configMap", {}).get("name", "").startswith("rotator-workspaces-")
    )
    assert workspaces_path.parent == Path(mount_of(container, config_volume))
    data = config_map_data(docs, "rotator-workspaces")
    workspaces = yaml.safe_load(data[workspaces_path.name])["workspaces"]
    names = [workspace["name"] for workspace in workspaces]
    assert len(names) == len(set(names)) >= 2
    key_volume = next(name for name, volume in volumes.items() if "secret" in volume)
    key_mount = Path(mount_of(container, key_volume))
    assert volumes[key_volume]["secret"]["secretName"] == "rotator-workspace-keys"
    for workspace in workspaces:
        assert Path(workspace["api_key_file"]) == key_mount / workspace["name"]


# --- serve ----------------------------------------------------------------------------------------


def test_the_service_overlay_serves(tmp_path: Path) -> None:
    docs = documents(rendered("service"))
    _, settings = _settings_env(docs, tmp_path)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]
    container = _the_container(pod["spec"])
    assert container["args"] == ["serve"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": settings.http_port}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    assert pod["spec"]["terminationGracePeriodSeconds"] > settings.shutdown_timeout_seconds
    service = one(docs, "Service")
    selector = service["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.http_port)
    assert annotations["prometheus.io/path"] == "/metrics"


# --- RBAC --------------------------------------------------------------------------------------

#: Per resource, the verbs its component documents, and whether the rule must name resources.
ALLOWED_RULES = {
    ("", "secrets"): ({"get", "list", "create", "update", "patch"}, False),
    ("apps", "deployments"): ({"get", "patch"}, True),
    ("apps", "statefulsets"): ({"get", "patch"}, True),
    ("apps", "daemonsets"): ({"get", "patch"}, True),
    ("coordination.k8s.io", "leases"): ({"get", "create", "update", "patch"}, False),
    # Kubernetes Events on the Secrets and workloads: recorded, never read back or changed.
    ("events.k8s.io", "events"): ({"create"}, False),
}


def test_rbac_is_namespaced_with_the_documented_verbs_only(
    renders: dict[str, list[dict[str, Any]]],
) -> None:
    roles_seen: set[str] = set()
    for name, docs in renders.items():
        kinds = {document["kind"] for document in docs}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, name
        roles = {role["metadata"]["name"]: role for role in of_kind(docs, "Role")}
        roles_seen |= set(roles)
        for role in roles.values():
            for rule in role["rules"]:
                assert rule.get("nonResourceURLs") is None
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        verbs, by_name = ALLOWED_RULES[(group, resource)]
                        assert set(rule["verbs"]) <= verbs, (name, rule)
                        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
                        if by_name:
                            assert rule.get("resourceNames"), (name, rule)
        bindings = of_kind(docs, "RoleBinding")
        assert {binding["roleRef"]["name"] for binding in bindings} == set(roles), name
        for binding in bindings:
            assert binding["roleRef"]["kind"] == "Role"
            assert [subject["kind"] for subject in binding["subjects"]] == ["ServiceAccount"]
            assert [subject["name"] for subject in binding["subjects"]] == ["rotator"]
            namespace = binding["metadata"].get("namespace")
            if namespace is not None:  # set by the composing kustomization: subjects follow it
                assert binding["subjects"][0]["namespace"] == namespace, name
    # One Role per component: the kubernetes sink's and the lease lock's.
    assert len(roles_seen) == 2, roles_seen


def test_the_kubernetes_sink_component_grants_what_the_sink_needs(tmp_path: Path) -> None:
    docs = documents(_composed(tmp_path, "cronjob", "kubernetes-sink", "lease-lock"))
    rules = {
        (group, resource): set(rule["verbs"])
        for role in of_kind(docs, "Role")
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # Read back, find its Secrets by label, create the first, and write with compare-and-set.
    assert {"get", "list", "create"} <= rules[("", "secrets")]
    assert {"update", "patch"} & rules[("", "secrets")]
    assert rules[("apps", "deployments")] == {"get", "patch"}
    assert {"get", "create", "update"} <= rules[("coordination.k8s.io", "leases")]
    # Kubernetes Events on what it did (events.k8s.io, not the legacy core group).
    assert rules[("events.k8s.io", "events")] == {"create"}
    assert ("", "events") not in rules
    # The file sink is gone with its claim, volume and setting; the sink is kubernetes.
    assert not of_kind(docs, "PersistentVolumeClaim")
    spec = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "state" not in {volume["name"] for volume in spec["volumes"]}
    env = config_map_data(docs) | container_env(_the_container(spec))
    assert env["ROTATOR_SINK"] == "kubernetes"
    assert "ROTATOR_SINK_FILE_DIR" not in env
    assert {document["metadata"]["namespace"] for document in docs} == {"key-rotator"}
