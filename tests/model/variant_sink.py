#!/usr/bin/env python3
"""config/exec-sink/folder-sink.py as ops teams vary it, for the model's exec sink.

Usage: variant_sink.py VARIANT FOLDER VERB [CREDENTIAL], files as folder-sink.py's, where
VARIANT is:

- ``chatty``: after ``get``, prints the key it holds on standard error
  (``debug: holding <key>``), as issue 15, item 9 found;
- ``listless``: ``list`` fails (exit 1), as a program, or a Vault policy, without the right to
  list does (issue 15, item 4);
- ``flat``: ignores ROTATOR_WORKSPACE and keeps every workspace's files in the one folder it is
  given, as a program written before several workspaces were thought of does. Given that
  folder spelled a different way for each workspace, the rotator cannot see at start that two
  workspaces share it: only the workspace each record names keeps their credentials apart.

Standard library only (the model runs it with ``-S``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

FOLDER_SINK = Path(__file__).resolve().parents[2] / "config" / "exec-sink" / "folder-sink.py"


def main(argv: list[str]) -> int:
    variant, argv = argv[0], argv[1:]
    spec = importlib.util.spec_from_file_location("folder_sink", FOLDER_SINK)
    assert spec is not None and spec.loader is not None
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    if variant == "flat":
        vars(program)["workspace_folder"] = lambda root, _workspace: root
    if variant == "listless" and argv[1:] == ["list"]:
        sys.stderr.write("variant-sink: listing is not allowed here\n")
        return 1
    status: int = program.main(argv)
    if variant == "chatty" and status == 0 and len(argv) == 3 and argv[1] == "get":
        folder = program.workspace_folder(argv[0], os.environ["ROTATOR_WORKSPACE"])
        path = Path(folder) / (program.stem(argv[2]) + program.SECRET_SUFFIX)
        if path.exists():
            sys.stderr.write(f"debug: holding {path.read_text()}\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
