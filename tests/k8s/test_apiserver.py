"""The stand-in API server behaves as the Kubernetes API documents, seen through the real client.

These tests hold the stand-in to the behaviour the sink and the lock rely on (and that a real
kube-apiserver shows): optimistic concurrency on ``resourceVersion`` (replace, patch, delete),
create conflicts, validation (422) and decoding (400) errors as ``Status`` objects, bearer-token
authentication, RBAC-style authorization with resource names, label selectors, paging,
``generation`` on spec changes only, no-op writes, ``status`` kept away from the main resource,
Secret ``data`` in base64 and MicroTime precision. If the stand-in drifted from the API, the sink
tests that pass against it would prove nothing; these tests are what keeps it honest.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.k8s.apiserver import ApiServer, Rule, parse_label_selector
from tests.k8s.fixtures import NAMESPACE, Cluster


@pytest.fixture
def api(cluster: Cluster) -> Iterator[ApiClient]:
    with _client(cluster.kubeconfig) as api_client:
        yield api_client


class _client:  # noqa: N801 - reads as a function at the call site
    def __init__(self, kubeconfig: object) -> None:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
        configuration.retries = 0
        self.api = ApiClient(configuration)

    def __enter__(self) -> ApiClient:
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.api.close()


def _status(exc: ApiException) -> dict[str, object]:
    body = json.loads(exc.body or "{}")
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def _secret(name: str, labels: dict[str, str] | None = None, **data: str) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()} or None,
    )


def _deployment(name: str, replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app:1")]),
            ),
        ),
    )


# --- resourceVersion and conflicts ----------------------------------------------------------------


def test_create_then_read_round_trips_data_in_base64(api: ApiClient, apiserver: ApiServer) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_secret(NAMESPACE, _secret("a", k="välue"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.type == "Opaque"
    read = core.read_namespaced_secret("a", NAMESPACE)
    assert base64.b64decode(read.data["k"]).decode() == "välue"
    assert read.metadata.resource_version == created.metadata.resource_version
    assert apiserver.requests_for("create", "secrets")[-1].code == 201


def test_create_of_an_existing_name_is_409_already_exists(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(NAMESPACE, _secret("a"))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret(NAMESPACE, _secret("a"))
    body = _status(caught.value)
    assert caught.value.status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'secrets "a" already exists'
    assert body["details"] == {"name": "a", "kind": "secrets"}


def test_every_write_takes_a_new_resource_version_from_one_counter(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_secret(NAMESPACE, _secret("a"))
    second = core.create_namespaced_secret(NAMESPACE, _secret("b"))
    first.data = {"k": "dg=="}
    replaced = core.replace_namespaced_secret("a", NAMESPACE, first)
    versions = [int(v.metadata.resource_version) for v in (first, second, replaced) if v.metadata]
    assert versions == sorted(set(versions))


def test_replace_with_a_stale_resource_version_is_409_conflict(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    stale = core.create_namespaced_secret(NAMESPACE, _secret("a", k="1"))
    fresh = core.read_namespaced_secret("a", NAMESPACE)
    fresh.data = {"k": "Mg=="}
    core.replace_namespaced_secret("a", NAMESPACE, fresh)
    stale.data = {"k": "Mw=="}
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_secret("a", NAMESPACE, stale)
    body = _status(caught.value)
    assert caught.value.status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in str(body["message"])
    assert core.read_namespaced_secret("a", NAMESPACE).data == {"k": "Mg=="}


def test_replace_without_a_resource_version_is_unconditional(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(NAMESPACE, _secret("a", k="1"))
    blind = _secret("a", k="2")
    assert core.replace_namespaced_secret("a", NAMESPACE, blind).data == {"k": "Mg=="}


def test_replace_of_a_missing_object_is_404(api: ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).replace_namespaced_secret("nope", NAMESPACE, _secret("nope"))
    assert caught.value.status == 404
    assert _status(caught.value)["reason"] == "NotFound"


def test_replace_with_another_name_than_the_url_is_400(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(NAMESPACE, _secret("a"))
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_secret("a", NAMESPACE, _secret("b"))
    assert caught.value.status == 400


def test_merge_patch_with_a_resource_version_is_a_precondition(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_secret(NAMESPACE, _secret("a", k="1"))
    version = created.metadata.resource_version
    patched = core.patch_namespaced_secret(
        "a",
        NAMESPACE,
        {
            "metadata": {"resourceVersion": version, "annotations": {"x": "1"}},
            "data": {"j": "Mg=="},
        },
        _content_type="application/merge-patch+json",
    )
    assert patched.data == {"k": "MQ==", "j": "Mg=="}
    assert patched.metadata.annotations == {"x": "1"}
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_secret(
            "a",
            NAMESPACE,
            {"metadata": {"resourceVersion": version, "annotations": {"x": "2"}}},
            _content_type="application/merge-patch+json",
        )
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "Conflict"


def test_merge_patch_null_removes_a_key(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    meta = client.V1ObjectMeta(name="a", annotations={"x": "1", "y": "2"})
    core.create_namespaced_secret(NAMESPACE, client.V1Secret(metadata=meta))
    patched = core.patch_namespaced_secret(
        "a",
        NAMESPACE,
        {"metadata": {"annotations": {"x": None}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata.annotations == {"y": "2"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_secret(NAMESPACE, _secret("a", k="1"))
    again = core.patch_namespaced_secret(
        "a", NAMESPACE, {"data": {"k": "MQ=="}}, _content_type="application/merge-patch+json"
    )
    assert again.metadata.resource_version == created.metadata.resource_version


def test_delete_with_a_stale_precondition_is_409_and_keeps_the_object(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_secret(NAMESPACE, _secret("a"))
    core.patch_namespaced_secret(
        "a", NAMESPACE, {"data": {"k": "MQ=="}}, _content_type="application/merge-patch+json"
    )
    stale = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=created.metadata.resource_version)
    )
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_secret("a", NAMESPACE, body=stale)
    assert caught.value.status == 409
    status = core.delete_namespaced_secret("a", NAMESPACE)
    assert status["status"] == "Success"
    assert status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("a", NAMESPACE)
    assert gone.value.status == 404
    assert _status(gone.value)["message"] == 'secrets "a" not found'


# --- validation and decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Upper", "under_score", "-dash", "dot.", "a" * 254, "a..b"])
def test_a_name_that_is_not_dns_1123_is_422_invalid(api: ApiClient, name: str) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, _secret(name))
    body = _status(caught.value)
    assert caught.value.status == 422
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
def test_invalid_labels_are_422(api: ApiClient, labels: dict[str, str]) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, _secret("a", labels))
    assert caught.value.status == 422
    assert "metadata.labels" in str(_status(caught.value)["message"])


def test_valid_labels_are_accepted(api: ApiClient) -> None:
    labels = {"app.kubernetes.io/managed-by": "key-rotator", "k": "", "x.y/z_1": "A-b.c_9"}
    created = client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, _secret("a", labels))
    assert created.metadata.labels == {k: v for k, v in labels.items() if v or k == "k"}


def test_secret_data_keys_and_size_are_validated(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as bad_key:
        core.create_namespaced_secret(
            NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name="a"), data={"a b": "eA=="})
        )
    assert bad_key.value.status == 422
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    with pytest.raises(ApiException) as too_big:
        core.create_namespaced_secret(
            NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name="a"), data={"k": big})
        )
    assert too_big.value.status == 422
    assert "Too long" in str(_status(too_big.value)["message"])


def test_bad_base64_in_data_is_400(api: ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).patch_namespaced_secret(
            "a",
            NAMESPACE,
            {"data": {"k": "not base64!"}},
            _content_type="application/merge-patch+json",
        )
    assert caught.value.status == 404  # nothing to patch yet: not found comes first
    client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, _secret("a"))
    with pytest.raises(ApiException) as bad:
        client.CoreV1Api(api).patch_namespaced_secret(
            "a",
            NAMESPACE,
            {"data": {"k": "not base64!"}},
            _content_type="application/merge-patch+json",
        )
    assert bad.value.status == 400


def test_string_data_is_merged_into_data_and_not_stored(api: ApiClient) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="a"),
        data={"k": "MQ=="},
        string_data={"k": "two", "j": "x"},
    )
    created = client.CoreV1Api(api).create_namespaced_secret(NAMESPACE, secret)
    assert created.data == {"k": base64.b64encode(b"two").decode(), "j": "eA=="}
    assert created.string_data is None


def test_secret_type_and_immutable_data_cannot_change(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        NAMESPACE,
        client.V1Secret(metadata=client.V1ObjectMeta(name="a"), data={"k": "MQ=="}, immutable=True),
    )
    for patch in ({"type": "kubernetes.io/tls"}, {"data": {"k": "Mg=="}}, {"immutable": False}):
        with pytest.raises(ApiException) as caught:
            core.patch_namespaced_secret(
                "a", NAMESPACE, patch, _content_type="application/merge-patch+json"
            )
        assert caught.value.status == 422, patch


def test_unknown_fields_are_dropped_with_a_warning(apiserver: ApiServer) -> None:
    created = apiserver.create_object(
        "Secret", NAMESPACE, {"metadata": {"name": "a", "colour": "red"}, "bogus": 1}
    )
    assert "bogus" not in created
    assert "colour" not in created["metadata"]


def test_lease_micro_time_needs_six_fractional_digits(api: ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    whole_second = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)
    spec = client.V1LeaseSpec(
        holder_identity="a", lease_duration_seconds=10, renew_time=whole_second
    )
    # The client writes isoformat(), which drops a zero fraction; the real server refuses it.
    with pytest.raises(ApiException) as caught:
        leases.create_namespaced_lease(
            NAMESPACE, client.V1Lease(metadata=client.V1ObjectMeta(name="l"), spec=spec)
        )
    assert caught.value.status == 400
    assert "2006-01-02T15:04:05.000000Z07:00" in str(_status(caught.value)["message"])
    spec.renew_time = whole_second.replace(microsecond=1)
    created = leases.create_namespaced_lease(
        NAMESPACE, client.V1Lease(metadata=client.V1ObjectMeta(name="l"), spec=spec)
    )
    assert created.spec.renew_time == whole_second.replace(microsecond=1)


@pytest.mark.parametrize(
    ("field", "value"), [("leaseDurationSeconds", 0), ("leaseTransitions", -1)]
)
def test_lease_spec_is_validated(apiserver: ApiServer, field: str, value: int) -> None:
    with pytest.raises(Exception, match="is invalid") as caught:
        apiserver.create_object(
            "Lease", NAMESPACE, {"metadata": {"name": "l"}, "spec": {field: value}}
        )
    assert getattr(caught.value, "code", None) == 422


def test_workload_selector_must_match_the_template(api: ApiClient) -> None:
    deployment = _deployment("web")
    deployment.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as caught:
        client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, deployment)
    assert caught.value.status == 422
    assert "selector" in str(_status(caught.value)["message"])


# --- generation and status ------------------------------------------------------------------------


def test_generation_moves_on_spec_changes_only(api: ApiClient, apiserver: ApiServer) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(NAMESPACE, _deployment("web"))
    assert created.metadata.generation == 1
    relabelled = apps.patch_namespaced_deployment(
        "web", NAMESPACE, {"metadata": {"labels": {"tier": "x"}}}
    )
    assert relabelled.metadata.generation == 1
    restarted = apps.patch_namespaced_deployment(
        "web",
        NAMESPACE,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}}
                }
            }
        },
    )
    assert restarted.metadata.generation == 2
    assert apiserver.requests_for("patch", "deployments")[-1].content_type == (
        "application/strategic-merge-patch+json"
    )


def test_status_is_the_controllers_not_the_clients(api: ApiClient, apiserver: ApiServer) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NAMESPACE, _deployment("web", replicas=3))
    assert apps.read_namespaced_deployment("web", NAMESPACE).status.observed_generation is None
    apiserver.complete_rollout("Deployment", NAMESPACE, "web")
    done = apps.read_namespaced_deployment("web", NAMESPACE)
    assert (done.status.observed_generation, done.status.updated_replicas) == (1, 3)
    done.status.updated_replicas = 0
    kept = apps.replace_namespaced_deployment("web", NAMESPACE, done)
    assert kept.status.updated_replicas == 3
    apiserver.hang_rollout("Deployment", NAMESPACE, "web")
    hung = apps.read_namespaced_deployment("web", NAMESPACE).status
    assert (hung.updated_replicas, hung.ready_replicas, hung.replicas) == (1, 3, 4)


def test_strategic_merge_of_lists_is_refused_not_faked(api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NAMESPACE, _deployment("web"))
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_deployment(
            "web", NAMESPACE, {"spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}}
        )
    assert caught.value.status == 400
    assert "stand-in" in str(_status(caught.value)["message"])


# --- authentication and authorization -------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_401(cluster: Cluster) -> None:
    for token in ("", "wrong"):
        with _client(cluster.kubeconfig_for(token or "x", "bad")) as api:
            api.configuration.api_key = {} if not token else api.configuration.api_key
            with pytest.raises(ApiException) as caught:
                client.CoreV1Api(api).list_namespaced_secret(NAMESPACE)
        assert caught.value.status == 401
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
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        assert core.read_namespaced_secret("a", NAMESPACE).metadata.name == "a"
        with pytest.raises(ApiException) as denied:
            core.create_namespaced_secret(NAMESPACE, _secret("b"))
        body = _status(denied.value)
        assert denied.value.status == 403
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            'secrets is forbidden: User "system:serviceaccount:rotator-test:reader" cannot '
            'create resource "secrets" in API group "" in the namespace "rotator-test"'
        )
        with pytest.raises(ApiException) as other_name:
            apps.read_namespaced_deployment("api", NAMESPACE)
        assert other_name.value.status == 403
        with pytest.raises(ApiException) as named_rule_no_list:
            apps.list_namespaced_deployment(NAMESPACE)
        assert named_rule_no_list.value.status == 403
        with pytest.raises(ApiException) as allowed_but_missing:
            apps.read_namespaced_deployment("web", NAMESPACE)
        assert allowed_but_missing.value.status == 404
    assert not cluster.server.get_object("Secret", NAMESPACE, "b")


def test_rbac_is_checked_before_the_object_is_looked_up(cluster: Cluster) -> None:
    nobody = cluster.identity("nobody", [])
    with _client(nobody) as api, pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).read_namespaced_secret("missing", NAMESPACE)
    assert caught.value.status == 403


def test_https_with_the_clusters_ca(tls_cluster: Cluster) -> None:
    assert tls_cluster.server.url.startswith("https://")
    with _client(tls_cluster.kubeconfig) as api:
        assert client.CoreV1Api(api).list_namespaced_secret(NAMESPACE).items == []


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
    api: ApiClient, apiserver: ApiServer, selector: str, expected: list[str]
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
    listed = client.CoreV1Api(api).list_namespaced_secret(NAMESPACE, label_selector=selector)
    assert [item.metadata.name for item in listed.items] == expected
    assert listed.kind == "SecretList"
    assert int(listed.metadata.resource_version) >= 5


@pytest.mark.parametrize(
    "selector", ["tier in web", "=x", "a b", "tier in (BAD VALUE)", "Bad Key=x"]
)
def test_a_malformed_selector_is_400(api: ApiClient, selector: str) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_secret(NAMESPACE, label_selector=selector)
    assert caught.value.status == 400


def test_lists_page_with_limit_and_continue(api: ApiClient, apiserver: ApiServer) -> None:
    for index in range(5):
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": f"s{index}"}})
    core = client.CoreV1Api(api)
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_secret(NAMESPACE, limit=2, _continue=token)
        names += [item.metadata.name for item in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"s{i}" for i in range(5)]
    assert pages == 3


def test_field_selector_by_name(api: ApiClient, apiserver: ApiServer) -> None:
    for name in ("a", "b"):
        apiserver.create_object("Secret", NAMESPACE, {"metadata": {"name": name}})
    listed = client.CoreV1Api(api).list_namespaced_secret(
        NAMESPACE, field_selector="metadata.name=b"
    )
    assert [item.metadata.name for item in listed.items] == ["b"]
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_secret(NAMESPACE, field_selector="type=Opaque")
    assert caught.value.status == 400


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
    api: ApiClient, apiserver: ApiServer, kind: str
) -> None:
    # StatefulSet and DaemonSet status have counts the API always writes (no omitempty), which
    # the client's models require; a stand-in that left them out would fail here.
    labels = {"app": "w"}
    spec: dict[str, object] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
    }
    apiserver.create_object(kind, NAMESPACE, {"metadata": {"name": "w"}, "spec": spec})
    apps = client.AppsV1Api(api)
    read = {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "DaemonSet": apps.read_namespaced_daemon_set,
    }[kind]
    for step in (None, apiserver.hang_rollout, apiserver.complete_rollout):
        if step is not None:
            step(kind, NAMESPACE, "w")
        assert read("w", NAMESPACE).metadata.generation == 1
