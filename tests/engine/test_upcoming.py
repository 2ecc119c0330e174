"""rotator.upcoming dates the next action of each key; plan decides what a pass does now.

Pure values in. The main property: for every key and scenario, the action ``upcoming`` names
is absent from the plan a second before its time and present in the plan a second after it
(and at once when its time is in the past), so ``status`` never promises what a pass will not do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from rotator.models import ApiKey, Role
from rotator.plan import PlanConfig, plan_credential
from rotator.reconcile import CredentialView, Facts, ReconcileConfig, reconcile
from rotator.sinks.base import SinkState
from rotator.upcoming import NextAction, next_action
from tests.engine.test_plan import (
    GRACE,
    GRACE_OVER,
    HELD,
    IN_GRACE,
    ME,
    NEW,
    NOW,
    OLD,
    PENDING,
    POLICY,
    SECRET_NEW,
    SECRET_OLD,
    STRAY,
    YOUNG,
    state,
)

CONFIG = ReconcileConfig(POLICY, orphan_min_age=timedelta(minutes=10))
#: The held key, far from due.
FRESH = replace(OLD, expires=NOW + timedelta(days=300))


def view_at(keys: list[ApiKey], held: SinkState, now: datetime) -> CredentialView:
    facts = Facts({k.id: k for k in keys}, ME, now, CONFIG)
    return reconcile("app-billing", keys, held, facts)


def upcoming(keys: list[ApiKey], held: SinkState) -> dict[str, NextAction]:
    view = view_at(keys, held, NOW)
    roles = view.roles()
    return {
        k.id: next_action(view, k, roles.get(k.id, Role.UNKNOWN), now=NOW, config=CONFIG)
        for k in keys
    }


def planned(keys: list[ApiKey], held: SinkState, now: datetime) -> set[tuple[str, str | None]]:
    actions = plan_credential("acme", view_at(keys, held, now), now, PlanConfig(POLICY, GRACE))
    return {(str(a.action), a.key_id) for a in actions if a.deferred is None}


SCENARIOS = [
    ("due now", [OLD], state(HELD, SECRET_OLD)),
    ("due in 100 days", [replace(OLD, expires=NOW + timedelta(days=130))], state(HELD, SECRET_OLD)),
    ("in grace", [OLD, NEW], state(IN_GRACE, SECRET_NEW)),
    ("grace over", [OLD, NEW], state(GRACE_OVER, SECRET_NEW)),
    ("pending delivered", [OLD, NEW], state(PENDING, SECRET_NEW)),
    ("pending not delivered", [OLD, NEW], state(PENDING, SECRET_OLD)),
    ("an old orphan", [OLD, STRAY], state(HELD, SECRET_OLD)),
    ("a young orphan", [FRESH, YOUNG], state(HELD, SECRET_OLD)),
    (
        "due while the previous key is in its grace period",
        [OLD, replace(NEW, expires=NOW + timedelta(days=10))],
        state(IN_GRACE, SECRET_NEW),
    ),
]


@pytest.mark.parametrize(
    ("keys", "held"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_what_upcoming_dates_is_what_plan_then_does(keys: list[ApiKey], held: SinkState) -> None:
    for key_id, nxt in upcoming(keys, held).items():
        if nxt.action in ("none", "blocked"):
            continue
        assert nxt.at is not None
        # finish-delivery names the pending key, whichever row of the credential shows it.
        entry = (nxt.action, "k-new" if nxt.action == "finish-delivery" else key_id)
        second = timedelta(seconds=1)
        if nxt.at <= NOW:
            assert entry in planned(keys, held, NOW), (key_id, nxt)
        else:
            assert entry not in planned(keys, held, nxt.at - second), (key_id, nxt)
            assert entry in planned(keys, held, nxt.at + second), (key_id, nxt)


def test_the_rows_of_a_rotation_in_its_grace_period() -> None:
    shown = upcoming([OLD, NEW], state(IN_GRACE, SECRET_NEW))
    assert shown["k-old"] == NextAction("retire", NOW + timedelta(hours=1))
    # The new key is due 30 days before it expires, long after the old one is retired.
    assert shown["k-new"] == NextAction("rotate", NEW.expires - timedelta(days=30))


def test_an_orphan_is_revoked_once_old_enough_by_the_time_in_its_name() -> None:
    shown = upcoming([FRESH, YOUNG], state(HELD, SECRET_OLD))
    made = datetime.fromisoformat("2026-12-01T02:59:00+00:00")
    assert shown["k-young"] == NextAction("revoke-orphan", made + timedelta(minutes=10))


def test_keys_nothing_is_done_to_and_untrusted_metadata() -> None:
    people = replace(OLD, id="k-person", name="app-billing")
    no_record = upcoming([people, STRAY], state(None, None))
    assert no_record["k-person"].action == "rotate"  # current: the newest person-made key
    assert no_record["k-stray"] == NextAction("none", None)  # unknown: never acted on
    assert next_action(None, OLD, Role.UNMANAGED, now=NOW, config=CONFIG) == NextAction(
        "none", None
    )
    blocked = CredentialView("app-billing", None, blocked="the sink could not be read")
    assert next_action(blocked, OLD, Role.UNKNOWN, now=NOW, config=CONFIG) == NextAction(
        "blocked", NOW
    )


def test_a_missing_credential_rotates_now_and_its_previous_key_waits() -> None:
    view = view_at([OLD], state(IN_GRACE, SECRET_NEW), NOW)  # the current key is gone
    assert view.is_missing
    assert next_action(view, None, Role.MISSING, now=NOW, config=CONFIG) == NextAction(
        "rotate", NOW
    )
    # Never retired while no current key exists.
    assert next_action(view, OLD, Role.PREVIOUS, now=NOW, config=CONFIG) == NextAction("none", None)
