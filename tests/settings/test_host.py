"""What the settings name on this host (rotator.settings.host), through ``load_settings``: each
problem the Kubernetes client, the file sink or the lock would meet at a pass's start is one
line at load, naming the variable; ``parse_settings`` (values alone) does not look.

The command-line view of the same rules (check-config and run-once alike) is in
tests/test_cli_refusals.py; these are the finer cases, in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotator.errors import ConfigError
from rotator.settings import load_settings, parse_settings
from tests.k8s.apiserver import write_kubeconfig
from tests.settings.support import MINIMAL


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


@pytest.fixture
def kubernetes(tmp_path: Path) -> dict[str, str]:
    """The kubernetes sink with a lock folder, and no kubeconfig anywhere by default."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        **MINIMAL,
        "HOME": str(home),
        "ROTATOR_SINK": "kubernetes",
        "ROTATOR_LOCK_DIR": str(tmp_path / "locks"),
    }


def kubeconfig_document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


BROKEN_KUBECONFIGS = [
    (kubeconfig_document(**{"current-context": None}), "has no current-context"),
    (kubeconfig_document(**{"current-context": "y"}), "the current-context 'y' is not among"),
    (kubeconfig_document(contexts={"x": {}}), "contexts must be a list"),
    (kubeconfig_document(users=[{"name": "u", "user": 7}]), "each of users must be a mapping"),
    (
        kubeconfig_document(contexts=[{"name": "x", "context": {"cluster": "d", "user": "u"}}]),
        "the context 'x' names no cluster it defines",
    ),
    (
        kubeconfig_document(clusters=[{"name": "c", "cluster": {"server": 5}}]),
        "the cluster 'c' has no server",
    ),
    (
        kubeconfig_document(
            clusters=[
                {"name": "c", "cluster": {"server": "https://h", "certificate-authority": "ca"}}
            ]
        ),
        "its certificate-authority",
    ),
    (
        kubeconfig_document(users=[{"name": "u", "user": {"client-key": "/no/such/key"}}]),
        "its client-key '/no/such/key' is not a file",
    ),
]


