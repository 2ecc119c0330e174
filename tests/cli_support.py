"""Helpers for end-to-end tests that run the ``rotator`` command as a real subprocess.

Responsible for: building a clean environment (no stray ROTATOR_* variable of the caller's leaks
into a test), running ``python -m rotator ...`` with a timeout and capturing its output, parsing
its JSON log lines, and seeding an emulated workspace relative to the emulator's clock.

Must not know: how the rotator works inside; tests see it only as ops do, through its argv,
environment, exit code, standard output, standard error and the file sink's folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from rotator.emulator import Emulator

ADMIN_KEY_NAME = "rotator-admin"
#: Generous: a run normally takes well under a second; a hung one must still fail the test.
DEFAULT_TIMEOUT_SECONDS = 30.0


def clean_env(variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with every ROTATOR_* variable removed, plus ``variables``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROTATOR_")}
    env.update(variables or {})
    return env


@dataclass(frozen=True)
class CliResult:
    """What one finished ``rotator`` process left: its exit code and both output streams."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines on standard error (lines that are not JSON objects are skipped)."""
        parsed: list[dict[str, Any]] = []
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                parsed.append(document)
        return parsed

    def event_names(self) -> list[str]:
        return [str(event.get("event")) for event in self.events()]

    def describe(self) -> str:
        """For assertion messages: the command, code and both streams."""
        return (
            f"rotator {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def rotator_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "rotator", *args]


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> CliResult:
    """Run ``python -m rotator ARGS`` to completion with exactly ``env``, in ``cwd``."""
    completed = subprocess.run(
        rotator_argv(*args),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Seeded:
    """One emulated workspace with the rotator's admin key; keys are added relative to emu.now()."""

    emu: Emulator
    workspace_id: str
    admin_id: str
    admin_secret: str

    def add_key(self, name: str, days_left: float) -> tuple[str, str]:
        return self.emu.add_key(
            self.workspace_id, name, expires=self.emu.now() + timedelta(days=days_left)
        )

    def live_keys(self, credential: str | None = None) -> list[dict[str, Any]]:
        """Keys not revoked, optionally only those of one credential (by base name)."""
        keys = self.emu.keys(self.workspace_id)
        if credential is None:
            return keys
        return [k for k in keys if str(k["name"]).split("@", 1)[0] == credential]

    def live_ids(self) -> set[str]:
        return {str(k["id"]) for k in self.live_keys()}

    def changing_requests(self) -> list[dict[str, Any]]:
        """Requests that could have changed something: any method but GET."""
        return [r for r in self.emu.request_log() if r["method"] != "GET"]

    def env(self, sink_dir: Path, **overrides: str) -> dict[str, str]:
        """A clean environment for a single-workspace run against this emulator."""
        variables = {
            "ROTATOR_API_URL": self.emu.url,
            "ROTATOR_API_KEY": self.admin_secret,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK": "file",
            "ROTATOR_SINK_FILE_DIR": str(sink_dir),
            "ROTATOR_HTTP_MAX_RETRIES": "0",
            "ROTATOR_HTTP_TIMEOUT_SECONDS": "5",
        }
        variables.update(overrides)
        return clean_env(variables)


def seed(emu: Emulator) -> Seeded:
    workspace_id = emu.add_workspace("Acme")
    admin_id, admin_secret = emu.add_key(
        workspace_id, ADMIN_KEY_NAME, expires=emu.now() + timedelta(days=700)
    )
    return Seeded(emu, workspace_id, admin_id, admin_secret)


def works(emu: Emulator, secret: str) -> bool:
    """Whether ``secret`` authenticates against the emulator now (a real HTTP request)."""
    response = httpx.get(
        f"{emu.url}/api/data/me", headers={"Authorization": f"Bearer {secret}"}, timeout=5
    )
    return response.status_code == 200


def sink_leftovers(sink_dir: Path, credentials: Sequence[str]) -> list[str]:
    """Files in the sink folder other than the lock and each credential's files (the secret,
    its metadata and its rotation history)."""
    expected = {".rotator.lock"}
    for credential in credentials:
        expected |= {credential, f"{credential}.meta.json", f"{credential}.history.json"}
    return sorted(p.name for p in sink_dir.iterdir() if p.name not in expected)
