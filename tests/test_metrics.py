"""``rotator.metrics``: series replaced per workspace, pass outcomes, and no secret in any label.

Values are read back through the registry and the exposition text, the way Prometheus sees them.
The pass-level tests drive a real pass (``rotator.app.run_pass_with_metrics``) against the
emulator on loopback with the file sink.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.app import build_runner, pass_config, run_pass_with_metrics
from rotator.emulator import Emulator
from rotator.locks.file import FileLock
from rotator.metrics import ManagedKeySample, Metrics, UnmanagedKeySample
from rotator.runner import Runner
from rotator.settings import Settings, load_settings

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def managed(credential: str, key_id: str, role: str, days: float = 100) -> ManagedKeySample:
    return ManagedKeySample(
        credential=credential,
        key_id=key_id,
        role=role,
        expires=T0 + timedelta(days=days),
        rotation_due=T0 + timedelta(days=days - 30),
    )


def unmanaged(name: str, key_id: str, days: float = 200) -> UnmanagedKeySample:
    return UnmanagedKeySample(key_name=name, key_id=key_id, expires=T0 + timedelta(days=days))


def samples(metrics: Metrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples named ``name`` as the exposition text shows them, keyed by label set."""
    found: dict[frozenset[tuple[str, str]], float] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[frozenset(sample.labels.items())] = sample.value
    return found


def lbl(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


EXPIRY = "rotator_managed_key_expiry_timestamp_seconds"
DUE = "rotator_managed_key_rotation_due_timestamp_seconds"
UNMANAGED = "rotator_unmanaged_key_expiry_timestamp_seconds"


# ------------------------------------------------------------------------------ set_keys


def test_set_keys_exposes_expiry_due_time_and_unmanaged_keys() -> None:
    metrics = Metrics()
    metrics.set_keys(
        "acme",
        [managed("app-a", "k1", "current", days=100), managed("app-a", "k0", "previous", days=3)],
        [unmanaged("admin", "adm")],
    )
    assert samples(metrics, EXPIRY) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="current"): (
            T0 + timedelta(days=100)
        ).timestamp(),
        lbl(workspace="acme", credential="app-a", key_id="k0", role="previous"): (
            T0 + timedelta(days=3)
        ).timestamp(),
    }
    # Only the current key of a credential has a rotation due time.
    assert samples(metrics, DUE) == {
        lbl(workspace="acme", credential="app-a", key_id="k1"): (
            T0 + timedelta(days=70)
        ).timestamp()
    }
    assert samples(metrics, UNMANAGED) == {
        lbl(workspace="acme", key_name="admin", key_id="adm"): (
            T0 + timedelta(days=200)
        ).timestamp()
    }


def test_set_keys_replaces_the_series_and_removed_keys_disappear() -> None:
    metrics = Metrics()
    metrics.set_keys(
        "acme",
        [managed("app-a", "k1", "current"), managed("app-a", "k0", "previous")],
        [unmanaged("admin", "adm"), unmanaged("old-admin", "adm0")],
    )
    # After the grace period: k0 revoked, a person removed old-admin.
    metrics.set_keys("acme", [managed("app-a", "k1", "current")], [unmanaged("admin", "adm")])
    assert set(samples(metrics, EXPIRY)) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="current")
    }
    assert set(samples(metrics, UNMANAGED)) == {
        lbl(workspace="acme", key_name="admin", key_id="adm")
    }

    # A key whose role changed is one series, not two.
    metrics.set_keys("acme", [managed("app-a", "k1", "previous")], [])
    assert set(samples(metrics, EXPIRY)) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="previous")
    }
    assert samples(metrics, DUE) == {}
    assert samples(metrics, UNMANAGED) == {}


def test_set_keys_of_one_workspace_leaves_the_others_alone() -> None:
    metrics = Metrics()
    metrics.set_keys("acme", [managed("app-a", "k1", "current")], [])
    metrics.set_keys("globex", [managed("app-g", "g1", "current")], [])
    metrics.set_keys("globex", [], [])
    assert set(samples(metrics, EXPIRY)) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="current")
    }


