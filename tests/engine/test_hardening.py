"""What a hostile tester found, and the new engine's rules, end to end against the emulator.

Each test fails on the engine before this rewrite (or on a plausible mutation of it)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

from rotator.client import ProjectManagerClient
from rotator.errors import SinkError
from rotator.models import ApiKey, Identity, NewKey, Secret, SinkRecord
from rotator.plan import Action
from rotator.rotation import Outcome
from rotator.sinks.memory import MemorySink
from rotator.survey import Workspace
from tests.conftest import Crash, World, crash_at, deliver_due


def events(world: World, name: str) -> list[dict[str, object]]:
    return [e for e in world.events() if e["event"] == name]


def revoke(world: World, key_id: str) -> None:
    world.client().revoke_key(key_id)


# ------------------------------------------------------------ credentials that vanish


def test_a_credential_whose_keys_are_all_revoked_is_rotated_at_once(world: World) -> None:
    old_id, _ = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", old_id, "x")  # a delivered, healthy key ...
    world.put_secret("app-billing", Secret("x"))
    revoke(world, old_id)  # ... revoked by a person in the web app
    report = world.run()
    assert report.exit_code == 0
    evaluated = events(world, "key.evaluated")
    assert [(e["credential"], e["reason"], e["due"]) for e in evaluated] == [
        ("app-billing", "missing", True)
    ]
    live = world.live("app-billing")
    assert len(live) == 1 and live[0]["id"] != old_id
    assert world.works(world.held_secret("app-billing"))


def test_a_key_that_expired_unlisted_while_the_rotator_was_down_is_replaced(world: World) -> None:
    world.emu.set_variants(list_expired=False)
    old_id, secret = world.add_key("app-billing", days_left=40)
    world.deliver("app-billing", old_id, secret)
    world.emu.advance(timedelta(days=41))  # expired; the API no longer lists it
    plan = world.engine().plan([world.workspace()])
    assert [(a.credential, str(a.action), a.reason) for a in plan] == [
        ("app-billing", "rotate", "missing")
    ]
    status = world.engine().inventory([world.workspace()]).rows
    assert [
        (s.credential, s.reason, s.managed) for s in status if s.credential == "app-billing"
    ] == [("app-billing", "missing", True)]
    report = world.run()
    assert report.exit_code == 0
    assert world.works(world.held_secret("app-billing"))


def test_current_revoked_during_grace_is_replaced_and_the_previous_never_retired_first(
    world: World,
) -> None:
    deliver_due(world)
    world.run(grace=timedelta(hours=24))
    record = world.record("app-billing")
    assert record is not None and record.previous_key_id is not None
    previous_id, current_id = record.previous_key_id, record.key_id
    assert current_id is not None
    revoke(world, current_id)  # the new key leaked and was revoked by hand
    world.emu.advance(timedelta(hours=1))
    report = world.run(grace=timedelta(hours=24))
    assert report.exit_code == 0
    assert "rotation.deferred" not in [e["event"] for e in world.events()[-30:]]
    held = world.held_secret("app-billing")
    assert world.works(held)
    assert previous_id in [k["id"] for k in world.live("app-billing")]  # not retired early


# ------------------------------------------------------------- whose keys are whose


def test_a_persons_key_named_like_a_rotator_key_is_never_revoked(world: World) -> None:
    person = world.emu.add_workspace  # noqa: F841 - the person is another user of this workspace
    key_id, secret = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", key_id, secret)
    lookalike, _ = world.emu.add_key(
        world.workspace_id,
        "app-billing@2026-06-01T00:00:00Z",
        expires=world.emu.now() + timedelta(days=500),
        created_by="00000000-0000-0000-0000-0000000000aa",
    )
    report = world.run()
    assert report.exit_code == 0
    assert lookalike in [k["id"] for k in world.live("app-billing")]
    roles = {s.key_id: s.role for s in report.workspaces[0].inventory}
    assert roles[lookalike] == "extra"


def test_a_rotator_made_previous_key_in_its_grace_is_not_an_orphan(world: World) -> None:
    deliver_due(world)
    world.run(grace=timedelta(hours=24))
    first = world.record("app-billing")
    assert first is not None
    world.emu.advance(timedelta(days=400))  # the new key is due by max age below
    world.run(
        grace=timedelta(hours=24), policy=replace(world.config().reconcile.policy, max_age_days=300)
    )
    second = world.record("app-billing")
    assert second is not None and second.previous_key_id == first.key_id
    world.emu.advance(timedelta(minutes=30))  # past the orphan age, inside the grace
    world.run(grace=timedelta(hours=24))
    assert first.key_id in [k["id"] for k in world.live("app-billing")]
    assert not events(world, "orphan.revoked")


# ------------------------------------------------------- interrupted deliveries


def test_finishing_an_interrupted_delivery_starts_the_grace_then(world: World) -> None:
    deliver_due(world)
    with contextlib.suppress(Crash):
        world.run(checkpoint=crash_at("secret-written"), grace=timedelta(hours=24))
    world.emu.advance(timedelta(hours=30))  # longer than the grace since the crash
    world.run(grace=timedelta(hours=24))
    record = world.record("app-billing")
    assert record is not None and record.retire_previous_after is not None
    assert record.retire_previous_after == world.emu.now() + timedelta(hours=24)
    assert record.previous_key_id in [k["id"] for k in world.live("app-billing")]


def test_after_a_crash_at_every_checkpoint_plan_lists_what_the_next_pass_does(
    emulator: Any,
) -> None:
    from tests.conftest import _world  # noqa: PLC0415

    for step in ("created", "verified", "pending-recorded", "secret-written", "delivered"):
        w = _world(emulator, MemorySink())
        name = f"app-{step}"
        key_id, secret = w.add_key(name, days_left=5)
        w.deliver(name, key_id, secret)
        with contextlib.suppress(Crash):
            w.engine(crash_at(step), policy=_only(w, name)).run_pass([w.workspace()])
        w.emu.advance(timedelta(minutes=11))  # orphans old enough to be revoked
        planned = [
            (a.credential, str(a.action), a.key_id)
            for a in w.engine(policy=_only(w, name)).plan([w.workspace()])
        ]
        before = len(w.events())
        w.engine(policy=_only(w, name)).run_pass([w.workspace()])
        done = _actions_done(w.events()[before:])
        for client in w.clients:
            client.close()
        assert done == [(c, a) for c, a, _k in planned], step


def _only(world: World, name: str) -> Any:
    return replace(world.config().reconcile.policy, key_names=(name,))


def _actions_done(log: list[dict[str, object]]) -> list[tuple[object, str]]:
    names = {
        "rotation.created": "rotate",
        "rotation.revoked": "retire",
        "orphan.revoked": "revoke-orphan",
    }
    out: list[tuple[object, str]] = []
    for event in log:
        if event["event"] == "rotation.delivered" and event.get("recovered"):
            out.append((event["credential"], "finish-delivery"))
        elif event["event"] in names:
            # A grace-0 retire is planned, and done, as its own action after the rotation.
            out.append((event["credential"], names[str(event["event"])]))
    return out


# ---------------------------------------------------------- metadata not trusted


def test_edited_metadata_never_revokes_the_held_key(world: World) -> None:
    key_id, secret = world.add_key("app-billing", days_left=300)
    stray, _ = world.add_key("app-billing@2026-01-01T00:00:00Z", days_left=300)
    world.deliver("app-billing", key_id, secret)
    world.emu.advance(timedelta(hours=1))
    for edit in (
        SinkRecord(),
        replace(world.record("app-billing") or SinkRecord(), key_id=None),
        replace(world.record("app-billing") or SinkRecord(), previous_key_id=key_id),
    ):
        world.put_record("app-billing", edit)
        report = world.run()
        assert report.exit_code == 1
        assert {key_id, stray} <= {str(k["id"]) for k in world.live("app-billing")}
        failed = events(world, "rotation.failed")
        assert failed and failed[-1]["step"] == "reconcile"
        plan = world.engine().plan([world.workspace()])
        assert [a.action for a in plan] == [Action.BLOCKED]


# --------------------------------------------------------------- the pool and rules


def test_the_budget_is_exact_under_concurrency(world: World) -> None:
    for i in range(12):
        world.add_key(f"app-{i:02d}", days_left=1 + i)
    report = world.run(max_rotations_per_pass=5, concurrency=8, workspace_concurrency=8)
    creates = [r for r in world.emu.request_log() if r["method"] == "POST"]
    assert len(creates) == 5
    assert report.rotations_succeeded == 5
    rotated = {c for c, o in report.workspaces[0].outcomes.items() if o is Outcome.ROTATED}
    assert rotated == {f"app-{i:02d}" for i in range(5)}  # the most urgent
    assert report.budget_exhausted


class _Overlap:
    """A provider that records how many creates of one credential are in flight at once."""

    def __init__(self, client: ProjectManagerClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.most = 0

    def list_keys(self) -> list[ApiKey]:
        return list(self._client.list_keys())

    def create_key(self, token_name: str) -> NewKey:
        base = token_name.split("@", maxsplit=1)[0]
        with self._lock:
            self.in_flight[base] = self.in_flight.get(base, 0) + 1
            self.most = max(self.most, self.in_flight[base])
        try:
            return self._client.create_key(token_name)
        finally:
            with self._lock:
                self.in_flight[base] -= 1

    def revoke_key(self, key_id: str) -> None:
        self._client.revoke_key(key_id)

    def me(self, credential: Secret | None = None) -> Identity:
        return self._client.me(credential)


def test_one_credential_never_rotates_twice_at_once(world: World) -> None:
    for i in range(6):
        deliver_due(world, f"app-{i}")
    provider = _Overlap(world.client())
    ws = Workspace("acme", provider, world.sink, world.lock)
    report = world.engine(concurrency=8, workspace_concurrency=8).run_pass([ws])
    assert report.exit_code == 0
    assert provider.most == 1
    assert report.rotations_succeeded == 6


def test_a_conflicting_write_is_reread_and_never_overwritten(world: World) -> None:
    sink = world.sink
    assert isinstance(sink, MemorySink)
    old_id, old_secret = deliver_due(world)
    theirs = SinkRecord(
        key_id=old_id, key_name="app-billing", secret_sha256=Secret(old_secret).sha256()
    )

    def another_writer(step: str, _credential: str) -> None:
        if step == "verified":  # between this pass's read and its first write
            sink.put("app-billing", record=theirs, secret=Secret(old_secret))

    report = world.run(checkpoint=another_writer)
    assert report.exit_code == 1
    assert sink.record_of("app-billing") == theirs  # never overwritten
    assert [k["id"] for k in world.live("app-billing")] == [old_id]  # the new key rolled back
    assert events(world, "rotation.rolled_back")


def test_the_lock_is_held_while_the_pass_works(world: World) -> None:
    deliver_due(world)
    seen: list[bool] = []
    world.run(checkpoint=lambda _step, _c: seen.append(world.lock.held))
    assert seen and all(seen)
    assert not world.lock.held


def test_a_lost_lock_stops_the_workspace_before_its_next_create(world: World) -> None:
    deliver_due(world, "app-a")
    deliver_due(world, "app-b")

    def lose(step: str, _credential: str) -> None:
        if step == "delivered":
            world.lock.lose()

    report = world.run(checkpoint=lose, workspace_concurrency=1)
    assert report.exit_code == 1
    assert report.workspaces[0].lock_lost
    creates = [r for r in world.emu.request_log() if r["method"] == "POST"]
    assert len(creates) == 1


def test_a_dry_run_settles_retires_and_revokes_nothing(world: World) -> None:
    deliver_due(world, "app-due")
    key_id, secret = world.add_key("app-grace", days_left=300)
    world.deliver("app-grace", key_id, secret)
    prev, _ = world.add_key("app-grace", days_left=100)
    world.set_previous("app-grace", prev, world.emu.now() - timedelta(hours=1))
    world.add_key("app-due@2026-01-01T00:00:00Z", days_left=300)
    world.emu.advance(timedelta(hours=1))
    before = world.live()
    report = world.run(dry_run=True)
    assert world.live() == before
    assert not [r for r in world.emu.request_log() if r["method"] in ("POST", "DELETE")]
    assert report.exit_code == 0
    assert len(events(world, "rotation.planned")) >= 3


class _Exploding(MemorySink):
    armed = False

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        if self.armed and credential == "app-a":
            raise ZeroDivisionError(secret.reveal())  # text that must never be shown
        return super().write_secret(credential, secret, expected_version=expected_version)


def test_an_unforeseen_error_fails_one_credential_only(emulator: Any) -> None:
    from tests.conftest import _world  # noqa: PLC0415

    sink = _Exploding()
    w = _world(emulator, sink)
    deliver_due(w, "app-a")
    deliver_due(w, "app-b")
    sink.armed = True
    report = w.run()
    for client in w.clients:
        client.close()
    assert report.exit_code == 1
    outcomes = report.workspaces[0].outcomes
    assert outcomes["app-a"] is Outcome.FAILED
    assert outcomes["app-b"] is Outcome.ROTATED
    failed = [e for e in w.events() if e["event"] == "rotation.failed"]
    assert failed[0]["error"] == "unexpected ZeroDivisionError"
    for secret in w.emu.issued_secrets():
        assert secret not in w.log_stream.getvalue()


def test_a_read_back_error_after_a_good_write_never_rolls_back(world: World) -> None:
    sink = world.sink
    assert isinstance(sink, MemorySink)
    old_id, _ = deliver_due(world)

    def fail_reads(step: str, _credential: str) -> None:
        if step == "secret-written":
            sink.fail_next["read"] = SinkError("read-back timed out")

    report = world.run(checkpoint=fail_reads)
    assert report.exit_code == 1
    assert not events(world, "rotation.rolled_back")
    assert world.works(world.held_secret("app-billing"))  # the sink holds a working key
    assert world.run().exit_code == 0
    assert world.works(world.held_secret("app-billing"))
    assert old_id not in [k["id"] for k in world.live("app-billing")]


# ----------------------------------------------- what the mutation check let through


class _NowhereProvider(_Overlap):
    """The real client, except that a new key's ``me`` names no workspace at all."""

    def me(self, credential: Secret | None = None) -> Identity:
        identity = super().me(credential)
        if credential is None:
            return identity
        return Identity(user_id=identity.user_id, workspace_id=None, workspace_name=None)


