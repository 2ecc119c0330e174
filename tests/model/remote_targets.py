"""The model's slower sinks: the Vault sink on a real OpenBao and the AWS Secrets Manager sink on
moto's server (both started by the fixtures of ``tests/servers``), for the ``slow`` profile.

Responsible for what :mod:`tests.model.system` needs of any sink target, for these two: the
secret a consumer reads (the KV v2 field; the ``AWSCURRENT`` value), read over each server's own
API as an admin would; the raw metadata (``custom_metadata``; the secret's tags) for the leak
check; a person deleting an entry or editing its record. Records are decoded by a second sink of
the same kind pointed at the same store (their encoding is the sink's, proven by the contract
suite), so a record reads the same whichever way the rotator wrote it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from rotator.errors import SinkError
from rotator.models import Secret
from rotator.sinks.base import Sink
from tests.model.system import Held, Target, record_document

#: The base names a model example may hold (``NAMES`` and the own key), for listing directly.
VAULT_PREFIX = "key-rotator"


@dataclass(frozen=True)
class RemoteServers:
    """The running servers a slow example may use, with an admin's means to read them."""

    bao: Any  # tests.servers.openbao.OpenBao
    moto: Any  # tests.servers.moto.MotoServer
    aws_admin: Any  # a boto3 secretsmanager client signed as moto's admin
    region: str  # the region the admin client reads (moto keeps each region apart)

    def environment(self, sink: str) -> tuple[dict[str, str], str]:
        """The rotator's sink variables for a fresh place of ``sink`` ("vault" or "aws"), and
        the place's name (a KV mount, or a secret-id prefix)."""
        if sink == "vault":
            mount = self.bao.new_mount()
            return {
                "ROTATOR_SINK": "vault",
                "ROTATOR_SINK_VAULT_ADDR": self.bao.addr,
                "ROTATOR_SINK_VAULT_TOKEN": self.bao.root_token,
                "ROTATOR_SINK_VAULT_MOUNT": mount,
            }, mount
        prefix = f"model-{uuid.uuid4().hex[:8]}"
        return {
            "ROTATOR_SINK": "aws-secrets-manager",
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": self.region,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL": self.moto.url,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID": f"{prefix}/{{workspace}}/{{credential}}",
        }, prefix


class RemoteTarget(Target):
    """One workspace's credentials in Vault or Secrets Manager."""

    def __init__(self, reader: Sink, servers: RemoteServers, kind: str, place: str, ws: str):
        self.reader = reader
        self.servers = servers
        self.kind = kind
        self.place = place
        self.ws = ws

    # -- read as an admin, over the server's own API ----------------------------------------

    def _vault_path(self, credential: str, area: str) -> str:
        from rotator.sinks.vault import path_segment  # noqa: PLC0415 - slow profile only

        return f"{self.place}/{area}/{VAULT_PREFIX}/{self.ws}/{path_segment(credential)}"

    def _aws_name(self, credential: str) -> str:
        return str(self.reader.secret_name(credential))  # type: ignore[attr-defined]

    def _secret(self, credential: str) -> str | None:
        if self.kind == "vault":
            response = self.servers.bao.request("GET", self._vault_path(credential, "data"))
            if response.status_code == 404:
                return None
            value = (response.json()["data"].get("data") or {}).get("api_key")
            return None if value is None else str(value)
        client = self.servers.aws_admin
        try:
            answer = client.get_secret_value(
                SecretId=self._aws_name(credential), VersionStage="AWSCURRENT"
            )
        except (client.exceptions.ResourceNotFoundException, client.exceptions.ClientError):
            return None
        return str(answer["SecretString"])

    def _metadata_text(self, credential: str) -> str:
        if self.kind == "vault":
            response = self.servers.bao.request("GET", self._vault_path(credential, "metadata"))
            if response.status_code == 404:
                return ""
            return json.dumps(response.json()["data"].get("custom_metadata") or {})
        try:
            described = self.servers.aws_admin.describe_secret(SecretId=self._aws_name(credential))
        except self.servers.aws_admin.exceptions.ResourceNotFoundException:
            return ""
        return json.dumps(described.get("Tags") or [])

    # -- Target -----------------------------------------------------------------------------

    def held(self, credential: str) -> Held:
        try:
            record = self.reader.read(credential).record
        except SinkError:
            return Held(self._secret(credential), {"unreadable": "the sink refused it"})
        return Held(self._secret(credential), None if record is None else record_document(record))

    def credentials(self) -> set[str]:
        return set(self.reader.list_credentials())

    def delete(self, credential: str) -> None:
        if self.kind == "vault":
            self.servers.bao.request("DELETE", self._vault_path(credential, "metadata"))
            return
        client = self.servers.aws_admin
        try:
            client.delete_secret(
                SecretId=self._aws_name(credential), ForceDeleteWithoutRecovery=True
            )
        except client.exceptions.ResourceNotFoundException:
            return

    def texts(self) -> list[str]:
        return [self._metadata_text(c) for c in self.credentials()]

    def edit_record(self, credential: str, changes: dict[str, Any] | None) -> bool:
        # A person edits the record with the sink's own encoding: only ids and hashes fit.
        if changes is None or not all(isinstance(v, str) for v in changes.values()):
            return False
        if any(name.endswith("_at") or name == "expires" for name in changes):
            return False
        state = self.reader.read(credential)
        if state.record is None:
            return False
        self.reader.write_record(
            credential,
            dataclasses.replace(state.record, **changes),
            expected_version=state.version,
        )
        return True


def remote_reader(kind: str, env: dict[str, str], ws: str) -> Sink:
    """A second sink of ``kind`` over the same store as the rotator's, for reading records."""
    if kind == "vault":
        from rotator.sinks.vault import VaultSink  # noqa: PLC0415 - slow profile only

        token = env["ROTATOR_SINK_VAULT_TOKEN"]
        return VaultSink(
            env["ROTATOR_SINK_VAULT_ADDR"],
            mount=env["ROTATOR_SINK_VAULT_MOUNT"],
            workspace=ws,
            token_provider=lambda: Secret(token),
            timeout_seconds=5.0,
        )
    from rotator.sinks.aws import AwsSecretsManagerSink  # noqa: PLC0415 - slow profile only

    return AwsSecretsManagerSink(
        region=env["ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION"],
        workspace=ws,
        endpoint_url=env["ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL"],
        timeout_seconds=5,
        secret_id_template=env["ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID"],
    )
