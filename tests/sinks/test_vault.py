"""The Vault sink's own behaviour, against a real OpenBao server.

What runs against real OpenBao (``bao server -dev``): KV v2 reads and writes, check-and-set on
data and on metadata, versions, custom metadata, listing, AppRole login, token expiry and
revocation, the Kubernetes auth method, namespaces, https with a CA bundle. Two things stand in:
the Kubernetes TokenReview API behind OpenBao's Kubernetes auth (no kube-apiserver runs here),
and a loopback proxy in front of OpenBao that loses an answer, lets another writer slip in
between the sink's check and its write, or hides OpenBao's metadata versions to show the sink
the metadata API of HashiCorp Vault. A few error mappings no real server can be made to produce
on demand (5xx, 429, a body that is not JSON) use ``httpx.MockTransport``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
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
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import Sink
from rotator.sinks.vault import METADATA_PREFIX, VaultSink
from tests.servers.openbao import OpenBao, sink_policy
from tests.servers.standins import AnswerDroppingProxy, Seen, TokenReviewStandIn

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
OTHER_SECRET = Secret("pm-key-another-one-9876543210")
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
PATH = "key-rotator/acme/billing-sync"
# Any certificate will do: OpenBao's Kubernetes auth wants one for its Kubernetes API host, which
# here is the plain-http TokenReview stand-in (generated once; its key was thrown away).
STAND_IN_KUBERNETES_CA = """-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUYD2y/4y8jQxohssaYHSPaN8xWhkwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWc3RhbmQtaW4ta3ViZXJuZXRlcy1jYTAgFw0yNjEyMDEwOTEy
MjFaGA8yMTI2MTEwNzA5MTIyMVowITEfMB0GA1UEAwwWc3RhbmQtaW4ta3ViZXJu
ZXRlcy1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABCnFipabWolkDe25Wk3f
8YxMlCcaDoHnfrhcj/ewuVUpjPN9ngjgWuePGWeaZpyIiapgi5NxU/9PcRRO/7H4
z0+jUzBRMB0GA1UdDgQWBBSOqavAHy9qEMB3bV6ySuW6BQJKfzAfBgNVHSMEGDAW
gBSOqavAHy9qEMB3bV6ySuW6BQJKfzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0gAMEUCIQC9S09tAh4bIMs4+Y112/ju8z7mxurYE4lB8KDAMur8AAIgPWha
a0lqFH3jG7I4ckFw0Et3n031gEthbs9vtDfbrdg=
-----END CERTIFICATE-----
"""


@dataclass
class Vault:
    """One test's corner of the server: a fresh mount, the sink policy, a proxy in front."""

    bao: OpenBao
    mount: str
    policy: str
    proxy: AnswerDroppingProxy
    namespace: str | None = None
    opened: list[VaultSink] = field(default_factory=list)

    def sink(self, *, direct: bool = False, **settings: Any) -> VaultSink:
        settings.setdefault("mount", self.mount)
        settings.setdefault("workspace", "acme")
        settings.setdefault("namespace", self.namespace)
        if settings.get("auth", "token") == "token":
            settings.setdefault("token_provider", self.token_provider())
        addr = self.bao.addr if direct else self.proxy.url
        sink = VaultSink(addr, timeout_seconds=5.0, **settings)
        self.opened.append(sink)
        return sink

    def root(self) -> Callable[[], Secret]:
        """The root token: for paths outside what the sink policy covers."""
        token = Secret(self.bao.root_token)
        return lambda: token

    def token_provider(self, *policies: str) -> Callable[[], Secret]:
        token = Secret(
            self.bao.new_token(list(policies or [self.policy]), namespace=self.namespace)
        )
        return lambda: token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.bao.ok(method, f"{self.mount}/{path}", json=body, namespace=self.namespace)

    def data(self, path: str = PATH, version: int | None = None) -> dict[str, Any] | None:
        suffix = "" if version is None else f"?version={version}"
        response = self.bao.request(
            "GET", f"{self.mount}/data/{path}{suffix}", namespace=self.namespace
        )
        if response.status_code == 404:
            return None
        return dict(response.json()["data"]["data"] or {})

    def metadata(self, path: str = PATH) -> dict[str, Any]:
        return dict(self.call("GET", f"metadata/{path}")["data"])

    def logins(self, auth_mount: str) -> list[Seen]:
        return [r for r in self.proxy.requests if r.path == f"/v1/auth/{auth_mount}/login"]


@pytest.fixture
def vault(openbao: OpenBao) -> Iterator[Vault]:
    mount = openbao.new_mount()
    openbao.put_policy(f"sink-{mount}", sink_policy(mount))
    made = Vault(openbao, mount, f"sink-{mount}", AnswerDroppingProxy(openbao.addr))
    yield made
    for sink in made.opened:
        sink.close()
    made.proxy.stop()


def deliver(sink: Sink, credential: str, record: SinkRecord, secret: Secret) -> str | None:
    """The rotation's two-phase delivery: pending record, secret, current record."""
    state = sink.read(credential)
    pending = (state.record or SinkRecord()).with_pending(record.key_id or "", secret.sha256())
    version = sink.write_record(credential, pending, expected_version=state.version)
    version = sink.write_secret(credential, secret, expected_version=version)
    return sink.write_record(credential, record, expected_version=version)