def test_set_keys_updates_each_series_in_place_and_removes_only_what_went_away() -> None:
    metrics = Metrics()
    keys = [managed("app-a", "k1", "current"), managed("app-b", "k2", "current")]
    metrics.set_keys("acme", keys, [unmanaged("admin", "adm")])
    child = metrics.managed_key_expiry.labels("acme", "app-a", "k1", "current")
    due = metrics.managed_key_rotation_due.labels("acme", "app-a", "k1")
    person = metrics.unmanaged_key_expiry.labels("acme", "admin", "adm")
    metrics.set_keys(
        "acme", [managed("app-a", "k1", "current", days=99)], [unmanaged("admin", "adm")]
    )
    # The same series objects, updated: not removed and made again at every pass.
    assert metrics.managed_key_expiry.labels("acme", "app-a", "k1", "current") is child
    assert metrics.managed_key_rotation_due.labels("acme", "app-a", "k1") is due
    assert metrics.unmanaged_key_expiry.labels("acme", "admin", "adm") is person
    assert samples(metrics, EXPIRY) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="current"): (
            T0 + timedelta(days=99)
        ).timestamp()
    }


def sample_count(metrics: Metrics) -> int:
    return sum(len(family.samples) for family in metrics.registry.collect())


def label_sets(metrics: Metrics) -> int:
    gauges = (
        metrics.managed_key_expiry,
        metrics.managed_key_rotation_due,
        metrics.unmanaged_key_expiry,
        metrics.rotations,
        metrics.api_requests,
        metrics.last_pass,
        metrics.last_successful_pass,
        metrics.last_pass_success,
    )
    return sum(len(gauge._metrics) for gauge in gauges) + sum(
        len(series) for series in metrics._key_series.values()
    )


def idle_pass(metrics: Metrics, moment: datetime) -> None:
    """What one pass with 10 managed keys and nothing due records."""
    metrics.observe_api("me", "200")
    metrics.observe_api("list", "200")
    metrics.set_keys(
        "acme",
        [managed(f"app-{i}", f"key-{i}", "current") for i in range(10)],
        [unmanaged("rotator-admin", "adm"), unmanaged("person", "p1")],
    )
    for result in ("succeeded", "failed", "rolled_back"):
        metrics.record_rotations("acme", result, 0)
    metrics.record_pass("acme", ended_at=moment, succeeded=True, duration_s=0.2)


def test_idle_passes_keep_the_number_of_series_constant() -> None:
    metrics = Metrics()
    idle_pass(metrics, T0)
    samples_after_one, label_sets_after_one = sample_count(metrics), label_sets(metrics)
    for index in range(1, 300):
        idle_pass(metrics, T0 + timedelta(hours=index))
        assert sample_count(metrics) == samples_after_one
        assert label_sets(metrics) == label_sets_after_one
    assert samples(metrics, "rotator_api_requests_total")[lbl(endpoint="list", status="200")] == 300


def test_rotating_keys_replace_their_series_and_the_count_stays_constant() -> None:
    metrics = Metrics()
    counts: set[tuple[int, int]] = set()
    for index in range(300):
        current, previous = f"k{index}", f"k{index - 1}"
        metrics.set_keys(
            "acme",
            [managed("app-a", current, "current"), managed("app-a", previous, "previous")],
            [unmanaged("person", f"p{index % 3}")],
        )
        if index:
            counts.add((sample_count(metrics), label_sets(metrics)))
    assert len(counts) == 1
    assert set(samples(metrics, EXPIRY)) == {
        lbl(workspace="acme", credential="app-a", key_id="k299", role="current"),
        lbl(workspace="acme", credential="app-a", key_id="k298", role="previous"),
    }


