"""The AWS Secrets Manager sink's own behaviour, against moto's real HTTP server with IAM on.

What the contract suite does not cover: the stages (AWSPREVIOUS keeps the old key), the JSON
field mode, KMS on create, idempotent puts, what the tags hold, names, error mapping, and the
missing extra. Each test works in a workspace of its own on the session's server.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

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
from rotator.sinks.aws import AwsSecretsManagerSink
from tests.servers.answer_dropping_proxy import AnswerDroppingProxy
from tests.servers.moto import (
    POLICY_FILE,
    READER_ACTIONS,
    AwsIdentity,
    MotoServer,
    admin_client,
    use_identity,
)
from tests.sinks.backend_aws import current_value, make_sink

OLD = Secret("pm-key-OLD-0123456789abcdef")
NEW = Secret("pm-key-NEW-fedcba9876543210")
RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=NEW.sha256(),
    previous_key_id="k-old",
    previous_secret_sha256="b" * 64,
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)


@pytest.fixture
def workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(aws_env: MotoServer) -> Iterator[Any]:
    client = admin_client(aws_env)
    yield client
    client.close()


@pytest.fixture
def sink(aws_env: MotoServer, workspace: str) -> Iterator[AwsSecretsManagerSink]:
    made = make_sink(aws_env.url, workspace)
    yield made
    made.close()


@pytest.fixture
def proxy(aws_env: MotoServer) -> Iterator[AnswerDroppingProxy]:
    started = AnswerDroppingProxy(aws_env.host, aws_env.port).start()
    yield started
    started.stop()


def deliver(
    sink: AwsSecretsManagerSink, credential: str, key_id: str, secret: Secret
) -> str | None:
    """The rotation's two-phase delivery of ``secret`` as key ``key_id``."""
    state = sink.read(credential)
    pending = (state.record or SinkRecord()).with_pending(key_id, secret.sha256())
    version = sink.write_record(credential, pending, expected_version=state.version)
    version = sink.write_secret(credential, secret, expected_version=version)
    record = SinkRecord(
        key_id=key_id, key_name=f"{credential}@2026-11-27T03:00:00Z", secret_sha256=secret.sha256()
    )
    return sink.write_record(credential, record, expected_version=version)


def stages(admin: Any, name: str) -> dict[str, list[str]]:
    versions: dict[str, list[str]] = admin.describe_secret(SecretId=name)["VersionIdsToStages"]
    return versions


def value_at(admin: Any, name: str, stage: str) -> str:
    value: str = admin.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]
    return value


def tags_of(admin: Any, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in admin.describe_secret(SecretId=name).get("Tags", [])}


# -- stages -----------------------------------------------------------------------------------


def test_second_delivery_keeps_the_old_key_as_awsprevious(
    sink: AwsSecretsManagerSink, admin: Any
) -> None:
    deliver(sink, "billing-sync", "k-old", OLD)
    deliver(sink, "billing-sync", "k-new", NEW)
    name = sink.secret_name("billing-sync")
    assert value_at(admin, name, "AWSCURRENT") == NEW.reveal()
    assert value_at(admin, name, "AWSPREVIOUS") == OLD.reveal()
    # The new version was staged AWSPENDING first; the label stays with it once it is current.
    by_stage = {
        stage: version for version, labels in stages(admin, name).items() for stage in labels
    }
    assert by_stage["AWSPENDING"] == by_stage["AWSCURRENT"]
    assert sink.read("billing-sync").secret_sha256 == NEW.sha256()


def test_the_value_is_read_at_awscurrent_after_a_stage_move(
    aws_env: MotoServer, workspace: str, sink: AwsSecretsManagerSink, admin: Any
) -> None:
    # moto 5.2.5 answers GetSecretValue without a stage with the value from before the last
    # UpdateSecretVersionStage; the sink reads the described AWSCURRENT version by its id.
    deliver(sink, "billing-sync", "k-old", OLD)
    deliver(sink, "billing-sync", "k-new", NEW)
    assert sink.read("billing-sync").secret_sha256 == NEW.sha256()
    assert make_sink(aws_env.url, workspace).read("billing-sync") == sink.read("billing-sync")
    assert current_value(admin, sink.secret_name("billing-sync")) == NEW.reveal()