def is_write(kind: str) -> Callable[[str, str], bool]:
    return lambda method, path: method == "POST" and f"/{kind}/" in path


# -- what it writes where --------------------------------------------------------------------


def test_two_deliveries_leave_the_previous_version_readable(vault: Vault) -> None:
    sink = vault.sink()
    deliver(sink, "billing-sync", RECORD, SECRET)
    second = replace(
        RECORD,
        key_id="k-newer",
        key_name="billing-sync@2027-11-27T03:00:00Z",
        secret_sha256=OTHER_SECRET.sha256(),
        previous_key_id="k-new",
    )
    deliver(sink, "billing-sync", second, OTHER_SECRET)

    assert vault.data() == {"api_key": OTHER_SECRET.reveal()}
    assert vault.data(version=1) == {"api_key": SECRET.reveal()}
    metadata = vault.metadata()
    assert metadata["current_version"] == 2
    assert all(not v["destroyed"] and not v["deletion_time"] for v in metadata["versions"].values())


def test_custom_metadata_holds_the_record_and_never_the_secret(vault: Vault) -> None:
    deliver(vault.sink(), "billing-sync", RECORD, SECRET)
    custom = vault.metadata()["custom_metadata"]

    assert all(key.startswith(METADATA_PREFIX) for key in custom)
    assert all(isinstance(value, str) for value in custom.values())
    assert not any(SECRET.reveal() in value for value in custom.values())
    write_id = custom.pop("key-rotator-write-id")
    assert len(write_id) == 16
    assert custom == {
        "key-rotator-credential": "billing-sync",
        "key-rotator-workspace": "acme",
        "key-rotator-key-id": "k-new",
        "key-rotator-key-name": "billing-sync@2026-11-27T03:00:00Z",
        "key-rotator-expires": "2028-11-26T03:00:00Z",
        "key-rotator-delivered-at": "2026-11-27T03:00:01.250000Z",
        "key-rotator-secret-sha256": SECRET.sha256(),
        "key-rotator-previous-key-id": "k-old",
        "key-rotator-previous-secret-sha256": "b" * 64,
        "key-rotator-retire-previous-after": "2026-11-28T03:00:01Z",
    }


def test_other_fields_and_other_metadata_are_kept(vault: Vault) -> None:
    vault.call("POST", f"data/{PATH}", {"data": {"url": "https://pm.example", "api_key": "old"}})
    vault.call("POST", f"metadata/{PATH}", {"custom_metadata": {"owner": "team-billing"}})
    sink = vault.sink()
    deliver(sink, "billing-sync", RECORD, SECRET)

    assert vault.data() == {"url": "https://pm.example", "api_key": SECRET.reveal()}
    assert vault.metadata()["custom_metadata"]["owner"] == "team-billing"
    assert sink.read("billing-sync").record == RECORD


def test_the_field_is_configurable(vault: Vault) -> None:
    sink = vault.sink(field="token")
    deliver(sink, "billing-sync", RECORD, SECRET)
    assert vault.data() == {"token": SECRET.reveal()}
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()


def test_a_soft_deleted_version_reads_as_no_secret_and_moves_the_version(vault: Vault) -> None:
    sink = vault.sink()
    deliver(sink, "billing-sync", RECORD, SECRET)
    before = sink.read("billing-sync")
    vault.call("DELETE", f"data/{PATH}")

    after = sink.read("billing-sync")
    assert after.secret_sha256 is None
    assert after.record == RECORD
    assert after.version != before.version
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", SECRET, expected_version=before.version)
    sink.write_secret("billing-sync", OTHER_SECRET, expected_version=after.version)
    assert vault.data() == {"api_key": OTHER_SECRET.reveal()}


def test_a_secret_deleted_and_created_again_has_another_version(vault: Vault) -> None:
    sink = vault.sink()
    stale = sink.write_record("billing-sync", RECORD, expected_version=None)
    vault.call("DELETE", f"metadata/{PATH}")
    sink.write_record("billing-sync", RECORD, expected_version=None)
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", SECRET, expected_version=stale)


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("key-rotator-secret-sha256", "not-a-hash", "key-rotator-secret-sha256 is not"),
        ("key-rotator-expires", "tomorrow", "key-rotator-expires is not"),
        ("key-rotator-expires", "2026-01-01T00:00:00", "key-rotator-expires is not"),
        ("key-rotator-pending-key-id", "k9", "must come together"),
        ("key-rotator-credential", "crm-export", "another credential"),
        ("key-rotator-workspace", "other", "workspace 'other'"),
        ("key-rotator-key-name", "crm-export@2026-01-01T00:00:00Z", "a key of another"),
    ],
)
def test_metadata_that_cannot_be_trusted_is_refused(
    vault: Vault, key: str, value: str, complaint: str
) -> None:
    sink = vault.sink()
    sink.write_record("billing-sync", RECORD, expected_version=None)
    custom = vault.metadata()["custom_metadata"] | {key: value}
    vault.call("POST", f"metadata/{PATH}", {"custom_metadata": custom})
    with pytest.raises(SinkMetadataError, match=complaint) as caught:
        sink.read("billing-sync")
    if key in ("key-rotator-secret-sha256", "key-rotator-expires"):
        assert value not in str(caught.value)  # the key is named, never its content


