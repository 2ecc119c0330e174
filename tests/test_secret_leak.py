"""No secret in anything the ``rotator`` command prints (invariant 5), end to end.

Every command is driven as a real subprocess against the emulator: run-once with a rotation and
with a failure, plan, status, check-config, their ``--json`` forms, bad configuration, a refused
credential, the ``_FILE`` form, ``demo`` and ``emulator``; with JSON and console logs at debug
level. All of standard output and standard error is collected, and none of the secrets the
emulator ever issued (the admin key included), nor a wrong key that was offered, may appear.
"""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rotator.emulator import Emulator
from tests.cli_support import CliResult, Seeded, clean_env, rotator_argv, run_cli, seed

WRONG_KEY = "Wr0ngKeyOfferedByMistake-0123456789abcdefghijklmn"
#: A run of this many URL-safe characters looks like a secret (the emulator issues 48; a key id
#: is a 36-character UUID).
SECRET_LIKE = re.compile(r"[A-Za-z0-9_-]{40,}")


def _assert_no_secret(results: list[CliResult], secrets: set[str]) -> None:
    assert secrets, "nothing to look for: the test is wrong"
    for result in results:
        for secret in secrets:
            assert secret not in result.output, f"a secret leaked in:\n{result.describe()}"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_command_prints_a_secret(emulator: Emulator, tmp_path: Path, log_format: str) -> None:
    acme: Seeded = seed(emulator)
    acme.add_key("app-billing", days_left=5)
    acme.add_key("app-healthy", days_left=400)
    sink_dir = tmp_path / "secrets"
    key_file = tmp_path / "admin-key"
    key_file.write_text(acme.admin_secret + "\n")

    def env(**overrides: str) -> dict[str, str]:
        variables = {
            "ROTATOR_LOG_LEVEL": "debug",
            "ROTATOR_LOG_FORMAT": log_format,
            "ROTATOR_GRACE_HOURS": "0",
        }
        return acme.env(sink_dir, **(variables | overrides))

    results: list[CliResult] = []

    def run(args: list[str], expected: int, **overrides: str) -> CliResult:
        result = run_cli(args, env(**overrides), tmp_path)
        assert result.returncode == expected, result.describe()
        results.append(result)
        return result

    for command in (["check-config"], ["check-config", "--json"]):
        run(command, 0)
    for command in (["plan"], ["plan", "--json"], ["status"], ["status", "--json"]):
        run(command, 0)

    rotated = run(["run-once"], 0)
    assert acme.live_keys("app-billing")[0]["name"] != "app-billing"
    assert "rotation.revoked" in rotated.stderr

    # Now the sink holds a secret and its metadata: read-only commands look at both.
    for command in (["plan", "--json"], ["status"], ["status", "--json"]):
        run(command, 0, ROTATOR_API_KEY="", ROTATOR_API_KEY_FILE=str(key_file))

    acme.add_key("app-orders", days_left=3)
    acme.emu.add_fault("POST", "/api/data/api-keys", status=400, times=-1)
    failed = run(["run-once"], 1)
    assert "rotation.failed" in failed.stderr
    acme.emu.clear_faults()
    # The rotation history, as a table and as data, and the files it is kept in.
    for command in (["history"], ["history", "-o", "wide"], ["history", "--json"]):
        run(command, 0)
    assert list(sink_dir.glob("*.history.json")), "no history to look in: the test is wrong"
    kept = "".join(path.read_text() for path in sink_dir.glob("*.history.json"))
    results.append(CliResult(("cat", "*.history.json"), 0, kept, ""))

    # A refused credential, and bad configuration with a secret in the environment.
    run(["run-once"], 3, ROTATOR_API_KEY=WRONG_KEY)
    run(["status", "--json"], 3, ROTATOR_API_KEY=WRONG_KEY)
    run(["run-once"], 2, ROTATOR_GRACE_HOURS="soon")
    run(["check-config"], 2, ROTATOR_API_KEY="", ROTATOR_API_KYE=acme.admin_secret)
    run(["plan"], 2, ROTATOR_SCHEDULE="not a schedule")

    secrets = acme.emu.issued_secrets() | {acme.admin_secret, WRONG_KEY}
    assert len(secrets) >= 6  # admin, two seeded, one seeded later, one replacement, wrong key
    _assert_no_secret(results, secrets)


def test_demo_prints_no_secret(tmp_path: Path) -> None:
    result = run_cli(["demo"], clean_env({"ROTATOR_LOG_LEVEL": "debug"}), tmp_path)

    assert result.returncode == 0, result.describe()
    # The demo's emulator lives inside the demo's process: its secrets cannot be asked for, so
    # look for anything shaped like one.
    assert SECRET_LIKE.findall(result.output) == []


def test_emulator_command_and_a_pass_against_it_print_no_secret(tmp_path: Path) -> None:
    admin_secret = "S33dedAdminSecret-abcdefghijklmnopqrstuvwxyz012345"
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "workspaces": [
                    {
                        "name": "Seeded Co",
                        "keys": [
                            {"name": "rotator-admin", "secret": admin_secret},
                            {
                                "name": "app-billing",
                                "expires": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
                            },
                        ],
                    }
                ]
            }
        )
    )
    results: list[CliResult] = []
    with subprocess.Popen(
        rotator_argv("emulator", "--port", "0", "--seed", str(seed_file)),
        env=clean_env({"ROTATOR_LOG_LEVEL": "debug"}),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                assert selector.select(15), "the emulator printed no ready line"
            ready = process.stdout.readline()
            url = ready.rsplit(" ", 1)[1].strip()
            env = clean_env(
                {
                    "ROTATOR_API_URL": url,
                    "ROTATOR_API_KEY": admin_secret,
                    "ROTATOR_KEY_NAMES": "app-*",
                    "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
                    "ROTATOR_LOG_LEVEL": "debug",
                }
            )
            rotated = run_cli(["run-once"], env, tmp_path)
            assert rotated.returncode == 0, rotated.describe()
            results.append(rotated)
            issued = set(httpx.get(f"{url}/_emulator/secrets", timeout=5).json()["secrets"])
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert process.returncode == 0
    results.append(CliResult(("emulator",), process.returncode, ready + stdout, stderr))

    assert admin_secret in issued
    assert len(issued) == 3  # admin, the seeded key, its replacement
    _assert_no_secret(results, issued)
