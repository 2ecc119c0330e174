"""``rotator serve`` end to end: a real subprocess against the in-process emulator over loopback.

What ops rely on (README): a pass on start, ``/healthz``, ``/readyz`` and ``/metrics`` whose
values match the provider's keys; SIGTERM during a pass finishes the credential in flight and
starts no other (exit 0), or exits 1 once ROTATOR_SHUTDOWN_TIMEOUT_SECONDS has passed; a bad
ROTATOR_SCHEDULE is exit 2 naming it. And, in-process, that the scheduler's job fires as POSIX
cron does in ROTATOR_TIMEZONE.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.models import Secret
from rotator.service import Service
from rotator.settings import load_settings

pytestmark = pytest.mark.slow

ADMIN_KEY_NAME = "rotator-admin"
CREATE_PATH = "/api/data/api-keys"
#: Upper bound for anything a healthy process does here (start, a pass, a stop).
PATIENCE_SECONDS = 15.0


def free_port() -> int:
    """A loopback port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = PATIENCE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def clean_environ() -> dict[str, str]:
    """The test runner's environment without ROTATOR_* (an unknown one would be exit 2)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}


@dataclass
class Deployment:
    """One emulated workspace and the environment of a rotator pointed at it."""

    emu: Emulator
    workspace_id: str
    admin_id: str
    admin_secret: str
    sink_dir: Path
    log_path: Path
    port: int

    def env(self, **overrides: str) -> dict[str, str]:
        env = clean_environ()
        env.update(
            ROTATOR_API_URL=self.emu.url,
            ROTATOR_API_KEY=self.admin_secret,
            ROTATOR_KEY_NAMES="app-*",
            ROTATOR_SINK_FILE_DIR=str(self.sink_dir),
            ROTATOR_HTTP_PORT=str(self.port),
            ROTATOR_LOG_FORMAT="json",
            ROTATOR_HTTP_MAX_RETRIES="0",
        )
        env.update(overrides)
        return env

    def add_key(self, name: str, days_left: float) -> tuple[str, str]:
        return self.emu.add_key(
            self.workspace_id, name, expires=self.emu.now() + timedelta(days=days_left)
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self) -> list[dict[str, object]]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        events = []
        for line in text.splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def creates(self) -> list[dict[str, object]]:
        return [
            r for r in self.emu.request_log() if r["method"] == "POST" and r["path"] == CREATE_PATH
        ]

    def lists(self) -> list[dict[str, object]]:
        return [
            r for r in self.emu.request_log() if r["method"] == "GET" and r["path"] == CREATE_PATH
        ]

    def works(self, secret: str) -> bool:
        with ProjectManagerClient(
            self.emu.url, Secret(self.admin_secret), max_retries=0, sleep=lambda _s: None
        ) as client:
            try:
                client.me(Secret(secret))
            except Exception:  # noqa: BLE001 - any failure means: it does not work
                return False
        return True


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with emulated_deployment(tmp_path) as made:
        yield made


@contextmanager
def emulated_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A fresh emulator with one workspace and the rotator's admin key, files under tmp_path."""
    with Emulator() as emu:
        workspace_id = emu.add_workspace("Acme")
        admin_id, admin_secret = emu.add_key(
            workspace_id, ADMIN_KEY_NAME, expires=emu.now() + timedelta(days=700)
        )
        yield Deployment(
            emu,
            workspace_id,
            admin_id,
            admin_secret,
            tmp_path / "secrets",
            tmp_path / "rotator.log",
            free_port(),
        )


