"""A process that takes a pass lock, says ``held`` on standard output and waits to be killed.

``python -m tests.locks.hold_lock file DIRECTORY`` or
``python -m tests.locks.hold_lock lease KUBECONFIG NAMESPACE NAME IDENTITY DURATION_SECONDS``.
The lock tests kill it with SIGKILL, as a node failure or an OOM kill would, to show what a dead
holder leaves behind.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

from rotator.locks.base import PassLock
from rotator.locks.file import FileLock
from rotator.locks.lease import LeaseLock


def main(argv: list[str]) -> int:
    kind, *args = argv
    lock: PassLock
    if kind == "file":
        lock = FileLock(Path(args[0]))
    else:
        kubeconfig, namespace, name, identity, seconds = args
        lock = LeaseLock(
            namespace=namespace,
            name=name,
            holder_identity=identity,
            duration=timedelta(seconds=float(seconds)),
            kubeconfig=Path(kubeconfig),
        )
    with lock.hold():
        print("held", flush=True)
        time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
