"""The rotation history: the pure reconcile's rules, then the whole thing through the CLI
against the emulator (a rotation, then its retirement; ``rotate --now``), and a pass killed at
every checkpoint of a rotation followed by a recovery pass: the history agrees with the
emulator's key list and the sink, and holds no secret."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.app import Hooks, rotate_now
from rotator.cli import main
from rotator.emulator import Emulator
from rotator.history import (
    DELIVERED,
    FAILED,
    RETIRED,
    ROLLED_BACK,
    STARTED,
    HistoryEntry,
    JobEvents,
    entries_from_documents,
    intent,
    newest_first,
    reconcile_history,
)
from rotator.models import Secret, SinkRecord, rotator_created_at
from rotator.settings import load_settings
from rotator.sinks.base import HISTORY_MAX_ENTRIES
from rotator.sinks.file import FileSink
from tests.cli_support import Seeded, run_cli, seed
from tests.conftest import Crash, crash_at

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
WS, CRED = "acme", "app-billing"
NEW = "k-new"
NEW_NAME = "app-billing@2026-11-27T03:00:00Z"


def _delivered_record(previous: str | None = "k-old") -> SinkRecord:
    return SinkRecord(
        key_id=NEW,
        key_name=NEW_NAME,
        delivered_at=T0 + timedelta(seconds=2),
        secret_sha256="0" * 64,
        previous_key_id=previous,
    )


def _reconcile(
    entries: list[HistoryEntry],
    record: SinkRecord | None,
    live: set[str],
    now: datetime = T0,
    job: JobEvents | None = None,
) -> list[HistoryEntry]:
    return reconcile_history(
        entries, workspace=WS, credential=CRED, record=record, live_key_ids=live, now=now, job=job
    )


def _intent(trigger: str = "schedule", reason: str = "expiring") -> HistoryEntry:
    return intent(
        workspace=WS, credential=CRED, old_key_id="k-old", trigger=trigger, reason=reason, now=T0
    )


# --------------------------------------------------------------------------- the pure rules


def test_a_rotation_is_delivered_then_retired_when_its_old_key_is_gone() -> None:
    started = _intent(trigger="forced", reason="forced")
    job = JobEvents(
        trigger="forced",
        reason="forced",
        intent_id=started.id,
        old_key_id="k-old",
        created=(NEW,),
        attempted=True,
    )
    [entry] = _reconcile([started], _delivered_record(), {"k-old", NEW}, job=job)
    assert (entry.old_key_id, entry.new_key_id, entry.outcome) == ("k-old", NEW, DELIVERED)
    assert (entry.trigger, entry.reason) == ("forced", "forced")
    assert entry.delivered_at == T0 + timedelta(seconds=2)
    assert entry.retired_at is None

    later = T0 + timedelta(days=1)
    [again] = _reconcile([entry], _delivered_record(), {"k-old", NEW}, now=later)
    assert again == entry, "the old key still works: nothing changes"
    [retired] = _reconcile([entry], _delivered_record(), {NEW}, now=later)
    assert (retired.outcome, retired.retired_at) == (RETIRED, later)
    assert _reconcile([retired], _delivered_record(), {NEW}, now=later + timedelta(1)) == [retired]


def test_an_old_key_the_sink_holds_again_is_not_retired() -> None:
    """A person put the replaced key back into the sink (a restored backup): while the sink
    holds it, the rotation that replaced it is not retired, even once no key of that id is
    listed."""
    [entry] = _reconcile([], _delivered_record(), {"k-old", NEW})
    restored = SinkRecord(
        key_id="k-old",
        key_name=CRED,
        delivered_at=T0 + timedelta(hours=1),
        secret_sha256="1" * 64,
    )
    later = T0 + timedelta(days=1)
    after = _reconcile([entry], restored, set(), now=later)
    assert [(e.new_key_id, e.outcome, e.retired_at) for e in after] == [(NEW, DELIVERED, None)]


def test_a_delivery_a_killed_pass_never_recorded_is_rebuilt_with_its_intents_trigger() -> None:
    killed = _intent(trigger="leak", reason="forced")
    # The recovery pass is a scheduled one with an intent of its own that it did not use.
    own = _intent()
    job = JobEvents(trigger="schedule", intent_id=own.id, old_key_id=NEW)
    [entry] = _reconcile([killed, own], _delivered_record(), {"k-old", NEW}, job=job)
    assert (entry.new_key_id, entry.old_key_id, entry.outcome) == (NEW, "k-old", DELIVERED)
    assert (entry.trigger, entry.reason) == ("leak", "forced")
    assert entry.created_at == rotator_created_at(NEW_NAME)


def test_a_rebuilt_entry_takes_the_intent_written_just_before_its_key_was_made() -> None:
    # A forced pass died before its create made anything; a scheduled one an hour later died
    # after delivering: the delivered key was the scheduled pass's.
    never_made = _intent(trigger="forced", reason="forced")
    scheduled = replace(_intent(), id="later", created_at=T0 + timedelta(hours=1))
    record = replace(_delivered_record(), key_name="app-billing@2026-11-27T04:00:00Z")
    entries = _reconcile([never_made, scheduled], record, {"k-old", NEW})
    assert [(e.outcome, e.trigger) for e in entries] == [
        (STARTED, "forced"),
        (DELIVERED, "schedule"),
    ]


def test_without_an_intent_a_rebuilt_entry_is_a_scheduled_one() -> None:
    [entry] = _reconcile([], _delivered_record(), {"k-old", NEW})
    assert (entry.trigger, entry.reason, entry.outcome) == ("schedule", None, DELIVERED)


def test_a_person_made_key_in_the_record_is_no_rotation() -> None:
    record = SinkRecord(key_id="k-person", key_name=CRED, delivered_at=T0)
    assert _reconcile([], record, {"k-person"}) == []


def test_a_key_revoked_as_never_delivered_is_rolled_back() -> None:
    started = _intent()
    job = JobEvents(
        intent_id=started.id,
        old_key_id="k-old",
        created=(NEW,),
        never_delivered=(NEW,),
        attempted=True,
        failed_step="verify",
        error="me: the new key was refused (HTTP 401)",
    )
    record = SinkRecord(key_id="k-old", key_name=CRED, secret_sha256="1" * 64)
    [entry] = _reconcile([started], record, {"k-old"}, job=job)
    assert (entry.new_key_id, entry.outcome, entry.step) == (NEW, ROLLED_BACK, "verify")
    assert entry.delivered_at is None and entry.retired_at is None


def test_an_orphan_of_a_killed_pass_takes_the_killed_pass_intent() -> None:
    killed = _intent(trigger="api", reason="forced")
    job = JobEvents(never_delivered=("k-orphan",), old_key_id="k-old")
    record = SinkRecord(key_id="k-old", key_name=CRED)
    [entry] = _reconcile([killed], record, {"k-old"}, job=job)
    assert (entry.new_key_id, entry.trigger, entry.outcome) == ("k-orphan", "api", ROLLED_BACK)


def test_a_key_whose_delivery_is_unknown_stays_failed_until_a_pass_settles_it() -> None:
    started = _intent()
    job = JobEvents(
        intent_id=started.id,
        old_key_id="k-old",
        created=(NEW,),
        attempted=True,
        failed_step="deliver",
        error="read-back failed",
    )
    pending = SinkRecord(key_id="k-old", key_name=CRED).with_pending(NEW, "2" * 64)
    [entry] = _reconcile([started], pending, {"k-old", NEW}, job=job)
    assert (entry.outcome, entry.step) == (FAILED, "deliver")
    [settled] = _reconcile([entry], _delivered_record(), {"k-old", NEW})
    assert (settled.outcome, settled.step, settled.error) == (DELIVERED, None, None)


def test_a_create_that_failed_outright_is_a_failed_entry_without_a_key() -> None:
    started = _intent()
    job = JobEvents(intent_id=started.id, attempted=True, failed_step="create", error="HTTP 500")
    [entry] = _reconcile([started], None, {"k-old"}, job=job)
    assert (entry.new_key_id, entry.outcome, entry.step, entry.id) == (None, FAILED, "create", None)


def test_an_intent_of_a_job_that_created_nothing_is_dropped() -> None:
    started = _intent()
    job = JobEvents(intent_id=started.id, attempted=False)
    assert _reconcile([started], None, {"k-old"}, job=job) == []


def test_the_history_is_bounded_and_shown_newest_first() -> None:
    entries = [
        HistoryEntry(WS, CRED, f"k{i}", f"k{i + 1}", "schedule", "expiring",
                     created_at=T0 + timedelta(days=i), delivered_at=T0, outcome=DELIVERED)
        for i in range(HISTORY_MAX_ENTRIES + 5)
    ]  # fmt: skip
    kept = _reconcile(entries, None, {f"k{i}" for i in range(80)})
    assert len(kept) == HISTORY_MAX_ENTRIES
    assert kept[0].new_key_id == "k6"
    shown = newest_first([*kept, _intent()])
    assert shown[0].new_key_id == f"k{HISTORY_MAX_ENTRIES + 5}"
    assert all(e.outcome != STARTED for e in shown)


def test_entries_round_trip_and_another_credentials_are_refused() -> None:
    entry = _reconcile([], _delivered_record(), {"k-old", NEW})[0]
    document = entry.to_document()
    assert entries_from_documents([document], workspace=WS, credential=CRED) == [entry]
    with pytest.raises(ValueError, match="another"):
        entries_from_documents([document], workspace=WS, credential="app-crm")
    with pytest.raises(ValueError, match="another"):
        entries_from_documents([document], workspace="globex", credential=CRED)
    with pytest.raises(ValueError, match="created_at"):
        entries_from_documents([{**document, "created_at": None}], workspace=WS, credential=CRED)


# --------------------------------------------------------------------- through the CLI


def _history(result_stdout: str) -> list[dict[str, object]]:
    rows = json.loads(result_stdout)
    assert isinstance(rows, list)
    return rows


def test_rotate_then_retire_through_the_cli(emulator: Emulator, tmp_path: Path) -> None:
    acme: Seeded = seed(emulator)
    old_id, _ = acme.add_key(CRED, days_left=5)
    sink_dir = tmp_path / "secrets"
    # The rotator runs on the real clock: a grace period of 1.8 s.
    env = acme.env(sink_dir, ROTATOR_GRACE_HOURS="0.0005")

    first = run_cli(["run-once"], env, tmp_path)
    assert first.returncode == 0, first.describe()
    shown = run_cli(["history", "-o", "json"], env, tmp_path)
    assert shown.returncode == 0, shown.describe()
    [entry] = _history(shown.stdout)
    new_id = json.loads((sink_dir / f"{CRED}.meta.json").read_text())["key_id"]
    assert entry["workspace"] == "default"
    assert (entry["credential"], entry["old_key_id"], entry["new_key_id"]) == (CRED, old_id, new_id)
    assert (entry["trigger"], entry["reason"], entry["outcome"]) == (
        "schedule",
        "expiring",
        "delivered",
    )
    assert entry["delivered_at"] is not None and entry["retired_at"] is None

    # Once the grace period is over, the next pass retires the old key.
    time.sleep(2.0)
    second = run_cli(["run-once"], env, tmp_path)
    assert second.returncode == 0, second.describe()
    [retired] = _history(run_cli(["history", "--json"], env, tmp_path).stdout)
    assert (retired["outcome"], retired["new_key_id"]) == ("retired", new_id)
    assert retired["retired_at"] is not None
    assert old_id not in {k["id"] for k in acme.live_keys(CRED)}

    # An operator's rotate --now is recorded as forced, newest first, and retired at once.
    forced = run_cli(
        ["rotate", CRED, "--now"], env | {"ROTATOR_EMERGENCY_GRACE_HOURS": "0"}, tmp_path
    )
    assert forced.returncode == 0, forced.describe()
    rows = _history(run_cli(["history", "-o", "json"], env, tmp_path).stdout)
    assert [(r["trigger"], r["outcome"]) for r in rows] == [
        ("forced", "retired"),
        ("schedule", "retired"),
    ]
    assert rows[0]["old_key_id"] == new_id

    table = run_cli(["history"], env, tmp_path)
    assert table.returncode == 0, table.describe()
    assert table.stdout.splitlines()[0].split()[:3] == ["CREDENTIAL", "OUTCOME", "TRIGGER"]
    assert "forced" in table.stdout.splitlines()[1]
    assert (
        run_cli(["history", "--credential", "app-crm*", "--json"], env, tmp_path).stdout.strip()
        == "[]"
    )
    assert len(_history(run_cli(["history", "--since", "1h", "--json"], env, tmp_path).stdout)) == 2
    bad = run_cli(["history", "--since", "last tuesday"], env, tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr
    for secret in acme.emu.issued_secrets():
        assert secret.encode() not in (sink_dir / f"{CRED}.history.json").read_bytes()


# ----------------------------------------------------------------- a kill at each checkpoint

ROTATION_CHECKPOINTS = ("created", "verified", "pending-recorded", "secret-written", "delivered")
#: ... and, with no grace period, the old key's revoke in the same pass.
ROTATION_CHECKPOINTS += ("revoked",)


def _run(args: list[str], env: dict[str, str], emu: Emulator, step: str | None = None) -> int:
    checkpoint = crash_at(step) if step else None
    return main(args, env, hooks=Hooks(clock=emu.now, checkpoint=checkpoint))


def _assert_consistent(acme: Seeded, sink: FileSink) -> list[HistoryEntry]:
    """The history agrees with the emulator's keys and with the sink."""
    entries = entries_from_documents(sink.read_history(CRED), workspace="default", credential=CRED)
    live = {str(k["id"]) for k in acme.live_keys(CRED)}
    made = {
        str(k["id"])
        for k in acme.emu.keys(acme.workspace_id, include_revoked=True)
        if str(k["name"]).startswith(CRED + "@")
    }
    record = sink.read(CRED).record
    assert record is not None and record.key_id is not None
    by_new = {e.new_key_id: e for e in entries}
    assert STARTED not in {e.outcome for e in entries}, "an intent was left unsettled"
    # Every key the rotator created is one entry, and the key the sink holds was delivered.
    assert set(by_new) == made
    current = by_new[record.key_id]
    assert current.outcome in (DELIVERED, RETIRED)
    assert current.delivered_at == record.delivered_at
    for entry in entries:
        if entry.outcome == RETIRED:
            assert entry.old_key_id not in live and entry.retired_at is not None
        elif entry.outcome == DELIVERED:
            assert entry.old_key_id in live and entry.retired_at is None
        elif entry.outcome == ROLLED_BACK:
            assert entry.new_key_id not in live and entry.delivered_at is None
        assert entry.outcome != FAILED, entry
    return entries