def test_the_version_id_of_a_put_is_derived_from_the_pending_key(
    aws_env: MotoServer, sink: AwsSecretsManagerSink, admin: Any
) -> None:
    deliver(sink, "billing-sync", "k-old", OLD)
    deliver(sink, "billing-sync", "k-new", NEW)
    first = sink.secret_name("billing-sync")
    other = make_sink(aws_env.url, f"ws-{uuid.uuid4().hex[:8]}")
    deliver(other, "billing-sync", "k-new", NEW)
    # The same key and value under another secret name is another version id...
    assert set(stages(admin, first)).isdisjoint(stages(admin, other.secret_name("billing-sync")))
    # ... and a version id is a UUID (AWS wants 32 to 64 characters).
    for version in stages(admin, first):
        assert str(uuid.UUID(version)) == version


def test_a_put_retried_with_the_same_token_is_idempotent(
    aws_env: MotoServer, workspace: str, admin: Any, proxy: AnswerDroppingProxy
) -> None:
    sink = make_sink(proxy.url, workspace, max_attempts=3)
    deliver(sink, "billing-sync", "k-old", OLD)
    state = sink.read("billing-sync")
    assert state.record is not None
    version = sink.write_record(
        "billing-sync",
        state.record.with_pending("k-new", NEW.sha256()),
        expected_version=state.version,
    )
    # PutSecretValue lands, its answer is lost, botocore sends it again with the same
    # ClientRequestToken: AWS answers with the version it made, no second one.
    proxy.drop_next_answer({"PutSecretValue"})
    before = len(proxy.forwarded)
    sink.write_secret("billing-sync", NEW, expected_version=version)
    assert proxy.dropped == ["PutSecretValue"]
    assert proxy.forwarded[before:].count("PutSecretValue") == 2
    name = sink.secret_name("billing-sync")
    assert len(stages(admin, name)) == 2
    assert value_at(admin, name, "AWSCURRENT") == NEW.reveal()
    assert value_at(admin, name, "AWSPREVIOUS") == OLD.reveal()


def test_a_stage_move_retried_after_it_landed_is_not_a_conflict(
    aws_env: MotoServer, workspace: str, admin: Any, proxy: AnswerDroppingProxy
) -> None:
    sink = make_sink(proxy.url, workspace, max_attempts=3)
    deliver(sink, "billing-sync", "k-old", OLD)
    version = sink.read("billing-sync").version
    proxy.drop_next_answer({"UpdateSecretVersionStage"})
    before = len(proxy.forwarded)
    # The retry finds AWSCURRENT already moved off the version read: the sink checks where.
    new_version = sink.write_secret("billing-sync", NEW, expected_version=version)
    assert proxy.forwarded[before:].count("UpdateSecretVersionStage") == 2
    assert sink.read("billing-sync").version == new_version
    assert value_at(admin, sink.secret_name("billing-sync"), "AWSCURRENT") == NEW.reveal()


def test_a_lost_stage_move_is_unknown_and_a_second_write_finishes_nothing_twice(
    aws_env: MotoServer, workspace: str, admin: Any, proxy: AnswerDroppingProxy
) -> None:
    sink = make_sink(proxy.url, workspace, max_attempts=1)
    deliver(sink, "billing-sync", "k-old", OLD)
    version = sink.read("billing-sync").version
    proxy.drop_next_answer({"UpdateSecretVersionStage"})
    with pytest.raises(SinkUnavailableError) as caught:
        sink.write_secret("billing-sync", NEW, expected_version=version)
    assert caught.value.state_unknown
    assert NEW.reveal() not in str(caught.value)
    state = sink.read("billing-sync")
    assert state.secret_sha256 == NEW.sha256()
    # Writing the value that is current already changes nothing and keeps the version.
    assert sink.write_secret("billing-sync", NEW, expected_version=state.version) == state.version
    assert len(stages(admin, sink.secret_name("billing-sync"))) == 2


def test_a_writer_that_moved_awscurrent_first_wins(sink: AwsSecretsManagerSink, admin: Any) -> None:
    deliver(sink, "billing-sync", "k-old", OLD)
    read = sink.read("billing-sync")
    name = sink.secret_name("billing-sync")
    # Someone else puts a value and makes it current between this read and this write.
    admin.put_secret_value(
        SecretId=name, SecretString="from-a-person", VersionStages=["AWSCURRENT"]
    )
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", NEW, expected_version=read.version)
    assert value_at(admin, name, "AWSCURRENT") == "from-a-person"


