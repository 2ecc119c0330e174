"""What a person reads: tables at 80 and 120 columns, ``-o`` formats, order by urgency, the
next actions and their times, what ``run-once`` prints, colour on a terminal only.

Every test runs the real ``rotator`` command against the bundled emulator (tests/cli_support),
as an ops engineer would; a terminal is a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from rotator.emulator import Emulator
from tests.cli_support import Seeded, rotator_argv, run_cli, seed

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DEFAULT_COLUMNS = [
    "WORKSPACE", "CREDENTIAL", "ROLE", "KEY", "EXPIRES", "DAYS LEFT", "NEXT", "WHEN", "IN SINK"
]  # fmt: skip


@pytest.fixture
def acme(emulator: Emulator) -> Seeded:
    return seed(emulator)


@pytest.fixture
def sink_dir(tmp_path: Path) -> Path:
    return tmp_path / "secrets"


def _json(result: object) -> object:
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# ---------------------------------------------------------------------------------- tables


@pytest.mark.parametrize("columns", [80, 120])
def test_the_default_table_fits_the_width_and_keeps_whole_names(
    acme: Seeded, sink_dir: Path, tmp_path: Path, columns: int
) -> None:
    acme.add_key("app-billing-sync", days_left=5)
    acme.add_key("app-warehouse-etl", days_left=400)
    env = acme.env(sink_dir, COLUMNS=str(columns))

    for command in (["status"], ["plan"]):
        result = run_cli(command, env, tmp_path)
        assert result.returncode == 0, result.describe()
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= columns, result.stdout
        assert "\x1b[" not in result.stdout  # a pipe: no colour
        assert "app-billing-sync" in result.stdout
        assert "app-warehouse-etl" in result.stdout

    status = run_cli(["status"], env, tmp_path).stdout.splitlines()
    headers = [h for h in DEFAULT_COLUMNS if h in status[0]]
    if columns == 120:
        assert headers == DEFAULT_COLUMNS
    else:
        # At 80 columns the date and the workspace (one workspace: it says nothing) give way
        # first; what to do and when stays.
        assert {"CREDENTIAL", "ROLE", "DAYS LEFT", "NEXT", "WHEN", "IN SINK"} <= set(headers)
        assert "EXPIRES" not in headers


def test_a_long_name_is_cut_with_an_ellipsis_only_when_nothing_else_gives_way(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    long_name = "app-" + "very-long-credential-name-" * 3
    acme.add_key(long_name, days_left=100)

    narrow = run_cli(["status"], acme.env(sink_dir, COLUMNS="80"), tmp_path)
    wide = run_cli(["status", "-o", "wide"], acme.env(sink_dir, COLUMNS="80"), tmp_path)

    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert "…" in narrow.stdout
    assert long_name in wide.stdout  # wide never cuts, whatever the terminal


def test_status_days_are_right_aligned_with_one_decimal_and_expiry_is_a_date(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    key_id, _ = acme.add_key("app-billing", days_left=5.25)
    acme.add_key("app-crm", days_left=400)

    lines = run_cli(["status"], acme.env(sink_dir), tmp_path).stdout.splitlines()

    header, rows = lines[0], lines[1:]
    end = header.index("DAYS LEFT") + len("DAYS LEFT")
    billing = next(r for r in rows if key_id[:8] in r)
    assert billing[:end].endswith(" 5.2") or billing[:end].endswith(" 5.3")
    expires = (acme.emu.now() + timedelta(days=5.25)).strftime("%Y-%m-%d")
    assert f" {expires} " in billing
    assert key_id not in billing  # the short id only


def test_wide_adds_ids_ages_reasons_and_the_sink_target(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    key_id, _ = acme.add_key("app-billing", days_left=5)

    result = run_cli(["status", "-o", "wide"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 0, result.describe()
    header, *rows = result.stdout.splitlines()
    for column in ("KEY ID", "AGE", "REASON", "TARGET"):
        assert column in header
    billing = next(r for r in rows if key_id in r)
    assert "expiring" in billing
    assert f"file:{sink_dir.resolve() / 'app-billing'}" in billing


# ------------------------------------------------------------------------------ -o formats


@pytest.mark.parametrize("command", [["status"], ["plan"], ["check-config"]])
def test_json_and_yaml_hold_the_same_data(
    acme: Seeded, sink_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    acme.add_key("app-billing", days_left=5)
    acme.add_key("app-crm", days_left=300)
    env = acme.env(sink_dir)

    as_json = run_cli([*command, "-o", "json"], env, tmp_path)
    legacy = run_cli([*command, "--json"], env, tmp_path)
    as_yaml = run_cli([*command, "-o", "yaml"], env, tmp_path)

    for result in (as_json, legacy, as_yaml):
        assert result.returncode == 0, result.describe()
    data = json.loads(as_json.stdout)
    if command != ["check-config"]:  # its fire times move on between the runs
        assert json.loads(legacy.stdout) == data
        assert yaml.safe_load(as_yaml.stdout) == data
    else:
        shown = yaml.safe_load(as_yaml.stdout)
        assert shown["settings"] == data["settings"]
        assert set(shown) == set(data)


def test_an_unknown_output_format_is_a_usage_error(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(["status", "-o", "xml"], acme.env(sink_dir), tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert acme.emu.request_log() == []


# ----------------------------------------------------------------------- order and filters


def test_status_lists_the_most_urgent_first(acme: Seeded, sink_dir: Path, tmp_path: Path) -> None:
    acme.add_key("app-later", days_left=300)
    acme.add_key("app-soon", days_left=40)  # due in 10 days
    acme.add_key("app-now", days_left=3)
    acme.add_key("app-sooner", days_left=35)

    rows = _json(run_cli(["status", "--json"], acme.env(sink_dir), tmp_path))

    assert isinstance(rows, list)
    assert [r["credential"] for r in rows] == [
        "app-now", "app-sooner", "app-soon", "app-later", "rotator-admin"
    ]  # fmt: skip
    times = [_at(r["next_action_at"]) for r in rows if r["next_action"] != "none"]
    assert times == sorted(t for t in times if t is not None)
    now = datetime.now(UTC)
    first = _at(rows[0]["next_action_at"])
    assert first is not None and first <= now  # due: its time is in the past
    admin = rows[-1]
    assert (admin["next_action"], admin["next_action_at"], admin["in_sink"]) == (
        "none",
        None,
        False,
    )


def test_workspace_and_credential_filters(acme: Seeded, sink_dir: Path, tmp_path: Path) -> None:
    acme.add_key("app-billing", days_left=5)
    acme.add_key("app-billing-eu", days_left=50)
    acme.add_key("app-crm", days_left=300)
    env = acme.env(sink_dir)

    billing = _json(run_cli(["status", "--json", "--credential", "app-billing*"], env, tmp_path))
    plan = _json(run_cli(["plan", "--json", "--credential", "app-crm"], env, tmp_path))
    here = run_cli(["status", "--json", "--workspace", "default"], env, tmp_path)
    elsewhere = run_cli(["status", "--workspace", "nowhere"], env, tmp_path)

    assert isinstance(billing, list)
    assert sorted(r["credential"] for r in billing) == ["app-billing", "app-billing-eu"]
    assert plan == []
    assert len(_json(here)) == 4  # type: ignore[arg-type]
    assert elsewhere.returncode == 2
    assert "--workspace: no workspace 'nowhere'" in elsewhere.stderr


# ------------------------------------------------------------------ what a pass did, and next


def test_run_once_prints_each_action_and_the_counts_then_status_dates_the_retirement(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    old_id, _ = acme.add_key("app-billing", days_left=5)
    acme.add_key("app-crm", days_left=300)
    env = acme.env(sink_dir, ROTATOR_GRACE_HOURS="48")

    before = datetime.now(UTC)
    result = run_cli(["run-once"], env, tmp_path)
    after = datetime.now(UTC)

    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("default/app-billing: rotated, new key ")
    assert f"old key {old_id[:8]} retired in 47h" in lines[0]
    assert lines[1].startswith("1 rotated, 0 retired, 0 orphans revoked, 0 failed, 0 blocked")

    rows = {r["key_id"]: r for r in _json(run_cli(["status", "--json"], env, tmp_path))}  # type: ignore[union-attr]
    old = rows[old_id]
    assert (old["role"], old["next_action"], old["in_sink"]) == ("previous", "retire", False)
    retire_at = _at(old["next_action_at"])
    assert retire_at is not None
    assert before + timedelta(hours=48) <= retire_at <= after + timedelta(hours=48)
    (new,) = [r for r in rows.values() if r["credential"] == "app-billing" and r is not old]
    assert (new["role"], new["next_action"], new["in_sink"]) == ("current", "rotate", True)
    assert _at(new["next_action_at"]) == _at(new["expires"]) - timedelta(days=30)  # type: ignore[operator]

    # plan has nothing to do now, and says what comes next: the retirement, in 47 hours.
    plan = run_cli(["plan"], env, tmp_path)
    assert plan.stdout.startswith("(nothing to do now)")
    next_lines = plan.stdout.split("Next, not due yet:", 1)[1].splitlines()
    retire_line = next(line for line in next_lines if "retire" in line)
    assert old_id[:8] in retire_line
    assert "in 47h" in retire_line


def test_run_once_json_is_the_pass_report(acme: Seeded, sink_dir: Path, tmp_path: Path) -> None:
    old_id, _ = acme.add_key("app-billing", days_left=5)

    result = run_cli(["run-once", "-o", "json"], acme.env(sink_dir, ROTATOR_GRACE_HOURS="0"),
                     tmp_path)  # fmt: skip

    assert result.returncode == 0, result.describe()
    report = json.loads(result.stdout)
    assert report["exit_code"] == 0
    assert report["counts"] == {
        "rotated": 1, "retired": 1, "orphans_revoked": 0, "failed": 0, "blocked": 0, "skipped": 0
    }  # fmt: skip
    actions = [(a["credential"], a["action"], a["result"]) for a in report["actions"]]
    assert actions == [("app-billing", "rotate", "done"), ("app-billing", "retire", "done")]
    assert report["actions"][1]["key_id"] == old_id
    assert report["workspaces"][0]["results"][0]["outcome"] == "rotated"


def test_a_failed_rotation_is_a_line_and_a_count(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-billing", days_left=5)
    acme.emu.add_fault("POST", "/api/data/api-keys", status=500, times=10)

    result = run_cli(["run-once"], acme.env(sink_dir), tmp_path)

    assert result.returncode == 1, result.describe()
    first, last = result.stdout.splitlines()
    assert first.startswith("default/app-billing: failed (rotate): ")
    assert last.startswith("0 rotated, 0 retired, 0 orphans revoked, 1 failed, ")


# ----------------------------------------------------------------------------- a terminal


def _on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run with standard output and standard error on one pseudo-terminal."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        rotator_argv(*args), env=env, cwd=cwd, stdout=terminal, stderr=terminal
    ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the other end closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=30)
    os.close(controller)
    return code, b"".join(chunks).decode()


def test_colour_and_console_logs_on_a_terminal_only_and_never_with_no_color(
    acme: Seeded, sink_dir: Path, tmp_path: Path
) -> None:
    acme.add_key("app-billing", days_left=5)
    env = acme.env(sink_dir, ROTATOR_LOG_LEVEL="warning", ROTATOR_KEY_NAMES="app-*,nothing-*")

    code, shown = _on_a_terminal(["status"], env, tmp_path)
    assert code == 0, shown
    assert ANSI.search(shown)  # the due row in red, the header in bold
    # ROTATOR_LOG_FORMAT=auto: console lines for a person, not JSON.
    assert "selector.unmatched" in shown
    assert '{"' not in shown

    code, plain = _on_a_terminal(["status"], {**env, "NO_COLOR": "1"}, tmp_path)
    assert code == 0, plain
    assert not ANSI.search(plain)
    assert "selector.unmatched" in plain

    piped = run_cli(["status"], env, tmp_path)  # not a terminal: no colour, JSON logs
    assert not ANSI.search(piped.output)
    assert any(e["event"] == "selector.unmatched" for e in piped.events())
