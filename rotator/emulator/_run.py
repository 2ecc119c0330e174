"""Serve the emulator in the foreground until SIGTERM or SIGINT (``rotator emulator``).

Responsible for: loading a seed file (rotator.emulator._seed checks it), choosing the clock,
printing the ready line on standard output, waiting for a
signal, and stopping cleanly with exit code 0. Must not know the rotator's CLI or settings.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from rotator.emulator._seed import SeedError, load_seed
from rotator.emulator._server import Emulator


def run(port: int, seed_path: Path | None, *, clock: str = "real") -> int:
    """Serve on 127.0.0.1:``port`` until SIGTERM or SIGINT; returns the exit code (0).

    Prints ``emulator listening on http://127.0.0.1:<port>`` (the real port) once ready. The
    clock runs in real time by default (keys created a minute apart expire a minute apart);
    ``frozen`` keeps it still until ``POST /_emulator/clock`` moves it. A bad seed raises
    SeedError naming the file and each bad field, before anything is served.
    Must be called from the main thread (it installs signal handlers, restored on return).
    """
    seed = load_seed(seed_path) if seed_path is not None else None
    try:
        emulator = Emulator(seed, clock=clock)
    except (ValueError, KeyError) as exc:
        # Well-formed, but inconsistent: two keys with one id, one secret issued twice, ...
        raise SeedError([f"{seed_path}: {exc}"]) from None
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {
        signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)
    }
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