# ------------------------------------------------------------------------ pass outcomes


def test_record_pass_keeps_the_last_successful_time_when_a_pass_fails() -> None:
    metrics = Metrics()
    good, bad = T0, T0 + timedelta(days=1)
    metrics.record_pass("acme", ended_at=good, succeeded=True, duration_s=2.0)
    metrics.record_pass("acme", ended_at=bad, succeeded=False, duration_s=None)
    assert samples(metrics, "rotator_last_successful_pass_timestamp_seconds") == {
        lbl(workspace="acme"): good.timestamp()
    }
    assert samples(metrics, "rotator_last_pass_timestamp_seconds") == {
        lbl(workspace="acme"): bad.timestamp()
    }
    assert samples(metrics, "rotator_last_pass_success") == {lbl(workspace="acme"): 0}
    assert samples(metrics, "rotator_pass_duration_seconds_count") == {lbl(): 1}
    assert samples(metrics, "rotator_pass_duration_seconds_sum") == {lbl(): 2.0}

    metrics.record_pass("acme", ended_at=bad + timedelta(days=1), succeeded=True, duration_s=None)
    assert samples(metrics, "rotator_last_pass_success") == {lbl(workspace="acme"): 1}


def test_a_crashed_pass_counts_as_failed_for_every_workspace_it_covered() -> None:
    metrics = Metrics()
    metrics.set_keys("acme", [managed("app-a", "k1", "current")], [])
    metrics.record_pass("acme", ended_at=T0, succeeded=True, duration_s=1.0)
    crash = T0 + timedelta(hours=1)
    metrics.record_crashed_pass(["acme", "globex"], ended_at=crash, duration_s=3.0)
    assert samples(metrics, "rotator_last_pass_success") == {
        lbl(workspace="acme"): 0,
        lbl(workspace="globex"): 0,
    }
    assert samples(metrics, "rotator_last_pass_timestamp_seconds") == {
        lbl(workspace="acme"): crash.timestamp(),
        lbl(workspace="globex"): crash.timestamp(),
    }
    assert samples(metrics, "rotator_last_successful_pass_timestamp_seconds") == {
        lbl(workspace="acme"): T0.timestamp()
    }
    assert samples(metrics, "rotator_pass_duration_seconds_count") == {lbl(): 2}
    assert set(samples(metrics, EXPIRY)) == {
        lbl(workspace="acme", credential="app-a", key_id="k1", role="current")
    }
    metrics.record_crashed_pass(["acme"], ended_at=crash + timedelta(hours=1))
    assert samples(metrics, "rotator_pass_duration_seconds_count") == {lbl(): 2}


def test_a_failed_first_pass_exposes_no_last_successful_time() -> None:
    metrics = Metrics()
    metrics.record_pass("acme", ended_at=T0, succeeded=False, duration_s=None)
    assert samples(metrics, "rotator_last_successful_pass_timestamp_seconds") == {}
    assert samples(metrics, "rotator_last_pass_success") == {lbl(workspace="acme"): 0}


def test_rotations_and_api_requests_are_counted() -> None:
    metrics = Metrics()
    metrics.record_rotations("acme", "succeeded", 2)
    metrics.record_rotations("acme", "succeeded", 1)
    metrics.record_rotations("acme", "failed", 0)
    metrics.observe_api("create", "200")
    metrics.observe_api("create", "200")
    metrics.observe_api("me", "error")
    assert samples(metrics, "rotator_rotations_total") == {
        lbl(workspace="acme", result="succeeded"): 3,
        # A zero count still creates the series, so a rate() over it starts at 0.
        lbl(workspace="acme", result="failed"): 0,
    }
    assert samples(metrics, "rotator_api_requests_total") == {
        lbl(endpoint="create", status="200"): 2,
        lbl(endpoint="me", status="error"): 1,
    }
    assert "rotator_rotations_created" not in metrics.exposition().decode()


