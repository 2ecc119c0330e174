"""The Grafana dashboard (config/grafana/key-rotator.json) against a real Prometheus.

Debian's ``prometheus`` is started by the test on a free loopback port, scraping a real
``rotator serve`` every second; serve works on the bundled emulator with keys in every state (a
key rotated in the pass on start, so a previous key waits for retirement, a healthy managed key,
an unmanaged key, a pattern that selects nothing). Every query of every panel, with Grafana's
variables filled in as Grafana would, must parse, name only metrics the rotator exports, and
return data (each panel's state has some here). Without the ``prometheus`` binary the tests skip
naming the package, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rotator.emulator import Emulator

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).resolve().parents[1] / "config" / "grafana" / "key-rotator.json"
WORKSPACE = "default"
#: Grafana's variables as it fills them in: the workspace picker on "All", then on one.
VARIABLES: list[dict[str, str]] = [
    {"$workspace": ".*", "$__rate_interval": "15s", "$__range": "1h", "$__interval": "1s"},
    {"$workspace": WORKSPACE, "$__rate_interval": "15s", "$__range": "1h", "$__interval": "1s"},
]
METRIC = re.compile(r"\brotator_[a-z0-9_]+")
PATIENCE_SECONDS = 30.0
#: Each API request of serve's first pass waits this long until Prometheus has scraped serve
#: once: it then sees the pass happen (the rotation counters at 0, then at 1), as in a cluster.
LATENCY_MS = 2000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def _targets() -> list[tuple[str, str]]:
    """(panel title, query) of every panel's every target."""
    return [
        (panel["title"], target["expr"])
        for panel in _dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _filled(expr: str, variables: dict[str, str]) -> str:
    # Longest names first: $__rate_interval before $__range... and any $__ before $workspace.
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(name, variables[name])
    return expr


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus not found: apt-get install --no-install-recommends prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Scraped:
    """A Prometheus that has scraped ``rotator serve`` a few times, and what serve exports."""

    url: str
    exported: frozenset[str]

    def query(self, expr: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)

    def result(self, expr: str) -> list[dict[str, Any]]:
        answer = self.query(expr)
        assert answer.status_code == 200, (expr, answer.text)
        body = answer.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@pytest.fixture(scope="module")
def scraped(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    folder = tmp_path_factory.mktemp("dashboard")
    with Emulator() as emu:
        workspace = emu.add_workspace("Acme")
        _id, admin = emu.add_key(workspace, "rotator-admin", expires=emu.now() + timedelta(700))
        emu.add_key(workspace, "app-due", expires=emu.now() + timedelta(days=5))
        emu.add_key(workspace, "app-healthy", expires=emu.now() + timedelta(days=300))
        emu.add_key(workspace, "legacy-report", expires=emu.now() + timedelta(days=20))
        serve_port, prometheus_port = _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
        env.update(
            ROTATOR_API_URL=emu.url,
            ROTATOR_API_KEY=admin,
            # ghost-* selects nothing: the unmatched-pattern panel has something to show.
            ROTATOR_KEY_NAMES="app-*,ghost-*",
            ROTATOR_SINK_FILE_DIR=str(folder / "secrets"),
            ROTATOR_HTTP_PORT=str(serve_port),
            ROTATOR_HTTP_HOST="127.0.0.1",
            ROTATOR_ORPHAN_MIN_AGE_MINUTES="0",
        )
        config = folder / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "key-rotator",
                            "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}],
                        }
                    ],
                }
            )
        )
        emu.set_latency(LATENCY_MS)
        url = f"http://127.0.0.1:{prometheus_port}"
        metrics_url = f"http://127.0.0.1:{serve_port}/metrics"
        with (
            (folder / "serve.log").open("ab") as serve_log,
            (folder / "prom.log").open("ab") as prometheus_log,
        ):
            prometheus = subprocess.Popen(
                [
                    prometheus_binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=prometheus_log,
            )
            serve = subprocess.Popen(
                [sys.executable, "-m", "rotator", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=serve_log,
            )
            try:
                _wait_for(lambda: _answers(f"{url}/-/ready"), "Prometheus to be ready")
                ready = Scraped(url, frozenset())
                # Prometheus scrapes serve while its first pass runs, then after it: the rotation
                # counters go from 0 to 1 under its eyes, and rate() has samples to work on.
                _wait_for(
                    lambda: bool(ready.result('rotator_rotations_total{result="succeeded"} == 0')),
                    "Prometheus to scrape serve during its first pass",
                )
                emu.set_latency(0)
                _wait_for(
                    lambda: bool(
                        ready.result(
                            'increase(rotator_rotations_total{result="succeeded"}[1m]) > 0'
                        )
                        and ready.result('sum_over_time(up{job="key-rotator"}[30s]) >= 5')
                    ),
                    "Prometheus to see serve's first pass and scrape it five times since",
                )
                ready.exported = frozenset(
                    sample.name
                    for family in text_string_to_metric_families(httpx.get(metrics_url).text)
                    for sample in family.samples
                )
                yield ready
            finally:
                for process in (prometheus, serve):
                    process.terminate()
                for process in (prometheus, serve):
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


def test_the_dashboard_is_importable_as_is() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "key-rotator"
    assert "__inputs" not in dashboard  # no data source to map on import: a variable picks it
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["workspace"]["allValue"] == ".*"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    titles = " | ".join(panel["title"].lower() for panel in _dashboard()["panels"])
    for wanted in (
        "days left",
        "next rotations",
        "last pass",
        "rotations by result",
        "api requests by status",
        "own key switch",
        "previous keys waiting",
        "shards reporting",
        "unmanaged keys",
    ):
        assert wanted in titles, wanted


def test_every_query_names_only_metrics_the_rotator_exports(scraped: Scraped) -> None:
    for title, expr in _targets():
        names = METRIC.findall(expr)
        assert names, f"{title}: {expr} names no rotator metric"
        unknown = sorted(set(names) - scraped.exported)
        assert not unknown, f"{title}: {unknown} are not exported by rotator serve"


@pytest.mark.parametrize("variables", VARIABLES, ids=["all workspaces", "one workspace"])
def test_every_query_parses_and_returns_data(scraped: Scraped, variables: dict[str, str]) -> None:
    for title, expr in _targets():
        result = scraped.result(_filled(expr, variables))
        assert result, f"{title}: {_filled(expr, variables)} returned nothing"


def test_a_broken_query_would_be_noticed(scraped: Scraped) -> None:
    answer = scraped.query("sum by (workspace (rotator_last_pass_success)")
    assert answer.status_code == 400
    assert answer.json()["errorType"] == "bad_data"


def test_the_workspace_picker_lists_the_workspace(scraped: Scraped) -> None:
    # label_values(rotator_last_pass_timestamp_seconds, workspace), as Grafana asks for it.
    answer = httpx.get(
        f"{scraped.url}/api/v1/label/workspace/values",
        params={"match[]": "rotator_last_pass_timestamp_seconds"},
        timeout=10,
    )
    assert answer.json()["data"] == [WORKSPACE]


def test_the_panels_show_the_state_of_the_keys(scraped: Scraped) -> None:
    def value(expr: str, **labels: str) -> float:
        rows = [
            r
            for r in scraped.result(_filled(expr, VARIABLES[1]))
            if all(r["metric"].get(k) == v for k, v in labels.items())
        ]
        assert len(rows) == 1, (expr, labels, rows)
        return float(rows[0]["value"][1])

    targets = dict(_targets())
    managed = targets["Managed keys by days left"]
    assert 729 < value(managed, credential="app-due", role="current") <= 730
    assert 4 < value(managed, credential="app-due", role="previous") <= 5
    assert 299 < value(managed, credential="app-healthy", role="current") <= 300
    assert 19 < value(targets["Unmanaged keys by days left"], key_name="legacy-report") <= 20
    assert value(targets["Previous keys waiting for retirement"], workspace=WORKSPACE) == 1
    assert value(targets["Patterns that select no key"], workspace=WORKSPACE) == 1
    assert value(targets["Last pass"], workspace=WORKSPACE) == 1
    assert value(targets["Rotations in the time range"], result="succeeded") >= 1