@pytest.mark.parametrize(("document", "expected"), BROKEN_KUBECONFIGS)
def test_a_kubeconfig_the_client_would_refuse_or_crash_on(
    kubernetes: dict[str, str], tmp_path: Path, document: dict[str, object], expected: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(document))
    (line,) = problems_of({**kubernetes, "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(path)})
    assert line.startswith("ROTATOR_SINK_KUBERNETES_KUBECONFIG: cannot be used: ")
    assert expected in line
    # Values alone are fine: the file is looked at only by load_settings.
    parse_settings({**kubernetes, "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(path)})


def test_a_file_a_kubeconfig_also_gives_inline_is_not_read(
    kubernetes: dict[str, str], tmp_path: Path
) -> None:
    cluster = {
        "server": "https://h",
        "certificate-authority": "gone",
        "certificate-authority-data": "Q0E=",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(kubeconfig_document(clusters=[{"name": "c", "cluster": cluster}])))
    load_settings({**kubernetes, "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(path)})


def test_a_kubeconfig_that_is_a_folder_or_unreadable_text(
    kubernetes: dict[str, str], tmp_path: Path
) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    assert problems_of({**kubernetes, "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(tmp_path)}) == [
        f"ROTATOR_SINK_KUBERNETES_KUBECONFIG: cannot be used: {str(tmp_path)!r} is not a file"
    ]
    assert problems_of({**kubernetes, "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(binary)}) == [
        f"ROTATOR_SINK_KUBERNETES_KUBECONFIG: cannot be used: {str(binary)!r} is not UTF-8 text"
    ]


def test_kubeconfig_files_of_the_environment_are_merged_as_the_client_merges_them(
    kubernetes: dict[str, str], tmp_path: Path
) -> None:
    # The first file has the current context, the second its cluster: together, one config.
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(json.dumps(kubeconfig_document(clusters=None)))
    second.write_text(json.dumps({"clusters": kubeconfig_document()["clusters"]}))
    load_settings({**kubernetes, "KUBECONFIG": f"{first}:{tmp_path / 'absent'}:{second}"})
    (line,) = problems_of({**kubernetes, "KUBECONFIG": str(first)})
    assert "names no cluster it defines" in line
    assert line.startswith("ROTATOR_SINK_KUBERNETES_KUBECONFIG: unset, and no Kubernetes")


def test_the_home_kubeconfig_is_used_without_one_set(
    kubernetes: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "home" / ".kube").mkdir()
    write_kubeconfig(tmp_path / "home" / ".kube" / "config", "https://10.0.0.1", "t")
    load_settings(kubernetes)


def test_a_vault_ca_bundle_that_cannot_be_loaded(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate")
    vault = {
        **MINIMAL,
        "ROTATOR_SINK": "vault",
        "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com",
        "ROTATOR_SINK_VAULT_TOKEN": "hvs.x",
        "ROTATOR_LOCK_DIR": str(tmp_path / "locks"),
    }
    assert problems_of({**vault, "ROTATOR_SINK_VAULT_CACERT": str(bundle)}) == [
        f"ROTATOR_SINK_VAULT_CACERT: cannot load {str(bundle)!r}: not a PEM bundle of CA "
        "certificates"
    ]
    (line,) = problems_of({**vault, "ROTATOR_SINK_VAULT_CACERT": str(tmp_path / "none.pem")})
    assert line.endswith("No such file or directory")


def test_a_folder_behind_a_link_to_nothing(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    folder = tmp_path / "dangling" / "secrets"
    assert problems_of({**MINIMAL, "ROTATOR_SINK_FILE_DIR": str(folder)}) == [
        f"ROTATOR_SINK_FILE_DIR: {str(tmp_path / 'dangling')!r} is a symbolic link to nothing"
    ]


def test_a_folder_that_exists_or_can_be_created_is_fine(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "new" / "deeper"):
        settings = load_settings({**MINIMAL, "ROTATOR_SINK_FILE_DIR": str(folder)})
        assert settings.workspaces[0].lock_dir == folder
    assert not (tmp_path / "new").exists(), "checking creates nothing"


def test_a_workspace_entry_is_named_when_it_set_the_value(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("pm-0123456789")
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "workspaces.yaml"
    path.write_text(
        "workspaces:\n"
        f"  - {{name: eu, api_key_file: {key}, sink: {{dir: {tmp_path / 'a-file'}}}}}\n"
        f"  - {{name: us, api_key_file: {key}}}\n"
    )
    environ = {
        "ROTATOR_WORKSPACES_FILE": str(path),
        "ROTATOR_KEY_NAMES": "*",
        "ROTATOR_SINK_FILE_DIR": str(tmp_path / "a-file" / "x"),
    }
    assert problems_of(environ) == [
        f"ROTATOR_SINK_FILE_DIR: {str(tmp_path / 'a-file' / 'x' / 'us')!r} cannot be created: "
        f"{str(tmp_path / 'a-file')!r} is not a folder",
        f"ROTATOR_WORKSPACES_FILE: workspaces[0].sink.dir: {str(tmp_path / 'a-file')!r} is not "
        "a folder",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ROTATOR_SINK_VAULT_PATH", "apps//{credential}", "must not have an empty, '.' or '..'"),
        ("ROTATOR_SINK_VAULT_PATH", "apps/../{credential}", "must not have an empty, '.' or '..'"),
        ("ROTATOR_SINK_VAULT_MOUNT", "kv//v2", "must not have an empty, '.' or '..' segment"),
        ("ROTATOR_SINK_VAULT_MOUNT", "k v", "may hold only letters, digits, '.', '_', '-' and '/'"),
        ("ROTATOR_SINK_VAULT_MOUNT", "{workspace}", "may hold only letters, digits"),
    ],
)
def test_vault_paths_the_sink_would_refuse(variable: str, value: str, expected: str) -> None:
    vault = {
        **MINIMAL,
        "ROTATOR_SINK": "vault",
        "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com",
        "ROTATOR_SINK_VAULT_TOKEN": "hvs.x",
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings({**vault, variable: value})
    (line,) = caught.value.problems
    assert line.startswith(f"{variable}: {expected}")
