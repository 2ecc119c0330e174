"""Whole passes with the Kubernetes sink and the Lease lock, wired from settings as a deployment
would, against the bundled emulator and the loopback API-server stand-in: a consumer restart
that completes (the old key is retired only then) and one that hangs (reported, old key kept)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from rotator.app import build_runner, open_workspaces
from rotator.emulator import Emulator
from rotator.report import PassReport
from rotator.settings import Settings, load_settings
from tests.k8s.fixtures import NAMESPACE, Cluster
from tests.sinks.test_kubernetes_rollout import _workload

SECRET = "pm-api-key-app-billing"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def _settings(emu: Emulator, cluster: Cluster, admin: str, grace_hours: str = "0") -> Settings:
    return load_settings(
        {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_GRACE_HOURS": grace_hours,
            "ROTATOR_SINK": "kubernetes",
            "ROTATOR_SINK_KUBERNETES_NAMESPACE": NAMESPACE,
            "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(cluster.kubeconfig),
            "ROTATOR_SINK_KUBERNETES_RESTART": "app-billing=Deployment/billing-web",
            "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES": "5",
            "ROTATOR_LOCK": "lease",
            "ROTATOR_LEASE_NAMESPACE": NAMESPACE,
        }
    )


def _pass(emu: Emulator, cluster: Cluster, admin: str, grace_hours: str = "0") -> PassReport:
    settings = _settings(emu, cluster, admin, grace_hours)
    runner = build_runner(settings, clock=emu.now)
    with open_workspaces(settings) as workspaces:
        return runner.run_pass(workspaces)


def _setup(emu: Emulator, cluster: Cluster) -> tuple[str, str, str]:
    ws = emu.add_workspace("Acme")
    _admin_id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
    old_id, _ = emu.add_key(ws, "app-billing", expires=emu.now() + timedelta(days=3))
    cluster.server.create_object("Deployment", NAMESPACE, _workload("Deployment", "billing-web"))
    cluster.server.complete_rollout("Deployment", NAMESPACE, "billing-web")
    return ws, admin, old_id


def _live(emu: Emulator, ws: str) -> list[str]:
    return [str(k["id"]) for k in emu.keys(ws) if str(k["name"]).startswith("app-billing")]


def test_the_old_key_is_retired_once_the_restart_completed(emu: Emulator, cluster: Cluster) -> None:
    ws, admin, old_id = _setup(emu, cluster)
    report = _pass(emu, cluster, admin)
    assert report.exit_code == 0
    held = cluster.server.secret_data(NAMESPACE, SECRET, "api-key")
    assert held is not None
    assert old_id in _live(emu, ws), "retired before the consumers restarted"
    cluster.server.complete_rollout("Deployment", NAMESPACE, "billing-web")
    assert _pass(emu, cluster, admin).exit_code == 0
    assert old_id not in _live(emu, ws)
    assert len(_live(emu, ws)) == 1
    assert cluster.server.secret_data(NAMESPACE, SECRET, "api-key") == held
    lease = cluster.server.get_object("Lease", NAMESPACE, "key-rotator-default")
    assert lease is not None and not lease["spec"].get("holderIdentity")  # released


def test_a_hanging_restart_is_reported_and_the_old_key_stays(
    emu: Emulator, cluster: Cluster
) -> None:
    ws, admin, old_id = _setup(emu, cluster)
    assert _pass(emu, cluster, admin).exit_code == 0
    cluster.server.hang_rollout("Deployment", NAMESPACE, "billing-web")
    emu.advance(timedelta(minutes=6))  # past ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES
    report = _pass(emu, cluster, admin)
    assert report.exit_code == 1
    assert old_id in _live(emu, ws)
    results = report.workspaces[0].results
    assert results["app-billing"].rollout_stalled


def test_plan_and_status_read_the_kubernetes_sink(emu: Emulator, cluster: Cluster) -> None:
    _ws, admin, old_id = _setup(emu, cluster)
    settings = _settings(emu, cluster, admin)
    runner = build_runner(settings, dry_run=True, clock=emu.now)
    with open_workspaces(settings) as workspaces:
        planned = [(a.credential, str(a.action), a.reason) for a in runner.plan(workspaces)]
        # Grace 0: the retire of the key it replaces is planned right after the rotation.
        assert planned == [
            ("app-billing", "rotate", "expiring"),
            ("app-billing", "retire", "grace-0"),
        ]
    assert _pass(emu, cluster, admin).exit_code == 0
    cluster.server.complete_rollout("Deployment", NAMESPACE, "billing-web")
    with open_workspaces(settings) as workspaces:
        planned = [(a.credential, str(a.action), a.key_id) for a in runner.plan(workspaces)]
        rows = {r.key_id: (r.role, r.reason) for r in runner.inventory(workspaces)}
    assert planned == [("app-billing", "retire", old_id)]  # the restart is done: it may go
    assert rows[old_id] == ("previous", "previous")
    assert any(role == "current" for role, _reason in rows.values())