def test_a_refused_stage_move_is_a_conflict_never_taken_as_done(
    aws_env: MotoServer, workspace: str, admin: Any, proxy: AnswerDroppingProxy
) -> None:
    sink = make_sink(proxy.url, workspace, max_attempts=1)
    deliver(sink, "billing-sync", "k-old", OLD)
    version = sink.read("billing-sync").version
    # AWS refuses to move AWSCURRENT off the version read, as when another writer moved it
    # between this write's describe and its stage move.
    proxy.refuse_next("UpdateSecretVersionStage", 400, "InvalidParameterException")
    with pytest.raises(SinkConflictError, match="got another current value meanwhile"):
        sink.write_secret("billing-sync", NEW, expected_version=version)
    assert value_at(admin, sink.secret_name("billing-sync"), "AWSCURRENT") == OLD.reveal()


# -- creation ---------------------------------------------------------------------------------


def test_the_secret_is_created_on_first_delivery(
    sink: AwsSecretsManagerSink, admin: Any, workspace: str
) -> None:
    name = sink.secret_name("billing-sync")
    assert name == f"key-rotator/{workspace}/billing-sync"
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.describe_secret(SecretId=name)
    version = sink.write_record(
        "billing-sync", SinkRecord().with_pending("k-new", NEW.sha256()), expected_version=None
    )
    described = admin.describe_secret(SecretId=name)
    assert not described.get("VersionIdsToStages")  # created with its tags, no value yet
    assert tags_of(admin, name)["key-rotator:pending_key_id"] == "k-new"
    sink.write_secret("billing-sync", NEW, expected_version=version)
    assert value_at(admin, name, "AWSCURRENT") == NEW.reveal()


def test_a_secret_first_written_by_value_is_created_with_it(
    sink: AwsSecretsManagerSink, admin: Any, workspace: str
) -> None:
    version = sink.write_secret("billing-sync", NEW, expected_version=None)
    name = sink.secret_name("billing-sync")
    assert value_at(admin, name, "AWSCURRENT") == NEW.reveal()
    state = sink.read("billing-sync")
    assert state.record is None  # a value and no record, like a file with no .meta.json
    assert state.version == version
    assert tags_of(admin, name) == {"key-rotator:workspace": workspace}


@pytest.mark.parametrize("first_write", ["write_record", "write_secret"])
def test_a_secret_created_by_another_writer_meanwhile_is_a_conflict(
    aws_env: MotoServer, workspace: str, proxy: AnswerDroppingProxy, first_write: str
) -> None:
    # Between this writer's DescribeSecret (nothing there) and its CreateSecret another one
    # created the secret: AWS refuses the create.
    sink = make_sink(proxy.url, workspace, max_attempts=1)
    proxy.refuse_next("CreateSecret", 400, "ResourceExistsException")
    write = {
        "write_record": lambda: sink.write_record("billing-sync", RECORD, expected_version=None),
        "write_secret": lambda: sink.write_secret("billing-sync", NEW, expected_version=None),
    }[first_write]
    with pytest.raises(SinkConflictError, match="created by another writer"):
        write()


def test_the_kms_key_id_is_passed_on_create(
    aws_env: MotoServer, workspace: str, admin: Any
) -> None:
    sink = make_sink(aws_env.url, workspace, kms_key_id="alias/key-rotator")
    sink.write_record("by-record", record_for("by-record"), expected_version=None)
    sink.write_secret("by-value", NEW, expected_version=None)
    for credential in ("by-record", "by-value"):
        described = admin.describe_secret(SecretId=sink.secret_name(credential))
        assert described["KmsKeyId"] == "alias/key-rotator"


def test_a_secret_ops_created_is_tagged_and_keeps_its_own_tags(
    sink: AwsSecretsManagerSink, admin: Any
) -> None:
    name = sink.secret_name("billing-sync")
    admin.create_secret(Name=name, SecretString=OLD.reveal(), Tags=[{"Key": "team", "Value": "a"}])
    state = sink.read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 == OLD.sha256()
    deliver(sink, "billing-sync", "k-new", NEW)
    tags = tags_of(admin, name)
    assert tags["team"] == "a"
    assert tags["key-rotator:key_id"] == "k-new"
    assert "key-rotator:pending_key_id" not in tags  # removed fields are untagged
    assert value_at(admin, name, "AWSPREVIOUS") == OLD.reveal()


