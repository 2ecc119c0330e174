"""``python -m rotator.emulator [--port N] [--seed FILE]``: serve the emulator in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rotator.emulator._run import run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until SIGTERM or SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m rotator.emulator",
        description="Serve the ProjectManager API-key emulator on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--seed", type=Path, default=None, help="JSON seed file (workspaces, keys)")
    arguments = parser.parse_args(argv)
    return run(arguments.port, arguments.seed)


if __name__ == "__main__":
    sys.exit(main())
