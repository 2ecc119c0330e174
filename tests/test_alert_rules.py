"""The Prometheus alert rules in config/prometheus: valid, unit-tested, and on real metric names.

``promtool check rules`` and ``promtool test rules`` (Debian's ``prometheus`` package) run the
rule file and its unit tests (rotator-alerts.test.yaml, where each alert has series that fire it
and series that must not). Each alert's threshold is then broken on purpose in a copy, to show
the unit tests notice. Without promtool the tests skip naming the package, except in CI
(CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rotator.metrics import Metrics

RULES_DIR = Path(__file__).resolve().parent.parent / "config" / "prometheus"
RULES = RULES_DIR / "rotator-alerts.yaml"
RULE_TESTS = RULES_DIR / "rotator-alerts.test.yaml"
ALERTS = (
    "RotatorPassFailed",
    "RotatorNoRecentSuccessfulPass",
    "RotatorManagedKeyExpiringSoon",
    "RotatorUnmanagedKeyExpiringSoon",
    "RotatorShardNotReporting",
    "RotatorOwnKeySwitchPending",
)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found: apt-get install --no-install-recommends prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )


def test_the_rule_file_is_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_unit_tests_of_the_rules_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_exactly_the_agreed_alerts_exist_and_each_is_unit_tested() -> None:
    rules = RULES.read_text()
    assert tuple(re.findall(r"^\s*- alert: (\w+)$", rules, re.MULTILINE)) == ALERTS
    tested = re.findall(r"^\s*alertname: (\w+)$", RULE_TESTS.read_text(), re.MULTILINE)
    for alert in ALERTS:
        assert tested.count(alert) >= 2, f"{alert} needs a firing and a not-firing case"


def test_the_rules_use_only_metric_names_the_rotator_exports() -> None:
    exported = {
        sample.name for family in Metrics().registry.collect() for sample in family.samples
    } | {family.name for family in Metrics().registry.collect()}
    used = set(re.findall(r"\brotator_[a-z_]+", RULES.read_text()))
    assert used
    assert used <= exported, f"not exported by rotator.metrics: {sorted(used - exported)}"


#: A change to each alert's threshold that its unit tests must catch.
BREAKAGES = {
    "RotatorPassFailed": ("rotator_last_pass_success == 0", "rotator_last_pass_success == 2"),
    "RotatorNoRecentSuccessfulPass": ("> 2 * 86400", "> 3 * 86400"),
    "RotatorManagedKeyExpiringSoon": ("< 7 * 86400", "< 5 * 86400"),
    "RotatorManagedKeyExpiringSoon-role": ('{role="current"}', ""),
    "RotatorUnmanagedKeyExpiringSoon": ("< 14 * 86400", "< 16 * 86400"),
    "RotatorShardNotReporting": ('{shard!=""} < 2 * 86400', '{shard!=""} < 3 * 86400'),
    "RotatorShardNotReporting-never": ("or max by (job) (rotator_shards) * 0", ""),
    "RotatorOwnKeySwitchPending": (
        "(rotator_own_key_switch_pending) == 1",
        "(rotator_own_key_switch_pending) == 2",
    ),
    "RotatorOwnKeySwitchPending-for": ("for: 1d", "for: 3d"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_unit_tests_catch_a_broken_threshold(
    promtool: str, tmp_path: Path, breakage: str
) -> None:
    old, new = BREAKAGES[breakage]
    rules = RULES.read_text()
    assert rules.count(old) == 1
    (tmp_path / RULES.name).write_text(rules.replace(old, new))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run(promtool, "test", "rules", tmp_path / RULE_TESTS.name)
    assert result.returncode != 0, f"the unit tests did not notice {breakage}"
    assert "FAILED" in result.stdout + result.stderr