def test_a_record_without_its_credential_is_refused(vault: Vault) -> None:
    vault.call("POST", f"metadata/{PATH}", {"custom_metadata": {"key-rotator-key-id": "k1"}})
    with pytest.raises(SinkMetadataError, match="key-rotator-credential is missing"):
        vault.sink().read("billing-sync")


def test_a_secret_field_that_is_not_a_string_is_refused(vault: Vault) -> None:
    vault.call("POST", f"data/{PATH}", {"data": {"api_key": 12345}})
    with pytest.raises(SinkMetadataError, match="not a string"):
        vault.sink().read("billing-sync")


def test_someone_elses_secret_at_the_path_reads_as_no_record(vault: Vault) -> None:
    vault.call("POST", f"data/{PATH}", {"data": {"password": "x"}})
    state = vault.sink().read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 is None
    assert state.version is not None
    assert vault.sink().list_credentials() == []


# -- check-and-set ---------------------------------------------------------------------------


def test_a_data_write_after_another_writers_is_refused(vault: Vault) -> None:
    sink = vault.sink()
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    vault.call("POST", f"data/{PATH}", {"data": {"api_key": "a person's edit"}})
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", OTHER_SECRET, expected_version=version)
    assert vault.data() == {"api_key": "a person's edit"}


def test_a_data_write_that_slips_in_loses_ours_to_check_and_set(vault: Vault) -> None:
    """Another writer's data lands between the sink's check and its write: Vault's ``cas``
    refuses the sink's write, which changes nothing."""
    sink = vault.sink()
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    vault.proxy.before_next(
        is_write("data"),
        lambda: vault.call(
            "POST", f"data/{PATH}", {"options": {"cas": 1}, "data": {"api_key": "theirs"}}
        ),
    )
    with pytest.raises(SinkConflictError, match="check-and-set"):
        sink.write_secret("billing-sync", OTHER_SECRET, expected_version=version)
    assert vault.data() == {"api_key": "theirs"}
    assert vault.metadata()["current_version"] == 2


def test_a_metadata_write_that_slips_in_loses_ours_to_metadata_cas(vault: Vault) -> None:
    """OpenBao has check-and-set on metadata too; the sink uses it."""
    sink = vault.sink()
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    theirs = {"key-rotator-credential": "billing-sync", "key-rotator-key-id": "theirs"}
    vault.proxy.before_next(
        is_write("metadata"),
        lambda: vault.call("POST", f"metadata/{PATH}", {"custom_metadata": theirs}),
    )
    with pytest.raises(SinkConflictError, match="check-and-set"):
        sink.write_record("billing-sync", replace(RECORD, key_id="ours"), expected_version=version)
    assert vault.metadata()["custom_metadata"] == theirs


def test_metadata_changed_beside_a_data_write_is_reported_as_unknown(vault: Vault) -> None:
    """The two halves have separate check-and-set: a metadata change landing between the check
    and the data write is found by the re-read after it, and the outcome is 'read again'."""
    sink = vault.sink()
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    theirs = vault.metadata()["custom_metadata"] | {"key-rotator-key-id": "theirs"}
    vault.proxy.before_next(
        is_write("data"),
        lambda: vault.call("POST", f"metadata/{PATH}", {"custom_metadata": theirs}),
    )
    with pytest.raises(SinkUnavailableError, match="another writer") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=version)
    assert caught.value.state_unknown
    state = sink.read("billing-sync")
    assert state.secret_sha256 == SECRET.sha256()
    assert state.record is not None and state.record.key_id == "theirs"


def test_data_changed_beside_a_metadata_write_is_reported_as_unknown(vault: Vault) -> None:
    sink = vault.sink()
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    vault.proxy.before_next(
        is_write("metadata"),
        lambda: vault.call("POST", f"data/{PATH}", {"data": {"api_key": "theirs"}}),
    )
    with pytest.raises(SinkUnavailableError, match="another writer"):
        sink.write_record("billing-sync", RECORD, expected_version=version)
    assert sink.read("billing-sync").record == RECORD
    assert vault.data() == {"api_key": "theirs"}


def test_without_metadata_versions_every_write_still_moves_the_version(vault: Vault) -> None:
    """HashiCorp Vault's metadata has no version and takes no ``metadata_cas``: shown here by a
    proxy that hides both. The write id in the custom metadata still moves the token on."""
    vault.proxy.hide_fields = frozenset(
        {"current_metadata_version", "metadata_cas_required", "metadata_cas"}
    )
    sink = vault.sink()
    seen = {sink.read("billing-sync").version}
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    seen.add(version)
    same_again = sink.write_record("billing-sync", RECORD, expected_version=version)
    seen.add(same_again)
    assert len(seen) == 3
    with pytest.raises(SinkConflictError):
        sink.write_record("billing-sync", RECORD, expected_version=version)
    metadata_writes = [
        r.json() for r in vault.proxy.requests if is_write("metadata")(r.method, r.path)
    ]
    # Creating sends metadata_cas 0 (Vault ignores it); an update, knowing no version, sends none.
    assert [("metadata_cas" in body) for body in metadata_writes] == [True, False]


