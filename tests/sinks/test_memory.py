"""The in-memory test doubles' own hooks: the memory sink's injected failures, operation log,
versions and name problems, and the memory lock's switch that loses it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rotator.errors import (
    LockHeldError,
    LockLostError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkUnavailableError,
)
from rotator.locks.memory import MemoryLock
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import RolloutState, WorkloadRollout
from rotator.sinks.memory import MemorySink

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")


def _put_secret(sink: MemorySink, credential: str, secret: Secret) -> str | None:
    return sink.write_secret(credential, secret, expected_version=sink.read(credential).version)


def test_secret_of_returns_what_was_written() -> None:
    sink = MemorySink()
    assert sink.secret_of("billing-sync") is None
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert sink.secret_of("billing-sync") == SECRET
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()


def test_fail_next_fails_once_and_changes_nothing() -> None:
    sink = MemorySink()
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    sink.fail_next["write_secret"] = SinkError("disk full")
    with pytest.raises(SinkError, match="disk full") as caught:
        sink.write_secret("billing-sync", Secret("new"), expected_version=version)
    assert not caught.value.state_unknown
    assert sink.secret_of("billing-sync") == SECRET
    assert sink.read("billing-sync").version == version

    sink.write_secret("billing-sync", Secret("new"), expected_version=version)
    assert sink.secret_of("billing-sync") == Secret("new")


def test_fail_next_after_applying_lands_then_fails() -> None:
    sink = MemorySink(fail_next_after_applying={"write_secret": SinkUnavailableError("timeout")})
    with pytest.raises(SinkUnavailableError) as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert caught.value.state_unknown
    state = sink.read("billing-sync")
    assert state.secret_sha256 == SECRET.sha256()
    assert state.version is not None  # the write moved the version on before failing
    sink.write_secret("billing-sync", Secret("new"), expected_version=state.version)  # one shot


def test_fail_always_fails_until_removed() -> None:
    sink = MemorySink(fail_always={"read": SinkUnavailableError("down")})
    for _ in range(2):
        with pytest.raises(SinkUnavailableError):
            sink.read("billing-sync")
    del sink.fail_always["read"]
    assert sink.read("billing-sync").empty


@pytest.mark.parametrize("operation", ["write_record", "write_secret", "read", "list_credentials"])
def test_every_operation_can_fail(operation: str) -> None:
    sink = MemorySink(fail_next={operation: SinkError(operation)})
    calls: dict[str, Callable[[], object]] = {
        "write_record": lambda: sink.write_record("c", SinkRecord(), expected_version=None),
        "write_secret": lambda: sink.write_secret("c", SECRET, expected_version=None),
        "read": lambda: sink.read("c"),
        "list_credentials": sink.list_credentials,
    }
    with pytest.raises(SinkError, match=operation):
        calls[operation]()
    calls[operation]()


def test_misspelt_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="write_secrets"):
        MemorySink(fail_next={"write_secrets": SinkError("x")})
    with pytest.raises(ValueError, match="read"):
        MemorySink(fail_next_after_applying={"read": SinkError("x")})
    with pytest.raises(ValueError, match="read_record"):
        MemorySink(fail_always={"read_record": SinkError("x")})
    sink = MemorySink()
    sink.fail_always["stored_sha256"] = SinkError("x")
    with pytest.raises(ValueError, match="stored_sha256"):
        sink.read("c")


def test_operations_log_the_delivery_order() -> None:
    sink = MemorySink()
    version = sink.write_record(
        "c", SinkRecord().with_pending("k1", SECRET.sha256()), expected_version=None
    )
    version = sink.write_secret("c", SECRET, expected_version=version)
    sink.write_record("c", SinkRecord(key_id="k1"), expected_version=version)
    sink.read("c")
    sink.list_credentials()
    assert sink.operations == [
        ("write_record", "c"),
        ("write_secret", "c"),
        ("write_record", "c"),
        ("read", "c"),
        ("list_credentials", ""),
    ]


def test_a_stale_version_is_a_conflict_and_changes_nothing() -> None:
    sink = MemorySink()
    stale = sink.write_record("c", SinkRecord(key_id="k1"), expected_version=None)
    sink.write_secret("c", SECRET, expected_version=stale)
    with pytest.raises(SinkConflictError, match="changed since it was read"):
        sink.write_secret("c", Secret("new"), expected_version=stale)
    with pytest.raises(SinkConflictError):
        sink.write_record("c", SinkRecord(key_id="k2"), expected_version=None)
    assert sink.secret_of("c") == SECRET
    assert sink.record_of("c") == SinkRecord(key_id="k1")


def test_put_is_another_writer() -> None:
    sink = MemorySink()
    version = sink.write_record("c", SinkRecord(key_id="k1"), expected_version=None)
    sink.put("c", record=SinkRecord(key_id="by-hand"), secret=SECRET)
    with pytest.raises(SinkConflictError):
        sink.write_record("c", SinkRecord(key_id="k2"), expected_version=version)
    state = sink.read("c")
    assert state.record == SinkRecord(key_id="by-hand")
    assert state.secret_sha256 == SECRET.sha256()


def test_nothing_stored_has_no_version_and_versions_are_never_reused() -> None:
    sink = MemorySink()
    old = sink.write_record("c", SinkRecord(key_id="k1"), expected_version=None)
    sink.put("c", record=None, secret=None)  # a person removed everything
    state = sink.read("c")
    assert state.empty
    assert state.version is None
    assert list(sink.list_credentials()) == []
    # A writer that read before the removal is refused; one that read after creates it anew.
    with pytest.raises(SinkConflictError):
        sink.write_record("c", SinkRecord(key_id="k2"), expected_version=old)
    new = sink.write_record("c", SinkRecord(key_id="k3"), expected_version=None)
    assert new not in (None, old)


def test_name_problems_are_reported_and_enforced() -> None:
    sink = MemorySink(name_problems={"bad": "collides with 'BAD'"})
    assert dict(sink.check_names(["bad", "good", ""])) == {
        "bad": "collides with 'BAD'",
        "": "an empty credential name cannot be stored",
    }
    for call in (
        lambda: sink.write_secret("bad", SECRET, expected_version=None),
        lambda: sink.write_record("bad", SinkRecord(), expected_version=None),
        lambda: sink.read("bad"),
        lambda: sink.read(""),
    ):
        with pytest.raises(SinkNameError, match="cannot be stored"):
            call()
    assert sink.secret_of("bad") is None
    assert list(sink.list_credentials()) == []


def test_a_record_of_another_credential_is_not_trusted() -> None:
    sink = MemorySink()
    foreign = SinkRecord(key_name="other@2026-01-01T00:00:00Z")
    sink.write_record("c", foreign, expected_version=None)
    with pytest.raises(SinkMetadataError, match="another credential"):
        sink.read("c")
    assert sink.record_of("c") == foreign  # record_of bypasses the checks


def test_rollouts_are_what_the_test_set() -> None:
    sink = MemorySink()
    now = datetime(2026, 11, 27, 3, tzinfo=UTC)
    assert list(sink.rollout("c", now, now)) == []
    waiting = WorkloadRollout(kind="Deployment", name="billing", state=RolloutState.WAITING)
    sink.rollouts["c"] = [waiting]
    assert list(sink.rollout("c", now, now)) == [waiting]
    sink.prepare()
    sink.close()
    assert sink.describe() == "memory"


def test_concurrent_writers_lose_nothing() -> None:
    sink = MemorySink()

    def deliver(index: int) -> None:
        for round_ in range(50):
            _put_secret(sink, f"c{index}", Secret(f"s{index}-{round_}"))

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sink.operations) == 800  # a read and a write each
    assert all(sink.secret_of(f"c{i}") == Secret(f"s{i}-49") for i in range(8))
    assert "s0-49" not in repr(sink)
    assert repr(sink) == "MemorySink(credentials=8, records=0)"


# -- the memory lock --------------------------------------------------------------------------


def test_memory_lock_is_exclusive_and_counts_acquisitions() -> None:
    lock = MemoryLock("acme")
    assert lock.describe() == "memory:acme"
    assert repr(lock) == "MemoryLock(name='acme')"
    outcome: list[str] = []

    def from_another_thread() -> None:
        try:
            with lock.hold():
                outcome.append("took")
        except LockHeldError as exc:
            outcome.append(str(exc))

    with lock.hold() as held:
        assert lock.held
        held.check()
        thread = threading.Thread(target=from_another_thread)
        thread.start()
        thread.join(timeout=10)
    assert outcome == ["memory:acme is held by another pass"]
    assert not lock.held
    assert lock.acquisitions == 1


def test_a_lost_memory_lock_fails_its_check_until_taken_again() -> None:
    lock = MemoryLock()
    with lock.hold() as held:
        lock.lose()
        with pytest.raises(LockLostError):
            held.check()
    with lock.hold() as held:
        held.check()
    assert lock.acquisitions == 2
