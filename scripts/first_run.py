"""Run README's "First run" walk-through for real and paste its output into the docs.

It does what a newcomer does after the quick start: writes the seed, starts ``rotator emulator``
(a real process, its clock running), and runs each command of the walk-through in a shell, with
``rotator`` on the PATH as after ``. .venv/bin/activate``. The standard output of each command
replaces what stands between ``<!-- first-run:NAME -->`` and ``<!-- /first-run:NAME -->`` in
README.md and docs/operations.md, so the output shown there is always a real run's, never typed
by hand. Log lines (standard error) are left out, as the docs say; the emulator's port and the
temporary folder are shown as README's (8765, /home/you/key-rotator).

    python scripts/first_run.py           # run it, rewrite the blocks in place
    python scripts/first_run.py --check   # run it; exit 1 when a command failed (CI-friendly)
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "operations.md"]

#: The seed README shows (expiries in days from now, so the example never goes stale).
SEED = """\
{"workspaces": [{"name": "Acme", "keys": [
  {"name": "rotator-admin", "secret": "pm_local_admin_key_0123456789"},
  {"name": "billing-sync", "expires_in_days": 12},
  {"name": "billing-reports", "expires_in_days": 400},
  {"name": "powerbi-feed", "expires_in_days": 200}]}]}
"""

#: (block name, the command as README shows it, the exit code it must end with)
STEPS = [
    ("plan", "rotator plan", 0),
    ("check", "rotator check-config --online | sed -n '/^Online checks/,$p'", 0),
    ("status-before", "rotator status", 0),
    ("rotate", "rotator rotate --all --now --grace-hours 168", 0),
    ("status-after", "rotator status", 0),
    ("files", "ls secrets", 0),
    ("history", "rotator history", 0),
    ("plan-after", "rotator plan", 0),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_walkthrough() -> dict[str, str]:
    """Each step's block: the command line and its standard output, as a console session."""
    blocks: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rotator-first-run-") as folder:
        work = Path(folder)
        (work / "seed.json").write_text(SEED)
        bin_dir = work / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "rotator"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m rotator "$@"\n')
        shim.chmod(0o755)
        port = _free_port()
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(ROOT),
            "HOME": str(work),
            "LANG": "C.UTF-8",
            # What README has the reader export:
            "ROTATOR_API_URL": f"http://127.0.0.1:{port}",
            "ROTATOR_API_KEY": "pm_local_admin_key_0123456789",
            "ROTATOR_KEY_NAMES": "billing-*",
        }
        with subprocess.Popen(
            [str(shim), "emulator", "--port", str(port), "--seed", "seed.json"],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        ) as emulator:
            try:
                ready = emulator.stdout.readline() if emulator.stdout else ""
                if "listening" not in ready:
                    raise SystemExit(f"the emulator did not start: {ready!r}")
                for name, command, expected in STEPS:
                    blocks[name] = _step(command, expected, work, env, port)
            finally:
                emulator.terminate()
    return blocks


def _step(command: str, expected: int, work: Path, env: dict[str, str], port: int) -> str:
    """Run one command as the reader would; its session: the command line and its output."""
    done = subprocess.run(
        ["/bin/sh", "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != expected:
        raise SystemExit(
            f"{command!r} ended with {done.returncode}, not {expected}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    output = done.stdout.rstrip("\n")
    # The emulator's port and the temporary folder change from run to run: shown as README's
    # port and a clone in a home folder.
    output = output.replace(f"127.0.0.1:{port}", "127.0.0.1:8765")
    output = output.replace(str(work.resolve()), "/home/you/key-rotator")
    return f"$ {command}\n{output}"


def paste(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each ``first-run:NAME`` block replaced by that step's session."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in blocks:
            raise SystemExit(f"no step named {name!r}")
        return f"<!-- first-run:{name} -->\n```console\n{blocks[name]}\n```\n<!-- /first-run:{name} -->"

    return re.sub(
        r"<!-- first-run:([a-z-]+) -->\n.*?<!-- /first-run:\1 -->", block, text, flags=re.DOTALL
    )


def main(argv: list[str]) -> int:
    blocks = run_walkthrough()
    if "--check" in argv:
        return 0
    for doc in DOCS:
        before = doc.read_text()
        after = paste(before, blocks)
        if after != before:
            doc.write_text(after)
            print(f"{doc.relative_to(ROOT)}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
