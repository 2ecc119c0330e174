"""`rotator run-once` as a subprocess, with credentials routed where their consumers read them:
one credential to a Secret in namespace ``billing`` and to Vault at once, another to a Secret in
namespace ``crm``, the rest to the workspace's own file sink. Real servers: the bundled
emulator, the Kubernetes API-server stand-in, OpenBao."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from tests.cli_support import run_cli, seed, works
from tests.k8s.fixtures import Cluster
from tests.servers.openbao import ROOT_TOKEN, OpenBao


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def test_credentials_reach_two_namespaces_and_a_secret_and_vault_at_once(
    emu: Emulator, cluster: Cluster, openbao: OpenBao, tmp_path: Path
) -> None:
    acme = seed(emu)
    old = {name: acme.add_key(name, days_left=5)[0] for name in ("app-billing", "app-crm", "app-x")}
    mount = openbao.new_mount()
    key_file = tmp_path / "admin-key"
    key_file.write_text(acme.admin_secret)
    token_file = tmp_path / "vault-token"
    token_file.write_text(ROOT_TOKEN)
    routes = [
        {
            "name": "app-billing",
            "targets": [
                {"sink": "kubernetes", "namespace": "billing"},
                {"sink": "vault", "mount": mount, "path": "apps/billing/pm-key"},
            ],
        },
        {"name": "app-crm*", "targets": [{"sink": "kubernetes", "namespace": "crm"}]},
    ]
    workspaces = tmp_path / "workspaces.json"
    entry = {"name": "acme", "api_key_file": str(key_file), "credentials": routes}
    workspaces.write_text(json.dumps({"workspaces": [entry]}))
    env = acme.env(
        tmp_path / "secrets",
        ROTATOR_API_KEY="",
        ROTATOR_WORKSPACES_FILE=str(workspaces),
        ROTATOR_GRACE_HOURS="0",
        ROTATOR_SINK_KUBERNETES_KUBECONFIG=str(cluster.kubeconfig),
        ROTATOR_SINK_VAULT_ADDR=openbao.addr,
        ROTATOR_SINK_VAULT_TOKEN_FILE=str(token_file),
    )
    result = run_cli(["run-once"], env, tmp_path)
    assert result.returncode == 0, result.describe()

    billing = cluster.server.secret_data("billing", "pm-api-key-app-billing", "api-key")
    crm = cluster.server.secret_data("crm", "pm-api-key-app-crm", "api-key")
    assert billing is not None and crm is not None
    answer = openbao.request("GET", f"{mount}/data/apps/billing/pm-key").json()
    in_vault = answer["data"]["data"]["api_key"]
    # One new key for billing, in the Secret and in Vault alike; each works.
    assert billing.decode() == in_vault
    assert works(emu, in_vault) and works(emu, crm.decode())
    assert cluster.server.secret_data("crm", "pm-api-key-app-billing", "api-key") is None
    assert cluster.server.secret_data("billing", "pm-api-key-app-crm", "api-key") is None
    # The credential without a route went to the workspace's own sink.
    other = (tmp_path / "secrets" / "acme" / "app-x").read_text()
    assert works(emu, other)
    # Grace 0: each old key was revoked once every target of its credential held the new one.
    live = {str(k["id"]) for k in emu.keys(acme.workspace_id)}
    assert not set(old.values()) & live

    status = run_cli(["status", "-o", "wide"], env, tmp_path)
    assert status.returncode == 0, status.describe()
    billing_row = next(line for line in status.stdout.splitlines() if "app-billing" in line)
    assert "kubernetes:billing/pm-api-key-app-billing" in billing_row
    assert f"vault:{mount}/apps/billing/pm-key" in billing_row
    again = run_cli(["run-once"], env, tmp_path)
    assert again.returncode == 0, again.describe()
    assert len(emu.keys(acme.workspace_id)) == 4  # the admin key and one per credential
