"""Kubernetes Events with ``credentials:`` routes: each credential's Events go where its route's
Kubernetes targets hold it (one per target, in each namespace), and a credential routed
elsewhere, or left to a sink that is not Kubernetes, gets none."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from rotator.app import kubernetes_events_channel
from rotator.events import Event
from rotator.settings import parse_settings
from tests.k8s.fixtures import Cluster


def test_each_credential_is_placed_where_its_route_delivers_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text("pm_local_admin_key_0123456789")
    routes = [
        {
            "name": "billing-*",
            "targets": [
                {"sink": "kubernetes", "namespace": "billing", "restart": "Deployment/web"},
                {"sink": "file", "dir": str(tmp_path / "billing")},
            ],
        },
        {
            "name": "ops",
            "targets": [
                {"sink": "kubernetes", "namespace": "ops-a"},
                {"sink": "kubernetes", "namespace": "ops-b", "secret_name": "ops-key"},
            ],
        },
    ]
    workspaces = tmp_path / "workspaces.json"
    workspaces.write_text(
        json.dumps(
            {"workspaces": [{"name": "eu", "api_key_file": str(key), "credentials": routes}]}
        )
    )
    settings = parse_settings(
        {
            "ROTATOR_WORKSPACES_FILE": str(workspaces),
            "ROTATOR_KEY_NAMES": "*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),  # the workspace's own sink
            "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(cluster.kubeconfig),
        }
    )
    channel = kubernetes_events_channel(settings)
    assert channel is not None
    when = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    channel.send(
        [
            Event(
                type="rotation.delivered", id=f"run-1:{c}", time=when, workspace="eu", credential=c
            )
            for c in ("billing-sync", "ops", "reports")  # reports: the file sink's, no Event
        ]
    )
    placed = {
        namespace: sorted(
            e["regarding"]["name"] for e in cluster.server.objects("Event", namespace)
        )
        for namespace in ("billing", "ops-a", "ops-b", "default")
    }
    assert placed == {
        "billing": ["pm-api-key-billing-sync"],
        "ops-a": ["pm-api-key-ops"],
        "ops-b": ["ops-key"],
        "default": [],
    }


def test_no_channel_when_nothing_is_delivered_to_kubernetes(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("pm_local_admin_key_0123456789")
    routes = [{"name": "a", "targets": [{"sink": "file", "dir": str(tmp_path / "a")}]}]
    workspaces = tmp_path / "workspaces.json"
    workspaces.write_text(
        json.dumps(
            {"workspaces": [{"name": "eu", "api_key_file": str(key), "credentials": routes}]}
        )
    )
    settings = parse_settings(
        {"ROTATOR_WORKSPACES_FILE": str(workspaces), "ROTATOR_KEY_NAMES": "*"}
    )
    assert kubernetes_events_channel(settings) is None
