"""Table-driven tests of reconcile and plan: no server, no sink, no clock; pure values in,
the ordered actions of a pass out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rotator.errors import SinkMetadataError
from rotator.models import ApiKey, Secret, SinkRecord
from rotator.plan import Action, PlanConfig, PlannedAction, allocate, plan_workspace
from rotator.policy import RotationPolicy
from rotator.reconcile import Facts, ReconcileConfig, credentials_of, reconcile, sort_keys
from rotator.sinks.base import SinkState

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
ME = "user-rotator"
PERSON = "user-person"
POLICY = RotationPolicy(key_names=("app-*",), rotate_before_days=30)
SECRET_OLD, SECRET_NEW = Secret("old-secret-value"), Secret("new-secret-value")
GRACE = timedelta(hours=24)


def key(key_id: str, name: str, days_left: float, by: str = ME) -> ApiKey:
    return ApiKey(key_id, name, NOW + timedelta(days=days_left), created_by=by)


OLD = key("k-old", "app-billing", 5, by=PERSON)
NEW = key("k-new", "app-billing@2026-12-01T02:50:00Z", 730)
YOUNG = key("k-young", "app-billing@2026-12-01T02:59:00Z", 730)
STRAY = key("k-stray", "app-billing@2026-01-01T00:00:00Z", 400)
FAKE = key("k-fake", "app-billing@2026-06-01T00:00:00Z", 500, by=PERSON)
OTHER = key("k-other", "app-crm", 300, by=PERSON)
HELD = SinkRecord(key_id="k-old", key_name="app-billing", secret_sha256=SECRET_OLD.sha256())


def state(record: SinkRecord | None, secret: Secret | None) -> SinkState:
    return SinkState(record, None if secret is None else secret.sha256(), "v1")


def planned(keys: list[ApiKey], held: SinkState, *, forced: bool = False,
            grace: timedelta = GRACE) -> list[PlannedAction]:  # fmt: skip
    facts = Facts({k.id: k for k in keys}, ME, NOW, ReconcileConfig(POLICY))
    own = [k for k in keys if k.base_name == "app-billing"]
    view = reconcile("app-billing", own, held, facts)
    return plan_workspace(
        "acme", [view], NOW, PlanConfig(POLICY, grace), forced={"app-billing"} if forced else None
    )


def plan(keys: list[ApiKey], held: SinkState, *, forced: bool = False,
         grace: timedelta = GRACE) -> list[tuple[str, str, str | None]]:  # fmt: skip
    """What a pass does: the planned actions that are not deferred."""
    actions = planned(keys, held, forced=forced, grace=grace)
    return [(str(a.action), a.reason, a.key_id) for a in actions if a.deferred is None]


def deferred(keys: list[ApiKey], held: SinkState) -> list[tuple[str, str | None, str | None]]:
    """What waits, and why."""
    return [(str(a.action), a.deferred, a.key_id) for a in planned(keys, held) if a.deferred]


PENDING = replace(HELD, pending_key_id="k-new", pending_secret_sha256=SECRET_NEW.sha256())
IN_GRACE = replace(
    HELD,
    key_id="k-new",
    key_name=NEW.name,
    secret_sha256=SECRET_NEW.sha256(),
    previous_key_id="k-old",
    retire_previous_after=NOW + timedelta(hours=1),
)
GRACE_OVER = replace(IN_GRACE, retire_previous_after=NOW - timedelta(seconds=1))

CASES = [
    # (id, keys, what the sink holds, expected actions)
    ("due", [OLD], state(HELD, SECRET_OLD), [("rotate", "expiring", "k-old")]),
    ("not-due", [replace(OLD, expires=NOW + timedelta(days=300))], state(HELD, SECRET_OLD), []),
    (
        "boundary: exactly 30 days left is not due",
        [replace(OLD, expires=NOW + timedelta(days=30))],
        state(HELD, SECRET_OLD),
        [],
    ),
    (
        "boundary: a second under 30 days is due",
        [replace(OLD, expires=NOW + timedelta(days=30) - timedelta(seconds=1))],
        state(HELD, SECRET_OLD),
        [("rotate", "expiring", "k-old")],
    ),
    (
        "pending delivered: finished, old key now in its grace, nothing rotates",
        [OLD, NEW],
        state(PENDING, SECRET_NEW),
        [("finish-delivery", "pending-delivered", "k-new")],
    ),
    (
        "pending delivered with grace 0 is finished then retired",
        [OLD, NEW],
        state(PENDING, SECRET_NEW),
        "grace0",
    ),
    (
        "pending not delivered: revoked, the due key rotates",
        [OLD, NEW],
        state(PENDING, SECRET_OLD),
        [("revoke-orphan", "pending-not-delivered", "k-new"), ("rotate", "expiring", "k-old")],
    ),
    ("in grace: nothing", [OLD, NEW], state(IN_GRACE, SECRET_NEW), []),
    (
        "grace over: retire",
        [OLD, NEW],
        state(GRACE_OVER, SECRET_NEW),
        [("retire", "grace-over", "k-old")],
    ),
    (
        "current revoked out of band during grace: rotate now, never retire the previous",
        [OLD],
        state(IN_GRACE, SECRET_NEW),
        [("rotate", "missing", "k-new")],
    ),
    (
        "current revoked and grace over: still no retire of the only working key",
        [OLD],
        state(GRACE_OVER, SECRET_NEW),
        [("rotate", "missing", "k-new")],
    ),
    (
        "every key gone: missing",
        [],
        state(HELD, SECRET_OLD),
        [("rotate", "missing", "k-old")],
    ),
    (
        "old orphan revoked, young one kept, a person's look-alike never",
        [OLD, STRAY, YOUNG, FAKE],
        state(HELD, SECRET_OLD),
        [("revoke-orphan", "orphan", "k-stray"), ("rotate", "expiring", "k-old")],
    ),
    (
        "no metadata: rotator-made keys are unknown, never orphans",
        [OLD, STRAY],
        state(None, SECRET_OLD),
        [("rotate", "expiring", "k-old")],
    ),
    ("empty record {} blocks", [OLD], state(SinkRecord(), SECRET_OLD), "blocked"),
    (
        "key_id null blocks",
        [OLD, STRAY],
        state(replace(HELD, key_id=None), SECRET_OLD),
        "blocked",
    ),
    (
        "previous equal to current blocks",
        [OLD],
        state(replace(HELD, previous_key_id="k-old"), SECRET_OLD),
        "blocked",
    ),
    (
        "pending equal to current with another hash blocks",
        [OLD],
        state(replace(HELD, pending_key_id="k-old", pending_secret_sha256="0" * 64), SECRET_OLD),
        "blocked",
    ),
    (
        "key_id naming another credential's key blocks",
        [OLD, OTHER],
        state(replace(HELD, key_id="k-other"), SECRET_OLD),
        "blocked",
    ),
    (
        "stored secret not the one the metadata names blocks",
        [OLD],
        state(HELD, Secret("edited-by-hand")),
        "blocked",
    ),
    (
        "metadata names a key but the sink holds no secret: blocked",
        [OLD],
        state(HELD, None),
        "blocked",
    ),
]


@pytest.mark.parametrize(
    ("keys", "held", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan(keys: list[ApiKey], held: SinkState, expected: object) -> None:
    if expected == "blocked":
        actions = plan(keys, held)
        assert [a[0] for a in actions] == ["blocked"]
    elif expected == "grace0":
        assert plan(keys, held, grace=timedelta(0)) == [
            ("finish-delivery", "pending-delivered", "k-new"),
            ("retire", "grace-over", "k-old"),
        ]
    else:
        assert plan(keys, held) == expected


def test_what_waits_is_planned_with_why() -> None:
    # "Why was this key not revoked yet?": its grace period, until when.
    (retire,) = [a for a in planned([OLD, NEW], state(IN_GRACE, SECRET_NEW)) if a.deferred]
    assert (retire.action, retire.deferred, retire.key_id) == (Action.RETIRE, "grace", "k-old")
    assert retire.not_before == NOW + timedelta(hours=1)
    # The current key is gone: the previous one may be the only key that works.
    assert deferred([OLD], state(GRACE_OVER, SECRET_NEW)) == [
        ("retire", "current-missing", "k-old")
    ]
    # A due key waits for the previous one's grace period.
    due_new = key("k-new", NEW.name, 5)
    assert deferred([OLD, due_new], state(IN_GRACE, SECRET_NEW)) == [
        ("retire", "grace", "k-old"),
        ("rotate", "previous-in-grace", "k-new"),
    ]


def test_grace_zero_plans_the_retire_right_after_its_rotation() -> None:
    assert plan([OLD], state(HELD, SECRET_OLD), grace=timedelta(0)) == [
        ("rotate", "expiring", "k-old"),
        ("retire", "grace-0", "k-old"),
    ]


def test_unreadable_sink_blocks() -> None:
    facts = Facts({}, ME, NOW, ReconcileConfig(POLICY))
    view = reconcile("app-billing", [OLD], SinkMetadataError("bad json"), facts)
    actions = plan_workspace("acme", [view], NOW, PlanConfig(POLICY))
    assert [a.action for a in actions] == [Action.BLOCKED]


def test_forced_retires_the_previous_in_grace_then_rotates() -> None:
    assert plan([OLD, NEW], state(IN_GRACE, SECRET_NEW), forced=True) == [
        ("retire", "forced", "k-old"),
        ("rotate", "forced", "k-new"),
    ]


def test_rotations_come_last_most_urgent_first() -> None:
    keys = [key("a", "app-a", 20, by=PERSON), key("b", "app-b", 2, by=PERSON)]
    keys.append(key("c", "app-c@2026-01-01T00:00:00Z", 100))
    facts = Facts({k.id: k for k in keys}, ME, NOW, ReconcileConfig(POLICY))
    views = [
        reconcile(k.base_name, [k], state(SinkRecord(key_id=k.id, key_name=k.name), None), facts)
        for k in keys[:2]
    ]
    views.append(
        reconcile("app-c", [], state(SinkRecord(key_id="gone", key_name="app-c"), None), facts)
    )
    actions = plan_workspace("acme", views, NOW, PlanConfig(POLICY))
    assert [(a.credential, a.reason) for a in actions] == [
        ("app-c", "missing"),
        ("app-b", "expiring"),
        ("app-a", "expiring"),
    ]


def held_by(key_id: str, name: str) -> SinkRecord:
    return SinkRecord(key_id=key_id, key_name=name)


def test_a_missing_key_comes_first_under_the_budget_even_before_an_expired_one() -> None:
    # A credential with no key at all has no working key anywhere: it outranks a key that
    # expired three days ago (whose days left, -3, are fewer than missing's 0).
    expired = key("x", "app-expired", -3, by=PERSON)
    facts = Facts({expired.id: expired}, ME, NOW, ReconcileConfig(POLICY))
    views = [
        reconcile("app-expired", [expired], state(held_by("x", "app-expired"), None), facts),
        reconcile("app-gone", [], state(held_by("gone", "app-gone"), None), facts),
    ]
    actions = plan_workspace("acme", views, NOW, PlanConfig(POLICY))
    assert [(a.credential, a.reason) for a in actions] == [
        ("app-gone", "missing"),
        ("app-expired", "expiring"),
    ]
    # Over workspaces too: the budget of one goes to the missing key, whatever the names.
    ranked = allocate([replace(actions[1], workspace="a"), replace(actions[0], workspace="b")], 1)
    assert [(a.credential, a.deferred) for a in ranked] == [
        ("app-expired", "budget"),
        ("app-gone", None),
    ]


def test_credentials_the_sink_remembers_join_the_pass() -> None:
    grouped = sort_keys([OTHER], POLICY)
    assert credentials_of(grouped, ["app-billing", "unmanaged-x"], POLICY) == [
        "app-billing",
        "app-crm",
    ]


def test_names_with_control_characters_are_refused_and_markers_round_trip() -> None:
    newline = key("k-nl", "app-sync\n", 5, by=PERSON)
    spaced = key("k-sp", "app-sync é x@2026-01-01T00:00:00Z", 5)
    grouped = sort_keys([newline, spaced], POLICY)
    assert [r.key_id for r in grouped.refused] == ["k-nl"]
    assert list(grouped.by_credential) == ["app-sync é x"]