# -- JSON field mode --------------------------------------------------------------------------


def test_json_key_mode_keeps_the_other_fields(
    aws_env: MotoServer, workspace: str, admin: Any
) -> None:
    sink = make_sink(aws_env.url, workspace, json_key="api_key")
    name = sink.secret_name("billing-sync")
    admin.create_secret(
        Name=name, SecretString=json.dumps({"user": "svc-billing", "api_key": OLD.reveal()})
    )
    assert sink.read("billing-sync").secret_sha256 == OLD.sha256()
    deliver(sink, "billing-sync", "k-new", NEW)
    assert json.loads(value_at(admin, name, "AWSCURRENT")) == {
        "user": "svc-billing",
        "api_key": NEW.reveal(),
    }
    assert json.loads(value_at(admin, name, "AWSPREVIOUS"))["api_key"] == OLD.reveal()
    assert sink.read("billing-sync").secret_sha256 == NEW.sha256()


def test_json_key_mode_creates_an_object_and_reads_a_missing_field_as_none(
    aws_env: MotoServer, workspace: str, admin: Any
) -> None:
    sink = make_sink(aws_env.url, workspace, json_key="api_key")
    sink.write_secret("billing-sync", NEW, expected_version=None)
    name = sink.secret_name("billing-sync")
    assert json.loads(value_at(admin, name, "AWSCURRENT")) == {"api_key": NEW.reveal()}
    admin.put_secret_value(SecretId=name, SecretString='{"user": "x"}')
    state = sink.read("billing-sync")
    assert state.secret_sha256 is None
    assert state.version is not None


@pytest.mark.parametrize("content", ["plain-content-not-json", "[1, 2]", '{"api_key": 7}', "{"])
def test_json_key_mode_refuses_a_value_it_cannot_keep_fields_of(
    aws_env: MotoServer, workspace: str, admin: Any, content: str
) -> None:
    sink = make_sink(aws_env.url, workspace, json_key="api_key")
    name = sink.secret_name("billing-sync")
    admin.create_secret(Name=name, SecretString=content)
    with pytest.raises(SinkMetadataError) as caught:
        sink.read("billing-sync")
    assert name in str(caught.value)
    assert content not in str(caught.value)
    if content != '{"api_key": 7}':
        # The same secret read whole (no field) gives the version to write against.
        version = make_sink(aws_env.url, workspace).read("billing-sync").version
        with pytest.raises(SinkMetadataError):
            sink.write_secret("billing-sync", NEW, expected_version=version)
        assert value_at(admin, name, "AWSCURRENT") == content


# -- tags -------------------------------------------------------------------------------------


def test_tags_hold_the_record_and_never_the_secret(
    sink: AwsSecretsManagerSink, admin: Any, workspace: str
) -> None:
    sink.write_record(
        "billing-sync", RECORD.with_pending("k-newer", OLD.sha256()), expected_version=None
    )
    sink.write_secret("billing-sync", NEW, expected_version=sink.read("billing-sync").version)
    tags = tags_of(admin, sink.secret_name("billing-sync"))
    assert tags == {
        "key-rotator:credential": "billing-sync",
        "key-rotator:workspace": workspace,
        "key-rotator:key_id": "k-new",
        "key-rotator:key_name": "billing-sync@2026-11-27T03:00:00Z",
        "key-rotator:expires": "2028-11-26T03:00:00Z",
        "key-rotator:delivered_at": "2026-11-27T03:00:01.250000Z",
        "key-rotator:secret_sha256": NEW.sha256(),
        "key-rotator:previous_key_id": "k-old",
        "key-rotator:previous_secret_sha256": "b" * 64,
        "key-rotator:retire_previous_after": "2026-11-28T03:00:01Z",
        "key-rotator:pending_key_id": "k-newer",
        "key-rotator:pending_secret_sha256": OLD.sha256(),
    }
    encodings = {NEW.reveal(), OLD.reveal(), base64.b64encode(NEW.reveal().encode()).decode()}
    for key, value in tags.items():
        assert not any(secret in key or secret in value for secret in encodings)