# -- names and paths -------------------------------------------------------------------------


def test_names_are_escaped_into_one_path_segment(vault: Vault) -> None:
    sink = vault.sink()
    credential = "team/billing ünï..v2"
    deliver(
        sink, credential, replace(RECORD, key_name=f"{credential}@2026-11-27T03:00:00Z"), SECRET
    )
    assert vault.data("key-rotator/acme/team_billing__n_..v2") == {"api_key": SECRET.reveal()}
    assert sink.list_credentials() == [credential]


def test_check_names_reports_both_sides_of_a_collision_and_refuses_dot_segments(
    vault: Vault,
) -> None:
    sink = vault.sink()
    problems = sink.check_names(["a/b", "a_b", "a b", "..", ".", "", "fine", "x" * 600])
    assert set(problems) == {"a/b", "a_b", "a b", "..", ".", "", "x" * 600}
    assert "'a_b'" in problems["a/b"] and "'a b'" in problems["a/b"]
    assert "'..'" in problems[".."]
    with pytest.raises(SinkNameError):
        sink.read("..")
    with pytest.raises(SinkNameError):
        sink.write_secret("..", SECRET, expected_version=None)


def test_a_deeper_template_is_listed(vault: Vault) -> None:
    sink = vault.sink(
        path_template="apps/{credential}/{workspace}/pm-key", token_provider=vault.root()
    )
    deliver(sink, "billing-sync", RECORD, SECRET)
    crm = replace(RECORD, key_name="crm-export@2026-11-27T03:00:00Z")
    deliver(sink, "crm-export", crm, OTHER_SECRET)
    vault.call("POST", "data/apps/strangers/acme/pm-key", {"data": {"api_key": "x"}})
    vault.call("POST", "data/apps/billing-sync/acme/other", {"data": {"api_key": "x"}})
    vault.call("POST", "data/apps/loose", {"data": {"api_key": "x"}})

    assert vault.data("apps/billing-sync/acme/pm-key") == {"api_key": SECRET.reveal()}
    assert sink.list_credentials() == ["billing-sync", "crm-export"]
    assert "apps/{credential}/acme/pm-key" in sink.describe()


def test_workspaces_sharing_a_path_never_trust_each_others_records(vault: Vault) -> None:
    ours = vault.sink(
        path_template="shared/{credential}", workspace="acme", token_provider=vault.root()
    )
    theirs = vault.sink(
        path_template="shared/{credential}", workspace="globex", token_provider=vault.root()
    )
    deliver(ours, "billing-sync", RECORD, SECRET)
    assert ours.list_credentials() == ["billing-sync"]
    assert theirs.list_credentials() == []
    with pytest.raises(SinkMetadataError, match="workspace 'acme'"):
        theirs.read("billing-sync")


def test_a_record_copied_to_another_path_is_not_listed(vault: Vault) -> None:
    sink = vault.sink()
    sink.write_record("billing-sync", RECORD, expected_version=None)
    custom = vault.metadata()["custom_metadata"]
    vault.call("POST", "metadata/key-rotator/acme/copy", {"custom_metadata": custom})
    assert sink.list_credentials() == ["billing-sync"]


def test_a_fixed_path_holds_one_credential_and_refuses_a_second(vault: Vault) -> None:
    # A credential route's target may name one fixed path (the settings allow it only there).
    sink = vault.sink(path_template="apps/billing/pm-key", token_provider=vault.root())
    assert sink.list_credentials() == []
    sink.write_record("billing-sync", RECORD, expected_version=None)
    assert vault.metadata("apps/billing/pm-key")["custom_metadata"]["key-rotator-key-id"] == "k-new"
    assert sink.list_credentials() == ["billing-sync"]
    assert sink.read("billing-sync").record == RECORD
    assert set(sink.check_names(["billing-sync", "crm"])) == {"billing-sync", "crm"}