def test_a_new_key_whose_me_names_no_workspace_is_rolled_back(world: World) -> None:
    old_id, old_secret = deliver_due(world)
    ws = Workspace("acme", _NowhereProvider(world.client()), world.sink, world.lock)
    report = world.engine().run_pass([ws])
    assert report.exit_code == 1
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert world.held_secret("app-billing") == Secret(old_secret)
    failed = events(world, "rotation.failed")
    assert failed and failed[0]["step"] == "verify"


class _LossySink(MemorySink):
    """A backend that keeps the record but silently drops one of its fields (a lossy store)."""

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        lossy = replace(record, retire_previous_after=None)
        return super().write_record(credential, lossy, expected_version=expected_version)


def test_a_metadata_read_back_that_differs_in_any_field_is_not_a_delivery(emulator: Any) -> None:
    from tests.conftest import _world  # noqa: PLC0415

    w = _world(emulator, _LossySink())
    old_id, _ = deliver_due(w)
    report = w.run(grace=timedelta(hours=24))
    for client in w.clients:
        client.close()
    # The record lost the time the old key may go: trusting it would retire the old key at once.
    assert report.exit_code == 1
    assert old_id in [k["id"] for k in w.live("app-billing")]


class _FailingFor(MemorySink):
    """Deliveries of the named credentials fail (nothing is written): their rotation fails."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__()
        self.failing = failing
        self.armed = False

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        if self.armed and credential in self.failing:
            raise SinkError("disk full")
        return super().write_record(credential, record, expected_version=expected_version)


def test_the_breaker_trips_above_the_ratio_not_at_it(emulator: Any) -> None:
    from tests.conftest import _world  # noqa: PLC0415

    sink = _FailingFor({"app-a", "app-d"})
    w = _world(emulator, sink)
    for days, name in enumerate(("app-a", "app-b", "app-c", "app-d", "app-e"), start=1):
        w.add_key(name, days_left=days)  # rotated in this order, most urgent first
    sink.armed = True
    report = w.run(workspace_concurrency=1, max_failure_ratio=0.5)
    for client in w.clients:
        client.close()
    # After four attempts two failed: exactly the ratio, not above it, so app-e still rotates.
    assert not report.workspaces[0].breaker_tripped
    assert report.workspaces[0].outcomes["app-e"] is Outcome.ROTATED
