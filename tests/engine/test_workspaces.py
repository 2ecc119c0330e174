"""Several workspaces in one pass: one down, one slow, one whose credential answers for another
workspace. Each costs its own time and nothing more; exit codes per the contract."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.locks.memory import MemoryLock
from rotator.models import Secret
from rotator.rotation import Outcome
from rotator.sinks.memory import MemorySink
from rotator.survey import Workspace
from tests.conftest import World


@pytest.fixture
def slow_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.set_latency(250)
        yield emu


def _space(
    emu: Emulator, name: str, clients: list[ProjectManagerClient], *, days_left: float = 3
) -> tuple[Workspace, str]:
    ws_id = emu.add_workspace(name)
    _id, admin = emu.add_key(ws_id, "rotator-admin", expires=emu.now() + timedelta(days=700))
    emu.add_key(ws_id, "app-billing", expires=emu.now() + timedelta(days=days_left))
    client = ProjectManagerClient(emu.url, Secret(admin), max_retries=0, sleep=lambda _s: None)
    clients.append(client)
    return Workspace(name, client, MemorySink(), MemoryLock(name)), admin


def test_one_down_one_slow_one_foreign_and_the_rest_rotate(
    world: World, slow_emulator: Emulator
) -> None:
    clients: list[ProjectManagerClient] = []
    try:
        fast, _ = _space(world.emu, "fast", clients)
        down, down_admin = _space(world.emu, "down", clients)
        world.emu.add_key(world.emu.add_workspace("elsewhere"), "x")  # another workspace exists
        revoker = ProjectManagerClient(world.emu.url, Secret(down_admin), max_retries=0)
        clients.append(revoker)
        own = next(k for k in revoker.list_keys() if k.name == "rotator-admin")
        revoker.revoke_key(own.id)  # its credential is refused from now on
        foreign, _ = _space(world.emu, "foreign", clients)
        foreign.expected_workspace_id = "00000000-0000-0000-0000-000000000000"
        slow, _ = _space(slow_emulator, "slow", clients)

        started = time.monotonic()
        report = world.engine(concurrency=4, workspace_concurrency=2).run_pass(
            [slow, down, foreign, fast]
        )
        elapsed = time.monotonic() - started

        by_name = {w.name: w for w in report.workspaces}
        assert by_name["fast"].outcomes == {"app-billing": Outcome.ROTATED}
        assert by_name["slow"].outcomes == {"app-billing": Outcome.ROTATED}
        assert not by_name["down"].usable
        assert not by_name["foreign"].usable
        assert report.exit_code == 1  # something undone, but not nothing done
        # The slow workspace took its own time (at least 5 requests of 250 ms: me, list, create,
        # verify, revoke); the fast one was done long before the pass ended.
        delivered = [
            e
            for e in world.events()
            if e["event"] == "rotation.delivered" and e["workspace"] == "fast"
        ]
        assert delivered
        assert elapsed > 1.2
        fast_done = next(
            e
            for e in world.events()
            if e["event"] == "rotation.revoked" and e["workspace"] == "fast"
        )
        finished = next(e for e in world.events() if e["event"] == "pass.finished")
        assert _seconds(str(finished["timestamp"])) - _seconds(str(fast_done["timestamp"])) > 0.8
        assert not [
            r for r in world.emu.request_log() if r["method"] == "POST" and "foreign" in str(r)
        ]
    finally:
        for client in clients:
            client.close()


def test_no_usable_workspace_at_all_is_exit_3(world: World) -> None:
    clients: list[ProjectManagerClient] = []
    try:
        foreign, _ = _space(world.emu, "foreign", clients)
        foreign.expected_workspace_id = "00000000-0000-0000-0000-000000000000"
        report = world.engine().run_pass([foreign])
        assert report.exit_code == 3
        assert not [r for r in world.emu.request_log() if r["method"] in ("POST", "DELETE")]
    finally:
        for client in clients:
            client.close()


def _seconds(stamp: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