def test_a_template_at_the_root_of_the_mount_lists_the_mount(vault: Vault) -> None:
    sink = vault.sink(path_template="{workspace}-{credential}", token_provider=vault.root())
    sink.write_record("billing-sync", RECORD, expected_version=None)
    assert vault.metadata("acme-billing-sync")["custom_metadata"]["key-rotator-key-id"] == "k-new"
    assert sink.list_credentials() == ["billing-sync"]


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("key-rotator/{name}/{credential}", "got {name}"),
        ("key-rotator/{credential!r}", "only {workspace} and {credential}"),
        ("key-rotator/{credential:>10}", "only {workspace} and {credential}"),
        ("/key-rotator/{credential}", "leading or trailing"),
        ("key-rotator//{credential}", "empty"),
        ("key-rotator/../{credential}", "'..'"),
        ("key-rotator/{credential", "not a valid template"),
    ],
)
def test_a_bad_template_is_a_config_error(template: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match="ROTATOR_SINK_VAULT_PATH") as caught:
        VaultSink("http://127.0.0.1:8200", path_template=template, token_provider=lambda: SECRET)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"addr": "http://vault.example.com:8200"}, "https unless the host is loopback"),
        ({"addr": "https://user:pw@vault.example.com"}, "no user, password"),
        ({"addr": "ftp://vault.example.com"}, "http(s) URL"),
        ({"addr": "https://vault.example.com/?x=1"}, "query"),
        ({"mount": "../sys"}, "ROTATOR_SINK_VAULT_MOUNT"),
        ({"mount": "my mount"}, "ROTATOR_SINK_VAULT_MOUNT"),
        ({"field": ""}, "ROTATOR_SINK_VAULT_FIELD"),
        ({"token_provider": None}, "ROTATOR_SINK_VAULT_TOKEN"),
        ({"auth": "approle"}, "ROTATOR_SINK_VAULT_ROLE_ID"),
        ({"auth": "kubernetes"}, "ROTATOR_SINK_VAULT_ROLE"),
        ({"auth": "ldap"}, "ROTATOR_SINK_VAULT_AUTH"),
        ({"cacert": Path("/nonexistent/ca.pem")}, "ROTATOR_SINK_VAULT_CACERT"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], complaint: str) -> None:
    values: dict[str, Any] = {"addr": "http://127.0.0.1:8200", "token_provider": lambda: SECRET}
    values.update(settings)
    with pytest.raises(ConfigError) as caught:
        VaultSink(values.pop("addr"), **values)
    assert complaint in str(caught.value)


def test_https_and_ipv6_loopback_addresses_are_accepted() -> None:
    for addr in ("https://vault.example.com:8200/", "http://[::1]:8200", "http://localhost"):
        sink = VaultSink(addr, token_provider=lambda: SECRET)
        assert sink.describe().startswith(f"vault:{addr.rstrip('/')}/v1/secret/data/")
        sink.close()


# -- auth ------------------------------------------------------------------------------------


def approle_sink(
    vault: Vault, *, policies: list[str] | None = None, **token_settings: Any
) -> tuple[VaultSink, str]:
    clock = token_settings.pop("_clock", None)
    extra = {} if clock is None else {"clock": clock}
    mount = vault.bao.enable_auth("approle")
    role_id, secret_id = vault.bao.approle(
        mount, "rotator", policies or [vault.policy], **token_settings
    )
    sink = vault.sink(
        auth="approle", role_id=role_id, secret_id=Secret(secret_id), auth_mount=mount, **extra
    )
    return sink, mount


def test_approle_logs_in_and_revokes_its_token_at_close(vault: Vault) -> None:
    sink, mount = approle_sink(vault)
    deliver(sink, "billing-sync", RECORD, SECRET)
    assert vault.data() == {"api_key": SECRET.reveal()}

    (login,) = vault.logins(mount)
    assert login.method == "POST"
    assert set(login.json()) == {"role_id", "secret_id"}
    token = vault.proxy.requests[-1].headers["X-Vault-Token"]
    assert token not in repr(sink) and token not in sink.describe()
    assert vault.bao.token_is_valid(token)
    sink.close()
    assert not vault.bao.token_is_valid(token)


def test_a_refused_approle_login_is_a_permission_error_without_the_secret_id(
    vault: Vault,
) -> None:
    mount = vault.bao.enable_auth("approle")
    role_id, _ = vault.bao.approle(mount, "rotator", [vault.policy])
    wrong = "11111111-2222-3333-4444-555555555555"
    sink = vault.sink(auth="approle", role_id=role_id, secret_id=Secret(wrong), auth_mount=mount)
    with pytest.raises(SinkPermissionError, match=f"auth/{mount}/login") as caught:
        sink.read("billing-sync")
    assert wrong not in str(caught.value) and role_id not in str(caught.value)


