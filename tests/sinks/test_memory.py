"""The memory sink's own hooks: injected failures, the operation log, thread safety."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from rotator.errors import SinkError, SinkNameError, SinkUnavailableError
from rotator.models import Secret, SinkRecord
from rotator.sinks.memory import MemorySink

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")


def test_secret_of_returns_what_was_written() -> None:
    sink = MemorySink()
    assert sink.secret_of("billing-sync") is None
    sink.write_secret("billing-sync", SECRET)
    assert sink.secret_of("billing-sync") == SECRET


def test_fail_next_fails_once_and_changes_nothing() -> None:
    sink = MemorySink()
    sink.write_secret("billing-sync", SECRET)
    sink.fail_next["write_secret"] = SinkError("disk full")
    with pytest.raises(SinkError, match="disk full") as caught:
        sink.write_secret("billing-sync", Secret("new"))
    assert not caught.value.state_unknown
    assert sink.secret_of("billing-sync") == SECRET

    sink.write_secret("billing-sync", Secret("new"))
    assert sink.secret_of("billing-sync") == Secret("new")


def test_fail_next_after_applying_lands_then_fails() -> None:
    sink = MemorySink(fail_next_after_applying={"write_secret": SinkUnavailableError("timeout")})
    with pytest.raises(SinkUnavailableError) as caught:
        sink.write_secret("billing-sync", SECRET)
    assert caught.value.state_unknown
    assert sink.stored_sha256("billing-sync") == SECRET.sha256()
    sink.write_secret("billing-sync", Secret("new"))  # one shot


def test_fail_always_fails_until_removed() -> None:
    sink = MemorySink(fail_always={"read_record": SinkUnavailableError("down")})
    for _ in range(2):
        with pytest.raises(SinkUnavailableError):
            sink.read_record("billing-sync")
    del sink.fail_always["read_record"]
    assert sink.read_record("billing-sync") is None


@pytest.mark.parametrize("operation", ["write_record", "read_record", "stored_sha256"])
def test_every_operation_can_fail(operation: str) -> None:
    sink = MemorySink(fail_next={operation: SinkError(operation)})
    calls: dict[str, Callable[[], object]] = {
        "write_record": lambda: sink.write_record("c", SinkRecord()),
        "read_record": lambda: sink.read_record("c"),
        "stored_sha256": lambda: sink.stored_sha256("c"),
    }
    with pytest.raises(SinkError, match=operation):
        calls[operation]()
    calls[operation]()


def test_misspelt_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="write_secrets"):
        MemorySink(fail_next={"write_secrets": SinkError("x")})
    with pytest.raises(ValueError, match="read_record"):
        MemorySink(fail_next_after_applying={"read_record": SinkError("x")})
    sink = MemorySink()
    sink.fail_always["lock"] = SinkError("x")
    with pytest.raises(ValueError, match="lock"):
        sink.stored_sha256("c")


def test_operations_log_the_delivery_order() -> None:
    sink = MemorySink()
    sink.write_record("c", SinkRecord().with_pending("k1", SECRET.sha256()))
    sink.write_secret("c", SECRET)
    sink.write_record("c", SinkRecord(key_id="k1"))
    sink.stored_sha256("c")
    assert sink.operations == [
        ("write_record", "c"),
        ("write_secret", "c"),
        ("write_record", "c"),
        ("stored_sha256", "c"),
    ]


def test_name_problems_are_reported_and_enforced() -> None:
    sink = MemorySink(name_problems={"bad": "collides with 'BAD'"})
    assert dict(sink.check_names(["bad", "good"])) == {"bad": "collides with 'BAD'"}
    with pytest.raises(SinkNameError, match="collides"):
        sink.write_secret("bad", SECRET)
    assert sink.secret_of("bad") is None


def test_record_of_bypasses_checks() -> None:
    sink = MemorySink()
    foreign = SinkRecord(key_name="other@2026-01-01T00:00:00Z")
    sink.write_record("c", foreign)
    assert sink.record_of("c") == foreign


def test_concurrent_writers_lose_nothing() -> None:
    sink = MemorySink()

    def deliver(index: int) -> None:
        for round_ in range(50):
            sink.write_secret(f"c{index}", Secret(f"s{index}-{round_}"))

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sink.operations) == 400
    assert all(sink.secret_of(f"c{i}") == Secret(f"s{i}-49") for i in range(8))
    assert "s0-49" not in repr(sink)


def test_lock_from_another_thread_is_refused() -> None:
    sink = MemorySink()
    outcome: list[str] = []

    def try_lock() -> None:
        try:
            with sink.lock():
                outcome.append("took")
        except Exception as exc:  # noqa: BLE001  (the test records what was raised)
            outcome.append(type(exc).__name__)

    with sink.lock():
        thread = threading.Thread(target=try_lock)
        thread.start()
        thread.join()
    assert outcome == ["LockHeldError"]
