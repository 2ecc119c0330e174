"""The AWS Secrets Manager sink in the contract suite: moto's real HTTP server, IAM enforced.

The sink under test reaches moto through a loopback proxy that can lose an answer, with
botocore's retries off so a lost answer surfaces as an error; ``reopen`` talks to moto
directly. Each backend is a workspace of its own on the session's server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from rotator.sinks.aws import AwsSecretsManagerSink
from tests.servers.answer_dropping_proxy import AnswerDroppingProxy
from tests.servers.moto import REGION, MotoServer, admin_client, free_port, use_identity
from tests.sinks.backends import Backend


def make_sink(
    endpoint_url: str, workspace: str, *, max_attempts: int = 3, **options: Any
) -> AwsSecretsManagerSink:
    return AwsSecretsManagerSink(
        region=REGION,
        workspace=workspace,
        endpoint_url=endpoint_url,
        timeout_seconds=5,
        max_attempts=max_attempts,
        **options,
    )


def current_value(client: Any, name: str) -> str | None:
    """What a consumer reads: the AWSCURRENT SecretString (the stage named: a moto 5.2.5 bug
    answers the value before the last UpdateSecretVersionStage when no stage is given)."""
    try:
        answer = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except client.exceptions.ResourceNotFoundException:
        return None
    value: str = answer["SecretString"]
    return value


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    server: MotoServer = request.getfixturevalue("aws_env")
    workspace = f"ws-{uuid.uuid4().hex[:8]}"
    proxy = AnswerDroppingProxy(server.host, server.port).start()
    sink = make_sink(proxy.url, workspace, max_attempts=1)
    admin = admin_client(server)

    def consumer_reads(credential: str) -> str | None:
        return current_value(admin, sink.secret_name(credential))

    def forbidden() -> AwsSecretsManagerSink:
        # The chain is read when the client is made: the reader's keys, for this sink only.
        with pytest.MonkeyPatch.context() as patch:
            use_identity(patch, server.reader)
            return make_sink(server.url, workspace)

    def lose_next_answer() -> None:
        # The request that completes a write_secret: the stage move, or the put of a secret's
        # first value, which AWS makes current by itself.
        proxy.drop_next_answer(
            {"UpdateSecretVersionStage", "PutSecretValue", "CreateSecret"}
            if not _has_current_value(admin, sink, workspace)
            else {"UpdateSecretVersionStage"}
        )

    def cleanup() -> None:
        admin.close()
        proxy.stop()

    return Backend(
        sink=sink,
        reopen=lambda: make_sink(server.url, workspace),
        consumer_reads=consumer_reads,
        unavailable=lambda: make_sink(f"http://127.0.0.1:{free_port()}", workspace, max_attempts=1),
        forbidden=forbidden,
        lose_next_answer=lose_next_answer,
        cleanups=[cleanup],
    )


def _has_current_value(admin: Any, sink: AwsSecretsManagerSink, workspace: str) -> bool:
    listed = admin.list_secrets(Filters=[{"Key": "tag-value", "Values": [workspace]}])
    return any(
        "AWSCURRENT" in stages
        for entry in listed["SecretList"]
        for stages in (entry.get("SecretVersionsToStages") or {}).values()
    )