def wait_until_invalid(bao: OpenBao, token: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while bao.token_is_valid(token):
        assert time.monotonic() < deadline, "the short-lived token never expired"
        time.sleep(0.1)


def test_an_expired_login_token_is_replaced_mid_pass(vault: Vault) -> None:
    """The token expires between two requests of one pass; the sink's clock is held still, so
    only the server's 403 can tell it: it logs in again and retries the request once."""
    sink, mount = approle_sink(vault, token_ttl="1s", token_max_ttl="1s", _clock=lambda: 0.0)
    version = sink.write_record(
        "billing-sync", RECORD.with_pending("k", SECRET.sha256()), expected_version=None
    )
    first = vault.proxy.requests[-1].headers["X-Vault-Token"]
    wait_until_invalid(vault.bao, first)

    sink.write_secret("billing-sync", SECRET, expected_version=version)
    assert vault.data() == {"api_key": SECRET.reveal()}
    assert len(vault.logins(mount)) == 2
    refused = [r for r in vault.proxy.requests if r.status == 403]
    assert refused and refused[0].headers["X-Vault-Token"] == first


def test_a_revoked_login_token_is_replaced(vault: Vault) -> None:
    sink, mount = approle_sink(vault)
    sink.write_record("billing-sync", RECORD, expected_version=None)
    vault.bao.revoke_logins(mount)
    assert sink.read("billing-sync").record == RECORD
    assert len(vault.logins(mount)) == 2


def test_a_login_token_near_its_ttl_is_replaced_before_a_request(vault: Vault) -> None:
    now = [0.0]
    sink, mount = approle_sink(vault, token_ttl="1h", _clock=lambda: now[0])
    sink.write_record("billing-sync", RECORD, expected_version=None)
    now[0] = 3600 - 29  # inside the last 30 seconds
    assert sink.read("billing-sync").record == RECORD
    assert len(vault.logins(mount)) == 2
    assert not [r for r in vault.proxy.requests if r.status == 403]


def test_a_policy_refusal_is_a_permission_error_after_one_fresh_login(vault: Vault) -> None:
    vault.bao.put_policy(f"nothing-{vault.mount}", 'path "sys/nothing" { capabilities = ["read"] }')
    sink, mount = approle_sink(vault, policies=[f"nothing-{vault.mount}"])
    with pytest.raises(SinkPermissionError, match="HTTP 403"):
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert len(vault.logins(mount)) == 2
    # That fresh token was refused too: policy, not expiry. No login at each further request.
    with pytest.raises(SinkPermissionError, match="HTTP 403"):
        sink.read("billing-sync")
    assert len(vault.logins(mount)) == 2


def test_a_token_file_rewritten_is_read_again_after_a_refusal(vault: Vault, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    first = vault.bao.new_token([vault.policy])
    token_file.write_text(first + "\n")
    sink = vault.sink(token_provider=lambda: Secret(token_file.read_text().strip()))
    sink.write_record("billing-sync", RECORD, expected_version=None)

    vault.bao.ok("POST", "auth/token/revoke", json={"token": first})
    token_file.write_text(vault.bao.new_token([vault.policy]))
    assert sink.read("billing-sync").record == RECORD

    vault.bao.ok("POST", "auth/token/revoke", json={"token": token_file.read_text()})
    with pytest.raises(SinkPermissionError) as caught:
        sink.read("billing-sync")
    assert token_file.read_text() not in str(caught.value)


def test_prepare_reads_the_token_file_again(vault: Vault, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(vault.bao.new_token([vault.policy]))
    sink = vault.sink(token_provider=lambda: Secret(token_file.read_text()))
    sink.read("billing-sync")
    second = vault.bao.new_token([vault.policy])
    token_file.write_text(second)
    sink.prepare()
    sink.read("billing-sync")
    assert vault.proxy.requests[-1].headers["X-Vault-Token"] == second


def test_an_unreadable_token_file_is_a_permission_error(vault: Vault, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    sink = vault.sink(token_provider=lambda: Secret(missing.read_text()))
    with pytest.raises(SinkPermissionError, match="cannot read the Vault token"):
        sink.read("billing-sync")


def fake_service_account_jwt(name: str) -> str:
    """A JWT-shaped token; OpenBao reads its claims, the TokenReview stand-in vouches for it."""

    def part(document: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:ops:key-rotator",
        "kubernetes.io/serviceaccount/namespace": "ops",
        "kubernetes.io/serviceaccount/service-account.name": "key-rotator",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
        "jti": name,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{part({'sig': name})}"


@pytest.fixture
def kubernetes_auth(vault: Vault) -> Iterator[tuple[str, TokenReviewStandIn]]:
    """OpenBao's real Kubernetes auth method, its Kubernetes API being the TokenReview
    stand-in; a role ``rotator`` for the service account ``ops/key-rotator``."""
    standin = TokenReviewStandIn()
    mount = vault.bao.enable_auth("kubernetes")
    vault.bao.ok(
        "POST",
        f"auth/{mount}/config",
        json={
            "kubernetes_host": standin.url,
            "kubernetes_ca_cert": STAND_IN_KUBERNETES_CA,
            "token_reviewer_jwt": "reviewer-jwt",
            "disable_local_ca_jwt": True,
        },
    )
    vault.bao.ok(
        "POST",
        f"auth/{mount}/role/rotator",
        json={
            "bound_service_account_names": ["key-rotator"],
            "bound_service_account_namespaces": ["ops"],
            "token_policies": [vault.policy],
        },
    )
    yield mount, standin
    standin.stop()


def test_kubernetes_auth_logs_in_with_the_pods_service_account_token(
    vault: Vault, kubernetes_auth: tuple[str, TokenReviewStandIn], tmp_path: Path
) -> None:
    mount, standin = kubernetes_auth
    jwt_path = tmp_path / "serviceaccount" / "token"
    jwt_path.parent.mkdir()
    first = fake_service_account_jwt("first")
    standin.accounts[first] = ("ops", "key-rotator", "uid-1")
    jwt_path.write_text(first + "\n")
    sink = vault.sink(auth="kubernetes", role="rotator", auth_mount=mount, jwt_path=jwt_path)
    deliver(sink, "billing-sync", RECORD, SECRET)
    assert vault.data() == {"api_key": SECRET.reveal()}

    (login,) = vault.logins(mount)
    assert login.method == "POST"
    assert login.json() == {"role": "rotator", "jwt": first}
    assert "X-Vault-Token" not in login.headers
    (review,) = standin.reviews
    assert review == ("Bearer reviewer-jwt", review[1])
    assert review[1]["spec"]["token"] == first

    # The kubelet rotates the projected token: the next login reads the file again.
    second = fake_service_account_jwt("second")
    standin.accounts[second] = ("ops", "key-rotator", "uid-1")
    jwt_path.write_text(second)
    vault.bao.revoke_logins(mount)
    assert sink.read("billing-sync").record == RECORD
    assert vault.logins(mount)[-1].json() == {"role": "rotator", "jwt": second}


def test_a_refused_kubernetes_login_is_a_permission_error_without_the_jwt(
    vault: Vault, kubernetes_auth: tuple[str, TokenReviewStandIn], tmp_path: Path
) -> None:
    mount, _standin = kubernetes_auth
    jwt = fake_service_account_jwt("unknown")
    jwt_path = tmp_path / "token"
    jwt_path.write_text(jwt)
    sink = vault.sink(auth="kubernetes", role="rotator", auth_mount=mount, jwt_path=jwt_path)
    with pytest.raises(SinkPermissionError, match="login") as caught:
        sink.read("billing-sync")
    assert jwt not in str(caught.value)


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_service_account_token_is_a_permission_error(
    vault: Vault, tmp_path: Path, content: str | None
) -> None:
    jwt_path = tmp_path / "token"
    if content is not None:
        jwt_path.write_text(content)
    sink = vault.sink(auth="kubernetes", role="rotator", jwt_path=jwt_path)
    with pytest.raises(SinkPermissionError, match="service-account token"):
        sink.read("billing-sync")


# -- namespaces and TLS ----------------------------------------------------------------------


def test_the_namespace_is_sent_on_every_request_login_included(openbao: OpenBao) -> None:
    openbao.ensure_namespace("team-a")
    mount = openbao.new_mount(namespace="team-a")
    openbao.put_policy("sink", sink_policy(mount), namespace="team-a")
    openbao.ok("POST", "sys/auth/approle", json={"type": "approle"}, namespace="team-a")
    openbao.ok(
        "POST", "auth/approle/role/rotator", json={"token_policies": ["sink"]}, namespace="team-a"
    )
    role_id = openbao.ok("GET", "auth/approle/role/rotator/role-id", namespace="team-a")["data"][
        "role_id"
    ]
    secret_id = openbao.ok("POST", "auth/approle/role/rotator/secret-id", namespace="team-a")[
        "data"
    ]["secret_id"]
    proxy = AnswerDroppingProxy(openbao.addr)
    sink = VaultSink(
        proxy.url,
        mount=mount,
        workspace="acme",
        auth="approle",
        role_id=role_id,
        secret_id=Secret(secret_id),
        namespace="/team-a/",
    )
    try:
        deliver(sink, "billing-sync", RECORD, SECRET)
        assert sink.list_credentials() == ["billing-sync"]
        assert "namespace team-a" in sink.describe()
        assert "namespace='team-a'" in repr(sink)
    finally:
        sink.close()
        proxy.stop()
    assert proxy.requests and all(
        r.headers.get("X-Vault-Namespace") == "team-a" for r in proxy.requests
    )
    assert any(r.path == "/v1/auth/approle/login" for r in proxy.requests)
    stored = openbao.ok("GET", f"{mount}/data/{PATH}", namespace="team-a")
    assert stored["data"]["data"] == {"api_key": SECRET.reveal()}
    assert openbao.request("GET", f"{mount}/data/{PATH}").status_code in (403, 404)


def test_https_with_a_ca_bundle(openbao_tls: OpenBao) -> None:
    assert openbao_tls.ca_path is not None
    mount = openbao_tls.new_mount()
    sink = VaultSink(
        openbao_tls.addr,
        mount=mount,
        workspace="acme",
        token_provider=lambda: Secret(openbao_tls.root_token),
        cacert=openbao_tls.ca_path,
    )
    deliver(sink, "billing-sync", RECORD, SECRET)
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()
    sink.close()

    untrusting = VaultSink(
        openbao_tls.addr, mount=mount, token_provider=lambda: Secret(openbao_tls.root_token)
    )
    with pytest.raises(SinkError, match="TLS failed") as caught:
        untrusting.read("billing-sync")
    assert not caught.value.state_unknown
    untrusting.close()


# -- errors that no real server gives on demand ----------------------------------------------


def mock_sink(handler: Callable[[httpx.Request], httpx.Response], **settings: Any) -> VaultSink:
    settings.setdefault("token_provider", lambda: Secret("hvs.the-token"))
    return VaultSink(
        "https://vault.example.com", transport=httpx.MockTransport(handler), **settings
    )


def errors(status: int, *texts: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json={"errors": list(texts)})


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, SinkUnavailableError),
        (503, SinkUnavailableError),
        (429, SinkUnavailableError),
        (412, SinkUnavailableError),
        (400, SinkError),
        (405, SinkError),
        (401, SinkPermissionError),
    ],
)
def test_statuses_map_to_sink_errors(status: int, error: type[SinkError]) -> None:
    sink = mock_sink(errors(status, "something went wrong"))
    with pytest.raises(error, match=f"HTTP {status}: something went wrong") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert type(caught.value) is error


def test_error_text_never_shows_the_token_or_the_secret() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(404, json={"errors": []})
        token = request.headers["X-Vault-Token"]
        return httpx.Response(400, json={"errors": [f"bad {token} and {request.content.decode()}"]})

    sink = mock_sink(echo)
    with pytest.raises(SinkError) as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert "hvs.the-token" not in str(caught.value)
    assert SECRET.reveal() not in str(caught.value)
    assert "**********" in str(caught.value)


def test_a_long_or_missing_error_text_is_cut_or_named() -> None:
    with pytest.raises(SinkError) as caught:
        mock_sink(errors(400, "x" * 1000)).read("billing-sync")
    assert str(caught.value).endswith("...") and len(str(caught.value)) < 300
    with pytest.raises(SinkError, match="Bad Request"):
        mock_sink(lambda _request: httpx.Response(400, text="<html>")).read("billing-sync")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {"custom_metadata": {"k": 1}}}', "custom_metadata is not a map"),
    ],
)
def test_answers_that_are_not_vaults_are_sink_errors(body: bytes, complaint: str) -> None:
    sink = mock_sink(lambda _request: httpx.Response(200, content=body))
    with pytest.raises(SinkError, match=complaint):
        sink.read("billing-sync")


