"""The rotation history as a pass keeps it: written beside the record at the end of each
credential's job (one write when something changed, none otherwise), with the pass's trigger,
a rolled-back rotation as such, and a history that cannot be read or written never changing
what the pass did."""

from __future__ import annotations

from datetime import timedelta

from rotator.errors import SinkUnavailableError
from rotator.history import entries_from_documents
from rotator.sinks.memory import MemorySink
from tests.conftest import World, deliver_due

CREDENTIAL = "app-billing"


def _history(world: World) -> list[dict[str, object]]:
    return world.sink.read_history(CREDENTIAL)


def _writes(sink: MemorySink) -> int:
    return sum(1 for op, c in sink.operations if op == "write_history" and c == CREDENTIAL)


def test_a_rotation_and_its_retirement_with_the_pass_trigger(world: World) -> None:
    old_id, _ = deliver_due(world)
    assert isinstance(world.sink, MemorySink)

    report = world.run(grace=timedelta(hours=1), trigger="api")

    assert report.exit_code == 0
    [entry] = entries_from_documents(_history(world), workspace="acme", credential=CREDENTIAL)
    record = world.record(CREDENTIAL)
    assert record is not None
    assert (entry.old_key_id, entry.new_key_id) == (old_id, record.key_id)
    assert (entry.trigger, entry.reason, entry.outcome) == ("api", "expiring", "delivered")
    assert entry.delivered_at == record.delivered_at
    # The intent before the create, then the entry at the end of the job.
    assert _writes(world.sink) == 2

    world.run()  # the grace period is not over: nothing happens, nothing is written
    assert _writes(world.sink) == 2

    world.emu.advance(timedelta(hours=2))
    world.run()
    [retired] = entries_from_documents(_history(world), workspace="acme", credential=CREDENTIAL)
    assert (retired.outcome, retired.retired_at) == ("retired", world.emu.now())
    assert retired.trigger == "api", "a later scheduled pass keeps what asked for the rotation"
    assert _writes(world.sink) == 3


def test_an_old_key_that_expires_in_its_grace_period_is_retired_then(world: World) -> None:
    old_id, _ = deliver_due(world)  # 5 days from expiry
    grace = timedelta(days=30)
    world.run(grace=grace)
    world.emu.advance(timedelta(days=6))

    world.run(grace=grace)

    # Still listed, its grace not over, but it no longer works: the rotation is over.
    assert old_id in {str(k["id"]) for k in world.live(CREDENTIAL)}
    [entry] = entries_from_documents(_history(world), workspace="acme", credential=CREDENTIAL)
    assert entry.old_key_id == old_id
    assert (entry.outcome, entry.retired_at) == ("retired", world.emu.now())


def test_a_replacement_that_never_verified_is_rolled_back_with_its_step(world: World) -> None:
    deliver_due(world)
    world.emu.set_variants(propagation_failures=50)

    report = world.run(verify_attempts=2)

    assert report.exit_code == 1
    [entry] = entries_from_documents(_history(world), workspace="acme", credential=CREDENTIAL)
    assert (entry.outcome, entry.step) == ("rolled-back", "verify")
    assert entry.new_key_id is not None and entry.delivered_at is None
    assert entry.new_key_id not in {str(k["id"]) for k in world.live(CREDENTIAL)}


def test_a_history_that_cannot_be_written_changes_nothing_the_pass_did(world: World) -> None:
    deliver_due(world)
    assert isinstance(world.sink, MemorySink)
    world.sink.fail_always["write_history"] = SinkUnavailableError("history: timed out")

    report = world.run()

    assert report.exit_code == 0
    assert [str(r.outcome) for r in report.workspaces[0].results.values()] == ["rotated"]
    assert "history.write_failed" in [e["event"] for e in world.events()]
    assert _history(world) == []


def test_a_history_that_cannot_be_read_is_left_as_it_is(world: World) -> None:
    deliver_due(world)
    assert isinstance(world.sink, MemorySink)
    world.sink.write_history(CREDENTIAL, [{"workspace": "acme", "credential": CREDENTIAL}])

    report = world.run()

    assert report.exit_code == 0
    assert "history.unreadable" in [e["event"] for e in world.events()]
    assert _history(world) == [{"workspace": "acme", "credential": CREDENTIAL}]


def test_a_dry_run_writes_no_history(world: World) -> None:
    deliver_due(world)
    assert isinstance(world.sink, MemorySink)
    world.run(dry_run=True)
    assert _writes(world.sink) == 0
    assert not [op for op, _ in world.sink.operations if op == "read_history"]