# ------------------------------------------------------------------- a real pass, no secret


def _settings(emu: Emulator, admin_secret: str, sink_dir: Path) -> Settings:
    return load_settings(
        {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin_secret,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": str(sink_dir),
            "ROTATOR_WORKSPACE_NAME": "acme",
            "ROTATOR_GRACE_HOURS": "0",
            "ROTATOR_HTTP_MAX_RETRIES": "0",
        }
    )


def test_a_real_pass_exposes_its_keys_and_no_secret_anywhere(tmp_path: Path) -> None:
    with Emulator() as emu:
        workspace = emu.add_workspace("Acme")
        admin_id, admin_secret = emu.add_key(
            workspace, "rotator-admin", expires=emu.now() + timedelta(days=700)
        )
        old_id, _ = emu.add_key(workspace, "app-billing", expires=emu.now() + timedelta(days=5))
        emu.add_key(workspace, "app-stable", expires=emu.now() + timedelta(days=400))
        settings = _settings(emu, admin_secret, tmp_path / "secrets")
        metrics = Metrics()
        report = run_pass_with_metrics(settings, build_runner(settings), metrics)
        assert report.exit_code == 0
        keys = {k["id"]: k for k in emu.keys(workspace)}
        issued = emu.issued_secrets()

    text = metrics.exposition().decode()
    assert len(issued) == 4  # admin, two seeded, one created
    for secret in issued:
        assert secret not in text
    new_id = next(i for i, k in keys.items() if str(k["name"]).startswith("app-billing@"))
    assert old_id not in keys  # grace 0: revoked in the same pass, so no series either
    assert old_id not in text
    expiry = samples(metrics, EXPIRY)
    assert expiry[
        lbl(workspace="acme", credential="app-billing", key_id=new_id, role="current")
    ] == (pytest.approx(keys[new_id]["expires"].timestamp(), abs=1e-3))
    assert lbl(workspace="acme", key_name="rotator-admin", key_id=admin_id) in samples(
        metrics, UNMANAGED
    )
    requests = samples(metrics, "rotator_api_requests_total")
    assert sum(requests.values()) >= 5  # me, list, create, verify, revoke, list
    assert (
        samples(metrics, "rotator_rotations_total")[lbl(workspace="acme", result="succeeded")] == 1
    )
    assert samples(metrics, "rotator_last_pass_success") == {lbl(workspace="acme"): 1}


def _healthy_workspace(emu: Emulator, tmp_path: Path) -> tuple[str, Settings]:
    """Acme with the rotator's admin key and one healthy managed key: that key's id, and the
    settings of a file-sink deployment for it."""
    workspace = emu.add_workspace("Acme")
    _admin_id, admin_secret = emu.add_key(
        workspace, "rotator-admin", expires=emu.now() + timedelta(days=700)
    )
    stable_id, _ = emu.add_key(workspace, "app-stable", expires=emu.now() + timedelta(days=400))
    return stable_id, _settings(emu, admin_secret, tmp_path / "secrets")


def test_a_pass_the_api_refuses_records_a_failure_and_keeps_the_key_series(tmp_path: Path) -> None:
    with Emulator() as emu:
        _stable_id, settings = _healthy_workspace(emu, tmp_path)
        metrics = Metrics()
        run_pass_with_metrics(settings, build_runner(settings), metrics)
        good = samples(metrics, "rotator_last_successful_pass_timestamp_seconds")
        before = samples(metrics, EXPIRY)
        emu.add_fault("GET", "/api/data/api-keys", status=503, times=-1)
        report = run_pass_with_metrics(settings, build_runner(settings), metrics)
    assert report.exit_code == 3
    assert samples(metrics, "rotator_last_pass_success") == {lbl(workspace="acme"): 0}
    assert samples(metrics, "rotator_last_successful_pass_timestamp_seconds") == good
    # What the keys were at the last successful listing is still the best knowledge there is.
    assert samples(metrics, EXPIRY) == before
    assert samples(metrics, "rotator_api_requests_total")[lbl(endpoint="list", status="503")] >= 1


