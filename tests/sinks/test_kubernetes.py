"""The Kubernetes sink beyond the contract: the Secret's layout, names, labels, ownership,
errors, configuration loading; through the real client against the loopback stand-in."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.errors import (
    ConfigError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.kube import label_value
from rotator.models import Secret, SinkRecord
from rotator.sinks.kubernetes import KubernetesSink
from tests.k8s.apiserver import Rule, write_kubeconfig
from tests.k8s.fixtures import NAMESPACE, Cluster

ROOT = Path(__file__).resolve().parents[2]
SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    previous_secret_sha256="b" * 64,
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)


@pytest.fixture
def open_sink(cluster: Cluster) -> Iterator[Callable[..., KubernetesSink]]:
    opened: list[KubernetesSink] = []

    def open_one(**overrides: object) -> KubernetesSink:
        values: dict[str, object] = {
            "namespace": NAMESPACE,
            "workspace": "acme",
            "kubeconfig": cluster.kubeconfig,
        }
        values.update(overrides)
        sink = KubernetesSink(**values)  # type: ignore[arg-type]
        opened.append(sink)
        return sink

    yield open_one
    for sink in opened:
        sink.close()


@pytest.fixture
def sink(open_sink: Callable[..., KubernetesSink]) -> KubernetesSink:
    return open_sink()


def _stored(cluster: Cluster, name: str) -> dict[str, object]:
    stored = cluster.server.get_object("Secret", NAMESPACE, name)
    assert stored is not None, name
    return stored


def _deliver(sink: KubernetesSink, credential: str, record: SinkRecord, secret: Secret) -> str:
    version = sink.write_record(
        credential,
        SinkRecord().with_pending(record.key_id or "", secret.sha256()),
        expected_version=sink.read(credential).version,
    )
    version = sink.write_secret(credential, secret, expected_version=version)
    version = sink.write_record(credential, record, expected_version=version)
    assert version is not None
    return version


# --- the Secret ----------------------------------------------------------------------------------


def test_the_secret_holds_the_key_and_the_record_in_annotations(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    version = sink.write_record(
        "billing-sync",
        RECORD.with_pending("k-newer", "a" * 64),
        expected_version=None,
    )
    version = sink.write_secret("billing-sync", SECRET, expected_version=version)
    stored = _stored(cluster, "pm-api-key-billing-sync")
    metadata = stored["metadata"]
    assert isinstance(metadata, dict)
    assert stored["type"] == "Opaque"
    assert stored["data"] == {"api-key": base64.b64encode(SECRET.reveal().encode()).decode()}
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": "key-rotator",
        "key-rotator.io/workspace": "acme",
        "key-rotator.io/credential": "billing-sync",
    }
    assert metadata["annotations"] == {
        "key-rotator.io/credential": "billing-sync",
        "key-rotator.io/workspace": "acme",
        "key-rotator.io/record-format": "1",
        "key-rotator.io/key-id": "k-new",
        "key-rotator.io/key-name": "billing-sync@2026-11-27T03:00:00Z",
        "key-rotator.io/expires": "2028-11-26T03:00:00Z",
        "key-rotator.io/delivered-at": "2026-11-27T03:00:01.250000Z",
        "key-rotator.io/secret-sha256": SECRET.sha256(),
        "key-rotator.io/previous-key-id": "k-old",
        "key-rotator.io/previous-secret-sha256": "b" * 64,
        "key-rotator.io/retire-previous-after": "2026-11-28T03:00:01Z",
        "key-rotator.io/pending-key-id": "k-newer",
        "key-rotator.io/pending-secret-sha256": "a" * 64,
    }
    assert metadata["resourceVersion"] == version
    # The record never holds the secret, in any form.
    text = json.dumps(metadata)
    assert SECRET.reveal() not in text
    assert base64.b64encode(SECRET.reveal().encode()).decode() not in text


def test_clearing_pending_removes_its_annotations(sink: KubernetesSink, cluster: Cluster) -> None:
    version = sink.write_record(
        "billing-sync", RECORD.with_pending("k-newer", "a" * 64), expected_version=None
    )
    sink.write_record(
        "billing-sync", replace(RECORD, previous_key_id=None), expected_version=version
    )
    annotations = _stored(cluster, "pm-api-key-billing-sync")["metadata"]["annotations"]  # type: ignore[index]
    assert "key-rotator.io/pending-key-id" not in annotations
    assert "key-rotator.io/previous-key-id" not in annotations
    assert sink.read("billing-sync").record == replace(RECORD, previous_key_id=None)


def test_a_secret_written_before_any_record_has_no_record(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    state = sink.read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 == SECRET.sha256()
    assert list(sink.list_credentials()) == []


def test_writes_keep_what_others_put_in_the_secret(sink: KubernetesSink, cluster: Cluster) -> None:
    version = _deliver(sink, "billing-sync", RECORD, SECRET)

    def add_theirs(secret: dict[str, object]) -> None:
        secret["data"]["config.yaml"] = "eDogMQ=="  # type: ignore[index]
        secret["metadata"]["annotations"]["team.example.com/owner"] = "billing"  # type: ignore[index]
        secret["metadata"]["labels"]["team"] = "billing"  # type: ignore[index]

    version = cluster.server.modify("Secret", NAMESPACE, "pm-api-key-billing-sync", add_theirs)[
        "metadata"
    ]["resourceVersion"]
    other = Secret("another-secret-value")
    sink.write_secret("billing-sync", other, expected_version=version)
    stored = _stored(cluster, "pm-api-key-billing-sync")
    assert stored["data"]["config.yaml"] == "eDogMQ=="  # type: ignore[index]
    assert stored["metadata"]["annotations"]["team.example.com/owner"] == "billing"  # type: ignore[index]
    assert stored["metadata"]["labels"]["team"] == "billing"  # type: ignore[index]
    assert sink.read("billing-sync").secret_sha256 == other.sha256()


def test_a_custom_template_and_key(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    sink = open_sink(
        secret_name_template="{workspace}.pm-{credential}", secret_key="token", workspace="ACME_EU"
    )
    sink.write_secret("Billing_Sync", SECRET, expected_version=None)
    assert cluster.server.secret_data(NAMESPACE, "acme-eu.pm-billing-sync", "token") == (
        SECRET.reveal().encode()
    )
    assert sink.secret_name("Billing_Sync") == "acme-eu.pm-billing-sync"


# --- names and labels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credential", "name"),
    [
        ("billing-sync", "pm-api-key-billing-sync"),
        ("Billing_Sync", "pm-api-key-billing-sync"),
        ("reports.2026", "pm-api-key-reports-2026"),
        ("crm export (EU)", "pm-api-key-crm-export-eu"),
        ("--x--", "pm-api-key-x"),
        ("été", "pm-api-key-t"),
    ],
)
def test_secret_names_are_dns_safe(sink: KubernetesSink, credential: str, name: str) -> None:
    assert sink.secret_name(credential) == name
    assert dict(sink.check_names([credential])) == {}


def test_credentials_that_map_to_one_name_are_reported_for_both(sink: KubernetesSink) -> None:
    problems = sink.check_names(["billing_sync", "Billing-Sync", "crm"])
    assert set(problems) == {"billing_sync", "Billing-Sync"}
    assert "'Billing-Sync'" in problems["billing_sync"]
    assert "pm-api-key-billing-sync" in problems["Billing-Sync"]


def test_a_credential_with_no_usable_name_cannot_be_stored(
    open_sink: Callable[..., KubernetesSink],
) -> None:
    sink = open_sink(secret_name_template="{credential}")
    assert set(sink.check_names(["@@@", "ok"])) == {"@@@"}
    with pytest.raises(SinkNameError):
        sink.read("@@@")
    with pytest.raises(SinkNameError):
        sink.write_secret("", SECRET, expected_version=None)


def test_long_names_stay_within_253_and_distinct(sink: KubernetesSink, cluster: Cluster) -> None:
    first, second = "x" * 300 + "-one", "x" * 300 + "-two"
    assert len(sink.secret_name(first)) <= 253
    assert sink.secret_name(first) != sink.secret_name(second)
    assert dict(sink.check_names([first, second])) == {}
    _deliver(sink, first, replace(RECORD, key_name=first), SECRET)
    assert sink.read(first).record == replace(RECORD, key_name=first)


@pytest.mark.parametrize(
    "credential", ["x" * 100, "billing sync", "_billing", "billing-", "Über/Konto", "a" * 63]
)
def test_label_values_are_valid_and_the_annotation_keeps_the_exact_name(
    sink: KubernetesSink, cluster: Cluster, credential: str
) -> None:
    # The stand-in refuses an invalid label with 422, as the API does: this write proves it valid.
    _deliver(sink, credential, replace(RECORD, key_name=credential), SECRET)
    labels = _stored(cluster, sink.secret_name(credential))["metadata"]["labels"]  # type: ignore[index]
    assert labels["key-rotator.io/credential"] == label_value(credential)
    assert len(label_value(credential)) <= 63
    assert list(sink.list_credentials()) == [credential]


def test_distinct_odd_names_get_distinct_labels() -> None:
    assert label_value("a b") != label_value("a_b")
    assert label_value("a" * 64) != label_value("a" * 65)
    assert label_value("---") != label_value("...")


# --- ownership -----------------------------------------------------------------------------------


def test_a_secret_without_the_managed_by_label_is_never_taken_over(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    cluster.server.create_object(
        "Secret",
        NAMESPACE,
        {"metadata": {"name": "pm-api-key-billing-sync"}, "data": {"api-key": "b2xk"}},
    )
    with pytest.raises(SinkMetadataError) as caught:
        sink.read("billing-sync")
    message = str(caught.value)
    assert f"Secret {NAMESPACE}/pm-api-key-billing-sync" in message
    assert (
        "label it app.kubernetes.io/managed-by=key-rotator to let the rotator manage it" in message
    )
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert cluster.server.secret_data(NAMESPACE, "pm-api-key-billing-sync", "api-key") == b"old"
    assert list(sink.list_credentials()) == []


def test_a_secret_handed_over_by_label_is_managed(sink: KubernetesSink, cluster: Cluster) -> None:
    cluster.server.create_object(
        "Secret",
        NAMESPACE,
        {
            "metadata": {
                "name": "pm-api-key-billing-sync",
                "labels": {"app.kubernetes.io/managed-by": "key-rotator"},
            },
            "data": {"api-key": "b2xk"},
        },
    )
    state = sink.read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 == Secret("old").sha256()
    _deliver(sink, "billing-sync", RECORD, SECRET)
    assert list(sink.list_credentials()) == ["billing-sync"]


def test_a_secret_of_another_credential_or_workspace_is_not_trusted(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    # Without {workspace} in the template, two workspaces sharing a namespace share names.
    acme, other = open_sink(workspace="acme"), open_sink(workspace="globex")
    _deliver(acme, "billing-sync", RECORD, SECRET)
    with pytest.raises(SinkMetadataError, match="belongs to workspace 'acme'"):
        other.read("billing-sync")
    assert list(other.list_credentials()) == []
    cluster.server.modify(
        "Secret",
        NAMESPACE,
        "pm-api-key-billing-sync",
        lambda s: s["metadata"]["annotations"].update(
            {"key-rotator.io/credential": "Billing_Sync"}
        ),
    )
    with pytest.raises(SinkMetadataError, match="holds the credential 'Billing_Sync'"):
        acme.read("billing-sync")


@pytest.mark.parametrize(
    ("annotation", "value", "complaint"),
    [
        ("key-rotator.io/secret-sha256", "XYZ", "SHA-256"),
        ("key-rotator.io/expires", "tomorrow", "ISO 8601"),
        ("key-rotator.io/expires", "2026-11-27T03:00:00", "ISO 8601"),
        ("key-rotator.io/pending-key-id", "k9", "must come together"),
        ("key-rotator.io/record-format", "2", "reads '1'"),
        ("key-rotator.io/key-name", "crm@2026-11-27T03:00:00Z", "another credential"),
    ],
)
def test_metadata_that_cannot_be_trusted_is_a_metadata_error(
    sink: KubernetesSink, cluster: Cluster, annotation: str, value: str, complaint: str
) -> None:
    _deliver(sink, "billing-sync", RECORD, SECRET)
    cluster.server.modify(
        "Secret",
        NAMESPACE,
        "pm-api-key-billing-sync",
        lambda s: s["metadata"]["annotations"].update({annotation: value}),
    )
    with pytest.raises(SinkMetadataError, match=complaint) as caught:
        sink.read("billing-sync")
    assert value not in str(caught.value) or value in ("2", "k9")


def test_a_deleted_secret_is_a_conflict_for_a_writer_that_read_it(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    version = _deliver(sink, "billing-sync", RECORD, SECRET)
    cluster.server.delete_object("Secret", NAMESPACE, "pm-api-key-billing-sync")
    with pytest.raises(SinkConflictError, match="deleted"):
        sink.write_record("billing-sync", RECORD, expected_version=version)
    assert cluster.server.get_object("Secret", NAMESPACE, "pm-api-key-billing-sync") is None


def test_list_leaves_out_a_secret_whose_annotation_names_another_workspace(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    """The label selector is a filter of convenience (a label anyone may set); the annotation
    the sink wrote is what names a record's workspace, and a foreign record is never listed,
    so that a credential of another workspace is never taken for a missing one of this."""
    acme = open_sink(workspace="acme")
    _deliver(acme, "billing-sync", RECORD, SECRET)
    assert list(acme.list_credentials()) == ["billing-sync"]
    cluster.server.modify(
        "Secret",
        NAMESPACE,
        "pm-api-key-billing-sync",
        lambda s: s["metadata"]["annotations"].update({"key-rotator.io/workspace": "globex"}),
    )
    # The label still says acme, so the server returns it; the sink must not take it.
    assert list(acme.list_credentials()) == []


def test_list_credentials_pages_through_many_secrets(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    names = [f"app-{index:03d}" for index in range(260)]
    for name in names:
        cluster.server.create_object(
            "Secret",
            NAMESPACE,
            {
                "metadata": {
                    "name": f"pm-api-key-{name}",
                    "labels": {
                        "app.kubernetes.io/managed-by": "key-rotator",
                        "key-rotator.io/workspace": "acme",
                    },
                    "annotations": {
                        "key-rotator.io/credential": name,
                        "key-rotator.io/workspace": "acme",
                        "key-rotator.io/record-format": "1",
                    },
                }
            },
        )
    cluster.server.create_object("Secret", NAMESPACE, {"metadata": {"name": "unrelated"}})
    assert list(sink.list_credentials()) == names
    lists = cluster.server.requests_for("list", "secrets")
    assert len(lists) == 2
    assert lists[0].query["labelSelector"] == [
        "app.kubernetes.io/managed-by=key-rotator,key-rotator.io/workspace=acme"
    ]


def test_writes_of_different_credentials_from_many_threads(sink: KubernetesSink) -> None:
    credentials = [f"app-{index}" for index in range(16)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(credentials))

    def deliver(credential: str) -> None:
        try:
            barrier.wait()
            _deliver(sink, credential, replace(RECORD, key_name=credential), SECRET)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(c,)) for c in credentials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(sink.list_credentials()) == sorted(credentials)


# --- errors --------------------------------------------------------------------------------------


def _no_secrets_in(exc: BaseException, *tokens: str) -> None:
    text = str(exc)
    for token in (SECRET.reveal(), base64.b64encode(SECRET.reveal().encode()).decode(), *tokens):
        assert token not in text


def test_a_refused_token_is_a_permission_error(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    wrong = write_kubeconfig(cluster.directory / "wrong", cluster.server.url, "wrong-token-123")
    sink = open_sink(kubeconfig=wrong)
    with pytest.raises(SinkPermissionError, match="401 Unauthorized") as caught:
        sink.read("billing-sync")
    _no_secrets_in(caught.value, "wrong-token-123")
    with pytest.raises(SinkPermissionError) as write:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    _no_secrets_in(write.value, "wrong-token-123")


def test_rbac_refusals_are_permission_errors_naming_the_verb(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    nobody = open_sink(kubeconfig=cluster.identity("system:serviceaccount:rotator-test:x", []))
    with pytest.raises(SinkPermissionError, match="cannot get resource") as read:
        nobody.read("billing-sync")
    assert "HTTP 403 Forbidden" in str(read.value)
    with pytest.raises(SinkPermissionError, match="cannot list resource"):
        nobody.list_credentials()
    with pytest.raises(SinkPermissionError, match="cannot create resource") as write:
        nobody.write_secret("billing-sync", SECRET, expected_version=None)
    _no_secrets_in(write.value)


@pytest.mark.parametrize("code", [500, 503, 429])
def test_a_server_error_leaves_the_state_unknown(
    sink: KubernetesSink, cluster: Cluster, code: int
) -> None:
    version = _deliver(sink, "billing-sync", RECORD, SECRET)
    cluster.server.fail_next(code, "InternalError", verbs={"patch"})
    with pytest.raises(SinkUnavailableError) as caught:
        sink.write_secret("billing-sync", Secret("other"), expected_version=version)
    assert caught.value.state_unknown
    assert f"HTTP {code}" in str(caught.value)


def test_another_refusal_is_a_sink_error(sink: KubernetesSink, cluster: Cluster) -> None:
    cluster.server.fail_next(422, "Invalid", verbs={"create"})
    with pytest.raises(SinkError) as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert type(caught.value) is SinkError
    assert not caught.value.state_unknown


def test_a_timeout_is_unavailable(
    open_sink: Callable[..., KubernetesSink], cluster: Cluster
) -> None:
    sink = open_sink(request_timeout=timedelta(seconds=0.3))
    cluster.server.delay_next(1.0, verbs={"create"}, after_applying=True)
    with pytest.raises(SinkUnavailableError, match="no answer") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert caught.value.state_unknown
    _no_secrets_in(caught.value)
    # The write landed: the next read settles it.
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()


def test_describe_and_repr_name_the_place_not_the_token(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    for text in (sink.describe(), repr(sink)):
        assert "admin-token" not in text
        assert NAMESPACE in text
    assert sink.describe().startswith(f"kubernetes:{cluster.server.url}")


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"secret_name_template": "PM_{credential}"}, "not a valid Secret name"),
        ({"secret_name_template": "pm-{name}"}, "unknown placeholders"),
        ({"secret_name_template": "pm-{credential"}, "not a valid template"),
        ({"secret_key": "api key"}, "not a valid data key"),
        ({"restart": [("billing-*", [("Pod", "web")])]}, "not one of"),
        ({"restart": [("billing-*", [("Deployment", "Web")])]}, "not a valid workload name"),
        ({"restart": [("", [("Deployment", "web")])]}, "empty credential pattern"),
        ({"rollout_timeout": timedelta(0)}, "must be positive"),
        ({"namespace": "Team_A"}, "not a valid namespace"),
    ],
)
def test_bad_settings_are_config_errors(
    open_sink: Callable[..., KubernetesSink], overrides: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        open_sink(**overrides)


def test_a_missing_or_broken_kubeconfig_is_a_config_error(
    open_sink: Callable[..., KubernetesSink], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        open_sink(kubeconfig=tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    with pytest.raises(ConfigError, match="cannot load"):
        open_sink(kubeconfig=broken)


def test_no_configuration_anywhere_is_a_config_error(
    open_sink: Callable[..., KubernetesSink], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no Kubernetes configuration") as caught:
        open_sink(kubeconfig=None, service_account_dir=tmp_path / "no-sa")
    assert "ROTATOR_SINK" in str(caught.value)


def test_kubeconfig_from_the_environment(
    open_sink: Callable[..., KubernetesSink],
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{cluster.kubeconfig}")
    sink = open_sink(kubeconfig=None, service_account_dir=tmp_path / "no-sa")
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()


def test_in_cluster_with_the_service_account_over_https(
    tls_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_account = tmp_path / "serviceaccount"
    service_account.mkdir()
    token = "in-cluster-token-0123"
    tls_cluster.server.add_token(
        token, "system:serviceaccount:team-a:rotator", [Rule.of({"*"}, {"secrets"}, {""})]
    )
    (service_account / "token").write_text(token)
    (service_account / "ca.crt").write_bytes(Path(str(tls_cluster.ca_file)).read_bytes())
    (service_account / "namespace").write_text("team-a\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(tls_cluster.server.port))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "never-read"))
    sink = KubernetesSink(namespace=None, workspace="acme", service_account_dir=service_account)
    try:
        assert sink.namespace == "team-a"
        sink.write_secret("billing-sync", SECRET, expected_version=None)
        assert tls_cluster.server.secret_data("team-a", "pm-api-key-billing-sync", "api-key") == (
            SECRET.reveal().encode()
        )
        assert tls_cluster.server.requests[-1].user == "system:serviceaccount:team-a:rotator"
        assert sink.describe().startswith("kubernetes:https://127.0.0.1:")
    finally:
        sink.close()


def test_the_namespace_defaults_to_default_outside_a_pod(
    open_sink: Callable[..., KubernetesSink], tmp_path: Path
) -> None:
    assert open_sink(namespace=None, service_account_dir=tmp_path / "no-sa").namespace == "default"


def test_without_the_extra_the_sink_names_the_pip_install() -> None:
    # A fresh interpreter where `import lightkube` fails, as it does without the extra.
    program = (
        "import sys\n"
        "sys.modules['lightkube'] = None\n"
        "from rotator.errors import ConfigError\n"
        "from rotator.sinks.kubernetes import KubernetesSink\n"
        "from rotator.locks.lease import LeaseLock\n"
        "for make in (lambda: KubernetesSink(namespace='x', workspace='w'),\n"
        "             lambda: LeaseLock(namespace='x', name='n', holder_identity='h')):\n"
        "    try:\n"
        "        make()\n"
        "    except ConfigError as exc:\n"
        "        print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert lines == [
        "ROTATOR_SINK: the kubernetes sink needs its extra: pip install 'key-rotator[kubernetes]'",
        "ROTATOR_LOCK: the lease lock needs its extra: pip install 'key-rotator[kubernetes]'",
    ]


# --- requests: retries of reads, several kubeconfig files -----------------------------------------


def test_a_read_that_got_no_answer_is_tried_again_and_a_write_is_not(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    cluster.server.drop_next_answer(verbs={"get"})
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()
    reads = cluster.server.requests_for("get", "secrets")
    assert [r.code for r in reads] == [-1, 200]
    cluster.server.drop_next_answer(verbs={"patch"})
    version = sink.read("billing-sync").version
    with pytest.raises(SinkUnavailableError):
        sink.write_secret("billing-sync", Secret("other-value"), expected_version=version)
    assert len(cluster.server.requests_for("patch", "secrets")) == 1


def test_reads_that_never_get_an_answer_give_up_after_three_tries(
    sink: KubernetesSink, cluster: Cluster
) -> None:
    for _ in range(3):
        cluster.server.drop_next_answer(verbs={"get"})
    with pytest.raises(SinkUnavailableError, match="no answer"):
        sink.read("billing-sync")
    assert len(cluster.server.requests_for("get", "secrets")) == 3


def test_kubeconfig_files_listed_in_the_environment_are_merged(
    open_sink: Callable[..., KubernetesSink],
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As kubectl merges KUBECONFIG: the first file to name an entry (or current-context) wins.
    whole = json.loads(cluster.kubeconfig.read_text())
    first = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "stand-in",
        "contexts": whole["contexts"],
        "users": [{"name": "tester", "user": {"tokenFile": "token"}}],  # relative to its file
        "clusters": [],
    }
    second = {**whole, "current-context": "elsewhere", "users": [{"name": "tester", "user": {}}]}
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "token").write_text("admin-token")
    (tmp_path / "one" / "config").write_text(json.dumps(first))
    (tmp_path / "second").write_text(json.dumps(second))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'one' / 'config'}:{tmp_path / 'second'}")
    sink = open_sink(kubeconfig=None, service_account_dir=tmp_path / "no-sa")
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert cluster.server.requests[-1].user == "admin"
