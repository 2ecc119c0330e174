"""The stand-in API server behaves as the Kubernetes API documents, seen through the real client.

These tests hold the stand-in to the behaviour the sink and the lock rely on (and that a real
kube-apiserver shows): optimistic concurrency on ``resourceVersion`` (replace, patch, delete),
create conflicts, validation (422) and decoding (400) errors as ``Status`` objects, bearer-token
authentication, RBAC-style authorization with resource names, label selectors, paging,
``generation`` on spec changes only, no-op writes, ``status`` kept away from the main resource,
Secret ``data`` in base64 and MicroTime precision. If the stand-in drifted from the API, the sink
tests that pass against it would prove nothing; these tests are what keeps it honest.

The client is lightkube, the one the sink and the lock use. What lightkube cannot send as
such (a label selector as a string, delete preconditions, one page at a time) goes as plain
HTTP with httpx, exactly as the API documents it: the stand-in answers the wire, not a client.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from tests.k8s.apiserver import ApiServer, Rule, parse_label_selector
from tests.k8s.fixtures import NAMESPACE, Cluster

MERGE = PatchType.MERGE


@pytest.fixture
def api(cluster: Cluster) -> Iterator[Client]:
    with _client(cluster.kubeconfig) as api_client:
        yield api_client


def _client(kubeconfig: object) -> Client:
    return Client(KubeConfig.from_file(str(kubeconfig)), lazy=False, trust_env=False)


@pytest.fixture
def wire(apiserver: ApiServer) -> Iterator[httpx.Client]:
    """Plain HTTP to the stand-in as the admin: for what the API takes that lightkube hides."""
    with httpx.Client(
        base_url=f"{apiserver.url}/api/v1/namespaces/{NAMESPACE}",
        headers={"Authorization": "Bearer admin-token"},
        trust_env=False,
    ) as client:
        yield client


def _status(exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = exc.response.json()
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == exc.response.status_code
    return body


def _code(exc: ApiError) -> int:
    return exc.response.status_code


def _secret(name: str, labels: dict[str, str] | None = None, **data: str) -> Secret:
    return Secret(
        metadata=ObjectMeta(name=name, labels=labels),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()} or None,
    )


def _deployment(name: str, replicas: int = 2) -> Deployment:
    labels = {"app": name}
    return Deployment(
        metadata=ObjectMeta(name=name),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="app", image="app:1")]),
            ),
        ),
    )


# --- resourceVersion and conflicts ----------------------------------------------------------------


def test_create_then_read_round_trips_data_in_base64(api: Client, apiserver: ApiServer) -> None:
    created = api.create(_secret("a", k="välue"), namespace=NAMESPACE)
    assert created.metadata and created.metadata.uid and created.metadata.creationTimestamp
    assert created.type == "Opaque"
    read = api.get(Secret, "a", namespace=NAMESPACE)
    assert read.data is not None and read.metadata is not None
    assert base64.b64decode(read.data["k"]).decode() == "välue"
    assert read.metadata.resourceVersion == created.metadata.resourceVersion
    assert apiserver.requests_for("create", "secrets")[-1].code == 201


def test_create_of_an_existing_name_is_409_already_exists(api: Client) -> None:
    api.create(_secret("a"), namespace=NAMESPACE)
    with pytest.raises(ApiError) as caught:
        api.create(_secret("a"), namespace=NAMESPACE)
    body = _status(caught.value)
    assert _code(caught.value) == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'secrets "a" already exists'
    assert body["details"] == {"name": "a", "kind": "secrets"}


def test_every_write_takes_a_new_resource_version_from_one_counter(api: Client) -> None:
    first = api.create(_secret("a"), namespace=NAMESPACE)
    second = api.create(_secret("b"), namespace=NAMESPACE)
    first.data = {"k": "dg=="}
    replaced = api.replace(first)
    versions = [
        int(v.metadata.resourceVersion or 0) for v in (first, second, replaced) if v.metadata
    ]
    assert versions == sorted(set(versions))


def test_replace_with_a_stale_resource_version_is_409_conflict(api: Client) -> None:
    stale = api.create(_secret("a", k="1"), namespace=NAMESPACE)
    fresh = api.get(Secret, "a", namespace=NAMESPACE)
    fresh.data = {"k": "Mg=="}
    api.replace(fresh)
    stale.data = {"k": "Mw=="}
    with pytest.raises(ApiError) as caught:
        api.replace(stale)
    body = _status(caught.value)
    assert _code(caught.value) == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in str(body["message"])
    assert api.get(Secret, "a", namespace=NAMESPACE).data == {"k": "Mg=="}


def test_replace_without_a_resource_version_is_unconditional(api: Client) -> None:
    api.create(_secret("a", k="1"), namespace=NAMESPACE)
    blind = _secret("a", k="2")
    assert api.replace(blind, "a", namespace=NAMESPACE).data == {"k": "Mg=="}  # type: ignore[call-overload]


def test_replace_of_a_missing_object_is_404(api: Client) -> None:
    with pytest.raises(ApiError) as caught:
        api.replace(_secret("nope"), "nope", namespace=NAMESPACE)  # type: ignore[call-overload]
    assert _code(caught.value) == 404
    assert _status(caught.value)["reason"] == "NotFound"


def test_replace_with_another_name_than_the_url_is_400(wire: httpx.Client, api: Client) -> None:
    api.create(_secret("a"), namespace=NAMESPACE)
    answer = wire.put("/secrets/a", json={"metadata": {"name": "b"}})
    assert answer.status_code == 400
    assert answer.json()["kind"] == "Status"


def test_merge_patch_with_a_resource_version_is_a_precondition(api: Client) -> None:
    created = api.create(_secret("a", k="1"), namespace=NAMESPACE)
    version = created.metadata.resourceVersion if created.metadata else None
    patched = api.patch(
        Secret,
        "a",
        {
            "metadata": {"resourceVersion": version, "annotations": {"x": "1"}},
            "data": {"j": "Mg=="},
        },
        namespace=NAMESPACE,
        patch_type=MERGE,
    )
    assert patched.data == {"k": "MQ==", "j": "Mg=="}
    assert patched.metadata and patched.metadata.annotations == {"x": "1"}
    with pytest.raises(ApiError) as caught:
        api.patch(
            Secret,
            "a",
            {"metadata": {"resourceVersion": version, "annotations": {"x": "2"}}},
            namespace=NAMESPACE,
            patch_type=MERGE,
        )
    assert _code(caught.value) == 409
    assert _status(caught.value)["reason"] == "Conflict"


def test_merge_patch_null_removes_a_key(api: Client) -> None:
    meta = ObjectMeta(name="a", annotations={"x": "1", "y": "2"})
    api.create(Secret(metadata=meta), namespace=NAMESPACE)
    patched = api.patch(
        Secret,
        "a",
        {"metadata": {"annotations": {"x": None}}},
        namespace=NAMESPACE,
        patch_type=MERGE,
    )
    assert patched.metadata and patched.metadata.annotations == {"y": "2"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(api: Client) -> None:
    created = api.create(_secret("a", k="1"), namespace=NAMESPACE)
    again = api.patch(Secret, "a", {"data": {"k": "MQ=="}}, namespace=NAMESPACE, patch_type=MERGE)
    assert again.metadata and created.metadata
    assert again.metadata.resourceVersion == created.metadata.resourceVersion


def test_delete_with_a_stale_precondition_is_409_and_keeps_the_object(
    api: Client, wire: httpx.Client
) -> None:
    created = api.create(_secret("a"), namespace=NAMESPACE)
    assert created.metadata is not None
    api.patch(Secret, "a", {"data": {"k": "MQ=="}}, namespace=NAMESPACE, patch_type=MERGE)
    stale = {"preconditions": {"resourceVersion": created.metadata.resourceVersion}}
    refused = wire.request("DELETE", "/secrets/a", json=stale)
    assert refused.status_code == 409
    assert refused.json()["reason"] == "Conflict"
    status = wire.delete("/secrets/a").json()
    assert status["status"] == "Success"
    assert status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiError) as gone:
        api.get(Secret, "a", namespace=NAMESPACE)
    assert _code(gone.value) == 404
    assert _status(gone.value)["message"] == 'secrets "a" not found'


# --- validation and decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "dot.", "a" * 254, "a..b"])
def test_a_name_that_is_not_dns_1123_is_422_invalid(api: Client, name: str) -> None:
    with pytest.raises(ApiError) as caught:
        api.create(_secret(name), namespace=NAMESPACE)
    body = _status(caught.value)
    assert _code(caught.value) == 422
    assert body["reason"] == "Invalid"
    assert str(body["message"]).startswith(f'Secret "{name}" is invalid: metadata.name: Invalid')
    details = body["details"]
    assert isinstance(details, dict)
    assert details["kind"] == "Secret"
    assert details["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize(
    "labels",
    [{"k": "v" * 64}, {"k": "a b"}, {"k": "-a"}, {"Bad/k": "v"}, {"a/b/c": "v"}, {"k" * 64: "v"}],
)
def test_invalid_labels_are_422(api: Client, labels: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        api.create(_secret("a", labels), namespace=NAMESPACE)
    assert _code(caught.value) == 422
    assert "metadata.labels" in str(_status(caught.value)["message"])


def test_valid_labels_are_accepted(api: Client) -> None:
    labels = {"app.kubernetes.io/managed-by": "key-rotator", "k": "", "x.y/z_1": "A-b.c_9"}
    created = api.create(_secret("a", labels), namespace=NAMESPACE)
    assert created.metadata and created.metadata.labels == labels


def test_secret_data_keys_and_size_are_validated(api: Client) -> None:
    with pytest.raises(ApiError) as bad_key:
        api.create(Secret(metadata=ObjectMeta(name="a"), data={"a b": "eA=="}), namespace=NAMESPACE)
    assert _code(bad_key.value) == 422
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    with pytest.raises(ApiError) as too_big:
        api.create(Secret(metadata=ObjectMeta(name="a"), data={"k": big}), namespace=NAMESPACE)
    assert _code(too_big.value) == 422
    assert "Too long" in str(_status(too_big.value)["message"])


def test_bad_base64_in_data_is_400(api: Client) -> None:
    bad_patch = {"data": {"k": "not base64!"}}
    with pytest.raises(ApiError) as caught:
        api.patch(Secret, "a", bad_patch, namespace=NAMESPACE, patch_type=MERGE)
    assert _code(caught.value) == 404  # nothing to patch yet: not found comes first
    api.create(_secret("a"), namespace=NAMESPACE)
    with pytest.raises(ApiError) as bad:
        api.patch(Secret, "a", bad_patch, namespace=NAMESPACE, patch_type=MERGE)
    assert _code(bad.value) == 400


def test_string_data_is_merged_into_data_and_not_stored(api: Client) -> None:
    secret = Secret(
        metadata=ObjectMeta(name="a"),
        data={"k": "MQ=="},
        stringData={"k": "two", "j": "x"},
    )
    created = api.create(secret, namespace=NAMESPACE)
    assert created.data == {"k": base64.b64encode(b"two").decode(), "j": "eA=="}
    assert created.stringData is None


def test_secret_type_and_immutable_data_cannot_change(api: Client) -> None:
    api.create(
        Secret(metadata=ObjectMeta(name="a"), data={"k": "MQ=="}, immutable=True),
        namespace=NAMESPACE,
    )
    for patch in ({"type": "kubernetes.io/tls"}, {"data": {"k": "Mg=="}}, {"immutable": False}):
        with pytest.raises(ApiError) as caught:
            api.patch(Secret, "a", patch, namespace=NAMESPACE, patch_type=MERGE)
        assert _code(caught.value) == 422, patch


def test_unknown_fields_are_dropped_with_a_warning(apiserver: ApiServer) -> None:
    created = apiserver.create_object(
        "Secret", NAMESPACE, {"metadata": {"name": "a", "colour": "red"}, "bogus": 1}
    )
    assert "bogus" not in created
    assert "colour" not in created["metadata"]


def test_lease_micro_time_needs_six_fractional_digits(api: Client) -> None:
    whole_second = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)
    spec = LeaseSpec(holderIdentity="a", leaseDurationSeconds=10, renewTime=whole_second)
    # The client writes isoformat(), which drops a zero fraction; the real server refuses it.
    with pytest.raises(ApiError) as caught:
        api.create(Lease(metadata=ObjectMeta(name="l"), spec=spec), namespace=NAMESPACE)
    assert _code(caught.value) == 400
    assert "2006-01-02T15:04:05.000000Z07:00" in str(_status(caught.value)["message"])
    spec.renewTime = whole_second.replace(microsecond=1)
    created = api.create(Lease(metadata=ObjectMeta(name="l"), spec=spec), namespace=NAMESPACE)
    assert created.spec and created.spec.renewTime == whole_second.replace(microsecond=1)


@pytest.mark.parametrize(
    ("field", "value"), [("leaseDurationSeconds", 0), ("leaseTransitions", -1)]
)
def test_lease_spec_is_validated(apiserver: ApiServer, field: str, value: int) -> None:
    with pytest.raises(Exception, match="is invalid") as caught:
        apiserver.create_object(
            "Lease", NAMESPACE, {"metadata": {"name": "l"}, "spec": {field: value}}
        )
    assert getattr(caught.value, "code", None) == 422


def test_workload_selector_must_match_the_template(api: Client) -> None:
    deployment = _deployment("web")
    assert deployment.spec and deployment.spec.template.metadata
    deployment.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiError) as caught:
        api.create(deployment, namespace=NAMESPACE)
    assert _code(caught.value) == 422
    assert "selector" in str(_status(caught.value)["message"])


# --- generation and status ------------------------------------------------------------------------


def test_generation_moves_on_spec_changes_only(api: Client, apiserver: ApiServer) -> None:
    created = api.create(_deployment("web"), namespace=NAMESPACE)
    assert created.metadata and created.metadata.generation == 1
    relabelled = api.patch(
        Deployment, "web", {"metadata": {"labels": {"tier": "x"}}}, namespace=NAMESPACE
    )
    assert relabelled.metadata and relabelled.metadata.generation == 1
    restarted = api.patch(
        Deployment,
        "web",
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}}
                }
            }
        },
        namespace=NAMESPACE,
    )
    assert restarted.metadata and restarted.metadata.generation == 2
    assert apiserver.requests_for("patch", "deployments")[-1].content_type == (
        "application/strategic-merge-patch+json"
    )


def test_status_is_the_controllers_not_the_clients(api: Client, apiserver: ApiServer) -> None:
    api.create(_deployment("web", replicas=3), namespace=NAMESPACE)
    fresh = api.get(Deployment, "web", namespace=NAMESPACE)
    assert fresh.status is None or fresh.status.observedGeneration is None
    apiserver.complete_rollout("Deployment", NAMESPACE, "web")
    done = api.get(Deployment, "web", namespace=NAMESPACE)
    assert done.status is not None
    assert (done.status.observedGeneration, done.status.updatedReplicas) == (1, 3)
    done.status.updatedReplicas = 0
    kept = api.replace(done)
    assert kept.status and kept.status.updatedReplicas == 3
    apiserver.hang_rollout("Deployment", NAMESPACE, "web")
    hung = api.get(Deployment, "web", namespace=NAMESPACE).status
    assert hung is not None
    assert (hung.updatedReplicas, hung.readyReplicas, hung.replicas) == (1, 3, 4)


def test_strategic_merge_of_lists_is_refused_not_faked(api: Client) -> None:
    api.create(_deployment("web"), namespace=NAMESPACE)
    with pytest.raises(ApiError) as caught:
        api.patch(
            Deployment,
            "web",
            {"spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}},
            namespace=NAMESPACE,
        )
    assert _code(caught.value) == 400
    assert "stand-in" in str(_status(caught.value)["message"])


# --- authentication and authorization -------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_401(cluster: Cluster) -> None:
    for token in ("", "wrong"):
        kubeconfig = cluster.kubeconfig_for(token or "x", "bad")
        if not token:
            document = json.loads(kubeconfig.read_text())
            document["users"][0]["user"] = {"username": "", "password": ""}
            kubeconfig.write_text(json.dumps(document))
        with _client(kubeconfig) as api, pytest.raises(ApiError) as caught:
            list(api.list(Secret, namespace=NAMESPACE))
        assert _code(caught.value) == 401
        assert _status(caught.value)["reason"] == "Unauthorized"


def test_rbac_denies_verbs_and_names_outside_the_rules(cluster: Cluster) -> None:
    reader = cluster.identity(
        "system:serviceaccount:rotator-test:reader",
        [
            Rule.of({"get", "list"}, {"secrets"}, {""}),
            Rule.of({"get", "patch"}, {"deployments"}, {"apps"}, {"web"}),
        ],
    )
    cluster.server.create_object("Secret", NAMESPACE, {"metadata": {"name": "a"}})
    with _client(reader) as api:
        read = api.get(Secret, "a", namespace=NAMESPACE)
        assert read.metadata and read.metadata.name == "a"
        with pytest.raises(ApiError) as denied:
            api.create(_secret("b"), namespace=NAMESPACE)
        body = _status(denied.value)
        assert _code(denied.value) == 403
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            'secrets is forbidden: User "system:serviceaccount:rotator-test:reader" cannot '
            'create resource "secrets" in API group "" in the namespace "rotator-test"'
        )
        with pytest.raises(ApiError) as other_name:
            api.get(Deployment, "api", namespace=NAMESPACE)
        assert _code(other_name.value) == 403
        with pytest.raises(ApiError) as named_rule_no_list:
            list(api.list(Deployment, namespace=NAMESPACE))
        assert _code(named_rule_no_list.value) == 403
        with pytest.raises(ApiError) as allowed_but_missing:
            api.get(Deployment, "web", namespace=NAMESPACE)
        assert _code(allowed_but_missing.value) == 404
    assert not cluster.server.get_object("Secret", NAMESPACE, "b")


def test_rbac_is_checked_before_the_object_is_looked_up(cluster: Cluster) -> None:
    nobody = cluster.identity("nobody", [])
    with _client(nobody) as api, pytest.raises(ApiError) as caught:
        api.get(Secret, "missing", namespace=NAMESPACE)
    assert _code(caught.value) == 403


def test_https_with_the_clusters_ca(tls_cluster: Cluster) -> None:
    assert tls_cluster.server.url.startswith("https://")
    with _client(tls_cluster.kubeconfig) as api:
        assert list(api.list(Secret, namespace=NAMESPACE)) == []


# --- lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", ["a", "b", "c", "d"]),
        ("tier=web", ["a", "b"]),
        ("tier==web,env=prod", ["a"]),
        ("tier!=web", ["c", "d"]),
        ("tier in (web, db)", ["a", "b", "c"]),
        ("tier notin (web)", ["c", "d"]),
        ("env", ["a", "c"]),
        ("!env", ["b", "d"]),
        ("tier in (web),!env", ["b"]),
        ("n>2", ["c", "d"]),
        ("n<2", ["a"]),
    ],
)
def test_label_selectors(
    wire: httpx.Client, apiserver: ApiServer, selector: str, expected: list[str]
) -> None:
    for name, labels in {
        "a": {"tier": "web", "env": "prod", "n": "1"},
        "b": {"tier": "web", "n": "2"},
        "c": {"tier": "db", "env": "dev", "n": "3"},
        "d": {"n": "4"},
    }.items():
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": name, "labels": labels}})
    apiserver.create_object(
        "Secret", "elsewhere", {"metadata": {"name": "z", "labels": {"tier": "web"}}}
    )
    listed = wire.get("/secrets", params={"labelSelector": selector}).json()
    assert [item["metadata"]["name"] for item in listed["items"]] == expected
    assert listed["kind"] == "SecretList"
    assert int(listed["metadata"]["resourceVersion"]) >= 5


def test_label_selectors_as_lightkube_writes_them(api: Client, apiserver: ApiServer) -> None:
    for name, labels in {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "web"}}.items():
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": name, "labels": labels}})
    listed = api.list(Secret, namespace=NAMESPACE, labels={"tier": "web", "env": "prod"})
    assert [item.metadata.name for item in listed if item.metadata] == ["a"]
    assert apiserver.requests_for("list", "secrets")[-1].query["labelSelector"] == [
        "tier=web,env=prod"
    ]


@pytest.mark.parametrize(
    "selector", ["tier in web", "=x", "a b", "tier in (BAD VALUE)", "Bad Key=x"]
)
def test_a_malformed_selector_is_400(wire: httpx.Client, selector: str) -> None:
    answer = wire.get("/secrets", params={"labelSelector": selector})
    assert answer.status_code == 400
    assert answer.json()["reason"] == "BadRequest"


def test_lists_page_with_limit_and_continue(wire: httpx.Client, apiserver: ApiServer) -> None:
    for index in range(5):
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": f"s{index}"}})
    names: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    pages = 0
    while True:
        page = wire.get("/secrets", params=params).json()
        names += [item["metadata"]["name"] for item in page["items"]]
        pages += 1
        token = page["metadata"].get("continue")
        if not token:
            break
        params["continue"] = token
    assert names == [f"s{i}" for i in range(5)]
    assert pages == 3


def test_lightkube_pages_through_a_list(api: Client, apiserver: ApiServer) -> None:
    for index in range(5):
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": f"s{index}"}})
    listed = api.list(Secret, namespace=NAMESPACE, chunk_size=2)
    assert [item.metadata.name for item in listed if item.metadata] == [f"s{i}" for i in range(5)]
    assert len(apiserver.requests_for("list", "secrets")) == 3


def test_field_selector_by_name(api: Client, apiserver: ApiServer) -> None:
    for name in ("a", "b"):
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": name}})
    listed = api.list(Secret, namespace=NAMESPACE, fields={"metadata.name": "b"})
    assert [item.metadata.name for item in listed if item.metadata] == ["b"]
    with pytest.raises(ApiError) as caught:
        list(api.list(Secret, namespace=NAMESPACE, fields={"type": "Opaque"}))
    assert _code(caught.value) == 400


def test_unknown_paths_and_methods_answer_status_objects(apiserver: ApiServer) -> None:
    for method, path, code in (
        ("GET", "/api/v1/namespaces/x/configmaps", 404),
        ("PUT", "/api/v1/namespaces/x/secrets", 405),
        ("GET", "/api/v1/namespaces/x/secrets?watch=true", 405),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=5)
        try:
            connection.request(method, path, headers={"Authorization": "Bearer admin-token"})
            response = connection.getresponse()
            body = json.loads(response.read())
        finally:
            connection.close()
        assert (response.status, body["kind"], body["code"]) == (code, "Status", code)


def test_parse_label_selector_forms() -> None:
    requirements = parse_label_selector("a=b, c in (d,e) ,!f,g")
    assert [(r.key, r.operator, r.values) for r in requirements] == [
        ("a", "=", ("b",)),
        ("c", "in", ("d", "e")),
        ("f", "!", ()),
        ("g", "exists", ()),
    ]


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet"])
def test_new_workloads_read_back_through_the_clients_models(
    api: Client, apiserver: ApiServer, kind: str
) -> None:
    # StatefulSet and DaemonSet status have counts the API always writes (no omitempty): the
    # official client's models require them, and a stand-in that left them out would be one no
    # real server is. lightkube reads either, so they are checked on the wire too.
    required = {
        "Deployment": set(),
        "StatefulSet": {"replicas"},
        "DaemonSet": {
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        },
    }[kind]
    labels = {"app": "w"}
    spec: dict[str, object] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
    }
    apiserver.create_object(kind, NAMESPACE, {"metadata": {"name": "w"}, "spec": spec})
    resource = {"Deployment": Deployment, "StatefulSet": StatefulSet, "DaemonSet": DaemonSet}[kind]
    for step in (None, apiserver.hang_rollout, apiserver.complete_rollout):
        if step is not None:
            step(kind, NAMESPACE, "w")
        read: Any = api.get(resource, "w", namespace=NAMESPACE)
        assert read.metadata.generation == 1
        stored = apiserver.get_object(kind, NAMESPACE, "w")
        assert stored is not None
        assert required <= set(stored.get("status", {}))
