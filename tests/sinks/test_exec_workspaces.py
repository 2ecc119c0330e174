"""The exec sink with several workspaces, end to end: real ``rotator run-once`` processes with a
workspaces file, against the bundled emulator, delivering through real programs.

Two workspaces that both have a credential ``billing`` must never cross: with the example
program each workspace's consumer ends with its own workspace's key; with a program that
ignores ``ROTATOR_WORKSPACE`` (one store for every workspace) the second workspace finds the
first one's record, refuses it (blocked, exit 1) and changes nothing: no key created, none
revoked, the first workspace's secret and record left as they were.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from rotator.emulator import Emulator
from tests.cli_support import CliResult, clean_env, run_cli
from tests.sinks.backend_exec import FOLDER_SINK

CREDENTIAL = "billing"


@dataclass(frozen=True)
class Tenant:
    """One emulated workspace: its name in the workspaces file, id and credential file."""

    name: str
    workspace_id: str
    api_key_file: Path


def tenants(emu: Emulator, tmp_path: Path, names: list[str]) -> list[Tenant]:
    """Workspaces with an admin key and a ``billing`` key due in 3 days."""
    made = []
    for name in names:
        workspace_id = emu.add_workspace(name)
        _admin_id, admin = emu.add_key(
            workspace_id, "rotator-admin", expires=emu.now() + timedelta(days=700)
        )
        emu.add_key(workspace_id, CREDENTIAL, expires=emu.now() + timedelta(days=3))
        key_file = tmp_path / "credentials" / name
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(admin)
        made.append(Tenant(name, workspace_id, key_file))
    return made


def run_once(
    emu: Emulator,
    tmp_path: Path,
    taken: list[Tenant],
    command: str,
    own: Callable[[str], str] | None = None,
) -> CliResult:
    """``run-once`` over ``taken``; with ``own``, each workspace runs ``own(name)`` (no two
    workspaces may run the same program with the same arguments), else ``command``."""
    listing = tmp_path / "workspaces.json"
    entries = [
        {
            "name": t.name,
            "api_key_file": str(t.api_key_file),
            **({"sink": {"command": own(t.name)}} if own else {}),
        }
        for t in taken
    ]
    listing.write_text(json.dumps({"workspaces": entries}))
    env = clean_env(
        {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_WORKSPACES_FILE": str(listing),
            "ROTATOR_KEY_NAMES": CREDENTIAL,
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_SINK": "exec",
            "ROTATOR_SINK_EXEC_COMMAND": command,
            "ROTATOR_LOCK": "file",
            "ROTATOR_LOCK_DIR": str(tmp_path / "lock"),
            "ROTATOR_HTTP_MAX_RETRIES": "0",
        }
    )
    return run_cli(["run-once"], env, tmp_path, timeout=120)


def live_billing_keys(emu: Emulator, tenant: Tenant) -> list[dict[str, object]]:
    return [
        key
        for key in emu.keys(tenant.workspace_id)
        if str(key["name"]).split("@", 1)[0] == CREDENTIAL
    ]


def answers_for(emu: Emulator, secret: str) -> str | None:
    """The workspace id ``me`` answers with for a secret (a real request), or None when the
    secret does not authenticate."""
    response = httpx.get(
        f"{emu.url}/api/data/me", headers={"Authorization": f"Bearer {secret}"}, timeout=5
    )
    if response.status_code != 200:
        return None
    return str(response.json()["data"]["workSpaceId"])


def test_each_workspaces_consumer_ends_with_its_own_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    command = shlex.join([sys.executable, "-I", str(FOLDER_SINK), str(keys)])
    with Emulator() as emu:
        acme, globex = everyone = tenants(emu, tmp_path, ["acme", "globex"])
        shared = run_once(emu, tmp_path, everyone, command)
        assert shared.returncode == 2, "one program and arguments for two workspaces"
        assert "would share the program" in shared.stderr
        assert [r for r in emu.request_log() if r["method"] != "GET"] == []
        # Each workspace its own folder argument (the program adds a subfolder per workspace
        # inside it as well).
        first = run_once(emu, tmp_path, everyone, command, own=lambda name: f"{command}/{name}")
        assert first.returncode == 0, first.describe()
        held: dict[str, str] = {}
        for tenant in everyone:
            # The consumer of each workspace reads its own subfolder.
            secret = (keys / tenant.name / tenant.name / f"{CREDENTIAL}.secret").read_text()
            assert answers_for(emu, secret) == tenant.workspace_id
            (live,) = live_billing_keys(emu, tenant)
            record = json.loads(
                (keys / tenant.name / tenant.name / f"{CREDENTIAL}.meta.json").read_text()
            )
            assert record["workspace"] == tenant.name
            assert record["credential"] == CREDENTIAL
            assert record["key_id"] == live["id"]
            held[tenant.name] = secret
        assert held[acme.name] != held[globex.name]

        second = run_once(emu, tmp_path, everyone, command, own=lambda name: f"{command}/{name}")
        assert second.returncode == 0, second.describe()
        assert "rotation.created" not in second.event_names()
        for tenant in everyone:
            assert (keys / tenant.name / tenant.name / f"{CREDENTIAL}.secret").read_text() == held[
                tenant.name
            ]


def test_a_program_with_one_store_for_every_workspace_never_crosses_them(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    # An ops program that ignores ROTATOR_WORKSPACE and its own argument: every workspace
    # lands in one place, although each runs it with another argument (so the start check,
    # which compares programs and arguments, cannot see it).
    shared = tmp_path / "shared-store.sh"
    shared.write_text(
        "#!/bin/sh\n"
        "shift\n"
        "ROTATOR_WORKSPACE=everyone exec "
        + shlex.join([sys.executable, "-I", str(FOLDER_SINK), str(store)])
        + ' "$@"\n'
    )
    shared.chmod(0o755)
    with Emulator() as emu:
        acme, globex = tenants(emu, tmp_path, ["acme", "globex"])
        own: Callable[[str], str] = lambda name: f"{shared} {name}"  # noqa: E731
        first = run_once(emu, tmp_path, [acme], str(shared), own=own)
        assert first.returncode == 0, first.describe()
        # Wherever the program put them: this is about the rotator, not the program's layout.
        (secret_file,) = store.rglob(f"{CREDENTIAL}.secret")
        (meta_file,) = store.rglob(f"{CREDENTIAL}.meta.json")
        acme_secret = secret_file.read_text()
        acme_record = meta_file.read_text()
        (acme_key,) = live_billing_keys(emu, acme)
        (globex_key,) = live_billing_keys(emu, globex)
        requests_before = len(emu.request_log())

        second = run_once(emu, tmp_path, [acme, globex], str(shared), own=own)
        assert second.returncode == 1, second.describe()
        (failed,) = [e for e in second.events() if e["event"] == "rotation.failed"]
        assert (failed["workspace"], failed["credential"], failed["step"]) == (
            "globex",
            CREDENTIAL,
            "reconcile",
        )
        assert "workspace 'acme'" in failed["error"]
        # Nothing was created or revoked anywhere, and the store is as acme left it.
        changing = [r for r in emu.request_log()[requests_before:] if r["method"] != "GET"]
        assert changing == []
        assert live_billing_keys(emu, acme) == [acme_key]
        assert live_billing_keys(emu, globex) == [globex_key]
        assert secret_file.read_text() == acme_secret
        assert meta_file.read_text() == acme_record
        assert answers_for(emu, acme_secret) == acme.workspace_id