def test_names_outside_the_tag_charset_round_trip(sink: AwsSecretsManagerSink, admin: Any) -> None:
    credential = "Bücher & Co #1"
    record = SinkRecord(key_id="id with spaces ", key_name=f"{credential}@2026-11-27T03:00:00Z")
    sink.write_record(credential, record, expected_version=None)
    name = sink.secret_name(credential)
    assert name.endswith("/B_cher___Co__1")
    tags = tags_of(admin, name)
    assert tags["key-rotator:credential"].startswith("b64:")
    assert tags["key-rotator:key_id"].startswith("b64:")  # a trailing space is kept exactly
    assert sink.read(credential).record == record
    assert list(sink.list_credentials()) == [credential]


def test_a_value_that_looks_encoded_is_encoded_too(sink: AwsSecretsManagerSink, admin: Any) -> None:
    record = SinkRecord(key_id="b64:aGVsbG8=")
    sink.write_record("billing-sync", record, expected_version=None)
    assert sink.read("billing-sync").record == record


def test_a_record_too_long_for_a_tag_is_refused(sink: AwsSecretsManagerSink) -> None:
    with pytest.raises(SinkError, match="key_id is too long"):
        sink.write_record("billing-sync", SinkRecord(key_id="k" * 300), expected_version=None)
    assert sink.read("billing-sync").empty


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({"key-rotator:key_id": "k1"}, "no key-rotator:credential"),
        ({"key-rotator:credential": "crm-export"}, "another credential"),
        ({"key-rotator:credential": "billing-sync", "key-rotator:key_id": "b64:!!"}, "readable"),
        (
            {"key-rotator:credential": "billing-sync", "key-rotator:secret_sha256": "ABC"},
            "SHA-256",
        ),
        (
            {"key-rotator:credential": "billing-sync", "key-rotator:expires": "2026-11-27"},
            "ISO 8601",
        ),
        (
            {"key-rotator:credential": "billing-sync", "key-rotator:pending_key_id": "k2"},
            "must come together",
        ),
        (
            {"key-rotator:credential": "billing-sync", "key-rotator:key_name": "crm@x"},
            "another credential",
        ),
        ({"key-rotator:workspace": "someone-else"}, "another workspace"),
    ],
)
def test_tags_that_cannot_be_trusted_are_a_metadata_error(
    sink: AwsSecretsManagerSink, admin: Any, tags: dict[str, str], problem: str
) -> None:
    name = sink.secret_name("billing-sync")
    admin.create_secret(
        Name=name, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
    )
    with pytest.raises(SinkMetadataError, match=problem):
        sink.read("billing-sync")


def test_every_tag_write_moves_the_version_on(sink: AwsSecretsManagerSink) -> None:
    first = sink.write_record("billing-sync", RECORD, expected_version=None)
    second = sink.write_record(
        "billing-sync", replace(RECORD, previous_key_id=None), expected_version=first
    )
    assert second != first
    assert sink.read("billing-sync").version == second
    # Writing the same record again is no change.
    assert (
        sink.write_record(
            "billing-sync", replace(RECORD, previous_key_id=None), expected_version=second
        )
        == second
    )


# -- names and listing ------------------------------------------------------------------------


def test_collisions_and_impossible_names_are_reported(aws_env: MotoServer, workspace: str) -> None:
    sink = make_sink(aws_env.url, workspace)
    problems = sink.check_names(["a#b", "a!b", "fine", "", "x" * 600, "é" * 200, "a/history"])
    assert set(problems) == {"a#b", "a!b", "", "x" * 600, "é" * 200, "a/history"}
    assert "reserved for histories" in problems["a/history"]
    assert "'a!b'" in problems["a#b"]
    assert "'a#b'" in problems["a!b"]
    assert "512" in problems["x" * 600]
    assert "tag" in problems["é" * 200]
    with pytest.raises(SinkNameError):
        sink.read("")


