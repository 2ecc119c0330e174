"""The exec sink in the contract suite: the example program ``config/exec-sink/folder-sink.py``
run for real as a subprocess, keeping its files in a temporary folder.

The sink under test goes through ``exec_programs/lossy.sh``, a wrapper that can be armed to
report a write as failed after it landed (``lose_next_answer``); ``reopen`` calls the example
program directly, as a second rotator process would.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

import pytest

from rotator.sinks.exec import ExecSink
from tests.sinks.backends import Backend

REPOSITORY = Path(__file__).resolve().parents[2]
FOLDER_SINK = REPOSITORY / "config" / "exec-sink" / "folder-sink.py"
PROGRAMS = Path(__file__).resolve().parent / "exec_programs"
TIMEOUT_SECONDS = 20.0


def folder_sink_command(folder: Path) -> tuple[str, ...]:
    # -I: no user site or PYTHON* variables; the example needs nothing but the standard library.
    return (sys.executable, "-I", str(FOLDER_SINK), str(folder))


#: The workspace of the contract suite's sinks, and so the example program's subfolder.
WORKSPACE = "acme"


def secret_path(folder: Path, credential: str, workspace: str = WORKSPACE) -> Path:
    """Where the example program keeps ``credential``'s secret: in the workspace's subfolder."""
    name = urllib.parse.quote(credential, safe="-_.")
    return folder / workspace / (("%2E" + name[1:] if name.startswith(".") else name) + ".secret")


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    folder = tmp_path / "keys"
    flag = tmp_path / "lose-next-answer"
    plain = folder_sink_command(folder)
    lossy = (str(PROGRAMS / "lossy.sh"), str(flag), *plain)

    def consumer_reads(credential: str) -> str | None:
        path = secret_path(folder, credential)
        return path.read_text() if path.exists() else None

    return Backend(
        sink=ExecSink(lossy, WORKSPACE, TIMEOUT_SECONDS),
        reopen=lambda: ExecSink(plain, WORKSPACE, TIMEOUT_SECONDS),
        consumer_reads=consumer_reads,
        unavailable=lambda: ExecSink((str(tmp_path / "no-such-program"),), WORKSPACE, 5.0),
        lose_next_answer=lambda: flag.write_text("exit"),
    )
