"""The contract every sink backend meets, parametrized over each one.

Backends come from ``tests/sinks/backend_<kind>.py`` modules (see ``tests/sinks/backends.py``);
a backend that needs a server starts it. What is asserted here is what the rotation relies on:
two-phase delivery round-trips exactly, the version token detects every other writer,
``list_credentials`` knows what was stored, errors are SinkErrors, no secret shows anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rotator.errors import SinkConflictError, SinkError, SinkMetadataError
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import HISTORY_MAX_ENTRIES, RolloutState, Sink, rollout_state
from tests.sinks.backends import Backend, discover

BACKENDS = discover()
SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
OTHER_SECRET = Secret("pm-key-another-one-ÄÖÜ-9876")
FULL_RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    previous_secret_sha256=OTHER_SECRET.sha256(),
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = BACKENDS[request.param](request, tmp_path)
    yield made
    made.sink.close()
    for cleanup in made.cleanups:
        cleanup()


@pytest.fixture
def sink(backend: Backend) -> Sink:
    return backend.sink


def deliver(sink: Sink, credential: str, record: SinkRecord, secret: Secret) -> str | None:
    """The rotation's two-phase delivery: pending record, secret, current record."""
    version = sink.read(credential).version
    pending = sink.read(credential).record or SinkRecord()
    version = sink.write_record(
        credential,
        pending.with_pending(record.key_id or "", secret.sha256()),
        expected_version=version,
    )
    version = sink.write_secret(credential, secret, expected_version=version)
    return sink.write_record(credential, record, expected_version=version)


def test_implements_the_protocol(sink: Sink) -> None:
    assert isinstance(sink, Sink)
    assert sink.kind


def test_nothing_stored_reads_as_empty(sink: Sink) -> None:
    state = sink.read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 is None
    assert state.version is None
    assert state.empty
    assert list(sink.list_credentials()) == []


def test_two_phase_delivery_round_trips(backend: Backend) -> None:
    sink = backend.sink
    sink.prepare()
    version = sink.write_record(
        "billing-sync", SinkRecord().with_pending("k-new", SECRET.sha256()), expected_version=None
    )
    state = sink.read("billing-sync")
    assert state.record == SinkRecord(pending_key_id="k-new", pending_secret_sha256=SECRET.sha256())
    assert state.secret_sha256 is None
    assert state.version == version

    version = sink.write_secret("billing-sync", SECRET, expected_version=version)
    state = sink.read("billing-sync")
    assert state.secret_sha256 == SECRET.sha256()
    assert state.record is not None and state.record.pending_key_id == "k-new"
    assert backend.consumer_reads("billing-sync") == SECRET.reveal()

    version = sink.write_record("billing-sync", FULL_RECORD, expected_version=version)
    state = sink.read("billing-sync")
    assert state.record == FULL_RECORD
    assert state.version == version
    assert backend.reopen().read("billing-sync") == state


def test_overwrite_with_the_next_rotation(backend: Backend) -> None:
    sink = backend.sink
    deliver(sink, "billing-sync", FULL_RECORD, SECRET)
    second = replace(
        FULL_RECORD,
        key_id="k-newer",
        key_name="billing-sync@2027-11-27T03:00:00Z",
        secret_sha256=OTHER_SECRET.sha256(),
        previous_key_id="k-new",
    )
    deliver(sink, "billing-sync", second, OTHER_SECRET)
    state = sink.read("billing-sync")
    assert state.record == second
    assert state.secret_sha256 == OTHER_SECRET.sha256()
    assert backend.consumer_reads("billing-sync") == OTHER_SECRET.reveal()


def test_every_write_moves_the_version_on(sink: Sink) -> None:
    seen = {sink.read("billing-sync").version}
    version = sink.write_record("billing-sync", FULL_RECORD, expected_version=None)
    seen.add(version)
    version = sink.write_secret("billing-sync", SECRET, expected_version=version)
    seen.add(version)
    version = sink.write_record(
        "billing-sync", replace(FULL_RECORD, previous_key_id=None), expected_version=version
    )
    seen.add(version)
    assert len(seen) == 4