@contextmanager
def serving(deployment: Deployment, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``rotator serve`` as a child process, its log (stderr) in ``deployment.log_path``.

    Killed on the way out if a test left it running, so no process outlives its test.
    """
    with deployment.log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rotator", "serve"],
            env=deployment.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=deployment.sink_dir.parent,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2.0)


def answers(url: str) -> bool:
    try:
        return get(url).status_code == 200
    except httpx.TransportError:
        return False


def wait_ready(deployment: Deployment, process: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited with {process.returncode}: {deployment.log_path.read_text()}"
            )
        return answers(deployment.url("/readyz"))

    wait_for(ready, "/readyz to answer 200")


Labels = frozenset[tuple[str, str]]


def scrape(deployment: Deployment) -> dict[tuple[str, Labels], float]:
    """Every sample of ``/metrics``, keyed by sample name and label set."""
    response = get(deployment.url("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def series(samples: dict[tuple[str, Labels], float], name: str) -> dict[Labels, float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def lbl(**labels: str) -> Labels:
    return frozenset(labels.items())


def stop(process: subprocess.Popen[bytes], signum: signal.Signals = signal.SIGTERM) -> int:
    process.send_signal(signum)
    return process.wait(timeout=PATIENCE_SECONDS)


# ------------------------------------------------------------------------ a pass, then idle


def test_serve_runs_a_pass_on_start_and_metrics_match_the_provider(
    deployment: Deployment,
) -> None:
    old_id, _old_secret = deployment.add_key("app-billing", days_left=5)
    stable_id, _ = deployment.add_key("app-stable", days_left=300)
    started = time.time()
    with serving(deployment) as process:
        wait_ready(deployment, process)
        wait_for(
            lambda: bool(series(scrape(deployment), "rotator_last_pass_timestamp_seconds")),
            "the pass on start to be recorded",
        )
        assert get(deployment.url("/healthz")).status_code == 200
        assert get(deployment.url("/readyz")).status_code == 200
        assert get(deployment.url("/nope")).status_code == 404
        samples = scrape(deployment)
        assert stop(process) == 0

    keys = {k["id"]: k for k in deployment.emu.keys(deployment.workspace_id)}
    new_ids = [i for i, k in keys.items() if str(k["name"]).startswith("app-billing@")]
    assert len(new_ids) == 1
    new_id = new_ids[0]

    def expiry(key_id: str) -> float:
        return float(keys[key_id]["expires"].timestamp())

    managed = series(samples, "rotator_managed_key_expiry_timestamp_seconds")
    expected_managed = {
        lbl(workspace="default", credential="app-billing", key_id=new_id, role="current"): expiry(
            new_id
        ),
        lbl(workspace="default", credential="app-billing", key_id=old_id, role="previous"): expiry(
            old_id
        ),
        lbl(workspace="default", credential="app-stable", key_id=stable_id, role="current"): expiry(
            stable_id
        ),
    }
    assert set(managed) == set(expected_managed)
    for labels, value in expected_managed.items():
        assert managed[labels] == pytest.approx(value, abs=1e-3)

    unmanaged = series(samples, "rotator_unmanaged_key_expiry_timestamp_seconds")
    admin = lbl(workspace="default", key_name=ADMIN_KEY_NAME, key_id=deployment.admin_id)
    assert set(unmanaged) == {admin}
    assert unmanaged[admin] == pytest.approx(expiry(deployment.admin_id), abs=1e-3)

    # Rotation is due 30 days (ROTATOR_ROTATE_BEFORE_DAYS) before the current key expires.
    due = series(samples, "rotator_managed_key_rotation_due_timestamp_seconds")
    billing_due = due[lbl(workspace="default", credential="app-billing", key_id=new_id)]
    assert billing_due == pytest.approx(expiry(new_id) - 30 * 86400, abs=1)

    rotations = series(samples, "rotator_rotations_total")
    assert rotations[lbl(workspace="default", result="succeeded")] == 1
    assert rotations.get(lbl(workspace="default", result="failed"), 0) == 0
    last_ok = series(samples, "rotator_last_successful_pass_timestamp_seconds")
    assert started <= last_ok[lbl(workspace="default")] <= time.time()
    assert series(samples, "rotator_last_pass_success")[lbl(workspace="default")] == 1
    assert samples[("rotator_pass_duration_seconds_count", frozenset())] == 1
    api_requests = series(samples, "rotator_api_requests_total")
    assert sum(api_requests.values()) >= 4  # me, list, create, verify at least


def test_run_on_start_false_runs_no_pass_but_is_ready(deployment: Deployment) -> None:
    deployment.add_key("app-billing", days_left=5)
    with serving(deployment, ROTATOR_RUN_ON_START="false") as process:
        wait_ready(deployment, process)
        time.sleep(1.0)
        assert deployment.lists() == []
        assert get(deployment.url("/readyz")).status_code == 200
        assert not series(scrape(deployment), "rotator_last_pass_timestamp_seconds")
        assert stop(process) == 0
    assert deployment.emu.request_log() == []


# ------------------------------------------------------------------- SIGTERM, SIGHUP


def _start_with_create_in_flight(deployment: Deployment, process: subprocess.Popen[bytes]) -> None:
    """Return once the pass's first create request is waiting on the emulator's delay."""
    wait_for(lambda: bool(deployment.lists()), "the pass to list the keys")
    wait_for(
        lambda: any(e["event"] == "key.evaluated" and e.get("due") for e in deployment.events()),
        "the first due credential to be evaluated",
    )
    # The create is logged by the emulator only once answered; this leaves it time to arrive.
    time.sleep(0.5)
    assert process.poll() is None
    assert deployment.creates() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_during_a_pass_finishes_the_credential_in_flight_and_exits_0(
    deployment: Deployment, signum: signal.Signals
) -> None:
    # SIGHUP too: a closed terminal or a supervisor's reload must not kill a pass between
    # create and deliver (its default action would), so it is a stop like SIGTERM.
    # app-urgent has fewer days left, so the pass rotates it first.
    urgent_id, _ = deployment.add_key("app-urgent", days_left=3)
    later_id, _ = deployment.add_key("app-later", days_left=5)
    deployment.emu.add_fault("POST", CREATE_PATH, delay_seconds=2, times=1)
    # One rotation at a time, so that the second credential is surely not in flight yet.
    with serving(deployment, ROTATOR_WORKSPACE_CONCURRENCY="1") as process:
        _start_with_create_in_flight(deployment, process)
        assert stop(process, signum) == 0

    assert len(deployment.creates()) == 1, "the second credential must not be started"
    live = deployment.emu.keys(deployment.workspace_id)
    later = [k for k in live if str(k["name"]).startswith("app-later")]
    assert [k["id"] for k in later] == [later_id]
    assert not (deployment.sink_dir / "app-later").exists()

    urgent_new = [k for k in live if str(k["name"]).startswith("app-urgent@")]
    assert len(urgent_new) == 1
    held = (deployment.sink_dir / "app-urgent").read_text()
    assert deployment.works(held)
    meta = json.loads((deployment.sink_dir / "app-urgent.meta.json").read_text())
    assert meta["key_id"] == urgent_new[0]["id"]
    assert meta["previous_key_id"] == urgent_id
    assert "pending_key_id" not in meta
    assert "pending_secret_sha256" not in meta

    events = [e["event"] for e in deployment.events()]
    signals = [e["signal"] for e in deployment.events() if e["event"] == "service.signal"]
    assert signals == [signum.name]
    # The signal arrived while the credential was between create and deliver.
    assert events.index("service.signal") < events.index("rotation.delivered")
    assert events[-1] == "service.stopped"


def test_sigterm_exits_1_when_the_pass_outlasts_the_shutdown_timeout(
    deployment: Deployment,
) -> None:
    deployment.add_key("app-urgent", days_left=3)
    deployment.emu.add_fault("POST", CREATE_PATH, delay_seconds=4, times=1)
    with serving(deployment, ROTATOR_SHUTDOWN_TIMEOUT_SECONDS="1") as process:
        _start_with_create_in_flight(deployment, process)
        signalled = time.monotonic()
        assert stop(process) == 1
        took = time.monotonic() - signalled
    assert took < 3.0, f"serve took {took:.1f} s to give up after a 1 s shutdown timeout"
    assert "service.abandoned" in [e["event"] for e in deployment.events()]


# -------------------------------------------------------------------------- schedule


def test_invalid_schedule_is_exit_2_naming_the_variable(deployment: Deployment) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rotator", "serve"],
        env=deployment.env(ROTATOR_SCHEDULE="0 3 * * 8"),
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
        check=False,
    )
    assert result.returncode == 2
    assert "ROTATOR_SCHEDULE" in result.stderr
    assert "Traceback" not in result.stderr
    assert deployment.emu.request_log() == []


def test_the_scheduled_job_fires_as_posix_cron_in_the_configured_zone(
    deployment: Deployment,
) -> None:
    settings = load_settings(
        deployment.env(
            ROTATOR_SCHEDULE="0 3 * * 1",
            ROTATOR_TIMEZONE="Europe/Berlin",
            ROTATOR_RUN_ON_START="false",
        )
    )
    service = Service(settings, host="127.0.0.1")
    service.start()
    try:
        next_run = service.next_run_time()
    finally:
        service.request_stop()
        assert service.wait_and_stop() == 0
    assert next_run is not None
    berlin = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    # APScheduler's own crontab reading would pick Tuesday (weekday 1 counts from Monday).
    assert berlin.weekday() == 0
    assert (berlin.hour, berlin.minute, berlin.second) == (3, 0, 0)
    assert next_run.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(days=7)
    assert deployment.emu.request_log() == []


def test_serve_on_a_port_already_in_use_is_exit_2_naming_the_variable(
    deployment: Deployment,
) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rotator", "serve"],
            env=deployment.env(ROTATOR_HTTP_PORT=str(port), ROTATOR_HTTP_HOST="127.0.0.1"),
            capture_output=True,
            text=True,
            timeout=PATIENCE_SECONDS,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert "ROTATOR_HTTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
