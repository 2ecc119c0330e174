"""A programmable stand-in for an ops team's exec-sink program, for tests.

Usage: scripted.py STATE [MORE WORDS...] VERB [CREDENTIAL]

Every call appends one JSON line to STATE/calls.jsonl: its arguments (after the script's own
path), its standard input (hex) and its whole environment. What it does is read from files in
STATE named after the verb, so a test arranges a behaviour by writing a file:

    VERB.stdout   printed on standard output (default: an empty answer for get, [] for list)
    VERB.stderr   printed on standard error
    VERB.flood    standard output never ends (until the caller stops reading)
    VERB.status   exit status (default 0), "kill": die by SIGKILL, "signal-N": by signal N;
                  one line per call of the verb in order, the last one for every later call
    VERB.ignore-stdin  exit without reading standard input (the call is still recorded)
    VERB.hang     start a child that sleeps, write "PID CHILD_PID" to VERB.pids, then sleep
    VERB.close-and-hang  close standard output and error, write PID to VERB.pids, then sleep
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ANSWERS = {"get": b'{"metadata": null, "secret_sha256": null}\n', "list": b"[]\n"}


def main() -> int:
    state = Path(sys.argv[1])
    words = sys.argv[1:]
    verb = "list" if words[-1] == "list" else words[-2]

    def arranged(suffix: str) -> Path:
        return state / f"{verb}.{suffix}"

    stdin = b"" if arranged("ignore-stdin").exists() else sys.stdin.buffer.read()
    calls = state / "calls.jsonl"
    earlier = calls.read_text().splitlines() if calls.exists() else []
    this_verb_before = sum(1 for line in earlier if json.loads(line)["verb"] == verb)
    call = {"argv": words, "verb": verb, "stdin_hex": stdin.hex(), "env": dict(os.environ)}
    with calls.open("a") as log:
        log.write(json.dumps(call) + "\n")

    if arranged("stderr").exists():
        sys.stderr.buffer.write(arranged("stderr").read_bytes())
        sys.stderr.flush()
    if arranged("hang").exists():
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        arranged("pids").write_text(f"{os.getpid()} {child.pid}")
        time.sleep(60)
    if arranged("close-and-hang").exists():
        os.close(1)
        os.close(2)
        arranged("pids").write_text(str(os.getpid()))
        time.sleep(60)
    if arranged("flood").exists():
        chunk = b"x" * 65536
        while True:
            sys.stdout.buffer.write(chunk)
    if arranged("stdout").exists():
        sys.stdout.buffer.write(arranged("stdout").read_bytes())
    else:
        sys.stdout.buffer.write(DEFAULT_ANSWERS.get(verb, b""))
    sys.stdout.flush()
    statuses = arranged("status").read_text().split() if arranged("status").exists() else ["0"]
    status = statuses[min(this_verb_before, len(statuses) - 1)]
    if status == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if status.startswith("signal-"):
        number = int(status.removeprefix("signal-"))
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
