"""The model's slow profile (``ROTATOR_MODEL_PROFILE=slow``): the same machine and invariants as
``test_model.py``, with the Vault sink on a real OpenBao and the AWS Secrets Manager sink on
moto's server drawn besides the file and exec sinks. The servers are the fixtures of
``tests/servers`` (started once, a fresh KV mount or secret-id prefix per example).
``conftest.py`` runs this module instead of ``test_model.py`` in that profile only, so neither
is ever skipped: ``ROTATOR_MODEL_PROFILE=slow ./scripts/test.sh tests/model``.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.remote_targets import RemoteServers
from tests.model.test_model import PROFILE, RotatorModel
from tests.servers.moto import REGION, MotoServer, admin_client, aws_env, moto_server  # noqa: F401
from tests.servers.openbao import OpenBao, openbao  # noqa: F401


def test_the_model_with_vault_and_aws_sinks(openbao: OpenBao, aws_env: MotoServer) -> None:  # noqa: F811
    admin = admin_client(aws_env)
    RotatorModel.servers = RemoteServers(openbao, aws_env, admin, REGION)
    try:
        run_state_machine_as_test(RotatorModel, settings=settings.get_profile(PROFILE))
    finally:
        RotatorModel.servers = None
        admin.close()