@pytest.mark.parametrize("step", ROTATION_CHECKPOINTS)
@pytest.mark.parametrize("command", [["run-once"], ["rotate", CRED, "--now"]])
def test_a_pass_killed_at_a_checkpoint_then_recovered_leaves_a_consistent_history(
    emulator: Emulator, tmp_path: Path, step: str, command: list[str]
) -> None:
    acme: Seeded = seed(emulator)
    old_id, old_secret = acme.add_key(CRED, days_left=5)
    sink_dir = tmp_path / "secrets"
    # The sink holds the old key with its metadata, as an earlier delivery left it: only then can
    # a pass prove a key a killed pass made was never delivered (without metadata it is
    # "unknown" and kept, by design, and so is its intent).
    sink = FileSink(sink_dir)
    version = sink.write_secret(CRED, Secret(old_secret), expected_version=None)
    sink.write_record(
        CRED,
        SinkRecord(key_id=old_id, key_name=CRED, secret_sha256=Secret(old_secret).sha256()),
        expected_version=version,
    )
    env = acme.env(
        sink_dir,
        ROTATOR_GRACE_HOURS="0",
        ROTATOR_ORPHAN_MIN_AGE_MINUTES="0",
        ROTATOR_LOG_LEVEL="warning",
    )
    with pytest.raises(Crash):
        _run(command, env, emulator, step)
    acme.emu.advance(timedelta(seconds=5))
    assert _run(["run-once"], env, emulator) == 0
    entries = _assert_consistent(acme, sink)
    # The interrupted rotation keeps what asked for it, whichever pass settled it.
    first = min(entries, key=lambda e: e.created_at)
    assert first.trigger == ("forced" if command[0] == "rotate" else "schedule")
    assert (first.reason == "forced") == (command[0] == "rotate")
    raw = (sink_dir / f"{CRED}.history.json").read_bytes()
    assert acme.emu.issued_secrets(), "nothing to look for: the test is wrong"
    for secret in [*acme.emu.issued_secrets(), acme.admin_secret]:
        assert secret.encode() not in raw