def test_list_credentials_is_per_workspace_and_pages(
    aws_env: MotoServer, workspace: str, admin: Any
) -> None:
    sink = make_sink(aws_env.url, workspace)
    other = make_sink(aws_env.url, workspace + "-other")
    names = [f"cred-{n:03}" for n in range(103)]  # more than one page of ListSecrets
    for credential in names:
        sink.write_record(credential, SinkRecord(key_id="k"), expected_version=None)
    other.write_record("elsewhere", SinkRecord(key_id="k"), expected_version=None)
    # A record whose tags were copied onto a secret of another name is not listed.
    admin.create_secret(
        Name=f"copied/{workspace}",
        Tags=[
            {"Key": "key-rotator:workspace", "Value": workspace},
            {"Key": "key-rotator:credential", "Value": "cred-000"},
        ],
    )
    # Nor are records whose credential tag cannot be read or names nothing storable.
    for number, credential in enumerate(("b64:!!", "")):
        admin.create_secret(
            Name=f"odd-{number}/{workspace}",
            Tags=[
                {"Key": "key-rotator:workspace", "Value": workspace},
                {"Key": "key-rotator:credential", "Value": credential},
            ],
        )
    assert list(sink.list_credentials()) == names
    assert list(other.list_credentials()) == ["elsewhere"]