def test_data_that_is_not_an_object_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "/metadata/" in request.url.path:
            return httpx.Response(
                200,
                json={"data": {"current_version": 1, "versions": {"1": {"deletion_time": ""}}}},
            )
        return httpx.Response(200, json={"data": {"data": ["x"]}})

    with pytest.raises(SinkMetadataError, match="not an object"):
        mock_sink(answer).read("billing-sync")


def test_a_timeout_is_unavailable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(SinkUnavailableError, match="timed out"):
        mock_sink(slow).read("billing-sync")


def test_a_login_that_answers_without_a_token_is_a_sink_error() -> None:
    sink = mock_sink(
        lambda _request: httpx.Response(200, json={"auth": None}),
        auth="approle",
        role_id="r",
        secret_id=Secret("s"),
        token_provider=None,
    )
    with pytest.raises(SinkError, match="answered without a token"):
        sink.read("billing-sync")


def test_a_login_that_fails_on_the_server_is_unavailable() -> None:
    sink = mock_sink(
        errors(503, "sealed"),
        auth="approle",
        role_id="r",
        secret_id=Secret("s"),
        token_provider=None,
    )
    with pytest.raises(SinkUnavailableError, match="sealed"):
        sink.read("billing-sync")


def test_a_secret_that_vanishes_right_after_its_write_is_unknown() -> None:
    answers = iter(
        [httpx.Response(404, json={"errors": []}), httpx.Response(200, json={"data": {}})]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(404, json={"errors": []}))

    with pytest.raises(SinkUnavailableError, match="vanished"):
        mock_sink(answer).write_secret("billing-sync", SECRET, expected_version=None)


