"""``rotator rotate NAME --now``: an operator's emergency rotation of one credential (a leak).

Runs the real CLI as a subprocess against the emulator, and the engine in-process for the
grace-period rule.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rotator.emulator import Emulator
from rotator.report import actions_taken
from rotator.rotation import Outcome
from tests.cli_support import run_cli, seed, works
from tests.conftest import World


def test_rotate_now_replaces_a_healthy_key_and_revokes_the_leaked_one(tmp_path: Path) -> None:
    with Emulator() as emu:
        world = seed(emu)
        sink = tmp_path / "secrets"
        env = world.env(sink)
        leaked_id, _ = world.add_key("app-billing", days_left=600)
        other_id, _ = world.add_key("app-crm", days_left=3)  # due, but not named: untouched
        result = run_cli(["rotate", "app-billing", "--now"], env, tmp_path)
        assert result.returncode == 0, result.describe()
        live = world.live_keys("app-billing")
        assert len(live) == 1
        assert live[0]["id"] != leaked_id  # ROTATOR_EMERGENCY_GRACE_HOURS=0: revoked at once
        assert works(emu, (sink / "app-billing").read_text())
        assert other_id in world.live_ids()
        assert not (sink / "app-crm").exists()
        reasons = [e["reason"] for e in result.events() if e["event"] == "key.evaluated"]
        assert reasons == ["forced"]


def test_rotate_now_refuses_unknown_or_unmanaged_names_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with Emulator() as emu:
        world = seed(emu)
        env = world.env(tmp_path / "secrets")
        world.add_key("app-billing", days_left=3)
        world.add_key("powerbi-feed", days_left=3)
        for argv in (
            ["rotate", "app-nothing", "--now"],
            ["rotate", "powerbi-feed", "--now"],  # not selected by ROTATOR_KEY_NAMES
            ["rotate", "app-billing"],  # --now missing
            ["rotate", "app-billing", "--now", "--workspace", "elsewhere"],
        ):
            result = run_cli(argv, env, tmp_path)
            assert result.returncode == 2, result.describe()
            assert "Traceback" not in result.stderr
        assert world.changing_requests() == []


def test_forced_rotation_first_retires_a_previous_key_in_its_grace_period(world: World) -> None:
    previous_id, _ = world.add_key("app-billing", days_left=300)
    current_id, current_secret = world.add_key("app-billing@2026-01-01T00:00:00Z", days_left=700)
    world.deliver("app-billing", current_id, current_secret)
    world.set_previous("app-billing", previous_id, world.emu.now() + timedelta(hours=20))
    engine = world.engine(grace=timedelta(hours=2))
    report = engine.run_pass([world.workspace()], forced={"app-billing"})
    assert report.exit_code == 0
    live = [k["id"] for k in world.live("app-billing")]
    assert previous_id not in live  # retired first, inside its grace period
    assert current_id in live  # the new previous, in its own (emergency) grace period
    assert len(live) == 2
    assert world.works(world.held_secret("app-billing"))


def test_rotate_now_fails_when_the_closing_list_cannot_confirm_the_revoke(world: World) -> None:
    # A leaked key must be proven gone: a revoke the closing list could not confirm (the list
    # failed) is a failure, never an exit 0 while the key may still be live.
    leaked_id, leaked_secret = world.add_key("app-billing", days_left=600)
    world.deliver("app-billing", leaked_id, leaked_secret)

    def list_fails_after_the_revoke(reached: str, _credential: str) -> None:
        if reached == "revoked":
            world.emu.add_fault("GET", "/api/data/api-keys", status=503, times=-1)

    engine = world.engine(list_fails_after_the_revoke, emergency=True)
    report = engine.run_pass([world.workspace()], forced={"app-billing"})
    assert [s.key_id for s in report.steps if s.event == "rotation.revoked"] == [leaked_id]
    assert report.exit_code == 1
    result = report.workspaces[0].results["app-billing"]
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "could not confirm the revoke" in result.error
    # What `rotate` prints: the retire failed, unconfirmed, never "done" alone.
    failed = [a for a in actions_taken(report) if a["result"] == "failed"]
    assert [(a["action"], a["credential"]) for a in failed] == [("retire", "app-billing")]
    assert "could not confirm the revoke" in str(failed[0]["detail"])
    world.emu.clear_faults()
    assert leaked_id not in [k["id"] for k in world.live("app-billing")]
