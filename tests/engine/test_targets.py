"""One credential delivered to several targets: roll-forward, never split-brain.

The real engine against the real emulator; the targets are a file sink and in-memory sinks
(which inject faults). Each test checks the emulator's key list and what every target holds,
not the pass's report alone: the old key is revoked only once every target holds the new one;
a new key is revoked only when no target holds it; a pass after a fault or a crash converges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from rotator.errors import (
    ConfigError,
    HistoryUnsupportedError,
    SinkError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.plan import Action
from rotator.sinks.base import Sink
from rotator.sinks.file import FileSink
from rotator.sinks.memory import MemorySink
from rotator.sinks.targets import RoutedSink, TargetSet, routed
from tests.conftest import Crash, World, _world, crash_at

CREDENTIAL = "app-billing"


class _DiesAfterWriting(MemorySink):
    """A target whose process dies right after its secret write landed (a kill between two
    targets' writes)."""

    armed = False

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        version = super().write_secret(credential, secret, expected_version=expected_version)
        if self.armed:
            self.armed = False
            raise Crash("between targets")
        return version


@dataclass
class Targets:
    world: World
    file: FileSink
    memory: _DiesAfterWriting
    default: MemorySink

    @property
    def all(self) -> tuple[Sink, ...]:
        return (self.file, self.memory)

    def hashes(self) -> list[str | None]:
        return [t.read(CREDENTIAL).secret_sha256 for t in self.all]

    def records(self) -> list[SinkRecord | None]:
        return [t.read(CREDENTIAL).record for t in self.all]

    def live_ids(self) -> set[str]:
        return {str(k["id"]) for k in self.world.live(CREDENTIAL)}

    def seed(self, days_left: float = 5) -> tuple[str, str]:
        """A key both targets hold, as a past rotation left it."""
        key_id, secret = self.world.add_key(CREDENTIAL, days_left=days_left)
        self.world.deliver(CREDENTIAL, key_id, secret)
        return key_id, secret

    def converged(self) -> SinkRecord:
        """Every target holds the same record and a working secret of a live key."""
        records = self.records()
        hashes = self.hashes()
        assert len(set(hashes)) == 1 and hashes[0] is not None, hashes
        assert all(r == records[0] for r in records), records
        record = records[0]
        assert record is not None and record.key_id in self.live_ids()
        assert not record.has_pending
        secret = self.file.read_secret(CREDENTIAL)
        assert secret.sha256() == record.secret_sha256
        assert self.world.works(secret)
        return record


@pytest.fixture
def targets(emulator: Emulator, tmp_path: Path) -> Iterator[Targets]:
    file = FileSink(tmp_path / "billing")
    memory = _DiesAfterWriting()
    default = MemorySink()
    world = _world(emulator, routed(default, [("app-bill*", [file, memory])]))
    yield Targets(world, file, memory, default)
    for client in world.clients:
        client.close()


def test_a_rotation_delivers_to_every_target_and_retires_the_old_key_after(
    targets: Targets,
) -> None:
    old_id, _ = targets.seed()
    report = targets.world.run()
    assert report.exit_code == 0
    record = targets.converged()
    assert record.key_id != old_id and record.previous_key_id == old_id
    assert old_id not in targets.live_ids()
    assert not targets.default.read(CREDENTIAL).record  # routed away from the workspace's sink
    delivered = [e for e in targets.world.events() if e["event"] == "rotation.delivered"]
    assert delivered and delivered[0]["sink"] == "file+memory"


def test_a_target_that_fails_keeps_the_old_key_and_the_next_pass_brings_it_up(
    targets: Targets,
) -> None:
    old_id, old_secret = targets.seed()
    targets.memory.fail_next["write_secret"] = SinkUnavailableError("timed out")
    first = targets.world.run(grace=timedelta(hours=1))
    assert first.exit_code == 1
    # The file target holds the new key, the memory target the old: both keys stay live.
    file_hash, memory_hash = targets.hashes()
    assert memory_hash == Secret(old_secret).sha256() != file_hash
    new_id = targets.file.read(CREDENTIAL).record.pending_key_id  # type: ignore[union-attr]
    assert new_id is not None and {old_id, new_id} <= targets.live_ids()
    state = targets.world.sink.read(CREDENTIAL)
    assert state.lagging == ("memory:app-billing",)

    engine = targets.world.engine(grace=timedelta(hours=1))
    plan = list(engine.plan([targets.world.workspace()]))
    assert [(a.action, a.reason, a.deferred) for a in plan] == [
        (Action.FINISH_DELIVERY, "targets-lagging", None),
        (Action.RETIRE, "grace-over", "grace"),  # its grace starts once every target has it
    ]
    assert plan[0].targets == ("memory:app-billing",)
    rows = [r for r in engine.inventory([targets.world.workspace()]) if r.role == "current"]
    assert [r.lagging for r in rows] == [("memory:app-billing",)]
    assert targets.world.sink.place_of(CREDENTIAL) == (
        f"file:{targets.file.directory / CREDENTIAL}, memory:app-billing"
    )

    second = targets.world.run(grace=timedelta(hours=1))
    assert second.exit_code == 0
    record = targets.converged()
    assert record.key_id == new_id and record.previous_key_id == old_id
    assert old_id in targets.live_ids()  # its grace starts when the last target got the key
    targets.world.emu.advance(timedelta(hours=2))
    assert targets.world.run(grace=timedelta(hours=1)).exit_code == 0
    assert old_id not in targets.live_ids()
    assert new_id in targets.live_ids()


def test_a_first_target_that_fails_rolls_the_new_key_back(targets: Targets) -> None:
    old_id, old_secret = targets.seed()
    # The file target refuses the secret: nothing was written anywhere, the key is revoked.
    first = MemorySink()
    seeded = targets.memory.read(CREDENTIAL).record
    assert seeded is not None
    version = first.write_secret(CREDENTIAL, Secret(old_secret), expected_version=None)
    first.write_record(CREDENTIAL, seeded, expected_version=version)
    first.fail_next["write_secret"] = SinkUnavailableError("down")
    targets.world.sink = routed(targets.default, [("app-bill*", [first, targets.memory])])
    report = targets.world.run()
    assert report.exit_code == 1
    assert targets.live_ids() == {old_id}
    for target in (first, targets.memory):
        state = target.read(CREDENTIAL)
        assert state.secret_sha256 == Secret(old_secret).sha256()
        assert state.record is not None and state.record.key_id == old_id
        assert not state.record.has_pending


@pytest.mark.parametrize(
    "step", ["created", "verified", "pending-recorded", "between targets", "secret-written",
             "delivered", "caught-up"],
)  # fmt: skip
def test_a_kill_at_each_step_of_a_delivery_to_two_targets_converges(
    targets: Targets, step: str
) -> None:
    targets.seed()
    if step == "caught-up":
        # A target lags behind (its write failed), and the pass bringing it up dies after.
        targets.memory.fail_next["write_secret"] = SinkUnavailableError("timed out")
        assert targets.world.run(grace=timedelta(hours=1)).exit_code == 1
    if step == "between targets":
        targets.memory.armed = True  # dies once the second target's secret landed
    with pytest.raises(Crash):
        targets.world.run(
            checkpoint=None if step == "between targets" else crash_at(step),
            grace=timedelta(hours=1),
        )
    # From here on, every target holds a working key after every pass, and the passes converge.
    for _ in range(3):
        targets.world.emu.advance(timedelta(minutes=11))
        report = targets.world.run(grace=timedelta(hours=1))
        for target in targets.all:
            assert targets.world.works(target.read_secret(CREDENTIAL)), target.describe()
    assert report.exit_code == 0
    targets.converged()
    assert len(targets.live_ids()) <= 2  # the current key, and the previous in its grace


def test_a_target_wiped_by_a_person_is_brought_back(targets: Targets) -> None:
    key_id, secret = targets.seed(days_left=300)
    wiped = targets.memory
    wiped._records.clear()  # a person deleting the target's entry
    wiped._secrets.clear()
    report = targets.world.run()
    assert report.exit_code == 0
    record = targets.converged()
    assert record.key_id == key_id
    assert targets.memory.read_secret(CREDENTIAL).reveal() == secret


def test_targets_whose_records_do_not_say_which_key_is_newest_block_the_credential(
    targets: Targets,
) -> None:
    first_id, _ = targets.seed(days_left=5)
    other_id, other_secret = targets.world.add_key(CREDENTIAL, days_left=6)
    # A person pointed one target at another key, with no link between the two records.
    version = targets.memory.write_secret(
        CREDENTIAL, Secret(other_secret), expected_version=targets.memory.read(CREDENTIAL).version
    )
    targets.memory.write_record(
        CREDENTIAL,
        SinkRecord(key_id=other_id, secret_sha256=Secret(other_secret).sha256()),
        expected_version=version,
    )
    report = targets.world.run()
    assert report.exit_code == 1
    assert targets.live_ids() == {first_id, other_id}  # nothing revoked, nothing created
    plan = list(targets.world.engine().plan([targets.world.workspace()]))
    assert [a.action for a in plan] == [Action.BLOCKED]
    assert "newest" in plan[0].reason


def test_routes_first_match_wins_and_each_place_lists_only_its_own() -> None:
    default, a, b, c = MemorySink(), MemorySink(), MemorySink(), MemorySink()
    sink = routed(default, [("app-b*", [a]), ("app-*", [b, c])])
    assert isinstance(sink, RoutedSink)
    assert sink.sink_of("app-billing") is a
    routed_set = sink.sink_of("app-crm")
    assert isinstance(routed_set, TargetSet) and routed_set.targets == (b, c)
    assert sink.sink_of("other") is default
    b.write_record("app-billing", SinkRecord(key_id="1"), expected_version=None)  # stale
    b.write_record("app-bonus", SinkRecord(key_id="4"), expected_version=None)  # routed to a
    a.write_record("app-billing", SinkRecord(key_id="2"), expected_version=None)
    default.write_record("other", SinkRecord(key_id="3"), expected_version=None)
    assert sink.list_credentials() == ["app-billing", "other"]
    assert routed(default, []) is default


def test_a_record_names_the_newest_key_pending_when_no_target_holds_it() -> None:
    a, b = MemorySink(), MemorySink()
    old = Secret("old-secret")
    for target in (a, b):
        v = target.write_secret(CREDENTIAL, old, expected_version=None)
        target.write_record(
            CREDENTIAL, SinkRecord(key_id="old", secret_sha256=old.sha256()), expected_version=v
        )
    pending = replace(
        SinkRecord(key_id="old", secret_sha256=old.sha256()),
        pending_key_id="new",
        pending_secret_sha256=Secret("new-secret").sha256(),
    )
    a.write_record(CREDENTIAL, pending, expected_version=a.read(CREDENTIAL).version)
    state = TargetSet([a, b]).read(CREDENTIAL)
    assert state.record == pending and state.secret_sha256 == old.sha256()
    assert state.lagging == ("memory:app-billing",)


class _Unreliable(MemorySink):
    """A target whose next secret write is answered as done without landing (a program that
    exits 0 having stored nothing), or whose secret reads back as another than it holds (changed
    while it was read)."""

    drops_next_write = False
    reads_back: Secret | None = None

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        if self.drops_next_write:
            self.drops_next_write = False
            return self.read(credential).version
        return super().write_secret(credential, secret, expected_version=expected_version)

    def read_secret(self, credential: str) -> Secret:
        return self.reads_back or super().read_secret(credential)


def _one_target_ahead() -> tuple[_Unreliable, _Unreliable]:
    """Two targets: the first holds the new key, the second (lagging) the old one."""
    leader, lagging = _Unreliable(), _Unreliable()
    old, new = Secret("old-secret"), Secret("new-secret")
    for target in (leader, lagging):
        v = target.write_secret(CREDENTIAL, old, expected_version=None)
        target.write_record(
            CREDENTIAL, SinkRecord(key_id="old", secret_sha256=old.sha256()), expected_version=v
        )
    v = leader.write_secret(CREDENTIAL, new, expected_version=leader.read(CREDENTIAL).version)
    leader.write_record(
        CREDENTIAL,
        SinkRecord(key_id="new", secret_sha256=new.sha256(), previous_key_id="old"),
        expected_version=v,
    )
    return leader, lagging


def test_a_catch_up_whose_secret_did_not_land_is_an_error() -> None:
    leader, lagging = _one_target_ahead()
    targets = TargetSet([leader, lagging])
    state = targets.read(CREDENTIAL)
    assert state.lagging == ("memory:app-billing",)
    lagging.drops_next_write = True
    with pytest.raises(SinkError, match="read-back: the secret did not land"):
        targets.catch_up(CREDENTIAL, state)


def test_a_catch_up_never_copies_a_secret_that_changed_while_it_was_read() -> None:
    leader, lagging = _one_target_ahead()
    targets = TargetSet([leader, lagging])
    state = targets.read(CREDENTIAL)
    leader.reads_back = Secret("what-a-person-put-there-meanwhile")
    with pytest.raises(SinkError, match="changed while it was read"):
        targets.catch_up(CREDENTIAL, state)
    assert lagging.read(CREDENTIAL).secret_sha256 == Secret("old-secret").sha256()


class _Unreadable(MemorySink):
    """A target that cannot give its secret back, as the exec sink cannot."""

    can_read_secret = False


def test_targets_that_can_give_the_secret_back_are_written_first() -> None:
    unreadable, readable = _Unreadable(), MemorySink()
    assert TargetSet([unreadable, readable]).targets == (readable, unreadable)
    with pytest.raises(ConfigError, match="at most one target"):
        TargetSet([_Unreadable(), _Unreadable(), readable])


def test_the_history_of_a_routed_credential_is_kept_in_every_target(targets: Targets) -> None:
    old_id, _ = targets.seed()
    targets.world.run()
    record = targets.converged()
    kept = [t.read_history(CREDENTIAL) for t in targets.all]
    assert kept[0] == kept[1] and len(kept[0]) == 1
    entry = kept[0][0]
    assert (entry["old_key_id"], entry["new_key_id"]) == (old_id, record.key_id)
    assert entry["outcome"] == "retired"  # grace 0: revoked in the same pass
    assert targets.default.read_history(CREDENTIAL) == []  # routed away from it
    assert targets.world.sink.read_history(CREDENTIAL) == kept[0]


def test_a_target_set_reads_the_history_of_the_first_target_that_keeps_one() -> None:
    class _NoHistory(MemorySink):
        def read_history(self, credential: str) -> list[dict[str, object]]:
            raise HistoryUnsupportedError("none kept here")

        def write_history(self, credential: str, entries: object) -> None:
            raise HistoryUnsupportedError("none kept here")

    keeps = MemorySink()
    both = TargetSet([_NoHistory(), keeps])
    both.write_history(CREDENTIAL, [{"outcome": "delivered"}])
    assert both.read_history(CREDENTIAL) == [{"outcome": "delivered"}]
    assert keeps.read_history(CREDENTIAL) == [{"outcome": "delivered"}]
    with pytest.raises(HistoryUnsupportedError):
        TargetSet([_NoHistory(), _NoHistory()]).write_history(CREDENTIAL, [])
    failing = MemorySink(fail_always={"write_history": SinkUnavailableError("down")})
    with pytest.raises(SinkUnavailableError):
        TargetSet([failing, keeps]).write_history(CREDENTIAL, [{"outcome": "retired"}])
    assert keeps.read_history(CREDENTIAL) == [{"outcome": "retired"}], "the others still get it"


def test_a_key_a_lagging_target_still_names_is_never_an_orphan(targets: Targets) -> None:
    # The file target moved on to N (previous O); the memory target still holds O, and its
    # record names P as O's predecessor. P is rotator-made, old, and named by no other record:
    # while the memory target names it, a consumer there may be in P's grace: never an orphan.
    old_p, secret_p = targets.world.add_key(CREDENTIAL + "@2026-01-01T00:00:00Z", days_left=200)
    old_o, secret_o = targets.world.add_key(CREDENTIAL + "@2026-06-01T00:00:00Z", days_left=300)
    new_n, secret_n = targets.world.add_key(CREDENTIAL + "@2026-12-01T00:00:00Z", days_left=700)
    for target, (current, previous, secret) in (
        (targets.memory, (old_o, old_p, secret_o)),
        (targets.file, (new_n, old_o, secret_n)),
    ):
        version = target.write_secret(CREDENTIAL, Secret(secret), expected_version=None)
        target.write_record(
            CREDENTIAL,
            SinkRecord(
                key_id=current, secret_sha256=Secret(secret).sha256(), previous_key_id=previous,
                retire_previous_after=targets.world.emu.now() + timedelta(hours=1),
            ),
            expected_version=version,
        )  # fmt: skip
    targets.world.emu.advance(timedelta(minutes=30))  # every key past the orphan age
    state = targets.world.sink.read(CREDENTIAL)
    assert state.lagging and old_p in state.held_elsewhere
    targets.world.run(grace=timedelta(hours=1))
    assert old_p in targets.live_ids()
    assert targets.memory.read_secret(CREDENTIAL).reveal() == secret_n  # caught up
    assert secret_p != secret_n


def test_a_wiped_target_under_an_undelivered_pending_key_is_brought_back_in_one_pass(
    targets: Targets,
) -> None:
    # Found by tests/model/test_targets_model.py: a kill after the pending record, then a person
    # wiping one target. The pass revokes the pending key and brings the target back at once.
    key_id, _ = targets.seed(days_left=5)
    with pytest.raises(Crash):
        targets.world.run(checkpoint=crash_at("pending-recorded"), grace=timedelta(hours=1))
    targets.memory._records.clear()  # a person deleting the target's entry
    targets.memory._secrets.clear()
    targets.world.emu.advance(timedelta(minutes=11))
    plan = list(targets.world.engine(grace=timedelta(hours=1)).plan([targets.world.workspace()]))
    assert [(str(a.action), a.reason) for a in plan if a.deferred is None] == [
        ("revoke-orphan", "pending-not-delivered"),
        ("finish-delivery", "targets-lagging"),
        ("rotate", "expiring"),
    ]
    assert targets.world.run(grace=timedelta(hours=1)).exit_code == 0
    record = targets.converged()
    assert record.previous_key_id == key_id  # brought back, then replaced as it was due
    assert key_id in targets.live_ids()  # in its grace period
