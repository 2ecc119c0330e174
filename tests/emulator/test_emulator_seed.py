"""``rotator emulator --seed FILE``: a bad seed is refused (exit 2) naming the file and each bad
field, unknown fields too; and the clock runs in real time unless asked to stand still."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rotator.emulator import Emulator, seed_problems
from tests.cli_support import clean_env, rotator_argv, run_cli

ADMIN = "pm_local_admin_key_0123456789"
GOOD: dict[str, Any] = {
    "workspaces": [
        {
            "name": "Acme",
            "keys": [
                {"name": "rotator-admin", "secret": ADMIN},
                {"name": "billing-sync", "expires": "2026-12-20T00:00:00Z"},
            ],
        }
    ]
}


def _refused(tmp_path: Path, text: str | None) -> list[str]:
    """Run ``rotator emulator`` with a seed file holding ``text`` (None: no file at all)."""
    seed = tmp_path / "seed.json"
    if text is not None:
        seed.write_text(text)
    result = run_cli(["emulator", "--port", "0", "--seed", str(seed)], clean_env(), tmp_path,
                     timeout=15)  # fmt: skip
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # never started
    lines = result.stderr.splitlines()
    assert lines[0] == "rotator: configuration error:"
    assert all(str(seed) in line for line in lines[1:]), lines
    return [line.strip().removeprefix(f"{seed}: ") for line in lines[1:]]


def test_a_missing_file(tmp_path: Path) -> None:
    assert _refused(tmp_path, None) == ["cannot be read: No such file or directory"]


def test_not_json(tmp_path: Path) -> None:
    (problem,) = _refused(tmp_path, '{"workspaces": [}')
    assert problem.startswith("is not JSON: ")
    assert problem.endswith("at line 1 column 17")


def test_every_bad_field_is_named_at_once(tmp_path: Path) -> None:
    seed = json.loads(json.dumps(GOOD))
    seed["workspace"] = []  # a misspelt top-level field: never an empty emulator without a word
    seed["now"] = "yesterday"
    seed["variants"] = {"list_expired": "yes", "colour": 1}
    seed["workspaces"][0]["keys"][1]["expires"] = "soon"
    seed["workspaces"][0]["keys"].append({"expires": "2027-01-01T00:00:00Z", "secrett": "x"})
    seed["workspaces"].append("Globex")

    problems = _refused(tmp_path, json.dumps(seed))

    assert problems == [
        "workspace: unknown field (known here: now, variants, workspaces)",
        "now: not an ISO 8601 time: 'yesterday'",
        "variants.list_expired: 'yes' is not one of [True, False]",
        "variants.colour: unknown variant (known: " + problems[3].split("(known: ", 1)[1],
        "workspaces[0].keys[1].expires: not an ISO 8601 time: 'soon'",
        "workspaces[0].keys[2].name: required",
        "workspaces[0].keys[2].secrett: unknown field (known here: created_by, expires, "
        "expires_in_days, id, name, revoked, secret)",
        "workspaces[1]: a workspace is a JSON object, not a string",
    ]


def test_expires_in_days_is_counted_from_the_emulators_start() -> None:
    seed = {"now": "2030-01-01T00:00:00Z", "workspaces": [
        {"name": "Acme", "keys": [{"name": "soon", "expires_in_days": 12.5}]}]}  # fmt: skip
    with Emulator(seed) as emu:
        (key,) = emu.keys(emu._state.snapshot()["workspaces"][0]["id"])
    assert key["expires"] == datetime(2030, 1, 13, 12, 0, tzinfo=UTC)
    both = {"workspaces": [{"name": "A", "keys": [
        {"name": "k", "expires": "2030-01-01T00:00:00Z", "expires_in_days": 1},
        {"name": "j", "expires_in_days": "ten"}]}]}  # fmt: skip
    assert seed_problems(both) == [
        "workspaces[0].keys[0]: give expires or expires_in_days, not both",
        "workspaces[0].keys[1].expires_in_days: expected a number of days, not a string",
    ]


def test_a_seed_that_contradicts_itself(tmp_path: Path) -> None:
    seed = json.loads(json.dumps(GOOD))
    seed["workspaces"][0]["keys"] = [{"name": "a", "id": "k1"}, {"name": "b", "id": "k1"}]
    assert _refused(tmp_path, json.dumps(seed)) == ["key k1 exists already"]


def test_the_readme_seed_and_the_test_seeds_are_good() -> None:
    from tests.emulator.emulator_support import seed  # noqa: PLC0415

    assert seed_problems(GOOD) == []
    assert seed_problems(seed()) == []


# ------------------------------------------------------------------------------- the clock


@contextmanager
def _serving(tmp_path: Path, *args: str) -> Iterator[str]:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(GOOD))
    with subprocess.Popen(
        rotator_argv("emulator", "--port", "0", "--seed", str(seed), *args),
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            ready = process.stdout.readline()
            match = re.fullmatch(r"emulator listening on (http://127\.0\.0\.1:\d+)\n", ready)
            assert match, ready
            yield match.group(1)
        finally:
            process.terminate()
            process.communicate(timeout=10)


def _create_two_keys(url: str) -> list[datetime]:
    expires = []
    for name in ("first", "second"):
        answer = httpx.post(
            f"{url}/api/data/api-keys",
            json={"tokenName": name},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=5,
        ).json()
        expires.append(datetime.fromisoformat(answer["data"]["expires"].replace("Z", "+00:00")))
        time.sleep(1.1)
    return expires


def test_the_emulator_command_runs_in_real_time_by_default(tmp_path: Path) -> None:
    with _serving(tmp_path) as url:
        first, second = _create_two_keys(url)
        now = datetime.fromisoformat(httpx.get(f"{url}/_emulator/state").json()["now"])
    assert second - first >= timedelta(seconds=1)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_frozen_clock_stands_still(tmp_path: Path) -> None:
    with _serving(tmp_path, "--clock", "frozen") as url:
        first, second = _create_two_keys(url)
    assert first == second


def test_a_real_clock_set_to_a_time_runs_on_from_there() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with Emulator({"now": "2030-01-01T00:00:00Z"}, clock="real") as emu:
        assert start <= emu.now() < start + timedelta(seconds=5)
        time.sleep(0.05)
        later = emu.now()
        assert later > start
        emu.advance(timedelta(days=1))
        assert emu.now() >= later + timedelta(days=1)
    with pytest.raises(ValueError, match="clock must be one of"):
        Emulator(clock="sundial")
