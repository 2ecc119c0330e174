"""The wiring of a workspace's ``credentials:`` routes (rotator.app): which sinks it builds,
each distinct target once, and what a target that cannot be built does; what check-config
shows of them and reads of each target (rotator.preflight).

The routed sink itself (rotator.sinks.targets) is tested with it; this is the pure part.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rotator.app import build_sink, config_warnings, sink_routes, unconfigured_workspaces
from rotator.emulator import Emulator
from rotator.errors import ConfigError
from rotator.models import Secret, SinkRecord
from rotator.preflight import WorkspaceChecks, check_targets
from rotator.settings import (
    FileSinkSettings,
    KubernetesSinkSettings,
    Settings,
    WorkspaceSettings,
    parse_settings,
)
from rotator.sinks import registry
from rotator.sinks.file import FileSink
from tests.cli_support import clean_env, run_cli, seed, works


def settings_of(tmp_path: Path, routes: list[Any] | None, **variables: str) -> Settings:
    key = tmp_path / "key"
    key.write_text("pm-0123456789abcdef")
    entry: dict[str, Any] = {"name": "acme-eu", "api_key_file": str(key)}
    if routes is not None:
        entry["credentials"] = routes
    path = tmp_path / "workspaces.json"
    path.write_text(json.dumps({"workspaces": [entry]}))
    return parse_settings(
        {
            "ROTATOR_WORKSPACES_FILE": str(path),
            "ROTATOR_KEY_NAMES": "*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
            **variables,
        }
    )


def test_each_distinct_target_once_the_workspaces_own_sink_first(tmp_path: Path) -> None:
    own = str(tmp_path / "secrets" / "acme-eu")
    billing = {"sink": "kubernetes", "namespace": "billing"}
    settings = settings_of(
        tmp_path,
        [
            {"name": "billing-*", "targets": [billing, {"sink": "file", "dir": "/srv/x"}]},
            {"name": "invoices", "targets": [dict(billing)]},  # equal settings: one sink
            {"name": "ops", "targets": [{"sink": "file", "dir": own}]},  # the workspace's own
            {"name": "sync", "targets": [{"sink": "kubernetes", "namespace": "sync"}]},
        ],
    )
    (ws,) = settings.workspaces
    distinct, routes = sink_routes(ws)
    assert distinct == [
        FileSinkSettings(dir=Path(own)),
        KubernetesSinkSettings(namespace="billing"),
        FileSinkSettings(dir=Path("/srv/x")),
        KubernetesSinkSettings(namespace="sync"),
    ]
    assert routes == [("billing-*", [1, 2]), ("invoices", [1]), ("ops", [0]), ("sync", [3])]


def test_restarts_make_two_targets_in_one_namespace_two_sinks(tmp_path: Path) -> None:
    # Each route's restart names its own credentials, so the settings differ.
    def restarting(workload: str) -> dict[str, str]:
        return {"sink": "kubernetes", "namespace": "billing", "restart": workload}

    settings = settings_of(
        tmp_path,
        [
            {"name": "a", "targets": [restarting("Deployment/a")]},
            {"name": "b", "targets": [restarting("Deployment/b")]},
        ],
    )
    distinct, routes = sink_routes(settings.workspaces[0])
    assert len(distinct) == 3
    assert routes == [("a", [1]), ("b", [2])]


def test_without_routes_the_workspaces_sink_alone(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, None)
    (ws,) = settings.workspaces
    assert sink_routes(ws) == ([ws.sink], [])
    sink = build_sink(settings, ws)
    try:
        assert sink.kind == "file"
        assert "acme-eu" in sink.describe()
    finally:
        sink.close()


def test_a_target_that_cannot_be_built_fails_the_workspaces_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(
        tmp_path,
        [{"name": "a", "targets": [{"sink": "vault", "path": "a/{credential}"}]}],
        ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
        ROTATOR_SINK_VAULT_TOKEN="hvs.x",
    )
    # As when the extra is not installed: the vault module cannot be imported.
    monkeypatch.setitem(registry.KINDS, "vault", "tests.no_such_sink_module")
    ws: WorkspaceSettings = settings.workspaces[0]
    with pytest.raises(ConfigError) as caught:
        build_sink(settings, ws)
    assert caught.value.problems == [
        "ROTATOR_SINK: the vault sink needs its extra: pip install 'key-rotator[vault]'"
    ]


def test_check_config_wide_shows_each_route_and_its_targets(tmp_path: Path) -> None:
    token = "hvs.never-shown-0123"
    key = tmp_path / "key"
    key.write_text("pm-0123456789abcdef")
    routes = [
        {
            "name": "billing-*",
            "targets": [
                {"sink": "vault", "path": "apps/billing/{credential}"},
                {"sink": "file", "dir": str(tmp_path / "billing")},
            ],
        }
    ]
    path = tmp_path / "workspaces.json"
    entry = {"name": "acme-eu", "api_key_file": str(key), "credentials": routes}
    path.write_text(json.dumps({"workspaces": [entry]}))
    env = clean_env(
        {
            "ROTATOR_WORKSPACES_FILE": str(path),
            "ROTATOR_KEY_NAMES": "*",
            "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
            "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com",
            "ROTATOR_SINK_VAULT_TOKEN": token,
            "ROTATOR_LOCK": "file",
        }
    )
    result = run_cli(["check-config", "-o", "wide"], env, tmp_path)
    assert result.returncode == 0, result.describe()
    assert "  credentials[0] billing-*:\n    kind=vault, addr=https://vault.example.com, " in (
        result.stdout
    )
    assert "token=**********" in result.stdout
    assert f"    kind=file, dir={tmp_path / 'billing'}\n" in result.stdout
    assert token not in result.output


def test_check_config_online_reads_each_target_on_its_own(tmp_path: Path) -> None:
    billing, ops, not_a_folder = tmp_path / "billing", tmp_path / "ops", tmp_path / "a-file"
    not_a_folder.write_text("")
    settings = settings_of(
        tmp_path,
        [
            {"name": "billing-*", "targets": [{"sink": "file", "dir": str(billing)}]},
            {"name": "ops", "targets": [{"sink": "file", "dir": str(ops)}]},
            {"name": "broken", "targets": [{"sink": "file", "dir": str(not_a_folder)}]},
        ],
    )
    delivered = FileSink(billing)
    secret = Secret("pm-delivered-key")
    version = delivered.write_record(
        "billing-a", SinkRecord().with_pending("k1", secret.sha256()), expected_version=None
    )
    delivered.write_secret("billing-a", secret, expected_version=version)
    result = WorkspaceChecks("acme-eu")
    check_targets(settings, settings.workspaces[0], ["billing-a", "billing-b", "ops"], result)
    assert [(c.check, c.status) for c in result.checks] == [
        ("target", "ok"),
        ("target", "ok"),
        ("target", "error"),
    ]
    assert [c.detail for c in result.checks[:2]] == [
        f"file:{billing}: lists 1 credential(s); holds a key for 1 of 2",
        f"file:{ops}: lists 0 credential(s); holds a key for 0 of 1",
    ]
    assert result.checks[2].detail.startswith(f"file:{not_a_folder}: cannot list what it holds: ")
    assert not result.usable


def test_the_own_key_is_looked_for_where_its_route_delivers_it(tmp_path: Path) -> None:
    own = tmp_path / "own"
    routes = [{"name": "rotator", "targets": [{"sink": "file", "dir": str(own)}]}]
    key = tmp_path / "key"  # settings_of's credential file: not where the own key is delivered
    settings = settings_of(tmp_path, routes, ROTATOR_SELF_KEY_NAME="rotator")
    assert config_warnings(settings) == [
        "ROTATOR_SELF_KEY_NAME (workspace acme-eu): the rotator's new key is delivered to "
        f"{own / 'rotator'}, but its credential is read from {key}; the old key is never "
        "revoked until the two agree (point ROTATOR_API_KEY_FILE at the delivered file)"
    ]
    # Delivered to Vault: what is mounted there cannot be compared, so nothing is said.
    vault = [{"name": "rotator", "targets": [{"sink": "vault", "path": "a/{credential}"}]}]
    settings = settings_of(
        tmp_path,
        vault,
        ROTATOR_SELF_KEY_NAME="rotator",
        ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
        ROTATOR_SINK_VAULT_TOKEN="hvs.x",
    )
    assert config_warnings(settings) == []


def test_a_file_targets_folder_in_the_sinks_folder_is_no_unconfigured_workspace(
    tmp_path: Path,
) -> None:
    root = tmp_path / "secrets"
    for folder in ("billing", "gone-workspace"):
        (root / folder).mkdir(parents=True)
        (root / folder / "b.meta.json").write_text("{}")
    routes = [{"name": "b", "targets": [{"sink": "file", "dir": str(root / "billing")}]}]
    settings = settings_of(tmp_path, routes)
    assert unconfigured_workspaces(settings) == {"gone-workspace": ["b"]}


def test_run_once_delivers_a_routed_credential_to_every_target(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme = seed(emulator)
    acme.add_key("app-billing", days_left=5)
    acme.add_key("app-other", days_left=5)
    key = tmp_path / "admin-key"
    key.write_text(acme.admin_secret)
    first, second, root = tmp_path / "billing-a", tmp_path / "billing-b", tmp_path / "secrets"
    routes = [
        {
            "name": "app-billing*",
            "targets": [{"sink": "file", "dir": str(first)}, {"sink": "file", "dir": str(second)}],
        }
    ]
    path = tmp_path / "workspaces.json"
    entry = {"name": "acme-eu", "api_key_file": str(key), "credentials": routes}
    path.write_text(json.dumps({"workspaces": [entry]}))
    env = acme.env(root, ROTATOR_API_KEY="", ROTATOR_WORKSPACES_FILE=str(path))
    result = run_cli(["run-once"], env, tmp_path)
    assert result.returncode == 0, result.describe()
    # Both targets hold the one new key, with the same record; it works.
    secrets = {folder: (folder / "app-billing").read_text() for folder in (first, second)}
    assert secrets[first] == secrets[second]
    assert works(emulator, secrets[first])
    records = [json.loads((folder / "app-billing.meta.json").read_text()) for folder in secrets]
    assert records[0]["key_id"] == records[1]["key_id"]
    assert {k["id"] for k in acme.live_keys("app-billing")} >= {records[0]["key_id"]}
    # The workspace's own sink holds the other credential only.
    assert sorted(p.name for p in (root / "acme-eu").iterdir() if not p.name.startswith(".")) == [
        "app-other",
        "app-other.history.json",
        "app-other.meta.json",
    ]
