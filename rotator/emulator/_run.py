"""Serve the emulator in the foreground until SIGTERM or SIGINT (``rotator emulator``).

Responsible for: loading a seed file, printing the ready line on standard output, waiting for a
signal, and stopping cleanly with exit code 0. Must not know the rotator's CLI or settings.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from rotator.emulator._server import Emulator


def load_seed(seed_path: Path) -> dict[str, Any]:
    """The seed in a JSON file (the format README describes); TypeError when not an object."""
    document = json.loads(seed_path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"{seed_path}: a seed is a JSON object")
    return document


def run(port: int, seed_path: Path | None) -> int:
    """Serve on 127.0.0.1:``port`` until SIGTERM or SIGINT; returns the exit code (0).

    Prints ``emulator listening on http://127.0.0.1:<port>`` (the real port) once ready.
    Must be called from the main thread (it installs signal handlers, restored on return).
    """
    seed = load_seed(seed_path) if seed_path is not None else None
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    emulator = Emulator(seed)
    try:
        emulator.start(port)
        sys.stdout.write(f"emulator listening on {emulator.url}\n")
        sys.stdout.flush()
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop_requested.wait(0.2):
            pass
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