def test_close_without_a_reachable_server_does_not_raise() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            return httpx.Response(200, json={"auth": {"client_token": "t", "lease_duration": 0}})
        raise httpx.ConnectError("refused", request=request)

    sink = mock_sink(down, auth="approle", role_id="r", secret_id=Secret("s"), token_provider=None)
    with pytest.raises(SinkUnavailableError):
        sink.read("billing-sync")
    sink.close()


# -- races the proxy lets in -------------------------------------------------------------------


def test_a_version_deleted_between_the_two_reads_reads_as_no_secret(vault: Vault) -> None:
    sink = vault.sink()
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    vault.proxy.before_next(
        lambda method, path: method == "GET" and "/data/" in path,
        lambda: vault.call("DELETE", f"data/{PATH}"),
    )
    state = sink.read("billing-sync")
    assert state.secret_sha256 is None
    assert state.version != sink.read("billing-sync").version  # that read saw it alive


def test_a_credential_deleted_while_listing_is_left_out(vault: Vault) -> None:
    sink = vault.sink()
    sink.write_record("billing-sync", RECORD, expected_version=None)
    crm = replace(RECORD, key_name="crm-export@2026-11-27T03:00:00Z")
    sink.write_record("crm-export", crm, expected_version=None)
    vault.proxy.before_next(
        lambda method, path: method == "GET" and path.endswith("/metadata/" + PATH),
        lambda: vault.call("DELETE", f"metadata/{PATH}"),
    )
    assert sink.list_credentials() == ["crm-export"]


def test_threads_refused_together_log_in_once(vault: Vault) -> None:
    sink, mount = approle_sink(vault)
    for name in ("a", "b", "c", "d"):
        sink.write_record(name, SinkRecord(key_id=name), expected_version=None)
    vault.bao.revoke_logins(mount)
    barrier = threading.Barrier(4)
    read: list[SinkRecord | None] = []

    def work(name: str) -> None:
        barrier.wait()
        read.append(sink.read(name).record)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b", "c", "d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.key_id or "" for r in read if r is not None) == ["a", "b", "c", "d"]
    assert len(vault.logins(mount)) == 2


def test_prepare_does_not_log_in(vault: Vault) -> None:
    sink, mount = approle_sink(vault)
    sink.prepare()
    assert vault.logins(mount) == []
    sink.close()  # never logged in: nothing to revoke


def test_an_address_that_is_no_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ROTATOR_SINK_VAULT_ADDR: not a URL"):
        VaultSink("http://[::1", token_provider=lambda: SECRET)
