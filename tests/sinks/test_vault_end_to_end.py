"""One real ``run-once`` with the Vault sink against a real OpenBao and the emulator: what a
consumer reads from Vault afterwards is the new, working key, and a second pass changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rotator.cli import main
from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.logging import configure as configure_logging
from rotator.models import Secret
from tests.servers.openbao import OpenBao, sink_policy


def test_run_once_delivers_to_vault(openbao: OpenBao, tmp_path: Path) -> None:
    mount = openbao.new_mount()
    openbao.put_policy("rotator-e2e", sink_policy(mount))
    token = openbao.new_token(["rotator-e2e"])
    with Emulator() as emu:
        ws = emu.add_workspace("Acme")
        _admin_id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        old_id, old_secret = emu.add_key(ws, "app-billing", expires=emu.now() + timedelta(days=3))
        env = {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_SINK": "vault",
            "ROTATOR_SINK_VAULT_ADDR": openbao.addr,
            "ROTATOR_SINK_VAULT_MOUNT": mount,
            "ROTATOR_SINK_VAULT_TOKEN": token,
            "ROTATOR_LOCK": "file",
            "ROTATOR_LOCK_DIR": str(tmp_path / "lock"),
            "ROTATOR_LOG_LEVEL": "debug",
        }
        try:
            assert main(["run-once"], environ=env) == 0
            path = f"{mount}/data/key-rotator/default/app-billing"
            held = openbao.ok("GET", path)["data"]["data"]["api_key"]
            live = [k for k in emu.keys(ws) if str(k["name"]).startswith("app-billing")]
            assert len(live) == 1 and live[0]["id"] != old_id
            with ProjectManagerClient(emu.url, Secret(admin)) as client:
                assert client.me(Secret(held)).workspace_id == ws
            assert main(["run-once"], environ=env) == 0  # nothing more to do
            assert openbao.ok("GET", path)["data"]["data"]["api_key"] == held
            assert old_secret != held
        finally:
            configure_logging(log_format="json", level="debug")  # the CLI configured it globally
