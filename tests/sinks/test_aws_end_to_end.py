"""One real ``run-once`` with the AWS Secrets Manager sink against moto's server (IAM enforced,
the shipped policy) and the emulator: a consumer reading AWSCURRENT gets the new, working key,
and AWSPREVIOUS still the old one through the grace period."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from rotator.cli import main
from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.logging import configure as configure_logging
from rotator.models import Secret
from tests.servers.moto import REGION, MotoServer, admin_client


def test_run_once_delivers_to_aws_secrets_manager(aws_env: MotoServer, tmp_path: Path) -> None:
    workspace = f"e2e-{uuid.uuid4().hex[:8]}"
    with Emulator() as emu:
        ws = emu.add_workspace("Acme")
        _admin_id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        emu.add_key(ws, "app-billing", expires=emu.now() + timedelta(days=3))
        env = {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_WORKSPACE_NAME": workspace,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK": "aws-secrets-manager",
            "AWS_REGION": REGION,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL": aws_env.url,
            "ROTATOR_LOCK": "file",
            "ROTATOR_LOCK_DIR": str(tmp_path / "lock"),
            "ROTATOR_LOG_LEVEL": "debug",
        }
        try:
            assert main(["run-once"], environ=env) == 0
            first = _current(aws_env, f"key-rotator/{workspace}/app-billing")
            with ProjectManagerClient(emu.url, Secret(admin)) as client:
                assert client.me(Secret(first)).workspace_id == ws
            # A second delivery (an emergency rotation, with an hour of grace for the old key).
            rotate = env | {"ROTATOR_EMERGENCY_GRACE_HOURS": "1"}
            assert main(["rotate", "app-billing", "--now"], environ=rotate) == 0
            name = f"key-rotator/{workspace}/app-billing"
            assert _current(aws_env, name) != first
            assert _stage(aws_env, name, "AWSPREVIOUS") == first  # readable through the grace
        finally:
            configure_logging(log_format="json", level="debug")  # the CLI configured it globally


def _current(server: MotoServer, name: str) -> str:
    return _stage(server, name, "AWSCURRENT")


def _stage(server: MotoServer, name: str, stage: str) -> str:
    answer = admin_client(server).get_secret_value(SecretId=name, VersionStage=stage)
    return str(answer["SecretString"])