def test_kills_while_finishing_a_delivery_and_while_retiring_are_settled_too(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme: Seeded = seed(emulator)
    old_id, _ = acme.add_key(CRED, days_left=5)
    sink_dir = tmp_path / "secrets"
    env = acme.env(sink_dir, ROTATOR_GRACE_HOURS="1", ROTATOR_LOG_LEVEL="warning")
    sink = FileSink(sink_dir)
    # Killed with the secret written but its record still pending, then again right after the
    # next pass finished that delivery: the pass after that records it.
    with pytest.raises(Crash):
        _run(["rotate", CRED, "--now", "--grace-hours", "1"], env, emulator, "secret-written")
    with pytest.raises(Crash):
        _run(["run-once"], env, emulator, "finished-delivery")
    assert _run(["run-once"], env, emulator) == 0
    [entry] = _assert_consistent(acme, sink)
    assert (entry.old_key_id, entry.trigger, entry.outcome) == (old_id, "forced", DELIVERED)
    # The grace period is over (the emulator's clock): killed right after the revoke.
    acme.emu.advance(timedelta(hours=2))
    with pytest.raises(Crash):
        _run(["run-once"], env, emulator, "retired")
    assert _run(["run-once"], env, emulator) == 0
    [retired] = _assert_consistent(acme, sink)
    assert (retired.new_key_id, retired.outcome) == (entry.new_key_id, RETIRED)
    assert retired.retired_at is not None and entry.delivered_at is not None
    assert retired.retired_at > entry.delivered_at


@pytest.mark.parametrize("trigger", ["api", "leak"])
def test_serve_s_triggers_are_recorded_as_what_asked(
    emulator: Emulator, tmp_path: Path, trigger: str
) -> None:
    # serve's POST /v1/rotate and /v1/leaks go through rotate_now with their trigger.
    acme: Seeded = seed(emulator)
    acme.add_key(CRED, days_left=400)
    sink_dir = tmp_path / "secrets"
    settings = load_settings(acme.env(sink_dir))
    result = rotate_now(settings, [CRED], trigger=trigger, hooks=Hooks(clock=emulator.now))
    assert result.report.exit_code == 0
    [entry] = entries_from_documents(
        FileSink(sink_dir).read_history(CRED), workspace="default", credential=CRED
    )
    assert (entry.trigger, entry.reason, entry.outcome) == (trigger, "forced", RETIRED)