def test_a_pass_that_found_the_lock_held_keeps_the_key_series(tmp_path: Path) -> None:
    # Another pass holds the workspace: this one saw no keys, which is no news about them. The
    # expiry series must stay, or the alerts on them go quiet while the keys run out.
    with Emulator() as emu:
        stable_id, settings = _healthy_workspace(emu, tmp_path)
        metrics = Metrics()
        run_pass_with_metrics(settings, build_runner(settings), metrics)
        before = samples(metrics, EXPIRY)
        unmanaged_before = samples(metrics, UNMANAGED)
        assert any(("key_id", stable_id) in labels for labels in before)
        with FileLock(tmp_path / "secrets").hold():
            report = run_pass_with_metrics(settings, build_runner(settings), metrics)
    assert report.workspaces[0].locked
    assert samples(metrics, EXPIRY) == before
    assert samples(metrics, UNMANAGED) == unmanaged_before  # the admin key's series too


def _one_workspace(emu: Emulator, tmp_path: Path) -> tuple[str, Path, Settings]:
    """One emulated workspace whose credential is read from a file, as a mounted Secret is."""
    ws = emu.add_workspace("Acme")
    _id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
    key_file = tmp_path / "api-key"
    key_file.write_text(admin)
    settings = load_settings(
        {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY_FILE": str(key_file),
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
        }
    )
    return ws, key_file, settings


def test_a_pass_that_crashed_is_a_failed_pass_in_every_metric(tmp_path: Path) -> None:
    with Emulator() as emu:
        ws, _key_file, settings = _one_workspace(emu, tmp_path)
        metrics = Metrics()
        run_pass_with_metrics(settings, build_runner(settings), metrics)
        first = _value(metrics, "rotator_last_pass_timestamp_seconds", workspace="default")
        assert _value(metrics, "rotator_last_pass_success", workspace="default") == 1
        emu.add_key(ws, "app-billing", expires=emu.now() + timedelta(days=3))

        def die(step: str, _credential: str) -> None:
            if step == "created":
                raise KeyboardInterrupt  # the process dies mid-pass

        crashing = Runner(pass_config(settings), clock=emu.now, checkpoint=die)
        with pytest.raises(KeyboardInterrupt):
            run_pass_with_metrics(settings, crashing, metrics)
        assert _value(metrics, "rotator_last_pass_success", workspace="default") == 0
        assert _value(metrics, "rotator_last_pass_timestamp_seconds", workspace="default") >= first


def test_a_vanished_credential_file_is_a_failed_pass_not_a_crash(tmp_path: Path) -> None:
    with Emulator() as emu:
        _ws, key_file, settings = _one_workspace(emu, tmp_path)
        metrics = Metrics()
        key_file.unlink()  # the mounted Secret is gone (serve keeps running)
        report = run_pass_with_metrics(settings, build_runner(settings), metrics)
        assert report.exit_code == 1
        assert "api-key" in (report.workspaces[0].error or "")
        assert _value(metrics, "rotator_last_pass_success", workspace="default") == 0


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_patterns_that_select_no_key_are_counted_per_workspace(tmp_path: Path) -> None:
    with Emulator() as emu:
        ws = emu.add_workspace("Acme")
        _id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        emu.add_key(ws, "erp-sync", expires=emu.now() + timedelta(days=300))
        settings = load_settings(
            {
                "ROTATOR_API_URL": emu.url,
                "ROTATOR_API_KEY": admin,
                "ROTATOR_KEY_NAMES": "erp-snyc,erp-*,crm",
                "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
            }
        )
        metrics = Metrics()
        run_pass_with_metrics(settings, build_runner(settings), metrics)
        assert _value(metrics, "rotator_selector_unmatched_patterns", workspace="default") == 2
