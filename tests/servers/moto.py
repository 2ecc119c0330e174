"""moto's AWS emulation as a real HTTP server on loopback, with IAM enforced, for the AWS sink.

One server a test session: a subprocess running ``moto.server.ThreadedMotoServer`` on
127.0.0.1 and a free port, so the tests' own process never imports moto (its botocore hooks
stay out) and boto3 reaches it over a real socket. The server starts with authentication off,
gets two IAM users, then enforces IAM (``/moto-api/reset-auth``): every request after that
must be signed by one of them and allowed by its policies.

- ``writer`` holds the policy shipped in ``config/aws/key-rotator-policy.json``, so every test
  proves its actions suffice. moto checks secretsmanager actions against the resource ``*``
  only, so the statements' ``Resource`` is widened to ``*`` here: the ARN scoping and the KMS
  statement are not checked by these tests.
- ``reader`` may only describe, get and list: the identity the sink's writes are refused for.
- ``admin`` may do anything: the tests' own client, for arranging and inspecting.

The ``aws_env`` fixture puts the writer's (fake) keys into the test's environment, where
boto3's standard chain finds them, and keeps a developer's own AWS config out of reach.
Tests isolate themselves by workspace (each uses its own), not by resetting the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGION = "eu-west-1"
POLICY_FILE = Path(__file__).resolve().parents[2] / "config" / "aws" / "key-rotator-policy.json"
READER_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecrets",
)

# Runs in the subprocess: start the server (start() returns once it accepts requests), print its
# port, serve until stdin closes.
_SERVER_SCRIPT = """
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

#: Variables of boto3's chain that could point at a real account; unset in every AWS test.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_CA_BUNDLE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


@dataclass(frozen=True)
class AwsIdentity:
    """An IAM user's access key on the moto server (fake, valid there only)."""

    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class MotoServer:
    url: str
    host: str
    port: int
    writer: AwsIdentity
    reader: AwsIdentity
    #: May do anything: for tests to arrange and inspect state behind the sink's back.
    admin: AwsIdentity
    #: Seconds from starting the subprocess to the server accepting requests.
    start_seconds: float


def free_port() -> int:
    """A port nothing listens on at this moment (for an endpoint that refuses connections)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def use_identity(monkeypatch: pytest.MonkeyPatch, identity: AwsIdentity | None) -> None:
    """Make ``identity`` what boto3's standard chain finds (None: no credentials at all)."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Never a developer's ~/.aws, never an instance's metadata service.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    if identity is None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", identity.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", identity.secret_access_key)


def writer_policy() -> dict[str, Any]:
    """The shipped policy with each Resource widened to ``*`` (all moto can evaluate)."""
    policy: dict[str, Any] = json.loads(POLICY_FILE.read_text())
    for statement in policy["Statement"]:
        statement["Resource"] = "*"
        statement.pop("Condition", None)
    return policy


def admin_client(server: MotoServer) -> Any:
    """A boto3 Secrets Manager client signed as ``admin``, to arrange and inspect directly."""
    import boto3  # noqa: PLC0415 - boto3 is an optional extra of the project

    return boto3.session.Session().client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=server.admin.access_key_id,
        aws_secret_access_key=server.admin.secret_access_key,
    )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    # No AWS variables (it needs none), and no coverage measurement: moto is not our code, and
    # tracing it would slow every request.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COVERAGE_"))}
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        if not line.isdigit():
            process.kill()
            raise RuntimeError(f"moto server did not start; its log: {log_path}")
        port = int(line)
        url = f"http://127.0.0.1:{port}"
        start_seconds = time.monotonic() - started
        writer, reader, admin = _create_identities(url)
        _enforce_iam(url)
        yield MotoServer(
            url=url,
            host="127.0.0.1",
            port=port,
            writer=writer,
            reader=reader,
            admin=admin,
            start_seconds=start_seconds,
        )
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The moto server, with the writer's fake keys in this test's environment only."""
    use_identity(monkeypatch, moto_server.writer)
    return moto_server


def _create_identities(url: str) -> tuple[AwsIdentity, AwsIdentity, AwsIdentity]:
    """Three IAM users with access keys, made while the server still takes anyone."""
    import boto3  # noqa: PLC0415

    iam = boto3.session.Session().client(
        "iam",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",  # fake: moto does not check them yet
    )
    reader_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(READER_ACTIONS), "Resource": "*"}],
    }
    admin_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    identities = []
    for name, policy in (
        ("key-rotator", writer_policy()),
        ("reader", reader_policy),
        ("admin", admin_policy),
    ):
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        identities.append(AwsIdentity(name, key["AccessKeyId"], key["SecretAccessKey"]))
    iam.close()
    return identities[0], identities[1], identities[2]


def _enforce_iam(url: str) -> None:
    # From now on every request is authenticated and authorized (0 requests without).
    request = urllib.request.Request(  # noqa: S310 - http on loopback
        f"{url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        json.loads(answer.read())
