"""``rotator run-once`` pushing to a real Prometheus Pushgateway (Debian's prometheus-pushgateway).

The test starts the gateway itself on a free loopback port, in memory only (no persistence file),
runs ``rotator run-once`` as a subprocess against the emulator, and reads the gateway's
``/metrics`` as Prometheus would scrape it. Without the binary the tests skip naming the Debian
package, except in CI (CI=true), where a missing gateway is a failure: the check must not vanish.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.emulator import Emulator

pytestmark = pytest.mark.slow

GATEWAY_BINARY = "prometheus-pushgateway"
GATEWAY_PACKAGE = "prometheus-pushgateway"
JOB = "key-rotator"
CREATE_PATH = "/api/data/api-keys"

Labels = frozenset[tuple[str, str]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    """The binary's path; a skip naming the Debian package, or a failure in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: apt-get install --no-install-recommends {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary(GATEWAY_BINARY, GATEWAY_PACKAGE)
    port = free_port()
    log_path = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the Pushgateway did not start: {log_path.read_text()}")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def pushed(gateway_url: str) -> dict[str, dict[Labels, float]]:
    """The gateway's ``/metrics``: sample name -> label set -> value (job key-rotator only)."""
    text = httpx.get(f"{gateway_url}/metrics", timeout=5).text
    found: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job") == JOB:
                found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def only(series: dict[Labels, float], **match: str) -> tuple[Labels, float]:
    """The one series whose labels include ``match``."""
    hits = [(labels, v) for labels, v in series.items() if set(match.items()) <= labels]
    assert len(hits) == 1, f"expected one series with {match}, got {hits}"
    return hits[0]


@dataclass
class Workspace:
    emu: Emulator
    workspace_id: str
    admin_secret: str
    sink_dir: Path

    def add_key(self, name: str, days_left: float) -> str:
        key_id, _ = self.emu.add_key(
            self.workspace_id, name, expires=self.emu.now() + timedelta(days=days_left)
        )
        return key_id

    def run_once(self, gateway_url: str, name: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
        env.update(
            ROTATOR_API_URL=self.emu.url,
            ROTATOR_API_KEY=self.admin_secret,
            ROTATOR_KEY_NAMES="app-*",
            ROTATOR_SINK_FILE_DIR=str(self.sink_dir),
            ROTATOR_WORKSPACE_NAME=name,
            ROTATOR_PUSHGATEWAY_URL=gateway_url,
            ROTATOR_HTTP_MAX_RETRIES="0",
        )
        return subprocess.run(
            [sys.executable, "-m", "rotator", "run-once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def workspace(emu: Emulator, name: str, sink_dir: Path) -> Workspace:
    workspace_id = emu.add_workspace(name)
    _id, secret = emu.add_key(workspace_id, "rotator-admin", expires=emu.now() + timedelta(700))
    return Workspace(emu, workspace_id, secret, sink_dir)


def test_run_once_pushes_and_a_failed_pass_keeps_the_last_success(
    gateway_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    acme = workspace(emulator, "Acme", tmp_path / "acme")
    acme.add_key("app-billing", days_left=5)
    before = time.time()
    first = acme.run_once(gateway_url, "acme-push")
    assert first.returncode == 0, first.stderr

    metrics = pushed(gateway_url)
    labels, last_ok = only(
        metrics["rotator_last_successful_pass_timestamp_seconds"], workspace="acme-push"
    )
    group = dict(labels)
    assert group["job"] == JOB
    assert len(group["deployment"]) == 12
    assert int(group["deployment"], 16) >= 0  # a hex digest, not the URL or a path
    assert before <= last_ok <= time.time()
    assert only(metrics["rotator_last_pass_success"], workspace="acme-push")[1] == 1
    assert (
        only(metrics["rotator_rotations_total"], workspace="acme-push", result="succeeded")[1] == 1
    )
    current = [
        dict(labels)
        for labels in metrics["rotator_managed_key_expiry_timestamp_seconds"]
        if ("workspace", "acme-push") in labels and ("role", "current") in labels
    ]
    assert [c["credential"] for c in current] == ["app-billing"]
    _, first_pass = only(metrics["rotator_last_pass_timestamp_seconds"], workspace="acme-push")

    # The next run has a due credential whose replacement cannot be created.
    acme.add_key("app-shipping", days_left=5)
    emulator.add_fault("POST", CREATE_PATH, status=400, times=-1)
    second = acme.run_once(gateway_url, "acme-push")
    assert second.returncode == 1, second.stderr

    metrics = pushed(gateway_url)
    assert only(
        metrics["rotator_last_successful_pass_timestamp_seconds"], workspace="acme-push"
    ) == (labels, last_ok)
    assert only(metrics["rotator_last_pass_success"], workspace="acme-push")[1] == 0
    assert only(metrics["rotator_last_pass_timestamp_seconds"], workspace="acme-push")[1] > (
        first_pass
    )
    # Each run-once is a fresh process: its counters restart, and the push replaces them.
    assert only(metrics["rotator_rotations_total"], workspace="acme-push", result="failed")[1] == 1


def test_two_deployments_do_not_overwrite_each_other(
    gateway_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    acme = workspace(emulator, "Acme", tmp_path / "acme")
    globex = workspace(emulator, "Globex", tmp_path / "globex")
    acme.add_key("app-billing", days_left=5)
    globex.add_key("app-ledger", days_left=300)
    assert acme.run_once(gateway_url, "acme-two").returncode == 0
    assert globex.run_once(gateway_url, "globex-two").returncode == 0

    metrics = pushed(gateway_url)
    acme_labels, _ = only(metrics["rotator_last_pass_success"], workspace="acme-two")
    globex_labels, _ = only(metrics["rotator_last_pass_success"], workspace="globex-two")
    assert dict(acme_labels)["deployment"] != dict(globex_labels)["deployment"]
    assert (
        only(metrics["rotator_rotations_total"], workspace="acme-two", result="succeeded")[1] == 1
    )
    assert (
        only(metrics["rotator_rotations_total"], workspace="globex-two", result="succeeded")[1] == 0
    )
    credentials = {
        dict(labels)["credential"]
        for labels in metrics["rotator_managed_key_expiry_timestamp_seconds"]
        if dict(labels)["workspace"] in ("acme-two", "globex-two")
    }
    assert credentials == {"app-billing", "app-ledger"}


def test_an_unreachable_gateway_makes_run_once_exit_1_after_the_pass(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme = workspace(emulator, "Acme", tmp_path / "acme")
    acme.add_key("app-billing", days_left=5)
    result = acme.run_once(f"http://127.0.0.1:{free_port()}", "acme-down")
    assert result.returncode == 1
    assert "metrics.push_failed" in result.stderr
    # The pass itself still happened: the metrics were lost, not the rotation.
    assert (tmp_path / "acme" / "app-billing").exists()
