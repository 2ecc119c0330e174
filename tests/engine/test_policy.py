"""The policy with a validity other than two years and a max age: a key's age comes from
ROTATOR_VALIDITY_DAYS (never a hard-coded 730), and the due time shown by status and metrics is
the *earlier* of the two limits' dates, the first instant ``decide`` says due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.app import build_runner, open_workspaces, pass_config, policy_of, run_pass_with_metrics
from rotator.emulator import Emulator
from rotator.metrics import Metrics
from rotator.models import ApiKey, Reason
from rotator.policy import RotationPolicy, age_days, decide, rotation_due_at
from rotator.runner import Runner
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


def test_a_deployment_with_one_year_keys_and_a_max_age(tmp_path: Path) -> None:
    # Settings to status, plan, metrics and a pass: every reader of a key's age and due time
    # uses ROTATOR_VALIDITY_DAYS=365 and the earlier of the two limits.
    with Emulator() as emu:
        ws = emu.add_workspace("Acme")
        _id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        young_id, _ = emu.add_key(ws, "app-young", expires=emu.now() + timedelta(days=300))
        old_id, _ = emu.add_key(ws, "app-old", expires=emu.now() + timedelta(days=270))
        settings = load_settings(
            {
                "ROTATOR_API_URL": emu.url,
                "ROTATOR_API_KEY": admin,
                "ROTATOR_KEY_NAMES": "app-*",
                "ROTATOR_VALIDITY_DAYS": "365",
                "ROTATOR_MAX_AGE_DAYS": "90",
                "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
                "ROTATOR_GRACE_HOURS": "0",
            }
        )
        runner = Runner(pass_config(settings, dry_run=True), clock=emu.now)
        with open_workspaces(settings) as workspaces:
            rows = {s.key_id: s for s in runner.inventory(workspaces).rows}
        young, old = rows[young_id], rows[old_id]
        assert young.age_days == pytest.approx(65) and old.age_days == pytest.approx(95)
        assert (young.due, old.due, old.reason) == (False, True, "max-age")
        # Due once 90 days old: 275 days before its expiry (not 30, the expiry window's).
        assert young.next_action_at == emu.now() + timedelta(days=300 - 275)
        metrics = Metrics()
        report = run_pass_with_metrics(settings, build_runner(settings), metrics)
        assert report.exit_code == 0
        assert [s.credential for s in report.steps if s.event == "rotation.created"] == ["app-old"]
        due = {
            sample.labels["key_id"]: sample.value
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for sample in family.samples
            if sample.name == "rotator_managed_key_rotation_due_timestamp_seconds"
        }
        assert due[young_id] == (emu.now() + timedelta(days=25)).timestamp()
