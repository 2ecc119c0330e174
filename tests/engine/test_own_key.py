"""The rotator's own key (ROTATOR_SELF_KEY_NAME): rotated last, delivered through the sink to the
file the rotator reads its credential from, and the old one revoked only once the process reads
the new one there and ``me`` answers with it. Wired from settings as a deployment is."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.app import open_workspaces, pass_config
from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.report import PassReport
from rotator.runner import Runner
from rotator.settings import load_settings, read_api_key
from tests.conftest import Crash, crash_at

OWN = "rotator"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


class Deployment:
    def __init__(self, emu: Emulator, tmp_path: Path, *, source: Path | None = None) -> None:
        self.emu = emu
        self.ws = emu.add_workspace("Acme")
        self.old_id, self.old_secret = emu.add_key(
            self.ws, OWN, expires=emu.now() + timedelta(days=5)
        )
        emu.add_key(self.ws, "app-billing", expires=emu.now() + timedelta(days=4))
        self.sink_dir = tmp_path / "secrets"
        self.sink_dir.mkdir()
        # Where the rotator reads its credential: the sink's own target unless told otherwise.
        self.source = source or self.sink_dir / OWN
        self.source.parent.mkdir(parents=True, exist_ok=True)
        self.source.write_text(self.old_secret + "\n")
        self.env = {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY_FILE": str(self.source),
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SELF_KEY_NAME": OWN,
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_SINK_FILE_DIR": str(self.sink_dir),
        }

    def run(self, checkpoint: Callable[[str, str], None] | None = None) -> PassReport:
        settings = load_settings(self.env)
        runner = Runner(pass_config(settings), clock=self.emu.now, checkpoint=checkpoint)
        with open_workspaces(settings) as workspaces:
            return runner.run_pass(workspaces)

    def status(self) -> dict[str, str]:
        settings = load_settings(self.env)
        runner = Runner(pass_config(settings, dry_run=True), clock=self.emu.now)
        with open_workspaces(settings) as workspaces:
            return {s.key_id or "": s.reason for s in runner.inventory(workspaces)}

    def own_keys(self) -> list[str]:
        return [str(k["id"]) for k in self.emu.keys(self.ws) if str(k["name"]).split("@")[0] == OWN]

    def source_works(self) -> bool:
        """What a new process reading only its configured source would find."""
        settings = load_settings(self.env)
        key = read_api_key(settings.workspaces[0])
        with ProjectManagerClient(self.emu.url, key, max_retries=0) as client:
            try:
                client.me()
            except Exception:  # noqa: BLE001 - any failure: locked out
                return False
        return True


def test_the_own_key_rotates_last_and_the_process_switches_to_it(
    emu: Emulator, tmp_path: Path
) -> None:
    d = Deployment(emu, tmp_path)
    report = d.run()
    assert report.exit_code == 0
    order = [s.credential for s in report.steps if s.event == "rotation.created"]
    assert order == ["app-billing", OWN]
    assert d.old_id not in d.own_keys()
    assert len(d.own_keys()) == 1
    held = (d.sink_dir / OWN).read_text()
    assert held != d.old_secret
    assert d.source_works()
    assert d.run().exit_code == 0  # the next pass runs on the new key


def test_a_sink_target_the_rotator_does_not_read_leaves_two_working_keys(
    emu: Emulator, tmp_path: Path
) -> None:
    d = Deployment(emu, tmp_path, source=tmp_path / "mounted" / "api-key")
    report = d.run()
    # Delivered in this pass: a mounted Secret may still catch up, so this pass is no failure.
    assert report.exit_code == 0
    assert d.old_id in d.own_keys()  # never revoked: the process still runs on it
    assert len(d.own_keys()) == 2
    assert report.workspaces[0].own_key_waiting
    assert d.status()[d.old_id] == "waiting-for-credential-source"
    assert d.source_works()
    d.emu.advance(timedelta(days=2))  # whatever the grace says
    # The key it runs on is due (within ROTATOR_ROTATE_BEFORE_DAYS) and stays in use: a
    # failure, never a silent 0, while the old key runs out.
    later = d.run()
    assert later.exit_code == 1
    (result,) = [r for r in later.workspaces[0].results.values() if r.credential == OWN]
    assert result.error is not None and "does not run on its key" in result.error
    assert d.old_id in d.own_keys()
    # Ops fix the mount: the next pass sees the new key in the source and retires the old one.
    d.source.write_text((d.sink_dir / OWN).read_text())
    assert d.run().exit_code == 0
    assert d.own_keys() == [k for k in d.own_keys() if k != d.old_id] and len(d.own_keys()) == 1
    assert d.source_works()


@pytest.mark.parametrize(
    "step", ["created", "verified", "pending-recorded", "secret-written", "delivered", "revoked"]
)
def test_a_crash_at_every_step_of_a_self_rotation_never_locks_the_rotator_out(
    emu: Emulator, tmp_path: Path, step: str
) -> None:
    d = Deployment(emu, tmp_path)
    d.env["ROTATOR_KEY_NAMES"] = "nothing-else"

    def crash_in_own(reached: str, credential: str) -> None:
        if credential == OWN:
            crash_at(step)(reached, credential)

    with contextlib.suppress(Crash):
        d.run(checkpoint=crash_in_own)
    assert d.source_works(), f"locked out after a crash at {step}"
    d.emu.advance(timedelta(minutes=11))  # a key the crash left is an orphan by now
    for _ in range(3):
        d.run()
        assert d.source_works()
    assert len(d.own_keys()) == 1
    assert d.own_keys() != [d.old_id]


def test_a_fixed_api_key_is_never_revoked_and_the_own_key_waits(
    emu: Emulator, tmp_path: Path
) -> None:
    # ROTATOR_API_KEY (not _FILE): the process holds its key for life and never reads the one its
    # sink delivers, so revoking the old key would lock it out at its next request.
    d = Deployment(emu, tmp_path)
    del d.env["ROTATOR_API_KEY_FILE"]
    d.env["ROTATOR_API_KEY"] = d.old_secret
    report = d.run()
    assert report.exit_code == 0
    assert [s.credential for s in report.steps if s.event == "rotation.created"][-1] == OWN
    assert report.workspaces[0].own_key_waiting
    assert not [s for s in report.steps if s.event == "rotation.revoked" and s.credential == OWN]
    assert d.old_id in d.own_keys()
    assert len(d.own_keys()) == 2
    assert d.status()[d.old_id] == "waiting-for-credential-source"
    assert d.source_works()
    d.emu.advance(timedelta(days=2))
    d.run()  # later passes keep it too: the process still runs on it
    assert d.old_id in d.own_keys()
    assert d.source_works()
