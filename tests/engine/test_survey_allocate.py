"""Survey, allocate, act: the runner over several workspaces of one emulator, with real sinks.

The budget is handed out over the plan of every workspace, whichever answered first; a
workspace listed twice does nothing; a wiped sink picks its current key the same way each time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.models import ApiKey, Identity, NewKey, Secret
from rotator.policy import RotationPolicy
from rotator.reconcile import ReconcileConfig
from rotator.rotation import RotationConfig
from rotator.runner import Runner
from rotator.sinks.file import FileSink
from rotator.sinks.memory import MemorySink
from rotator.survey import PassConfig, Workspace
from tests.cli_support import ADMIN_KEY_NAME

POLICY = RotationPolicy(key_names=("app-*",))


class SlowProvider:
    """The real API client of a workspace whose every answer takes ``delay`` seconds longer
    (a workspace far away, or a busy one): only its timing differs."""

    def __init__(self, client: ProjectManagerClient, delay: float) -> None:
        self._client, self._delay = client, delay

    def list_keys(self) -> Sequence[ApiKey]:
        time.sleep(self._delay)
        return self._client.list_keys()

    def create_key(self, token_name: str) -> NewKey:
        time.sleep(self._delay)
        return self._client.create_key(token_name)

    def revoke_key(self, key_id: str) -> None:
        time.sleep(self._delay)
        self._client.revoke_key(key_id)

    def me(self, credential: Secret | None = None) -> Identity:
        time.sleep(self._delay)
        return self._client.me(credential)


def _workspace(emu: Emulator, name: str) -> tuple[str, ProjectManagerClient]:
    ws_id, admin = _admin(emu, name)
    return ws_id, ProjectManagerClient(emu.url, admin, max_retries=0)


def _admin(emu: Emulator, name: str) -> tuple[str, Secret]:
    ws_id = emu.add_workspace(name)
    _id, admin = emu.add_key(ws_id, ADMIN_KEY_NAME, expires=emu.now() + timedelta(days=700))
    return ws_id, Secret(admin)


def _runner(emu: Emulator, budget: int = 50) -> Runner:
    return Runner(
        PassConfig(
            reconcile=ReconcileConfig(policy=POLICY),
            rotation=RotationConfig(grace=timedelta(0), verify_first_wait_seconds=0.0),
            max_rotations_per_pass=budget,
        ),
        clock=emu.now,
        sleep=lambda _s: None,
    )


def _rotated(emu: Emulator, ws_id: str, name: str) -> bool:
    return any(str(k["name"]).startswith(f"{name}@") for k in emu.keys(ws_id))


def test_a_slow_workspaces_urgent_key_wins_the_budget() -> None:
    with Emulator() as emu:
        fast_id, fast = _workspace(emu, "Fast")
        slow_id, slow = _workspace(emu, "Slow")
        for index in range(4):
            emu.add_key(fast_id, f"app-{index}", expires=emu.now() + timedelta(days=20))
        emu.add_key(slow_id, "app-urgent", expires=emu.now() + timedelta(hours=5))
        with fast, slow:
            report = _runner(emu, budget=3).run_pass(
                [
                    Workspace("fast", fast, MemorySink()),
                    Workspace("slow", SlowProvider(slow, delay=1.5), MemorySink()),
                ]
            )
        assert _rotated(emu, slow_id, "app-urgent")
        assert sum(_rotated(emu, fast_id, f"app-{i}") for i in range(4)) == 2
        assert report.budget_exhausted
        skipped = [
            r.credential
            for w in report.workspaces
            for r in w.results.values()
            if r.skipped == "budget"
        ]
        assert len(skipped) == 2


def test_a_workspace_listed_twice_creates_and_revokes_nothing(tmp_path: Path) -> None:
    with Emulator() as emu:
        ws_id, admin = _admin(emu, "Acme")
        emu.add_key(ws_id, "app-billing", expires=emu.now() + timedelta(days=3))
        # Two entries, one credential file: a copy-paste.
        first = ProjectManagerClient(emu.url, admin, max_retries=0)
        second = ProjectManagerClient(emu.url, admin, max_retries=0)
        with first, second:
            report = _runner(emu).run_pass(
                [
                    Workspace("acme", first, FileSink(tmp_path / "a")),
                    Workspace("acme-again", second, FileSink(tmp_path / "b")),
                ]
            )
        assert report.exit_code == 1
        assert all("listed twice" in (w.error or "") for w in report.workspaces)
        assert [r for r in emu.request_log() if r["method"] != "GET"] == []


def test_after_a_wiped_sink_keys_made_in_one_second_are_told_apart_the_same_way() -> None:
    with Emulator() as emu:
        ws_id, client = _workspace(emu, "Acme")
        expires = emu.now() + timedelta(days=3)
        # Listed oldest first: taking the first of equal expiries would pick the older one.
        earlier, _ = emu.add_key(ws_id, "app-billing@2026-01-01T00:00:00Z", expires=expires)
        later, _ = emu.add_key(ws_id, "app-billing@2026-01-01T00:00:01Z", expires=expires)
        with client:
            runner = _runner(emu)
            for _ in range(2):  # the same answer whatever the order of the list
                status = runner.inventory([Workspace("acme", client, MemorySink())])
                roles = {row.key_id: str(row.role) for row in status}
                assert roles[later] == "current" and roles[earlier] == "unknown"


def test_a_key_left_out_that_expires_at_the_next_pass_itself_fails_the_pass() -> None:
    with Emulator() as emu:
        emu.set_now(datetime(2027, 3, 2, 15, 0, tzinfo=UTC))
        next_pass = datetime(2027, 3, 3, 3, 0, tzinfo=UTC)
        ws_id, client = _workspace(emu, "Acme")
        emu.add_key(ws_id, "app-first", expires=emu.now() + timedelta(hours=6))
        # Expires the very instant the next pass starts: that pass would find it dead.
        emu.add_key(ws_id, "app-second", expires=next_pass)
        runner = Runner(
            PassConfig(
                reconcile=ReconcileConfig(policy=POLICY),
                rotation=RotationConfig(grace=timedelta(0), verify_first_wait_seconds=0.0),
                max_rotations_per_pass=1,
                next_pass_at=lambda _now: next_pass,
            ),
            clock=emu.now,
            sleep=lambda _s: None,
        )
        with client:
            report = runner.run_pass([Workspace("acme", client, MemorySink())])
        assert _rotated(emu, ws_id, "app-first")
        assert not _rotated(emu, ws_id, "app-second")
        assert report.exit_code == 1
