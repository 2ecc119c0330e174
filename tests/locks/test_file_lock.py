"""The file lock's own behaviour: flock across real processes, a killed holder, what it refuses
at its path (a symlink, a FIFO, a folder), and a lock file removed or replaced while held."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rotator.errors import LockHeldError, LockLostError, LockUnavailableError
from rotator.locks.base import HeldLock, PassLock
from rotator.locks.file import LOCK_FILE_NAME, FileLock

_HOLD = """
import sys
from pathlib import Path
from rotator.locks.file import FileLock
with FileLock(Path(sys.argv[1])).hold():
    print("held", flush=True)
    sys.stdin.read()
"""

_TRY = """
import sys
from pathlib import Path
from rotator.errors import LockHeldError
from rotator.locks.file import FileLock
try:
    with FileLock(Path(sys.argv[1])).hold():
        sys.exit(0)
except LockHeldError:
    sys.exit(17)
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "secrets"


@pytest.fixture
def lock(directory: Path) -> FileLock:
    return FileLock(directory)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _holder(directory: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until its standard input closes (or it is killed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdin.close()
        process.stdout.close()


def _another_process_takes_it(directory: Path) -> bool:
    returncode = subprocess.run(
        [sys.executable, "-c", _TRY, str(directory)], timeout=30, check=False
    ).returncode
    assert returncode in (0, 17)
    return returncode == 0


def test_implements_the_protocol(lock: FileLock, directory: Path) -> None:
    assert isinstance(lock, PassLock)
    with lock.hold() as held:
        assert isinstance(held, HeldLock)
        held.check()
    assert lock.path == directory / LOCK_FILE_NAME
    assert lock.describe() == f"file:{directory / '.rotator.lock'}"
    assert repr(lock) == f"FileLock(path={str(directory / '.rotator.lock')!r})"


def test_a_relative_folder_is_made_absolute(tmp_path: Path) -> None:
    relative = Path(os.path.relpath(tmp_path / "locks"))
    assert FileLock(relative).path == tmp_path / "locks" / ".rotator.lock"


def test_lock_file_and_folder_are_private_and_stay(lock: FileLock, directory: Path) -> None:
    with lock.hold():
        pass
    assert _mode(directory) == 0o700
    assert _mode(lock.path) == 0o600
    # Never removed: two passes could otherwise lock two different files.
    assert lock.path.is_file()


def _try_hold(lock: FileLock) -> BaseException | None:
    """Take and release ``lock`` in a thread; what that raised. Fails the test if it blocks."""
    outcome: list[BaseException | None] = []

    def take() -> None:
        try:
            with lock.hold():
                outcome.append(None)
        except BaseException as exc:  # noqa: BLE001  (handed to the test's thread)
            outcome.append(exc)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive():
        pytest.fail("taking the lock blocked")
    return outcome[0]


def test_held_by_another_process(lock: FileLock, directory: Path) -> None:
    with _holder(directory) as holder:
        refused = _try_hold(lock)
        assert isinstance(refused, LockHeldError)
        assert ".rotator.lock" in str(refused)
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=10) == 0
    with lock.hold():
        pass


def test_held_here_blocks_another_process(lock: FileLock, directory: Path) -> None:
    with lock.hold():
        assert not _another_process_takes_it(directory)
    assert _another_process_takes_it(directory)


def test_a_killed_holder_leaves_it_free(lock: FileLock, directory: Path) -> None:
    with _holder(directory) as holder:
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=10) == -signal.SIGKILL
    with lock.hold() as held:
        held.check()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_release_frees_it_even_with_a_forked_child_alive(lock: FileLock, directory: Path) -> None:
    # A child forked while the lock was held shares its descriptor; releasing must free the lock
    # anyway (closing our descriptor alone would not).
    read_end, write_end = os.pipe()
    with lock.hold():
        child = os.fork()
        if child == 0:  # the child: wait for the parent, then leave without cleanup
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
    try:
        os.close(read_end)
        assert _another_process_takes_it(directory)
    finally:
        os.close(write_end)
        os.waitpid(child, 0)


def test_a_second_hold_in_this_process_is_refused(lock: FileLock, directory: Path) -> None:
    outcome: list[str] = []

    def from_another_thread() -> None:
        try:
            with lock.hold():
                outcome.append("took")
        except LockHeldError:
            outcome.append("held")

    with lock.hold():
        with pytest.raises(LockHeldError), FileLock(directory).hold():
            pytest.fail("took the lock twice")
        thread = threading.Thread(target=from_another_thread)
        thread.start()
        thread.join(timeout=10)
    assert outcome == ["held"]
    with lock.hold():
        pass


def test_a_symlink_at_the_lock_path_is_refused(
    lock: FileLock, directory: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not a lock")
    directory.mkdir()
    lock.path.symlink_to(elsewhere)
    with pytest.raises(LockUnavailableError, match="it is a symlink"), lock.hold():
        pytest.fail("locked through a symlink")
    assert elsewhere.read_text() == "not a lock"
    # A dangling one is not created through either.
    elsewhere.unlink()
    with pytest.raises(LockUnavailableError, match="it is a symlink"), lock.hold():
        pytest.fail("locked through a symlink")
    assert not elsewhere.exists()


def test_a_fifo_at_the_lock_path_is_refused_without_blocking(
    lock: FileLock, directory: Path
) -> None:
    directory.mkdir()
    os.mkfifo(lock.path)
    try:
        refused = _try_hold(lock)
    finally:
        # Should the open have blocked, this other end releases it.
        os.close(os.open(lock.path, os.O_RDWR | os.O_NONBLOCK))
    assert isinstance(refused, LockUnavailableError)
    assert "not a regular file" in str(refused)


def test_a_folder_at_the_lock_path_is_unavailable(lock: FileLock) -> None:
    lock.path.mkdir(parents=True)
    with pytest.raises(LockUnavailableError, match=r"\.rotator\.lock") as caught, lock.hold():
        pytest.fail("locked a folder")
    assert not isinstance(caught.value, LockHeldError)


def test_a_folder_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "secrets"
    blocker.write_text("not a folder")
    with pytest.raises(LockUnavailableError, match="cannot open"), FileLock(blocker / "ws").hold():
        pytest.fail("locked inside a file")


def test_a_lock_file_removed_while_held_is_lost(lock: FileLock, directory: Path) -> None:
    with lock.hold() as held:
        lock.path.unlink()
        with pytest.raises(LockLostError, match="was removed while held"):
            held.check()
        # Indeed another pass can now lock a new file at the path.
        assert _another_process_takes_it(directory)


def test_a_lock_file_replaced_while_held_is_lost(lock: FileLock, directory: Path) -> None:
    with lock.hold() as held:
        replacement = directory / "replacement"
        replacement.write_text("")
        os.replace(replacement, lock.path)
        with pytest.raises(LockLostError, match="was replaced while held"):
            held.check()
