"""The policy with a validity other than two years and a max age: a key's age comes from
ROTATOR_VALIDITY_DAYS (never a hard-coded 730), and the due time shown by status and metrics is
the *earlier* of the two limits' dates, the first instant ``decide`` says due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rotator.app import policy_of
from rotator.models import ApiKey, Reason
from rotator.policy import RotationPolicy, age_days, decide, rotation_due_at
from rotator.settings import load_settings

NOW = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
#: One-year keys, rotated 30 days before expiry or once 90 days old.
POLICY = RotationPolicy(
    key_names=("app-*",), validity_days=365, rotate_before_days=30, max_age_days=90
)


def key(days_left: float) -> ApiKey:
    return ApiKey("k1", "app-billing", NOW + timedelta(days=days_left))


def test_age_comes_from_the_configured_validity() -> None:
    assert age_days(key(300), NOW, POLICY) == pytest.approx(65)
    # 65 days old: neither limit reached (with 730 it would be 430 days old, and due).
    assert decide(key(300), NOW, POLICY).due is False
    decision = decide(key(270), NOW, POLICY)
    assert (decision.due, decision.reason) == (True, Reason.MAX_AGE)
    assert decision.age_days == pytest.approx(95)


@pytest.mark.parametrize(
    ("max_age_days", "due_before_expiry_days"),
    [(90, 275), (350, 30), (None, 30)],  # the max age first; the expiry window first; no max age
)
def test_rotation_due_at_is_the_first_instant_decide_says_due(
    max_age_days: int | None, due_before_expiry_days: int
) -> None:
    policy = RotationPolicy(
        key_names=("app-*",), validity_days=365, rotate_before_days=30, max_age_days=max_age_days
    )
    k = ApiKey("k1", "app-billing", NOW + timedelta(days=365))
    due_at = rotation_due_at(k, policy)
    assert due_at == k.expires - timedelta(days=due_before_expiry_days)
    second = timedelta(seconds=1)
    assert decide(k, due_at - second, policy).due is False
    assert decide(k, due_at + second, policy).due is True


def test_settings_reach_the_policy() -> None:
    settings = load_settings(
        {
            "ROTATOR_API_KEY": "k",
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_VALIDITY_DAYS": "365",
            "ROTATOR_MAX_AGE_DAYS": "90",
        }
    )
    policy = policy_of(settings)
    assert (policy.validity_days, policy.max_age_days) == (365, 90)
    assert decide(key(300), NOW, policy).due is False
    assert decide(key(270), NOW, policy).reason is Reason.MAX_AGE
