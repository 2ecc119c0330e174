"""Print the idle resident memory (VmRSS) of ``rotator serve`` after its first pass.

Starts the bundled emulator in-process with one workspace (an admin key, one due and one healthy
managed key), runs ``python -m rotator serve`` against it with the file sink in a temporary
folder, waits for the pass on start to show in ``/metrics``, lets it settle, reads
``/proc/<pid>/status``, and stops it with SIGTERM. Linux only (it reads /proc). Usage:
``.venv/bin/python scripts/measure_rss.py [--settle SECONDS]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from rotator.emulator import Emulator


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise LookupError(field)


def _pass_recorded(port: int) -> bool:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.TransportError:
        return False
    return "rotator_last_pass_timestamp_seconds{" in text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle before reading")
    args = parser.parse_args()
    with Emulator() as emu, tempfile.TemporaryDirectory() as folder:
        workspace = emu.add_workspace("Acme")
        _id, admin = emu.add_key(workspace, "rotator-admin", expires=emu.now() + timedelta(700))
        emu.add_key(workspace, "app-billing", expires=emu.now() + timedelta(days=5))
        emu.add_key(workspace, "app-stable", expires=emu.now() + timedelta(days=300))
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
        env.update(
            ROTATOR_API_URL=emu.url,
            ROTATOR_API_KEY=admin,
            ROTATOR_KEY_NAMES="app-*",
            ROTATOR_SINK_FILE_DIR=str(Path(folder) / "secrets"),
            ROTATOR_HTTP_PORT=str(port),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "rotator", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not _pass_recorded(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.stderr.write("rotator serve did not complete its first pass\n")
                    return 1
                time.sleep(0.1)
            time.sleep(args.settle)
            rss = _status_field(process.pid, "VmRSS")
            peak = _status_field(process.pid, "VmHWM")
            sys.stdout.write(
                f"rotator serve idle after its first pass: VmRSS {rss} (peak VmHWM {peak})\n"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
