"""State lives only in the provider and the sink: separate ``run-once`` processes agree.

Two properties of the design (docs/how-it-works.md), checked with real processes against the
emulator:

- the grace period spans processes: a later pass, in a new process, keeps the previous key until
  the time written into the sink's metadata and revokes it after;
- a pass killed (SIGKILL) while the API is creating its replacement key is settled by the next
  passes: exactly one live rotator-made key, held by the sink and working, the old one revoked,
  no temporary file left.

The rotator runs on the real clock while the emulator's clock stands still; keys are seeded
relative to the emulator's clock, and waits are measured against the metadata's own times.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from rotator.models import Secret, SinkRecord, rotator_created_at
from rotator.sinks.file import FileSink
from tests.cli_support import Seeded, rotator_argv, run_cli, seed, sink_leftovers, works

CREDENTIAL = "app-billing"


@pytest.fixture
def acme(emulator: Emulator) -> Seeded:
    return seed(emulator)


def _meta(sink_dir: Path) -> dict[str, str]:
    document = json.loads((sink_dir / f"{CREDENTIAL}.meta.json").read_text())
    assert isinstance(document, dict)
    return document


def test_grace_spans_separate_processes(acme: Seeded, tmp_path: Path) -> None:
    old_id, _ = acme.add_key(CREDENTIAL, days_left=5)
    sink_dir = tmp_path / "secrets"
    env = acme.env(sink_dir, ROTATOR_GRACE_HOURS="0.001")  # 3.6 s

    first = run_cli(["run-once"], env, tmp_path)

    assert first.returncode == 0, first.describe()
    meta = _meta(sink_dir)
    new_id = meta["key_id"]
    assert meta["previous_key_id"] == old_id
    retire_after = datetime.fromisoformat(meta["retire_previous_after"])
    assert retire_after - datetime.fromisoformat(meta["delivered_at"]) == timedelta(seconds=3.6)
    assert {k["id"] for k in acme.live_keys(CREDENTIAL)} == {old_id, new_id}

    second = run_cli(["run-once"], env, tmp_path)

    assert datetime.now(UTC) < retire_after, "the second pass came too late to prove anything"
    assert second.returncode == 0, second.describe()
    assert "rotation.revoked" not in second.event_names()
    assert "rotation.created" not in second.event_names()
    assert {k["id"] for k in acme.live_keys(CREDENTIAL)} == {old_id, new_id}
    assert _meta(sink_dir) == meta

    time.sleep(max(0.0, (retire_after - datetime.now(UTC)).total_seconds()) + 0.2)
    third = run_cli(["run-once"], env, tmp_path)

    assert third.returncode == 0, third.describe()
    revoked = [e for e in third.events() if e["event"] == "rotation.revoked"]
    assert [e["key_id"] for e in revoked] == [old_id]
    assert "rotation.created" not in third.event_names()
    assert [k["id"] for k in acme.live_keys(CREDENTIAL)] == [new_id]
    after = _meta(sink_dir)
    assert after["key_id"] == new_id
    assert after["previous_key_id"] == old_id  # stays after the revoke (README)
    assert works(acme.emu, (sink_dir / CREDENTIAL).read_text())
    assert sink_leftovers(sink_dir, [CREDENTIAL]) == []


def _wait_for_event(process: subprocess.Popen[str], event: str, timeout: float) -> None:
    """Read the process's JSON log lines until ``event`` appears.

    Reads the pipe's bytes itself: a text stream's ``readline`` buffers several lines at once,
    and a selector does not see what sits in that buffer, so the wait would stall with the
    event already read.
    """
    assert process.stderr is not None
    descriptor = process.stderr.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(descriptor, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if any(json.loads(line).get("event") == event for line in lines if line.strip()):
                return
    pytest.fail(f"the rotator never logged {event}")


def _wait_for_key(acme: Seeded, known: set[str], timeout: float) -> dict[str, object]:
    """The one key of CREDENTIAL that appears beyond ``known`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [k for k in acme.live_keys(CREDENTIAL) if k["id"] not in known]
        if new:
            assert len(new) == 1
            return new[0]
        time.sleep(0.05)
    pytest.fail("the emulator never finished creating the key")


@pytest.mark.parametrize("earlier_delivery", [False, True], ids=["first-rotation", "steady"])
def test_a_pass_killed_while_creating_converges(
    acme: Seeded, tmp_path: Path, earlier_delivery: bool
) -> None:
    old_id, old_secret = acme.add_key(CREDENTIAL, days_left=5)
    sink_dir = tmp_path / "secrets"
    if earlier_delivery:
        # The sink holds the old key, as an earlier rotation would have left it.
        sink = FileSink(sink_dir)
        listed = {k["id"]: k for k in acme.live_keys(CREDENTIAL)}
        version = sink.write_secret(CREDENTIAL, Secret(old_secret), expected_version=None)
        sink.write_record(
            CREDENTIAL,
            SinkRecord(
                key_id=old_id,
                key_name=CREDENTIAL,
                expires=listed[old_id]["expires"],
                delivered_at=datetime.now(UTC) - timedelta(days=700),
                secret_sha256=Secret(old_secret).sha256(),
            ),
            expected_version=version,
        )
    # The orphan age is measured on the rotator's (real) clock against the time in the key's
    # name, so a short minimum age stands in for the ten minutes that pass in production.
    env = acme.env(sink_dir, ROTATOR_GRACE_HOURS="0", ROTATOR_ORPHAN_MIN_AGE_MINUTES="0.03")
    acme.emu.add_fault("POST", "/api/data/api-keys", delay_seconds=3)

    with subprocess.Popen(
        rotator_argv("run-once"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as crashed:
        try:
            _wait_for_event(crashed, "key.evaluated", timeout=15)
            time.sleep(1.0)  # well into the create request, which the emulator holds for 3 s
            assert crashed.poll() is None, "the pass ended before it could be killed"
            crashed.send_signal(signal.SIGKILL)
        finally:
            crashed.kill()
            crashed.wait(timeout=10)
    assert crashed.returncode == -signal.SIGKILL

    # The API finished creating the key after the process was gone: the worst case.
    crash_key = _wait_for_key(acme, {old_id}, timeout=10)
    created_at = rotator_created_at(str(crash_key["name"]))
    assert created_at is not None
    if sink_dir.exists():
        assert sink_leftovers(sink_dir, [CREDENTIAL]) == []
    acme.emu.advance(timedelta(minutes=11))
    time.sleep(max(0.0, (created_at + timedelta(seconds=2.5) - datetime.now(UTC)).total_seconds()))

    second = run_cli(["run-once"], env, tmp_path)
    third = run_cli(["run-once"], env, tmp_path)
    fourth = run_cli(["run-once"], env, tmp_path)

    for result in (second, third, fourth):
        assert result.returncode == 0, result.describe()
    all_events = [e for r in (second, third) for e in r.events()]
    orphan_revoked = [e["key_id"] for e in all_events if e["event"] == "orphan.revoked"]
    assert orphan_revoked == [crash_key["id"]]
    created = [e["key_id"] for e in all_events if e["event"] == "rotation.created"]
    assert len(created) == 1
    # Converged: a further pass has nothing left to do.
    assert not {"rotation.created", "rotation.revoked", "orphan.revoked"} & set(
        fourth.event_names()
    )

    live = acme.live_keys(CREDENTIAL)
    assert [k["id"] for k in live] == created
    assert old_id not in acme.live_ids()
    meta = _meta(sink_dir)
    assert meta["key_id"] == created[0]
    assert "pending_key_id" not in meta
    held = (sink_dir / CREDENTIAL).read_text()
    assert held != old_secret
    assert held in acme.emu.issued_secrets()
    assert works(acme.emu, held)
    assert sink_leftovers(sink_dir, [CREDENTIAL]) == []
