#!/usr/bin/env python3
"""config/exec-sink/folder-sink.py as a careless ops team might extend it: after ``get`` it
prints the key it holds on standard error (``debug: holding <key>``), as issue 15, item 9 found.

Usage and files as folder-sink.py's; standard library only (the model runs it with ``-S``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

FOLDER_SINK = Path(__file__).resolve().parents[2] / "config" / "exec-sink" / "folder-sink.py"


def main(argv: list[str]) -> int:
    spec = importlib.util.spec_from_file_location("folder_sink", FOLDER_SINK)
    assert spec is not None and spec.loader is not None
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    status: int = program.main(argv)
    if status == 0 and len(argv) == 3 and argv[1] == "get":
        path = Path(argv[0]) / (program.stem(argv[2]) + program.SECRET_SUFFIX)
        if path.exists():
            sys.stderr.write(f"debug: holding {path.read_text()}\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
