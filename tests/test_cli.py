"""End-to-end tests of the ``rotator`` command: real subprocesses against the emulator.

Each test runs ``python -m rotator`` as ops would (argv, a clean environment, a working folder)
against the bundled emulator on loopback, and checks what the contract names: exit codes,
standard output (tables, JSON), the JSON log lines on standard error, and the file sink's folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from rotator.emulator import Emulator
from tests.cli_support import (
    Seeded,
    clean_env,
    closed_port,
    rotator_argv,
    run_cli,
    seed,
    sink_leftovers,
    works,
)

PLAN_FIELDS = {"workspace", "credential", "key_id", "action", "reason", "days_left"}
STATUS_FIELDS = {
    "workspace",
    "name",
    "credential",
    "key_id",
    "expires",
    "days_left",
    "age_days",
    "managed",
    "due",
    "reason",
    "role",
}
META_FIELDS = {
    "key_id",
    "key_name",
    "expires",
    "delivered_at",
    "secret_sha256",
    "previous_key_id",
    "retire_previous_after",
}
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


@pytest.fixture
def acme(emulator: Emulator) -> Seeded:
    return seed(emulator)


@pytest.fixture
def sink_dir(tmp_path: Path) -> Path:
    return tmp_path / "secrets"


# ---------------------------------------------------------------------------------- run-once


def test_run_once_with_nothing_due_exits_0_and_changes_nothing(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-healthy", days_left=400)
    before = acme.live_ids()

    result = run_cli(["run-once"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 0, result.describe()
    assert acme.live_ids() == before
    assert acme.changing_requests() == []
    assert "pass.finished" in result.event_names()
    # Logs go to standard error; standard output says what the pass did: nothing.
    assert re.fullmatch(
        r"0 rotated, 0 retired, 0 orphans revoked, 0 failed, 0 blocked, 0 skipped "
        r"\(exit 0, [\d.]+ s\)\n",
        result.stdout,
    ), result.stdout


def test_run_once_rotates_and_writes_the_file_sink_layout(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    old_id, old_secret = acme.add_key("app-billing", days_left=5)

    result = run_cli(["run-once"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 0, result.describe()
    events = result.event_names()
    for name in ("pass.started", "key.evaluated", "rotation.created", "rotation.verified"):
        assert name in events
    assert "rotation.delivered" in events
    # Default grace is 24 h: the old key stays listed.
    assert old_id in acme.live_ids()
    newest = max(acme.live_keys("app-billing"), key=lambda k: k["expires"])
    assert newest["id"] != old_id
    assert str(newest["name"]).startswith("app-billing@")

    secret_file = sink_dir / "app-billing"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret_bytes = secret_file.read_bytes()
    secret = secret_bytes.decode()
    assert secret.strip() == secret  # the secret alone, no trailing newline
    assert secret in acme.emu.issued_secrets()
    assert secret != old_secret
    assert works(acme.emu, secret)

    meta_text = (sink_dir / "app-billing.meta.json").read_text()
    assert secret not in meta_text
    meta = json.loads(meta_text)
    assert set(meta) >= META_FIELDS
    assert meta["key_id"] == newest["id"]
    assert meta["key_name"] == newest["name"]
    assert meta["previous_key_id"] == old_id
    assert meta["secret_sha256"] == hashlib.sha256(secret_bytes).hexdigest()
    assert "pending_key_id" not in meta
    delivered = datetime.fromisoformat(meta["delivered_at"])
    retire_after = datetime.fromisoformat(meta["retire_previous_after"])
    assert delivered.utcoffset() == timedelta(0)
    assert retire_after - delivered == timedelta(hours=24)
    assert sink_leftovers(sink_dir, ["app-billing"]) == []


def test_run_once_exits_1_when_a_credential_fails(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    old_id, _ = acme.add_key("app-billing", days_left=5)
    acme.emu.add_fault("POST", "/api/data/api-keys", status=400, times=-1)

    result = run_cli(["run-once"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 1, result.describe()
    failed = [e for e in result.events() if e["event"] == "rotation.failed"]
    assert failed
    assert failed[0]["step"] == "create"
    assert failed[0]["credential"] == "app-billing"
    assert [k["id"] for k in acme.live_keys("app-billing")] == [old_id]
    assert not (sink_dir / "app-billing").exists()
    assert "Traceback" not in result.stderr


def test_run_once_exits_1_when_another_process_holds_the_lock(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-billing", days_left=5)
    before = acme.live_ids()
    sink_dir.mkdir(mode=0o700)
    lock_fd = os.open(sink_dir / ".rotator.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli(["run-once"], acme.env(sink_dir), tmp_path)
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)

    assert result.returncode == 1, result.describe()
    assert "pass.locked" in result.event_names()
    assert acme.live_ids() == before
    assert acme.changing_requests() == []
    assert not (sink_dir / "app-billing").exists()


def test_run_once_exits_3_when_its_own_key_is_refused(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-billing", days_left=5)
    before = acme.live_ids()

    result = run_cli(
        ["run-once"], acme.env(sink_dir, ROTATOR_API_KEY="not-a-key-the-api-knows"), tmp_path
    )

    assert result.returncode == 3, result.describe()
    assert acme.live_ids() == before
    assert acme.changing_requests() == []
    assert {r["status"] for r in acme.emu.request_log()} == {401}
    assert "Traceback" not in result.stderr


def test_run_once_exits_3_when_the_api_is_unreachable(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-billing", days_left=5)
    env = acme.env(sink_dir, ROTATOR_API_URL=f"http://127.0.0.1:{closed_port()}")

    started = time.monotonic()
    result = run_cli(["run-once"], env, tmp_path)

    assert result.returncode == 3, result.describe()
    assert time.monotonic() - started < 15
    assert "Traceback" not in result.stderr
    assert acme.emu.request_log() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_run_once_stopped_by_a_signal_finishes_the_credential_in_flight(
    acme: Seeded, sink_dir: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    # SIGHUP too (a closed terminal, a supervisor): its default action would kill the pass
    # between create and deliver, leaving a key no consumer holds.
    acme.add_key("app-urgent", days_left=3)
    later_id, _ = acme.add_key("app-later", days_left=5)
    acme.emu.add_fault("POST", "/api/data/api-keys", delay_seconds=2, times=1)
    env = acme.env(sink_dir, ROTATOR_WORKSPACE_CONCURRENCY="1", ROTATOR_CONCURRENCY="1")
    log_path = tmp_path / "run-once.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            rotator_argv("run-once"), env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 15
            while not any(r["method"] == "GET" for r in acme.emu.request_log()[1:]):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the pass never listed the keys"
                time.sleep(0.05)
            time.sleep(0.5)  # the create is now waiting on the emulator's delay
            process.send_signal(signum)
            returncode = process.wait(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    output = log_path.read_text()
    assert returncode == 1, output  # app-later was left undone: the next run does it
    assert [k["id"] for k in acme.live_keys("app-later")] == [later_id]
    assert works(acme.emu, (sink_dir / "app-urgent").read_text())
    assert not (sink_dir / "app-later").exists()
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [e["signal"] for e in events if e["event"] == "pass.stopping"] == [signum.name]
    assert "rotation.delivered" in [e["event"] for e in events]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        pytest.param({"ROTATOR_KEY_NAMES": ""}, "ROTATOR_KEY_NAMES", id="missing-key-names"),
        pytest.param({"ROTATOR_GRACE_HOUR": "1"}, "ROTATOR_GRACE_HOUR", id="misspelt"),
        pytest.param({"ROTATOR_GRACE_HOURS": "soon"}, "ROTATOR_GRACE_HOURS", id="invalid-value"),
        pytest.param(
            {"ROTATOR_ROTATE_BEFORE_DAYS": "800"}, "ROTATOR_ROTATE_BEFORE_DAYS", id="relation"
        ),
    ],
)
@pytest.mark.parametrize("command", ["run-once", "plan", "status", "history", "check-config"])
def test_bad_config_exits_2_naming_the_variable_and_changes_nothing(
    acme: Seeded,
    sink_dir: Path,
    tmp_path: Path,
    command: str,
    overrides: dict[str, str],
    variable: str,
) -> None:
    acme.add_key("app-billing", days_left=5)
    env = acme.env(sink_dir, **overrides)
    env = {name: value for name, value in env.items() if value}

    result = run_cli([command], env, tmp_path)

    assert result.returncode == 2, result.describe()
    assert variable in result.stderr
    assert "Traceback" not in result.output
    assert acme.admin_secret not in result.output
    assert acme.emu.request_log() == []
    assert not sink_dir.exists()


# -------------------------------------------------------------------------- plan and status


def test_plan_shows_the_rotation_and_changes_nothing(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    due_id, _ = acme.add_key("app-billing", days_left=5)
    acme.add_key("app-healthy", days_left=400)
    before = acme.live_ids()

    table = run_cli(["plan"], acme.env(sink_dir), tmp_path)
    as_json = run_cli(["plan", "--json"], acme.env(sink_dir), tmp_path)

    assert table.returncode == 0, table.describe()
    header, *rows = table.stdout.split("\n\n")[0].splitlines()
    assert header.split() == [
        "WORKSPACE", "CREDENTIAL", "ACTION", "REASON", "KEY", "DAYS", "LEFT", "DEFERRED"
    ]  # fmt: skip
    assert len(rows) == 1
    assert rows[0].split()[1:4] == ["app-billing", "rotate", "expiring"]
    assert due_id[:8] in rows[0]
    # Below it, what falls due next: the healthy key's rotation, by date.
    assert "Next, not due yet:" in table.stdout

    assert as_json.returncode == 0, as_json.describe()
    actions = json.loads(as_json.stdout)
    assert len(actions) == 1
    assert set(actions[0]) >= PLAN_FIELDS
    assert actions[0]["workspace"] == "default"
    assert actions[0]["credential"] == "app-billing"
    assert actions[0]["key_id"] == due_id
    assert actions[0]["action"] == "rotate"
    assert actions[0]["reason"] == "expiring"
    assert 4 < actions[0]["days_left"] <= 5

    assert acme.live_ids() == before
    assert acme.changing_requests() == []
    assert not (sink_dir / "app-billing").exists()


def test_plan_with_nothing_due_prints_an_empty_array(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-healthy", days_left=400)

    as_json = run_cli(["plan", "--json"], acme.env(sink_dir), tmp_path)
    table = run_cli(["plan"], acme.env(sink_dir), tmp_path)

    assert as_json.returncode == 0, as_json.describe()
    assert json.loads(as_json.stdout) == []
    assert table.returncode == 0
    assert table.stdout.splitlines()[0] == "(nothing to do now)"


def test_status_lists_every_key_with_its_role(acme: Seeded, sink_dir: Path, tmp_path: Path) -> None:
    due_id, _ = acme.add_key("app-billing", days_left=5)
    healthy_id, _ = acme.add_key("app-healthy", days_left=400)
    before = acme.live_ids()

    as_json = run_cli(["status", "--json"], acme.env(sink_dir), tmp_path)
    table = run_cli(["status"], acme.env(sink_dir), tmp_path)

    assert as_json.returncode == 0, as_json.describe()
    keys = {row["key_id"]: row for row in json.loads(as_json.stdout)}
    assert set(keys) == {due_id, healthy_id, acme.admin_id}
    for row in keys.values():
        assert set(row) >= STATUS_FIELDS
        assert row["workspace"] == "default"
        assert datetime.fromisoformat(row["expires"]).utcoffset() == timedelta(0)
    due = keys[due_id]
    assert (due["name"], due["credential"], due["managed"], due["due"], due["reason"]) == (
        "app-billing",
        "app-billing",
        True,
        True,
        "expiring",
    )
    assert due["role"] == "current"
    assert 4 < due["days_left"] <= 5
    assert 724 < due["age_days"] <= 726
    assert keys[healthy_id]["due"] is False
    assert keys[healthy_id]["reason"] == "not-due"
    admin = keys[acme.admin_id]
    assert (admin["managed"], admin["role"]) == (False, "unmanaged")

    assert table.returncode == 0, table.describe()
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["WORKSPACE", "CREDENTIAL", "ROLE", "KEY"]
    assert len(lines) == 4
    # Most urgent first: the due key's rotation is now.
    assert lines[1].split()[1:4] == ["app-billing", "current", due_id[:8]]
    assert lines[1].split()[-3:] == ["rotate", "now", "no"]

    assert acme.live_ids() == before
    assert acme.changing_requests() == []


def test_plan_and_status_exit_3_when_their_key_is_refused(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    env = acme.env(sink_dir, ROTATOR_API_KEY="wrong-key")
    for command in ("plan", "status"):
        result = run_cli([command, "--json"], env, tmp_path)
        assert result.returncode == 3, result.describe()
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
    assert acme.changing_requests() == []


# ----------------------------------------------------------------------------- check-config


def _fire_times(stdout: str) -> list[datetime]:
    return [datetime.fromisoformat(m) for m in ISO_WITH_OFFSET.findall(stdout)]


def test_check_config_redacts_the_key_and_shows_three_fire_times(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(["check-config"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 0, result.describe()
    assert acme.admin_secret not in result.output
    assert "ROTATOR_API_KEY=" in result.stdout
    assert "ROTATOR_KEY_NAMES" in result.stdout
    fires = _fire_times(result.stdout)
    assert len(fires) == 3
    assert all(f.utcoffset() == timedelta(0) and (f.hour, f.minute) == (3, 0) for f in fires)
    assert fires == sorted(fires)
    assert fires[0] > datetime.now(UTC)
    assert fires[2] - fires[0] == timedelta(days=2)
    assert acme.emu.request_log() == []


def test_check_config_schedule_on_mondays_in_a_time_zone(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    env = acme.env(sink_dir, ROTATOR_SCHEDULE="0 3 * * 1", ROTATOR_TIMEZONE="Europe/Berlin")

    result = run_cli(["check-config", "--json"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    document = json.loads(result.stdout)
    assert acme.admin_secret not in result.output
    assert document["settings"]["ROTATOR_API_KEY"] != acme.admin_secret
    assert document["settings"]["ROTATOR_SCHEDULE"] == "0 3 * * 1"
    fires = [datetime.fromisoformat(text) for text in document["next_fire_times"]]
    assert len(fires) == 3
    assert all(ISO_WITH_OFFSET.fullmatch(text) for text in document["next_fire_times"])
    berlin = ZoneInfo("Europe/Berlin")
    for fire in fires:
        assert fire.weekday() == 0  # Monday, not APScheduler's Tuesday
        assert (fire.hour, fire.minute) == (3, 0)
        assert fire.utcoffset() == berlin.utcoffset(fire.replace(tzinfo=None))


def test_check_config_table_schedule_on_mondays(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(["check-config"], acme.env(sink_dir, ROTATOR_SCHEDULE="0 3 * * 1"), tmp_path)

    assert result.returncode == 0, result.describe()
    fires = _fire_times(result.stdout)
    assert len(fires) == 3
    assert [f.weekday() for f in fires] == [0, 0, 0]
    assert fires[1] - fires[0] == timedelta(weeks=1)


@pytest.mark.parametrize("schedule", ["0 3 * *", "61 3 * * *", "0 3 * * funday"])
def test_check_config_bad_schedule_exits_2(
    acme: Seeded, sink_dir: Path, tmp_path: Path, schedule: str
) -> None:
    result = run_cli(["check-config"], acme.env(sink_dir, ROTATOR_SCHEDULE=schedule), tmp_path)

    assert result.returncode == 2, result.describe()
    assert "ROTATOR_SCHEDULE" in result.stderr
    assert "Traceback" not in result.output


# ----------------------------------------------------------------- standard output closed early

#: Well above a pipe's capacity (64 KiB on Linux): the command is surely still writing when the
#: reader goes away, so every run meets the closed pipe, not only the unlucky ones.
PIPE_OVERFLOW_BYTES = 128 * 1024


def _read_one_line_then_close(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``rotator ARGS | head -1``: read one line of standard output, close the pipe, and
    return the exit code and everything written on standard error."""
    with subprocess.Popen(
        rotator_argv(*args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            assert process.stdout.readline()
            process.stdout.close()
            stderr = process.stderr.read().decode()
            return process.wait(timeout=30), stderr
        finally:
            if process.poll() is None:
                process.kill()


def test_check_config_piped_into_head_stops_quietly(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("pm-0123456789abcdef")
    # Each workspace adds a line of output (a warning about its wildcard): 800 make enough.
    entries = "".join(f"  - {{name: ws-{i}, api_key_file: {key_file}}}\n" for i in range(800))
    workspaces = tmp_path / "workspaces.yaml"
    workspaces.write_text("workspaces:\n" + entries)
    env = clean_env(
        {
            "ROTATOR_WORKSPACES_FILE": str(workspaces),
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
        }
    )
    whole = run_cli(["check-config"], env, tmp_path)
    assert whole.returncode == 0, whole.describe()
    assert len(whole.stdout.encode()) > PIPE_OVERFLOW_BYTES

    for _ in range(5):
        returncode, stderr = _read_one_line_then_close(["check-config"], env, tmp_path)
        assert stderr == ""
        assert returncode in (0, 141)


def test_status_json_piped_into_head_stops_quietly(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    for i in range(450):
        acme.add_key(f"app-{i:03}", days_left=300)
    env = acme.env(sink_dir, ROTATOR_LOG_LEVEL="error")
    whole = run_cli(["status", "--json"], env, tmp_path)
    assert whole.returncode == 0, whole.describe()
    assert len(whole.stdout.encode()) > PIPE_OVERFLOW_BYTES

    for _ in range(3):
        returncode, stderr = _read_one_line_then_close(["status", "--json"], env, tmp_path)
        assert stderr == ""
        assert returncode in (0, 141)


# ---------------------------------------------------------------------------------- emulator


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "workspaces": [
                    {
                        "name": "Seeded Co",
                        "id": "ws-seeded",
                        "keys": [
                            {"name": "rotator-admin", "id": "k-admin", "secret": "A" * 48},
                            {
                                "name": "app-billing",
                                "id": "k-billing",
                                "expires": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
                            },
                        ],
                    }
                ]
            }
        )
    )
    with subprocess.Popen(
        rotator_argv("emulator", "--port", "0", "--seed", str(seed_file)),
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            ready = _read_line(process, timeout=15)
            match = re.fullmatch(r"emulator listening on (http://127\.0\.0\.1:\d+)\n", ready)
            assert match, f"no ready line, got {ready!r}"
            yield process, match.group(1)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def test_emulator_command_serves_the_seed_and_stops_on_sigterm(
    emulator_process: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    process, url = emulator_process
    state = httpx.get(f"{url}/_emulator/state", timeout=5).json()
    assert [w["name"] for w in state["workspaces"]] == ["Seeded Co"]
    assert {k["id"] for k in state["workspaces"][0]["keys"]} == {"k-admin", "k-billing"}

    # A rotator in another process reads it as it would the real API.
    env = clean_env(
        {
            "ROTATOR_API_URL": url,
            "ROTATOR_API_KEY": "A" * 48,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
        }
    )
    plan = run_cli(["plan", "--json"], env, tmp_path)
    assert plan.returncode == 0, plan.describe()
    assert [(a["key_id"], a["action"]) for a in json.loads(plan.stdout)] == [
        ("k-billing", "rotate")
    ]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


# -------------------------------------------------------------------------------------- demo


def _processes_in_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp
            found.append(int(entry.name))
    return found


def test_demo_rotates_for_real_and_leaves_nothing_behind(tmp_path: Path) -> None:
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    started = time.monotonic()
    with subprocess.Popen(
        rotator_argv("demo"),
        env=clean_env({"TMPDIR": str(temp_root)}),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        stdout, stderr = process.communicate(timeout=30)
    elapsed = time.monotonic() - started

    assert process.returncode == 0, f"{stdout}\n{stderr}"
    assert elapsed < 10
    assert "Before the pass" in stdout
    assert "After the pass" in stdout
    before, after = stdout.split("After the pass", 1)
    before, did = before.split("What the pass did", 1)
    due = {line.split()[1] for line in before.splitlines() if re.search(r"rotate\s+now", line)}
    assert due == {"billing-sync", "warehouse-etl"}  # expiring, and past the maximum age
    assert "demo/billing-sync: rotated, new key" in did
    assert "demo/billing-sync: retired key" in did
    assert "2 rotated, 2 retired, 0 orphans revoked, 0 failed" in did
    held = {line.split()[1] for line in after.splitlines() if line.rstrip().endswith(" yes")}
    assert held == {"billing-sync", "warehouse-etl"}
    assert "exit code 0" in after
    assert "Traceback" not in stderr
    assert list(temp_root.iterdir()) == []
    assert _processes_in_group(process.pid) == []
    url = re.search(r"http://127\.0\.0\.1:(\d+)", stdout)
    assert url
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", int(url.group(1))), 1),
    ):
        pass


# -------------------------------------------------------------------------------------- help

READS_SETTINGS = ["run-once", "serve", "plan", "status", "check-config", "rotate"]


@pytest.mark.parametrize("command", [*READS_SETTINGS, "emulator", "demo"])
def test_help_of_each_command_exits_0_and_names_the_environment(
    command: str, tmp_path: Path
) -> None:
    result = run_cli([command, "--help"], clean_env(), tmp_path)

    assert result.returncode == 0, result.describe()
    assert "ROTATOR_" in result.stdout
    # The documentation is online, not a file the image lacks.
    assert "https://github.com/key-rotator/key-rotator" in result.stdout
    assert "README.md" not in result.stdout
    if command in READS_SETTINGS:
        for variable in ("ROTATOR_API_KEY", "ROTATOR_KEY_NAMES", "ROTATOR_SINK_FILE_DIR"):
            assert variable in result.stdout, f"{command} --help does not name {variable}"
        # Each with its default and a line of meaning.
        assert "ROTATOR_SINK_FILE_DIR (default: ./secrets)" in result.stdout
        assert "The rotator's own credential" in result.stdout
    if command == "emulator":
        assert "--port" in result.stdout
        assert "--seed" in result.stdout
    if command in ("plan", "status", "check-config"):
        assert "--json" in result.stdout
        assert "-o {table,wide,json,yaml}" in result.stdout


@pytest.mark.parametrize(
    ("command", "reads", "not_reads"),
    [
        ("serve", "ROTATOR_HTTP_PORT (default: 8080)", "ROTATOR_PUSHGATEWAY_URL"),
        ("run-once", "ROTATOR_PUSHGATEWAY_URL (default: unset)", "ROTATOR_HTTP_PORT"),
        ("rotate", "ROTATOR_EMERGENCY_GRACE_HOURS (default: 0)", "ROTATOR_GRACE_HOURS "),
        ("status", "ROTATOR_KEY_NAMES (default: required)", "ROTATOR_SCHEDULE"),
        ("check-config", "ROTATOR_HTTP_PORT (default: 8080)", "checked at start too"),
    ],
)
def test_help_lists_what_the_command_reads_and_not_what_it_does_not(
    command: str, reads: str, not_reads: str, tmp_path: Path
) -> None:
    shown = run_cli([command, "--help"], clean_env(), tmp_path).stdout
    assert reads in shown
    assert not_reads not in shown


def test_check_config_help_lists_every_variable(tmp_path: Path) -> None:
    from rotator.variables import VARIABLES  # noqa: PLC0415

    shown = run_cli(["check-config", "--help"], clean_env(), tmp_path).stdout
    assert [name for name in VARIABLES if f"{name} (default: " not in shown] == []


def test_top_level_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], clean_env(), tmp_path)

    assert result.returncode == 0, result.describe()
    for command in ["run-once", "serve", "plan", "status", "check-config", "emulator", "demo"]:
        assert command in result.stdout


@pytest.mark.parametrize("command", [["demo"], ["emulator", "--port", "0"]])
def test_commands_without_settings_still_reject_a_misspelt_variable(
    command: list[str], tmp_path: Path
) -> None:
    result = run_cli(command, clean_env({"ROTATOR_GRACE_HOUR": "1"}), tmp_path)

    assert result.returncode == 2, result.describe()
    assert "ROTATOR_GRACE_HOUR" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["rotate-everything"], clean_env(), tmp_path)

    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr


def test_the_version_is_the_one_pyproject_declares() -> None:
    import tomllib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from rotator import __version__  # noqa: PLC0415

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert __version__ == project["project"]["version"]


def test_help_imports_no_heavy_library() -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys, contextlib, io\n"
        "from rotator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['run-once', '--help'])\n"
        "heavy = ('pydantic', 'structlog', 'httpx', 'apscheduler', 'prometheus_client', 'yaml',\n"
        "         'rotator.render', 'rotator.settings')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
