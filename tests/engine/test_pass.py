"""The rotation pass against the real emulator over loopback HTTP, with a memory or file sink.

Tests named ``test_invariant_N_*`` hold invariant N of docs/how-it-works.md; each was broken on
purpose once in the engine to see it fail.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from rotator.errors import SinkError, SinkUnavailableError
from rotator.models import Secret, SinkRecord
from rotator.plan import Action
from rotator.policy import RotationPolicy
from rotator.rotation import Outcome
from rotator.runner import Runner
from rotator.sinks.file import FileSink
from rotator.sinks.memory import MemorySink
from tests.conftest import Crash, World, crash_at, deliver_due

# ------------------------------------------------------------------ the normal path


def test_due_key_is_replaced_delivered_and_old_revoked_with_grace_zero(world: World) -> None:
    old_id, old_secret = deliver_due(world)
    report = world.run()
    assert report.exit_code == 0
    live = world.live("app-billing")
    assert len(live) == 1
    assert live[0]["id"] != old_id
    assert str(live[0]["name"]).startswith("app-billing@")
    held = world.held_secret("app-billing")
    assert held is not None and held.reveal() != old_secret
    assert world.works(held)
    record = world.record("app-billing")
    assert record is not None
    assert record.key_id == live[0]["id"]
    assert record.previous_key_id == old_id
    # The replaced key's hash stays beside its id: a leak of it is still recognised.
    assert record.previous_secret_sha256 == Secret(old_secret).sha256()
    assert record.secret_sha256 == held.sha256()
    assert not record.has_pending
    events = [e["event"] for e in world.events()]
    for event in (
        "pass.started",
        "key.evaluated",
        "rotation.created",
        "rotation.verified",
        "rotation.delivered",
        "rotation.revoked",
        "pass.finished",
    ):
        assert event in events
    assert events.index("rotation.delivered") < events.index("rotation.revoked")


def test_key_not_due_is_left_alone(world: World) -> None:
    key_id, secret = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", key_id, secret)
    report = world.run()
    assert report.exit_code == 0
    assert [k["id"] for k in world.live("app-billing")] == [key_id]
    evaluated = [e for e in world.events() if e["event"] == "key.evaluated"]
    assert evaluated[0]["due"] is False
    assert evaluated[0]["reason"] == "not-due"
    assert evaluated[0]["credential"] == "app-billing"
    assert 299 < float(evaluated[0]["days_left"]) < 301  # type: ignore[arg-type]


def test_max_age_rotates_an_old_key(world: World) -> None:
    world.add_key("app-old", days_left=300)  # 430 days old
    report = world.run(policy=RotationPolicy(key_names=("app-*",), max_age_days=365))
    assert report.rotations_succeeded == 1
    assert [e["reason"] for e in world.events() if e["event"] == "key.evaluated"] == ["max-age"]


def test_grace_period_keeps_the_previous_key_until_a_later_pass(world: World) -> None:
    old_id, _ = deliver_due(world)
    first = world.run(grace=timedelta(hours=24))
    assert first.exit_code == 0
    assert old_id in [k["id"] for k in world.live("app-billing")]
    assert len(world.live("app-billing")) == 2
    # A pass inside the grace period neither revokes nor rotates again.
    world.emu.advance(timedelta(hours=23))
    world.run(grace=timedelta(hours=24))
    assert len(world.live("app-billing")) == 2
    world.emu.advance(timedelta(hours=2))
    third = world.run(grace=timedelta(hours=24))
    assert third.exit_code == 0
    live = world.live("app-billing")
    assert len(live) == 1 and live[0]["id"] != old_id
    assert "rotation.revoked" in [e["event"] for e in world.events()]


def test_missing_key_is_rotated_at_once(world: World) -> None:
    key_id, secret = world.add_key("app-billing", days_left=400)
    world.deliver("app-billing", key_id, secret)
    other_id, _ = world.add_key("app-billing@2026-01-01T00:00:00Z", days_left=500)
    # Someone revoked the delivered key: the credential has no working key in its sink.
    client = world.client()
    client.revoke_key(key_id)
    world.emu.advance(timedelta(minutes=1))
    report = world.run(orphan_min_age=timedelta(days=9999))
    assert report.rotations_succeeded == 1
    reasons = [e["reason"] for e in world.events() if e["event"] == "key.evaluated"]
    assert reasons == ["missing"]
    assert world.works(world.held_secret("app-billing"))
    assert other_id in [k["id"] for k in world.live("app-billing")]


def test_dry_run_changes_nothing(world: World) -> None:
    deliver_due(world)
    before = world.live()
    record_before = world.record("app-billing")
    report = world.run(dry_run=True)
    assert report.exit_code == 0
    assert world.live() == before
    assert world.record("app-billing") == record_before
    assert "rotation.planned" in [e["event"] for e in world.events()]


def test_plan_lists_actions_without_changing_anything(world: World) -> None:
    deliver_due(world)
    world.add_key("app-crm", days_left=300)
    stray_id, _ = world.add_key("app-billing@2020-01-01T00:00:00Z", days_left=400)
    before = world.live()
    actions = world.engine().plan([world.workspace()])
    assert world.live() == before
    by_action = {(a.credential, a.action) for a in actions}
    assert ("app-billing", Action.ROTATE) in by_action
    assert ("app-billing", Action.REVOKE_ORPHAN) in by_action
    assert not any(a.credential == "app-crm" for a in actions)
    orphan = next(a for a in actions if a.action is Action.REVOKE_ORPHAN)
    assert orphan.key_id == stray_id


def test_status_shows_roles(world: World) -> None:
    current_id, secret = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", current_id, secret)
    extra_id, _ = world.add_key("app-billing", days_left=200)  # a person made another one
    statuses = {s.key_id: s for s in world.engine().inventory([world.workspace()])}
    assert statuses[current_id].role == "current"
    assert statuses[extra_id].role == "extra"
    admin = next(s for s in statuses.values() if s.name == "rotator-admin")
    assert admin.role == "unmanaged" and admin.managed is False


def test_first_rotation_without_metadata_takes_newest_person_key_as_current(world: World) -> None:
    older, _ = world.add_key("app-billing", days_left=10)
    newer, _ = world.add_key("app-billing", days_left=20)
    made, _ = world.add_key("app-billing@2020-01-01T00:00:00Z", days_left=25)
    report = world.run()
    assert report.exit_code == 0
    live_ids = [k["id"] for k in world.live("app-billing")]
    assert newer not in live_ids  # the current one was replaced and retired (grace 0)
    assert older in live_ids  # extra: a person's key, never revoked
    assert made in live_ids  # unknown: nothing proves it was never delivered
    assert "key.unknown" in [e["event"] for e in world.events()]


def test_orphan_is_revoked_only_once_old_enough(world: World) -> None:
    key_id, secret = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", key_id, secret)
    stamp = world.emu.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    orphan_id, _ = world.add_key(f"app-billing@{stamp}", days_left=730)
    world.run()
    assert orphan_id in [k["id"] for k in world.live()]
    world.emu.advance(timedelta(minutes=11))
    report = world.run()
    assert report.exit_code == 0
    assert orphan_id not in [k["id"] for k in world.live()]
    assert "orphan.revoked" in [e["event"] for e in world.events()]


# ------------------------------------------------------------------------ invariants


def test_invariant_1_verify_failure_rolls_back_and_keeps_old(world: World) -> None:
    old_id, old_secret = deliver_due(world)
    world.emu.set_variants(propagation_failures=100)  # the new key never authenticates
    report = world.run()
    assert report.exit_code == 1
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert world.held_secret("app-billing") == Secret(old_secret)
    failed = [e for e in world.events() if e["event"] == "rotation.failed"]
    assert failed[0]["step"] == "verify"
    assert "rotation.rolled_back" in [e["event"] for e in world.events()]


def test_invariant_1_delivery_that_surely_failed_rolls_back(world: World) -> None:
    assert isinstance(world.sink, MemorySink)
    old_id, old_secret = deliver_due(world)
    world.sink.fail_next["write_secret"] = SinkError("disk full")
    report = world.run()
    assert report.exit_code == 1
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert world.held_secret("app-billing") == Secret(old_secret)
    record = world.record("app-billing")
    assert record is not None and not record.has_pending


def test_invariant_1_unknown_sink_state_revokes_nothing(world: World) -> None:
    assert isinstance(world.sink, MemorySink)
    old_id, _ = deliver_due(world)
    world.sink.fail_next["write_secret"] = SinkUnavailableError("timed out")
    world.sink.fail_always["read_back"] = SinkUnavailableError("unreachable")
    report = world.run()
    assert report.exit_code == 1
    live = world.live("app-billing")
    assert len(live) == 2  # old and new both kept: the sink might hold either
    assert old_id in [k["id"] for k in live]
    assert "rotation.rolled_back" not in [e["event"] for e in world.events()]
    pending = world.sink.record_of("app-billing")
    assert pending is not None and pending.pending_key_id is not None
    # The sink answers again: the next pass settles from the hash (not delivered: the pending
    # key is revoked), then rotates the still-due credential, grace 0: one key is left.
    del world.sink.fail_always["read_back"]
    world.run()
    live = [k["id"] for k in world.live("app-billing")]
    assert pending.pending_key_id not in live
    assert old_id not in live
    assert len(live) == 1
    assert world.works(world.held_secret("app-billing"))


def test_invariant_1_write_that_landed_despite_error_is_finished_not_rolled_back(
    world: World,
) -> None:
    assert isinstance(world.sink, MemorySink)
    old_id, _ = deliver_due(world)
    world.sink.fail_next_after_applying["write_secret"] = SinkUnavailableError("timed out")
    first = world.run()
    assert first.exit_code == 1
    new_secret = world.held_secret("app-billing")
    assert world.works(new_secret)
    assert old_id in [k["id"] for k in world.live("app-billing")]  # not retired: unconfirmed
    second = world.run()
    assert second.exit_code == 0
    live = world.live("app-billing")
    assert len(live) == 1 and live[0]["id"] != old_id
    assert world.held_secret("app-billing") == new_secret


def test_invariant_2_sink_always_holds_a_working_key(world: World) -> None:
    deliver_due(world)
    seen: list[tuple[str, bool]] = []

    def check(step: str, credential: str) -> None:
        seen.append((step, world.works(world.held_secret(credential))))

    world.run(checkpoint=check)
    assert [s for s, _ in seen] == [
        "created",
        "verified",
        "pending-recorded",
        "secret-written",
        "delivered",
        "revoked",
    ]
    assert all(ok for _, ok in seen), seen
    assert world.works(world.held_secret("app-billing"))


def test_invariant_3_key_created_before_a_crash_is_found_and_revoked(world: World) -> None:
    deliver_due(world)
    with pytest.raises(Crash):
        world.run(checkpoint=crash_at("verified"))
    stray = [k for k in world.live("app-billing") if "@" in str(k["name"])]
    assert len(stray) == 1
    world.emu.advance(timedelta(minutes=11))
    world.run()
    world.emu.advance(timedelta(minutes=11))
    world.run()
    assert stray[0]["id"] not in [k["id"] for k in world.live()]
    assert len(world.live("app-billing")) == 1


@pytest.mark.parametrize(
    "step", ["created", "verified", "pending-recorded", "secret-written", "delivered", "revoked"]
)
@pytest.mark.parametrize("sink_kind", ["memory", "file"])
def test_invariant_4_crash_at_each_step_converges(
    step: str, sink_kind: str, world: World, file_world: World
) -> None:
    w = world if sink_kind == "memory" else file_world
    old_id, _ = deliver_due(w)
    with pytest.raises(Crash):
        w.run(checkpoint=crash_at(step))
    assert w.works(w.held_secret("app-billing"))
    # Later passes, with the orphan age passed in between, settle everything.
    for _ in range(3):
        w.emu.advance(timedelta(minutes=11))
        report = w.run()
        assert w.works(w.held_secret("app-billing"))
    assert report.exit_code == 0
    live = w.live("app-billing")
    assert len(live) == 1, live  # one replacement, nothing left behind
    assert live[0]["id"] != old_id
    record = w.record("app-billing")
    assert record is not None and record.key_id == live[0]["id"] and not record.has_pending
    # The same end state as an uninterrupted run: exactly one create per crash-free pass.
    creates = [r for r in w.emu.request_log() if r["method"] == "POST"]
    assert len(creates) <= 2
    if sink_kind == "file":
        assert not [p for p in w.sink.directory.iterdir() if ".tmp" in p.name]  # type: ignore[attr-defined]


def test_invariant_5_no_secret_in_logs_errors_reprs_or_metadata(file_world: World) -> None:
    w = file_world
    deliver_due(w, "app-billing")
    deliver_due(w, "app-crm")
    w.emu.set_variants(propagation_failures=1)  # one verify retry, logged
    report = w.run()
    assert report.exit_code == 0
    secrets = w.emu.issued_secrets()
    assert len(secrets) >= 5
    texts = [w.log_stream.getvalue(), repr(report), repr(w.sink), w.sink.describe()]
    texts += [p.read_text() for p in w.sink.directory.glob("*.meta.json")]  # type: ignore[attr-defined]
    texts += [repr(c) for c in w.clients]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_invariant_6_unselected_and_extra_keys_are_never_touched(world: World) -> None:
    deliver_due(world)
    odata_id, _ = world.add_key("powerbi-feed", days_left=3)  # not selected: expiring anyway
    extra_id, _ = world.add_key("app-billing", days_left=2)  # a person's extra key
    excluded_id, _ = world.add_key("app-legacy", days_left=1)
    world.run(policy=RotationPolicy(key_names=("app-*",), exclude_key_names=("app-legacy",)))
    world.emu.advance(timedelta(days=1))
    world.run(policy=RotationPolicy(key_names=("app-*",), exclude_key_names=("app-legacy",)))
    live = [k["id"] for k in world.live()]
    assert odata_id in live and extra_id in live and excluded_id in live
    assert not any(r["path"].endswith("revoke-all") for r in world.emu.request_log())
    touched = {r["path"] for r in world.emu.request_log() if r["method"] == "DELETE"}
    assert all(odata_id not in p and extra_id not in p and excluded_id not in p for p in touched)


def test_invariant_7_one_failure_does_not_stop_the_others(world: World) -> None:
    assert isinstance(world.sink, MemorySink)
    deliver_due(world, "app-billing")
    deliver_due(world, "app-crm")
    world.sink.name_problems["app-billing"] = "collides with another credential"
    report = world.run()
    assert report.exit_code == 1
    outcomes = report.workspaces[0].outcomes
    assert outcomes["app-billing"] is Outcome.FAILED
    assert outcomes["app-crm"] is Outcome.ROTATED


def test_invariant_7_breaker_stops_creating_after_repeated_failures(world: World) -> None:
    for name in ("app-a", "app-b", "app-c", "app-d", "app-e"):
        world.add_key(name, days_left=3)
    world.emu.add_fault("POST", "/api/data/api-keys", status=400, times=-1)
    report = world.run(workspace_concurrency=1)
    assert report.exit_code == 1
    assert report.workspaces[0].breaker_tripped
    creates = [r for r in world.emu.request_log() if r["method"] == "POST"]
    assert len(creates) == 3
    assert "breaker.tripped" in [e["event"] for e in world.events()]


def test_invariant_7_a_rotation_the_breaker_skips_keeps_its_key(world: World) -> None:
    # Grace 0 plans a retire right after each rotation: one whose rotation the breaker skipped
    # must leave the key alone, as it is still the one the sink holds.
    held = {}
    for name in ("app-a", "app-b", "app-c", "app-d", "app-e"):
        key_id, secret = world.add_key(name, days_left=3)
        world.deliver(name, key_id, secret)
        held[name] = key_id
    world.emu.add_fault("POST", "/api/data/api-keys", status=400, times=-1)
    report = world.run(workspace_concurrency=1)
    assert report.workspaces[0].breaker_tripped
    skipped = [c for c, r in report.workspaces[0].results.items() if r.skipped == "breaker"]
    assert skipped
    live = {str(k["id"]) for k in world.live()}
    assert set(held.values()) <= live, "a key whose rotation was skipped was retired"


def test_invariant_8_a_held_lock_skips_the_workspace(world: World) -> None:
    old_id, _ = deliver_due(world)
    with world.lock.hold():
        report = world.run()
    assert report.exit_code == 1
    assert report.workspaces[0].locked
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert "pass.locked" in [e["event"] for e in world.events()]


def test_only_a_pass_holding_the_lock_removes_the_file_sinks_temporaries(
    file_world: World,
) -> None:
    # A temporary file in the sink's folder may be another pass's write in flight: a plan, a
    # dry run and a pass that finds the lock held must leave it; only the lock's holder may
    # take it for a killed process's leftover.
    deliver_due(file_world)
    assert isinstance(file_world.sink, FileSink)
    in_flight = file_world.sink.directory / ".app-billing.tmp-0123456789abcdef"
    in_flight.write_text("another pass's write")
    file_world.engine().plan([file_world.workspace()])
    assert file_world.run(dry_run=True).exit_code == 0
    with file_world.lock.hold():
        assert file_world.run().workspaces[0].locked
    assert in_flight.read_text() == "another pass's write"
    assert file_world.run().exit_code == 0
    assert not in_flight.exists()


def test_budget_limits_rotations_most_urgent_first(world: World) -> None:
    world.add_key("app-later", days_left=20)
    world.add_key("app-first", days_left=2)
    report = world.run(max_rotations_per_pass=1)
    assert report.rotations_succeeded == 1
    assert report.workspaces[0].outcomes["app-first"] is Outcome.ROTATED
    assert "budget.exhausted" in [e["event"] for e in world.events()]


def test_unreadable_metadata_blocks_the_credential(world: World) -> None:
    key_id, secret = world.add_key("app-billing", days_left=3)
    world.deliver("app-billing", key_id, secret)
    world.put_record("app-billing", SinkRecord(key_id=key_id, key_name="app-other"))
    report = world.run()
    assert report.exit_code == 1
    assert [k["id"] for k in world.live("app-billing")] == [key_id]
    failed = [e for e in world.events() if e["event"] == "rotation.failed"]
    assert failed[0]["step"] == "reconcile"


def test_unusable_credential_gives_exit_3(world: World) -> None:
    world.admin_secret = "not-a-real-key"
    report = world.run()
    assert report.exit_code == 3


# ------------------------------------------------------------- edges and settling


def _pending(world: World, credential: str, *, delivered: bool) -> tuple[str, str]:
    """Leave ``credential`` as a pass that died between the two phases of delivery would."""
    old_id, _old_secret = deliver_due(world, credential)
    stamp = world.emu.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    new_id, new_secret = world.emu.add_key(world.workspace_id, f"{credential}@{stamp}")
    record = world.record(credential)
    assert record is not None
    world.put_record(credential, record.with_pending(new_id, Secret(new_secret).sha256()))
    if delivered:
        world.put_secret(credential, Secret(new_secret))
    return old_id, new_id


def test_plan_shows_how_pending_deliveries_will_be_settled(world: World) -> None:
    _pending(world, "app-done", delivered=True)
    _old, lost = _pending(world, "app-lost", delivered=False)
    world.put_record("app-bad", SinkRecord(key_id="x", key_name="app-other"))
    world.add_key("app-bad", days_left=100)
    actions = {(a.credential, a.action): a for a in world.engine().plan([world.workspace()]).rows}
    assert ("app-done", Action.FINISH_DELIVERY) in actions
    assert actions[("app-lost", Action.REVOKE_ORPHAN)].key_id == lost
    assert ("app-bad", Action.BLOCKED) in actions


def test_pending_delivery_is_finished_and_old_key_retired(world: World) -> None:
    old_id, new_id = _pending(world, "app-billing", delivered=True)
    before = world.record("app-billing")
    old_sha256 = before.secret_sha256 if before else None
    report = world.run()
    assert report.exit_code == 0
    assert [k["id"] for k in world.live("app-billing")] == [new_id]
    record = world.record("app-billing")
    assert record is not None and record.key_id == new_id and record.previous_key_id == old_id
    assert old_sha256 is not None and record.previous_secret_sha256 == old_sha256


def test_pending_key_never_delivered_is_revoked_and_rotation_redone(world: World) -> None:
    old_id, lost_id = _pending(world, "app-billing", delivered=False)
    report = world.run()
    assert report.exit_code == 0
    live = [k["id"] for k in world.live("app-billing")]
    assert lost_id not in live and old_id not in live and len(live) == 1
    assert world.works(world.held_secret("app-billing"))


def test_workspace_id_mismatch_is_refused(world: World) -> None:
    deliver_due(world)
    workspace = world.workspace()
    workspace.expected_workspace_id = "00000000-0000-0000-0000-000000000000"
    report = world.engine().run_pass([workspace])
    assert report.exit_code == 3
    assert not [r for r in world.emu.request_log() if r["method"] == "POST"]


def test_failed_pending_record_rolls_back(world: World) -> None:
    assert isinstance(world.sink, MemorySink)
    old_id, old_secret = deliver_due(world)
    world.sink.fail_next["write_record"] = SinkUnavailableError("timed out")
    report = world.run()
    assert report.exit_code == 1
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert world.held_secret("app-billing") == Secret(old_secret)


def test_failed_current_record_keeps_both_keys_until_next_pass(world: World) -> None:
    sink = world.sink
    assert isinstance(sink, MemorySink)
    old_id, _ = deliver_due(world)

    def fail_the_current_record_write(step: str, _credential: str) -> None:
        if step == "secret-written":
            sink.fail_next["write_record"] = SinkError("disk full")

    report = world.run(checkpoint=fail_the_current_record_write)
    assert report.exit_code == 1
    assert old_id in [k["id"] for k in world.live("app-billing")]  # never revoked
    assert world.works(world.held_secret("app-billing"))
    assert world.run().exit_code == 0  # the pending record lets this pass finish
    assert len(world.live("app-billing")) == 1


def test_stop_request_ends_the_pass_between_credentials(world: World) -> None:
    deliver_due(world, "app-a")
    deliver_due(world, "app-b")
    stop = threading.Event()

    def stop_after_first(step: str, _credential: str) -> None:
        if step == "delivered":
            stop.set()  # what serve does on SIGTERM

    engine = Runner(
        world.config(workspace_concurrency=1),
        clock=world.emu.now,
        sleep=lambda _s: None,
        checkpoint=stop_after_first,
        stop_requested=stop,
    )
    report = engine.run_pass([world.workspace()])
    assert report.stopped_early
    assert report.exit_code == 1
    assert report.rotations_succeeded == 1
    assert not world.record("app-a").has_pending  # type: ignore[union-attr]


def test_retire_that_fails_is_reported_and_retried(world: World) -> None:
    old_id, _ = deliver_due(world)
    world.emu.add_fault("DELETE", f"/api/data/api-keys/{old_id}/revoke", status=500, times=-1)
    report = world.run()
    assert report.exit_code == 1
    failed = [e for e in world.events() if e["event"] == "rotation.failed"]
    assert failed[0]["step"] == "retire"
    assert world.works(world.held_secret("app-billing"))
    world.emu.clear_faults()
    assert world.run().exit_code == 0
    assert old_id not in [k["id"] for k in world.live()]


def test_revoke_that_leaves_the_key_listed_is_a_failure(world: World) -> None:
    old_id, _ = deliver_due(world)
    world.emu.add_fault("DELETE", f"/api/data/api-keys/{old_id}/revoke", status=400, times=-1)
    report = world.run()
    assert report.exit_code == 1
    assert old_id in [k["id"] for k in world.live()]
    failed = [e for e in world.events() if e["event"] == "rotation.failed"]
    assert "still listed" in str(failed[0]["error"])


def test_due_key_waits_while_its_previous_is_in_grace(world: World) -> None:
    prev_id, _ = world.add_key("app-billing", days_left=3)
    cur_id, cur_secret = world.add_key("app-billing@2026-01-01T00:00:00Z", days_left=4)
    world.deliver("app-billing", cur_id, cur_secret)
    world.set_previous("app-billing", prev_id, world.emu.now() + timedelta(hours=5))
    report = world.run()
    assert report.exit_code == 0
    assert not [r for r in world.emu.request_log() if r["method"] == "POST"]
    assert "rotation.deferred" in [e["event"] for e in world.events()]


def test_failed_rollback_is_logged_and_left_for_the_orphan_rule(world: World) -> None:
    _old_id, _ = deliver_due(world)
    world.emu.set_variants(propagation_failures=100)
    world.emu.add_fault("DELETE", "*", status=500, times=-1)
    report = world.run()
    assert report.exit_code == 1
    assert "rotation.rollback_failed" in [e["event"] for e in world.events()]
    world.emu.clear_faults()
    world.emu.advance(timedelta(minutes=11))
    world.emu.set_variants(propagation_failures=0)
    world.run()
    assert len(world.live("app-billing")) == 1


def test_an_expired_previous_key_the_api_will_not_revoke_counts_as_retired(world: World) -> None:
    old_id, old_secret = world.add_key("app-billing", days_left=0.5)
    world.deliver("app-billing", old_id, old_secret)
    world.emu.add_fault("DELETE", f"/api/data/api-keys/{old_id}/revoke", status=400, times=-1)
    assert world.run(grace=timedelta(days=1)).exit_code == 0
    world.emu.advance(timedelta(days=2))  # the old key expired; the API still lists it
    assert old_id in [k["id"] for k in world.live("app-billing")]
    report = world.run(grace=timedelta(days=1))
    assert report.exit_code == 0
    assert world.works(world.held_secret("app-billing"))
