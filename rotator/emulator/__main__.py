"""``python -m rotator.emulator [--port N] [--seed FILE] [--clock real|frozen]``: serve the
emulator in the foreground (exit 2 for a bad seed, each problem a line)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rotator.emulator._run import run
from rotator.emulator._seed import SeedError
from rotator.emulator._state import CLOCKS


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until SIGTERM or SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m rotator.emulator",
        description="Serve the ProjectManager API-key emulator on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--seed", type=Path, default=None, help="JSON seed file (workspaces, keys)")
    parser.add_argument(
        "--clock", choices=CLOCKS, default="real", help="real (time runs) or frozen (stands still)"
    )
    arguments = parser.parse_args(argv)
    try:
        return run(arguments.port, arguments.seed, clock=arguments.clock)
    except SeedError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