def test_a_stale_version_is_refused_and_changes_nothing(backend: Backend) -> None:
    sink = backend.sink
    stale = sink.write_record("billing-sync", FULL_RECORD, expected_version=None)
    other = backend.reopen()
    other.write_secret("billing-sync", OTHER_SECRET, expected_version=stale)
    before = sink.read("billing-sync")
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", SECRET, expected_version=stale)
    with pytest.raises(SinkConflictError):
        sink.write_record("billing-sync", SinkRecord(key_id="x"), expected_version=stale)
    assert sink.read("billing-sync") == before
    assert backend.consumer_reads("billing-sync") == OTHER_SECRET.reveal()


def test_creating_what_another_writer_created_is_a_conflict(backend: Backend) -> None:
    backend.reopen().write_record("billing-sync", FULL_RECORD, expected_version=None)
    with pytest.raises(SinkConflictError):
        backend.sink.write_record("billing-sync", SinkRecord(key_id="x"), expected_version=None)
    assert backend.sink.read("billing-sync").record == FULL_RECORD


def test_concurrent_writers_of_one_version_one_wins(backend: Backend) -> None:
    version = backend.sink.write_record("billing-sync", FULL_RECORD, expected_version=None)
    handles = [backend.sink, backend.reopen()]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def write(handle: Sink, secret: Secret) -> None:
        barrier.wait()
        try:
            handle.write_secret("billing-sync", secret, expected_version=version)
            outcomes.append("won")
        except SinkConflictError:
            outcomes.append("conflict")

    threads = [
        threading.Thread(target=write, args=(h, s))
        for h, s in zip(handles, (SECRET, OTHER_SECRET), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Without an atomic compare-and-set both could "win"; the suite demands at most one.
    assert sorted(outcomes) in (["conflict", "won"], ["conflict", "conflict"])


def test_credentials_are_independent_and_listed(backend: Backend) -> None:
    sink = backend.sink
    deliver(sink, "billing-sync", FULL_RECORD, SECRET)
    crm = replace(FULL_RECORD, key_name="crm-export@2026-11-27T03:00:00Z", key_id="k-crm")
    deliver(sink, "crm-export", crm, OTHER_SECRET)
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()
    assert sink.read("crm-export").record == crm
    assert sorted(backend.reopen().list_credentials()) == ["billing-sync", "crm-export"]


def test_a_credential_with_only_a_pending_record_is_listed(sink: Sink) -> None:
    sink.write_record(
        "first-one", SinkRecord().with_pending("k1", SECRET.sha256()), expected_version=None
    )
    assert list(sink.list_credentials()) == ["first-one"]


def test_record_of_another_credential_is_never_trusted(sink: Sink) -> None:
    sink.write_record(
        "billing-sync",
        SinkRecord(key_id="k1", key_name="crm-export@2026-01-01T00:00:00Z"),
        expected_version=None,
    )
    with pytest.raises(SinkMetadataError):
        sink.read("billing-sync")


def test_record_naming_a_key_a_person_made_is_trusted(sink: Sink) -> None:
    record = SinkRecord(key_id="k1", key_name="billing-sync")
    sink.write_record("billing-sync", record, expected_version=None)
    assert sink.read("billing-sync").record == record


def test_ordinary_names_have_no_problem(sink: Sink) -> None:
    assert dict(sink.check_names(["billing-sync", "crm_export", "reports.2026"])) == {}


def test_empty_name_is_refused(sink: Sink) -> None:
    problems = sink.check_names(["", "billing-sync"])
    assert set(problems) == {""}


def test_check_names_has_no_side_effects(sink: Sink) -> None:
    sink.check_names(["billing-sync", ""])
    assert list(sink.list_credentials()) == []
    assert sink.read("billing-sync").empty


def test_consumers_of_a_fresh_sink_are_ready(sink: Sink) -> None:
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    assert rollout_state(sink.rollout("billing-sync", now, now)) is RolloutState.READY


def test_describe_and_repr_never_show_the_secret(sink: Sink) -> None:
    deliver(sink, "billing-sync", FULL_RECORD, SECRET)
    for text in (sink.describe(), repr(sink), str(sink), repr(sink.read("billing-sync"))):
        assert SECRET.reveal() not in text
    assert sink.describe().startswith(sink.kind)


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_unreachable_backend_is_a_sink_error(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = BACKENDS[kind](request, tmp_path)
    try:
        if made.unavailable is None:
            return  # the memory sink is always reachable: nothing to assert
        broken = made.unavailable()
        with pytest.raises(SinkError) as caught:
            broken.write_secret("billing-sync", SECRET, expected_version=None)
        assert SECRET.reveal() not in str(caught.value)
        with pytest.raises(SinkError):
            broken.read("billing-sync")
    finally:
        for cleanup in made.cleanups:
            cleanup()


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_refused_identity_is_a_sink_error_and_changes_nothing(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = BACKENDS[kind](request, tmp_path)
    try:
        if made.forbidden is None:
            return  # memory and file have no identity to refuse
        made.sink.write_record("billing-sync", FULL_RECORD, expected_version=None)
        before = made.sink.read("billing-sync")
        with pytest.raises(SinkError) as caught:
            made.forbidden().write_secret("billing-sync", SECRET, expected_version=before.version)
        assert SECRET.reveal() not in str(caught.value)
        assert made.sink.read("billing-sync") == before
    finally:
        for cleanup in made.cleanups:
            cleanup()


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_a_write_whose_answer_is_lost_is_settled_by_reading(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    made = BACKENDS[kind](request, tmp_path)
    try:
        if made.lose_next_answer is None:
            return  # a local file write has no answer to lose
        version = made.sink.write_record("billing-sync", FULL_RECORD, expected_version=None)
        made.lose_next_answer()
        with pytest.raises(SinkError) as caught:
            made.sink.write_secret("billing-sync", SECRET, expected_version=version)
        assert caught.value.state_unknown
        assert made.reopen().read("billing-sync").secret_sha256 == SECRET.sha256()
    finally:
        for cleanup in made.cleanups:
            cleanup()


# ------------------------------------------------------------------ the rotation history

HISTORY = [
    {
        "workspace": "acme",
        "credential": "billing-sync",
        "old_key_id": "k-old",
        "new_key_id": "k-new",
        "trigger": "schedule",
        "reason": "expiring",
        "created_at": "2026-11-27T03:00:00Z",
        "delivered_at": "2026-11-27T03:00:01.250000Z",
        "retired_at": None,
        "outcome": "delivered",
    }
]


def test_no_history_reads_as_empty(sink: Sink) -> None:
    assert sink.read_history("billing-sync") == []
    deliver(sink, "billing-sync", FULL_RECORD, SECRET)
    assert sink.read_history("billing-sync") == []


def test_history_round_trips_beside_the_record_and_never_moves_its_version(
    backend: Backend,
) -> None:
    sink = backend.sink
    deliver(sink, "billing-sync", FULL_RECORD, SECRET)
    before = sink.read("billing-sync")
    sink.write_history("billing-sync", HISTORY)
    assert sink.read("billing-sync") == before
    assert backend.reopen().read_history("billing-sync") == HISTORY
    assert sink.read_history("crm-export") == []
    retired = [{**HISTORY[0], "retired_at": "2026-11-28T03:00:00Z", "outcome": "retired"}]
    sink.write_history("billing-sync", retired)
    assert sink.read_history("billing-sync") == retired
    assert sink.read("billing-sync") == before
    # A write based on the version read before the history was written still lands.
    sink.write_record("billing-sync", FULL_RECORD, expected_version=before.version)
    assert list(sink.list_credentials()) == ["billing-sync"]
    assert backend.consumer_reads("billing-sync") == SECRET.reveal()


def test_a_history_alone_is_no_credential(sink: Sink) -> None:
    sink.write_history("billing-sync", HISTORY)
    assert list(sink.list_credentials()) == []
    assert sink.read("billing-sync").record is None
    assert sink.read_history("billing-sync") == HISTORY


def test_the_history_is_bounded(sink: Sink) -> None:
    entries = [{**HISTORY[0], "new_key_id": f"k{i}"} for i in range(HISTORY_MAX_ENTRIES + 10)]
    sink.write_history("billing-sync", entries)
    assert sink.read_history("billing-sync") == entries[-HISTORY_MAX_ENTRIES:]
