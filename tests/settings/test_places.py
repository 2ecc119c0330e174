"""Identity of places (rotator.settings.places): two workspaces whose settings name one real
place, however spelt, are refused at load, naming both; distinct places are accepted.

The command-line view (check-config and run-once, the folder spellings, a link, one program)
is in tests/test_cli_refusals.py; these are the finer spellings of each sink, in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotator.errors import ConfigError
from rotator.settings import load_settings
from tests.k8s.apiserver import write_kubeconfig


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "key"
    key.write_text("pm-0123456789abcdef")
    home = tmp_path / "home"
    home.mkdir()
    return {
        "HOME": str(home),
        "ROTATOR_KEY_NAMES": "billing-*",
        "ROTATOR_LOCK_DIR": str(tmp_path / "locks"),
        "KEY": str(key),  # read by two_workspaces, never by the settings
    }


def two_workspaces(
    tmp_path: Path, environ: dict[str, str], eu: dict[str, object], us: dict[str, object]
) -> dict[str, str]:
    entries = [
        {"name": name, "api_key_file": environ["KEY"], "sink": sink}
        for name, sink in (("acme-eu", eu), ("acme-us", us))
    ]
    path = tmp_path / "workspaces.json"
    path.write_text(json.dumps({"workspaces": entries}))
    variables = {k: v for k, v in environ.items() if k != "KEY"}
    return {**variables, "ROTATOR_WORKSPACES_FILE": str(path)}


def shared(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    (line,) = caught.value.problems
    assert line.startswith("ROTATOR_WORKSPACES_FILE: workspaces[1].")
    assert "workspace 'acme-us' and workspaces[0] ('acme-eu') would share " in line
    return line


VAULT = {
    "ROTATOR_SINK": "vault",
    "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com",
    "ROTATOR_SINK_VAULT_TOKEN": "hvs.x",
    "ROTATOR_SINK_VAULT_PATH": "apps/{credential}",
}


@pytest.mark.parametrize(
    ("eu", "us", "same"),
    [
        ({}, {"addr": "https://VAULT.example.com:443/"}, True),
        ({}, {"mount": "/secret/"}, True),
        ({}, {"addr": "https://vault.example.com:8200"}, False),
        ({}, {"mount": "kv"}, False),
        ({"namespace": "eu"}, {"namespace": "us"}, False),
        ({}, {"path": "apps/{workspace}/{credential}"}, False),
        # Spelt differently, rendered the same: acme-us's template names acme-eu's paths.
        ({"path": "apps/acme-eu/{credential}"}, {"path": "apps/acme-eu/{credential}"}, True),
        ({"path": "apps/{workspace}/{credential}"}, {"path": "apps/acme-eu/{credential}"}, True),
    ],
)
def test_vault(
    tmp_path: Path,
    environ: dict[str, str],
    eu: dict[str, object],
    us: dict[str, object],
    same: bool,
) -> None:
    both = two_workspaces(tmp_path, {**environ, **VAULT}, eu, us)
    if same:
        assert "the Vault paths " in shared(both)
    else:
        load_settings(both)


AWS = {
    "ROTATOR_SINK": "aws-secrets-manager",
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": "eu-west-1",
}


@pytest.mark.parametrize(
    ("eu", "us", "same"),
    [
        ({"secret_id": "pm/{credential}"}, {"secret_id": "pm/{credential}"}, True),
        (
            {"secret_id": "pm/{credential}"},
            {"secret_id": "pm/{credential}", "region": "us-east-1"},
            False,
        ),
        (
            {"secret_id": "pm/{credential}", "endpoint_url": "http://127.0.0.1:5000"},
            {"secret_id": "pm/{credential}", "endpoint_url": "http://localhost:5000"},
            False,  # two names of one host are two endpoints as far as a name can tell
        ),
        ({}, {}, False),  # the default template holds {workspace}
    ],
)
def test_aws_secrets_manager(
    tmp_path: Path,
    environ: dict[str, str],
    eu: dict[str, object],
    us: dict[str, object],
    same: bool,
) -> None:
    both = two_workspaces(tmp_path, {**environ, **AWS}, eu, us)
    if same:
        assert "the secrets 'pm/{credential}' of eu-west-1" in shared(both)
    else:
        load_settings(both)


def test_kubernetes_the_default_namespace_spelt_or_not(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    # Outside a cluster an unset namespace is `default`: the same as writing it.
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.1:6443", "t")
    both = two_workspaces(
        tmp_path,
        {**environ, "ROTATOR_SINK": "kubernetes", "KUBECONFIG": str(kubeconfig)},
        {},
        {"namespace": "default"},
    )
    assert "in namespace 'default' of https://10.0.0.1:6443" in shared(both)


def test_kubernetes_two_clusters_are_two_places(tmp_path: Path, environ: dict[str, str]) -> None:
    first = write_kubeconfig(tmp_path / "first", "https://10.0.0.1:6443", "t")
    second = write_kubeconfig(tmp_path / "second", "https://10.0.0.2:6443", "t")
    load_settings(
        two_workspaces(
            tmp_path,
            {**environ, "ROTATOR_SINK": "kubernetes"},
            {"kubeconfig": str(first)},
            {"kubeconfig": str(second)},
        )
    )


def test_lock_folders_count_only_for_a_file_lock(tmp_path: Path, environ: dict[str, str]) -> None:
    locks = tmp_path / "locks"
    (locks / "acme-eu").mkdir(parents=True)
    (locks / "acme-us").symlink_to(locks / "acme-eu")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.1:6443", "t")
    both = two_workspaces(tmp_path, {**environ, **VAULT}, {"path": "eu/{credential}"}, {})
    assert "the lock folder " in shared(both)
    # With a Lease, the folders hold no lock: nothing is shared.
    load_settings({**both, "ROTATOR_LOCK": "lease", "KUBECONFIG": str(kubeconfig)})


def test_one_line_per_workspace_that_shares(tmp_path: Path, environ: dict[str, str]) -> None:
    entries = [
        {"name": name, "api_key_file": environ["KEY"], "sink": {"dir": str(tmp_path / "x")}}
        for name in ("a", "b", "c")
    ]
    path = tmp_path / "workspaces.json"
    path.write_text(json.dumps({"workspaces": entries}))
    variables = {k: v for k, v in environ.items() if k not in ("KEY", "ROTATOR_LOCK_DIR")}
    with pytest.raises(ConfigError) as caught:
        load_settings({**variables, "ROTATOR_WORKSPACES_FILE": str(path)})
    folder = tmp_path / "x"
    assert caught.value.problems == [
        f"ROTATOR_WORKSPACES_FILE: workspaces[{i}].sink.dir: workspace {name!r} and workspaces[0] "
        f"('a') would share the folder {folder}: two workspaces must never share a place"
        for i, name in ((1, "b"), (2, "c"))
    ]
