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
from rotator.plan import Action, Deferral
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
        # Declared in the workspaces file: the entry that cannot be used now can hold keys of
        # no other workspace, so the others' revokes go ahead.
        down.expected_workspace_id = revoker.me().workspace_id
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


def test_an_entry_that_cannot_be_identified_holds_back_every_revoke(world: World) -> None:
    """An entry whose ``me`` fails, with no ``workspace_id`` declared, may be the other
    workspace listed again under another admin key: its sink may hold any key there. The
    other workspace still rotates and delivers, but revokes nothing (``revokes.held``) and the
    pass fails; once the entry answers, the held revoke goes ahead."""
    clients: list[ProjectManagerClient] = []
    try:
        healthy, _ = _space(world.emu, "healthy", clients)
        down, _ = _space(world.emu, "down", clients)
        healthy_id = healthy.provider.me().workspace_id
        (old,) = [k for k in world.emu.keys(healthy_id) if k["name"] == "app-billing"]
        world.emu.add_fault("GET", "/api/data/me", status=503, skip=1)  # down's, not healthy's
        engine = world.engine(concurrency=1)  # each entry asks `me` in turn
        report = engine.run_pass([healthy, down])
        assert report.exit_code == 1
        assert report.workspaces[0].outcomes == {"app-billing": Outcome.ROTATED}
        record = healthy.sink.read("app-billing").record
        assert record is not None and record.previous_key_id == old["id"]
        assert not _revoked(world.emu, healthy_id, str(old["id"]))
        held = [e for e in world.events() if e["event"] == "revokes.held"]
        assert [(e["unidentified"], e["workspaces"]) for e in held] == [(["down"], ["healthy"])]
        # `plan` shows the retire held back for as long as down cannot be identified.
        world.emu.add_fault("GET", "/api/data/me", status=503, skip=1)
        plan, _rows = engine.plan_and_inventory([healthy, down])
        assert [(a.action, a.key_id, a.deferred) for a in plan] == [
            (Action.RETIRE, old["id"], Deferral.ENTRY_UNIDENTIFIED)
        ]
        plan, _rows = engine.plan_and_inventory([healthy, down])
        assert [(a.action, a.deferred) for a in plan if a.workspace == "healthy"] == [
            (Action.RETIRE, None)
        ]
        assert engine.run_pass([healthy, down]).exit_code == 0
        assert _revoked(world.emu, healthy_id, str(old["id"]))
    finally:
        for client in clients:
            client.close()


def test_an_unidentified_entry_declaring_another_workspace_holds_back_nothing(
    world: World,
) -> None:
    """With its ``workspace_id`` in the workspaces file, an entry whose ``me`` fails can only
    be that workspace again: the other workspace's revokes go ahead (the pass still fails)."""
    clients: list[ProjectManagerClient] = []
    try:
        healthy, _ = _space(world.emu, "healthy", clients)
        down, _ = _space(world.emu, "down", clients)
        down.expected_workspace_id = down.provider.me().workspace_id
        healthy_id = healthy.provider.me().workspace_id
        (old,) = [k for k in world.emu.keys(healthy_id) if k["name"] == "app-billing"]
        world.emu.add_fault("GET", "/api/data/me", status=503, skip=1)
        report = world.engine(concurrency=1).run_pass([healthy, down])
        assert report.exit_code == 1
        assert _revoked(world.emu, healthy_id, str(old["id"]))
        assert not [e for e in world.events() if e["event"] == "revokes.held"]
    finally:
        for client in clients:
            client.close()


def _revoked(emu: Emulator, workspace_id: str, key_id: str) -> bool:
    (key,) = [k for k in emu.keys(workspace_id, include_revoked=True) if k["id"] == key_id]
    return bool(key["revoked"])


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
