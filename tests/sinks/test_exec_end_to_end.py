"""One real ``run-once`` with the exec sink and the example program, against the emulator:
what a consumer reads afterwards is the new, working key."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from rotator.cli import main
from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.logging import configure as configure_logging
from rotator.models import Secret

PROGRAM = Path(__file__).resolve().parents[2] / "config" / "exec-sink" / "folder-sink.py"


def test_run_once_delivers_through_the_example_program(tmp_path: Path) -> None:
    with Emulator() as emu:
        ws = emu.add_workspace("Acme")
        _admin_id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        old_id, _ = emu.add_key(ws, "app-billing", expires=emu.now() + timedelta(days=3))
        keys = tmp_path / "keys"
        env = {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_SINK": "exec",
            "ROTATOR_SINK_EXEC_COMMAND": f"{sys.executable} {PROGRAM} {keys}",
            "ROTATOR_LOCK": "file",
            "ROTATOR_LOCK_DIR": str(tmp_path / "lock"),
            "ROTATOR_LOG_LEVEL": "debug",
        }
        assert main(["run-once"], environ=env) == 0
        # One workspace, named by nothing: the example's subfolder is the default label's.
        held = (keys / "default" / "app-billing.secret").read_text()
        live = [k for k in emu.keys(ws) if str(k["name"]).startswith("app-billing")]
        assert len(live) == 1 and live[0]["id"] != old_id
        with ProjectManagerClient(emu.url, Secret(admin)) as client:
            assert client.me(Secret(held)).workspace_id == ws
        assert main(["run-once"], environ=env) == 0  # nothing more to do
        assert (keys / "default" / "app-billing.secret").read_text() == held
    configure_logging(log_format="json", level="debug")  # the CLI configured it globally