def test_a_template_without_workspace_refuses_another_workspaces_secret(
    aws_env: MotoServer, workspace: str
) -> None:
    template = f"shared-{workspace}/{{credential}}"
    first = make_sink(aws_env.url, workspace, secret_id_template=template)
    second = make_sink(aws_env.url, workspace + "-b", secret_id_template=template)
    deliver(first, "billing-sync", "k1", NEW)
    with pytest.raises(SinkMetadataError, match="another workspace"):
        second.read("billing-sync")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("key-rotator/{team}/{credential}", "unknown placeholders {team}"),
        ("key-rotator/{credential!r}", "no format spec"),
        ("key rotator/{credential}", "A-Za-z0-9"),
        ("key-rotator/{credential", "unbalanced"),
    ],
)
def test_a_bad_template_is_a_config_error(aws_env: MotoServer, template: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID") as caught:
        make_sink(aws_env.url, "ws", secret_id_template=template)
    assert problem in str(caught.value)


# -- errors -----------------------------------------------------------------------------------


def test_a_refused_write_is_a_permission_error_and_reads_still_work(
    aws_env: MotoServer, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(make_sink(aws_env.url, workspace), "billing-sync", "k1", OLD)
    use_identity(monkeypatch, aws_env.reader)
    reader = make_sink(aws_env.url, workspace)
    state = reader.read("billing-sync")
    assert state.secret_sha256 == OLD.sha256()
    with pytest.raises(SinkPermissionError) as caught:
        reader.write_secret("billing-sync", NEW, expected_version=state.version)
    assert "PutSecretValue" in str(caught.value)
    assert NEW.reveal() not in str(caught.value)
    with pytest.raises(SinkPermissionError, match="TagResource"):
        reader.write_record("billing-sync", RECORD, expected_version=state.version)
    with pytest.raises(SinkPermissionError, match="CreateSecret"):
        reader.write_record("crm-export", RECORD, expected_version=None)


def test_the_reader_policy_is_the_shipped_policy_without_writes() -> None:
    policy = json.loads(POLICY_FILE.read_text())
    granted = {
        action
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert set(READER_ACTIONS) < granted
    assert {a for a in granted if a.startswith("secretsmanager:")} == set(READER_ACTIONS) | {
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
    }


def test_unknown_keys_are_a_permission_error(
    aws_env: MotoServer, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_identity(monkeypatch, AwsIdentity("nobody", "AKIAUNKNOWNKEY000000", "not-a-secret-key"))
    with pytest.raises(SinkPermissionError) as caught:
        make_sink(aws_env.url, workspace).read("billing-sync")
    assert "not-a-secret-key" not in str(caught.value)


def test_no_credentials_is_a_permission_error(
    aws_env: MotoServer, workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_identity(monkeypatch, None)
    with pytest.raises(SinkPermissionError, match="standard chain"):
        make_sink(aws_env.url, workspace).list_credentials()


def test_no_region_is_a_config_error(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="REGION"):
        AwsSecretsManagerSink(region=None, workspace="ws", endpoint_url=aws_env.url)


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_comes_from_the_environment_when_unset(
    aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv(variable, "ap-south-2")
    sink = AwsSecretsManagerSink(region=None, workspace="ws", endpoint_url=aws_env.url)
    assert sink.describe() == (
        f"aws-secrets-manager:ap-south-2:key-rotator/{{workspace}}/{{credential}} at {aws_env.url}"
    )
    assert sink.read("billing-sync").empty  # moto serves every region


def test_a_secret_scheduled_for_deletion_is_an_error_naming_it(
    sink: AwsSecretsManagerSink, admin: Any
) -> None:
    deliver(sink, "billing-sync", "k1", OLD)
    name = sink.secret_name("billing-sync")
    admin.delete_secret(SecretId=name)
    with pytest.raises(SinkError, match="scheduled for deletion") as caught:
        sink.read("billing-sync")
    assert name in str(caught.value)
    assert list(sink.list_credentials()) == []


def test_a_binary_secret_is_a_metadata_error(sink: AwsSecretsManagerSink, admin: Any) -> None:
    admin.create_secret(Name=sink.secret_name("billing-sync"), SecretBinary=b"\x00\x01")
    with pytest.raises(SinkMetadataError, match="binary"):
        sink.read("billing-sync")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "ThrottlingException", SinkUnavailableError),
        (500, "InternalServiceError", SinkUnavailableError),
        (503, "SomethingNew", SinkUnavailableError),
        (400, "AccessDeniedException", SinkPermissionError),
        (400, "DecryptionFailure", SinkPermissionError),
        (400, "LimitExceededException", SinkError),
    ],
)
def test_aws_errors_name_the_operation_and_code_only(
    aws_env: MotoServer,
    workspace: str,
    proxy: AnswerDroppingProxy,
    status: int,
    code: str,
    error: type[SinkError],
) -> None:
    sink = make_sink(proxy.url, workspace, max_attempts=1)
    deliver(sink, "billing-sync", "k1", OLD)
    version = sink.read("billing-sync").version
    # The refusal's own message quotes the request, the secret in it: it must not show.
    proxy.refuse_next("PutSecretValue", status, code)
    with pytest.raises(SinkError) as caught:
        sink.write_secret("billing-sync", NEW, expected_version=version)
    assert type(caught.value) is error
    assert str(caught.value) == (
        f"aws-secrets-manager: PutSecretValue of {sink.secret_name('billing-sync')!r} "
        f"failed: {code}"
    )
    assert sink.read("billing-sync").secret_sha256 == OLD.sha256()


def test_parameters_botocore_refuses_are_never_chained(sink: AwsSecretsManagerSink) -> None:
    # botocore's message quotes the parameters; an empty SecretString is one it refuses.
    with pytest.raises(SinkError, match="botocore refused the parameters") as caught:
        sink.write_secret("billing-sync", Secret(""), expected_version=None)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_repr_and_describe_hold_no_secret_or_key(aws_env: MotoServer, workspace: str) -> None:
    sink = make_sink(aws_env.url, workspace, json_key="api_key", kms_key_id="alias/k")
    deliver(sink, "billing-sync", "k1", NEW)
    for text in (repr(sink), sink.describe(), repr(sink.read("billing-sync"))):
        assert NEW.reveal() not in text
        assert aws_env.writer.secret_access_key not in text
        assert aws_env.writer.access_key_id not in text
    assert "field 'api_key'" in sink.describe()


def test_different_credentials_from_many_threads(sink: AwsSecretsManagerSink) -> None:
    credentials = [f"cred-{n}" for n in range(8)]
    errors: list[BaseException] = []

    def run(credential: str) -> None:
        try:
            deliver(sink, credential, f"k-{credential}", Secret(f"secret-of-{credential}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in credentials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for credential in credentials:
        state = sink.read(credential)
        assert state.secret_sha256 == Secret(f"secret-of-{credential}").sha256()
        assert state.record is not None and state.record.key_id == f"k-{credential}"
    assert list(sink.list_credentials()) == credentials


def test_a_missing_extra_names_the_pip_install() -> None:
    # A fresh interpreter where botocore cannot be imported, as without the extra.
    script = (
        "import sys; sys.modules['botocore'] = None\n"
        "from rotator.errors import ConfigError\n"
        "from rotator.sinks.aws import AwsSecretsManagerSink\n"
        "try:\n"
        "    AwsSecretsManagerSink(region='eu-west-1', workspace='ws')\n"
        "except ConfigError as exc:\n"
        "    print(exc.problems[0])\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert answer.stdout.strip() == (
        "ROTATOR_SINK: the aws-secrets-manager sink needs its extra: "
        "pip install 'key-rotator[aws-secrets-manager]'"
    )


# -- helpers ----------------------------------------------------------------------------------


def record_for(credential: str) -> SinkRecord:
    return replace(RECORD, key_name=f"{credential}@2026-11-27T03:00:00Z")
