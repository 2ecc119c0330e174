"""A real ``kill -9`` of ``run-once`` in the middle of rotating the rotator's own key: afterwards
a new process, reading only its configured credential file, still authenticates, and the runs
after it converge to exactly one own key. (Each delivery step is crashed at its checkpoint in
tests/engine/test_own_key.py; here the process really dies, during the create and the verify.)"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from tests.cli_support import clean_env, rotator_argv, run_cli
from tests.test_cross_process import _wait_for_event

OWN = "rotator"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize("during", ["create", "verify"])
def test_a_kill_during_a_self_rotation_never_locks_the_rotator_out(
    emu: Emulator, tmp_path: Path, during: str
) -> None:
    ws = emu.add_workspace("Acme")
    old_id, old_secret = emu.add_key(ws, OWN, expires=emu.now() + timedelta(days=5))
    sink_dir = tmp_path / "secrets"
    sink_dir.mkdir()
    (sink_dir / OWN).write_text(old_secret)
    env = clean_env(
        {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY_FILE": str(sink_dir / OWN),
            "ROTATOR_KEY_NAMES": "nothing-else",
            "ROTATOR_SELF_KEY_NAME": OWN,
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_SINK_FILE_DIR": str(sink_dir),
            "ROTATOR_ORPHAN_MIN_AGE_MINUTES": "0.03",
        }
    )
    if during == "create":
        # Long enough for a loaded machine to see key.evaluated and still kill during the create,
        # short of the 10 s request deadline.
        emu.add_fault("POST", "/api/data/api-keys", delay_seconds=4)
        waited_for = "key.evaluated"
    else:
        emu.set_variants(propagation_failures=4)  # verify retries for several seconds
        waited_for = "rotation.created"
    with subprocess.Popen(
        rotator_argv("run-once"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as crashed:
        try:
            _wait_for_event(crashed, waited_for, timeout=15)
            time.sleep(1.0)
            assert crashed.poll() is None, "the pass ended before it could be killed"
            crashed.send_signal(signal.SIGKILL)
        finally:
            crashed.kill()
            crashed.wait(timeout=10)
    assert crashed.returncode == -signal.SIGKILL
    emu.set_variants(propagation_failures=0)
    # The key the killed pass made finishes (the delayed create), and ages past the orphan minimum.
    time.sleep(4.5 if during == "create" else 3.5)

    status = run_cli(["status"], env, tmp_path)
    assert status.returncode == 0, status.describe()  # not locked out

    for _ in range(3):
        result = run_cli(["run-once"], env, tmp_path)
        assert result.returncode == 0, result.describe()
        time.sleep(2.0)
    live = [k for k in emu.keys(ws) if str(k["name"]).split("@")[0] == OWN]
    assert len(live) == 1, live
    assert live[0]["id"] != old_id
    assert run_cli(["status"], env, tmp_path).returncode == 0
