"""The contract every sink backend meets, parametrized over each one (memory, file).

A new backend joins by adding a factory to ``_BACKENDS``: one that makes a fresh, empty sink,
and one that opens a second view of the same storage (another process's, for the lock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rotator.errors import LockHeldError, SinkMetadataError, SinkNameError
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import Sink
from rotator.sinks.file import FileSink
from rotator.sinks.memory import MemorySink

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
OTHER_SECRET = Secret("pm-key-another-one-ÄÖÜ-9876")
FULL_RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)


@dataclass
class Backend:
    sink: Sink
    #: Another handle on the same storage, as a second pass would open it.
    reopen: Callable[[], Sink]


def _memory(tmp_path: Path) -> Backend:
    sink = MemorySink()
    return Backend(sink, lambda: sink)


def _file(tmp_path: Path) -> Backend:
    directory = tmp_path / "secrets"
    return Backend(FileSink(directory), lambda: FileSink(directory))


_BACKENDS: dict[str, Callable[[Path], Backend]] = {"memory": _memory, "file": _file}


@pytest.fixture(params=sorted(_BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _BACKENDS[request.param](tmp_path)


@pytest.fixture
def sink(backend: Backend) -> Sink:
    return backend.sink


def test_implements_the_protocol(sink: Sink) -> None:
    assert isinstance(sink, Sink)
    assert sink.kind in _BACKENDS


def test_nothing_stored_reads_as_none(sink: Sink) -> None:
    assert sink.read_record("billing-sync") is None
    assert sink.stored_sha256("billing-sync") is None


def test_secret_round_trips_by_hash(sink: Sink) -> None:
    sink.write_secret("billing-sync", SECRET)
    assert sink.stored_sha256("billing-sync") == SECRET.sha256()

    sink.write_secret("billing-sync", OTHER_SECRET)
    assert sink.stored_sha256("billing-sync") == OTHER_SECRET.sha256()
    assert sink.stored_sha256("billing-sync") != SECRET.sha256()


def test_record_round_trips_exactly(sink: Sink) -> None:
    sink.write_record("billing-sync", FULL_RECORD)
    assert sink.read_record("billing-sync") == FULL_RECORD


def test_empty_record_round_trips(sink: Sink) -> None:
    sink.write_record("billing-sync", SinkRecord())
    assert sink.read_record("billing-sync") == SinkRecord()


def test_pending_then_settled_round_trips(sink: Sink) -> None:
    pending = FULL_RECORD.with_pending("k-next", OTHER_SECRET.sha256())
    sink.write_record("billing-sync", pending)
    read = sink.read_record("billing-sync")
    assert read == pending
    assert read is not None
    assert read.has_pending

    sink.write_record("billing-sync", pending.without_pending())
    settled = sink.read_record("billing-sync")
    assert settled == FULL_RECORD
    assert settled is not None
    assert not settled.has_pending


def test_first_delivery_pending_record_without_a_current_key(sink: Sink) -> None:
    pending = SinkRecord().with_pending("k-first", SECRET.sha256())
    sink.write_record("billing-sync", pending)
    assert sink.read_record("billing-sync") == pending


def test_credentials_are_independent(sink: Sink) -> None:
    sink.write_secret("billing-sync", SECRET)
    sink.write_record("billing-sync", FULL_RECORD)
    assert sink.stored_sha256("crm-export") is None
    assert sink.read_record("crm-export") is None

    sink.write_secret("crm-export", OTHER_SECRET)
    assert sink.stored_sha256("billing-sync") == SECRET.sha256()


def test_record_of_another_credential_is_never_trusted(sink: Sink) -> None:
    sink.write_record(
        "billing-sync", SinkRecord(key_id="k1", key_name="crm-export@2026-01-01T00:00:00Z")
    )
    with pytest.raises(SinkMetadataError):
        sink.read_record("billing-sync")


def test_record_naming_a_key_a_person_made_is_trusted(sink: Sink) -> None:
    record = SinkRecord(key_id="k1", key_name="billing-sync")
    sink.write_record("billing-sync", record)
    assert sink.read_record("billing-sync") == record


def test_ordinary_names_have_no_problem(sink: Sink) -> None:
    assert dict(sink.check_names(["billing-sync", "crm_export", "Reports.2026"])) == {}


def test_empty_name_is_refused(sink: Sink) -> None:
    problems = sink.check_names(["", "billing-sync"])
    assert set(problems) == {""}
    with pytest.raises(SinkNameError):
        sink.write_secret("", SECRET)
    with pytest.raises(SinkNameError):
        sink.write_record("", SinkRecord())
    with pytest.raises(SinkNameError):
        sink.read_record("")
    with pytest.raises(SinkNameError):
        sink.stored_sha256("")


def test_lock_is_exclusive_and_released(backend: Backend) -> None:
    second = backend.reopen()
    with backend.sink.lock(), pytest.raises(LockHeldError), second.lock():
        pytest.fail("two holders of one lock")
    with second.lock():
        pass


def test_lock_is_released_when_the_pass_fails(backend: Backend) -> None:
    with pytest.raises(RuntimeError, match="pass failed"), backend.sink.lock():
        raise RuntimeError("pass failed")
    with backend.reopen().lock():
        pass


def test_lock_is_reentrant_for_sequential_passes(sink: Sink) -> None:
    for _ in range(3):
        with sink.lock():
            sink.write_secret("billing-sync", SECRET)
    assert sink.stored_sha256("billing-sync") == SECRET.sha256()


def test_describe_and_repr_never_show_the_secret(sink: Sink) -> None:
    sink.write_secret("billing-sync", SECRET)
    sink.write_record("billing-sync", FULL_RECORD)
    for text in (sink.describe(), repr(sink), str(sink)):
        assert SECRET.reveal() not in text
    assert sink.describe().startswith(sink.kind)
