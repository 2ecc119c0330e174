"""Onboarding: ``rotate --all --now --grace-hours H`` puts every managed credential into the sink
while the keys the consumers hold now keep working, then ``status`` counts down to their
retirement. Also ``rotate`` of several names and its refusals. Real CLI, real emulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from tests.cli_support import Seeded, run_cli, seed, works
from tests.test_seams import Fleet


@pytest.fixture
def acme(emulator: Emulator) -> Seeded:
    return seed(emulator)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(Emulator(), tmp_path)


def test_rotate_all_with_a_grace_period_delivers_everything_and_keeps_the_old_keys(
    acme: Seeded, tmp_path: Path
) -> None:
    sink_dir = tmp_path / "secrets"
    old = {name: acme.add_key(name, days_left=days) for name, days in
           (("app-billing", 400), ("app-crm", 650), ("app-etl", 20))}  # fmt: skip
    env = acme.env(sink_dir)

    # Before: the keys exist, but the sink holds none of them (nothing is due but app-etl).
    before = json.loads(run_cli(["status", "--json"], env, tmp_path).stdout)
    assert {r["credential"]: r["in_sink"] for r in before if r["managed"]} == {
        "app-billing": False, "app-crm": False, "app-etl": False
    }  # fmt: skip

    started = datetime.now(UTC)
    result = run_cli(["rotate", "--all", "--now", "--grace-hours", "168"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1].startswith("3 rotated, 0 retired, 0 orphans revoked")
    for name, (old_id, old_secret) in old.items():
        assert works(acme.emu, old_secret), f"{name}'s old key must keep working for a week"
        assert (sink_dir / name).read_text() != old_secret
        assert works(acme.emu, (sink_dir / name).read_text())
        assert f"{name}: rotated, new key" in result.stdout
        assert f"old key {old_id[:8]} retired in 6d 23h" in result.stdout
    assert acme.admin_id in acme.live_ids()  # not managed: untouched

    rows = json.loads(run_cli(["status", "--json"], env, tmp_path).stdout)
    previous = [r for r in rows if r["role"] == "previous"]
    assert sorted(r["credential"] for r in previous) == ["app-billing", "app-crm", "app-etl"]
    for row in previous:
        assert row["next_action"] == "retire"
        retire_at = datetime.fromisoformat(row["next_action_at"])
        assert started + timedelta(hours=168) <= retire_at <= started + timedelta(hours=169)
    assert all(r["in_sink"] for r in rows if r["role"] == "current")
    # A pass before the week is over retires nothing and rotates nothing.
    again = run_cli(["run-once"], env, tmp_path)
    assert again.returncode == 0, again.describe()
    assert again.stdout.splitlines()[-1].startswith("0 rotated, 0 retired")


def test_rotate_several_names_and_only_those(acme: Seeded, tmp_path: Path) -> None:
    sink_dir = tmp_path / "secrets"
    for name in ("app-a", "app-b", "app-c"):
        acme.add_key(name, days_left=400)

    result = run_cli(["rotate", "app-a", "app-c", "--now"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1].startswith("2 rotated, 2 retired")  # emergency grace 0
    assert sorted(p.name for p in sink_dir.iterdir() if not p.name.startswith(".")) == [
        "app-a", "app-a.history.json", "app-a.meta.json",
        "app-c", "app-c.history.json", "app-c.meta.json",
    ]  # fmt: skip


def test_rotate_all_in_one_workspace_leaves_the_others_alone(fleet: Fleet) -> None:
    with fleet.emu:
        fleet.add("acme", key_names=["app-*"])
        fleet.add("globex", key_names=["app-*"])
        fleet.key("acme", "app-billing", days_left=400)
        fleet.key("globex", "app-billing", days_left=400)

        result = fleet.run("rotate", "--all", "--now", "--workspace", "acme")

        assert result.returncode == 0, result.describe()
        assert "@" in fleet.live("acme", "app-billing")[0]["name"]
        assert "@" not in fleet.live("globex", "app-billing")[0]["name"]
        assert fleet.held("globex", "app-billing") is None

        # --all alone: every workspace, without the ambiguity a bare name would have.
        everywhere = fleet.run("rotate", "--all", "--now")
        assert everywhere.returncode == 0, everywhere.describe()
        assert "@" in fleet.live("globex", "app-billing")[0]["name"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["rotate", "--now"], "name the credentials to rotate, or give --all"),
        (["rotate", "app-a", "--all", "--now"], "not both"),
        (["rotate", "--all"], "--now is required"),
        (["rotate", "--all", "--now", "--grace-hours", "9000"], "from 0 to 8760"),
        (["rotate", "--all", "--now", "--grace-hours", "nan"], "from 0 to 8760"),
        (["rotate", "--all", "--now", "--grace-hours", "soon"], "from 0 to 8760"),
    ],
)
def test_rotate_refuses_what_it_cannot_mean(
    acme: Seeded, tmp_path: Path, args: list[str], says: str
) -> None:
    acme.add_key("app-a", days_left=400)
    result = run_cli(args, acme.env(tmp_path / "secrets"), tmp_path)
    assert result.returncode == 2, result.describe()
    assert says in result.stderr
    assert acme.changing_requests() == []
