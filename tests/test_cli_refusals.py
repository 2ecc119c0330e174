"""What a pass would refuse, every command refuses first: ``check-config`` and ``run-once``
(and ``serve``, ``plan``, ``status``, ``rotate``) end with exit 2 at start, the same line naming
the variable, nothing changed. Real subprocesses against the emulator, as ops run them.

Two kinds of refusal: what the settings name on this host (a kubeconfig that is not one, a
folder that cannot be created, a program not on PATH, a Lease with no API server), and two
workspaces that name one place however they spell it (``X`` and ``X/../X``, a link, a template
without ``{workspace}``, one program).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli_support import CliResult, Seeded, closed_port, run_cli, seed
from tests.k8s.apiserver import write_kubeconfig

#: A program that surely exists, and the same one by another spelling (found on PATH).
TRUE_PATH = "/bin/true"


@pytest.fixture
def acme(emulator: object) -> Seeded:
    return seed(emulator)  # type: ignore[arg-type]


def refused_alike(
    acme: Seeded, tmp_path: Path, env: dict[str, str], commands: list[list[str]]
) -> list[CliResult]:
    """Run each command; each must be exit 2 with the same problem lines and change nothing."""
    results = [run_cli(command, env, tmp_path) for command in commands]
    for result in results:
        assert result.returncode == 2, result.describe()
        assert result.stdout == ""
        assert result.stderr.startswith("rotator: configuration error:\n"), result.describe()
        assert "Traceback" not in result.stderr
        assert result.stderr == results[0].stderr, "every command refuses the same way"
    assert acme.emu.request_log() == [], "refused before any request"
    return results


def assert_refused(acme: Seeded, tmp_path: Path, env: dict[str, str], *fragments: str) -> list[str]:
    """check-config and run-once both refuse, with lines holding every fragment."""
    results = refused_alike(acme, tmp_path, env, [["check-config"], ["run-once"]])
    lines = results[0].stderr.splitlines()[1:]
    assert any(all(f in line for f in fragments) for line in lines), results[0].describe()
    return lines


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- what the settings name on this host -------------------------------------------------------


@pytest.fixture
def no_kubernetes(tmp_path: Path) -> dict[str, str]:
    """An environment with no kubeconfig anywhere (a HOME of its own, no KUBECONFIG)."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "KUBECONFIG": ""}


KUBECONFIGS = {
    "not-yaml": "apiVersion: v1\nclusters: [\n",
    "not-a-mapping": "- apiVersion\n- v1\n",
    "a-mapping-the-client-crashes-on": "current-context: x\ncontexts: 5\n",
}


@pytest.mark.parametrize("text", KUBECONFIGS.values(), ids=KUBECONFIGS.keys())
def test_a_kubeconfig_that_is_not_one(
    acme: Seeded, tmp_path: Path, no_kubernetes: dict[str, str], text: str
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    env = acme.env(
        tmp_path / "unused",
        **no_kubernetes,
        ROTATOR_SINK="kubernetes",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_KUBERNETES_KUBECONFIG=str(kubeconfig),
        ROTATOR_LOCK_DIR=str(tmp_path / "lock"),
    )
    assert_refused(acme, tmp_path, env, "ROTATOR_SINK_KUBERNETES_KUBECONFIG: cannot be used")
    assert not (tmp_path / "lock").exists()


def test_the_kubernetes_sink_outside_a_cluster_needs_a_kubeconfig(
    acme: Seeded, tmp_path: Path, no_kubernetes: dict[str, str]
) -> None:
    env = acme.env(
        tmp_path / "unused",
        **no_kubernetes,
        ROTATOR_SINK="kubernetes",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_LOCK_DIR=str(tmp_path / "lock"),
    )
    assert_refused(
        acme, tmp_path, env, "ROTATOR_SINK_KUBERNETES_KUBECONFIG: unset", "not in a cluster"
    )


@pytest.mark.parametrize(
    ("sink", "variable"),
    [
        (
            {
                "ROTATOR_SINK": "vault",
                "ROTATOR_SINK_VAULT_ADDR": "http://127.0.0.1:8200",
                "ROTATOR_SINK_VAULT_TOKEN": "hvs.not-a-token",
                "ROTATOR_SINK_VAULT_PATH": "apps/billing",
            },
            "ROTATOR_SINK_VAULT_PATH",
        ),
        (
            {
                "ROTATOR_SINK": "aws-secrets-manager",
                "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": "eu-west-1",
                "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID": "apps/{workspace}/billing",
            },
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID",
        ),
    ],
    ids=["vault", "aws-secrets-manager"],
)
def test_a_name_template_without_credential(
    acme: Seeded, tmp_path: Path, sink: dict[str, str], variable: str
) -> None:
    env = acme.env(
        tmp_path / "unused", **sink, ROTATOR_SINK_FILE_DIR="", ROTATOR_LOCK_DIR=str(tmp_path)
    )
    assert_refused(acme, tmp_path, env, f"{variable}: must contain {{credential}}")


def test_a_lease_outside_a_cluster_without_a_kubeconfig(
    acme: Seeded, tmp_path: Path, no_kubernetes: dict[str, str]
) -> None:
    sink_dir = tmp_path / "secrets"
    env = acme.env(sink_dir, **no_kubernetes, ROTATOR_LOCK="lease")
    assert_refused(acme, tmp_path, env, "ROTATOR_LOCK: lease needs a Kubernetes API server")
    assert not sink_dir.exists()


def test_a_lease_outside_a_cluster_with_a_kubeconfig_is_accepted(
    acme: Seeded, tmp_path: Path, no_kubernetes: dict[str, str]
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.1:6443", "t")
    env = acme.env(tmp_path / "secrets", **no_kubernetes, ROTATOR_LOCK="lease")
    env["KUBECONFIG"] = str(kubeconfig)
    result = run_cli(["check-config"], env, tmp_path)
    assert result.returncode == 0, result.describe()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1 :8765", "http://exa mple.com", "http://ex\tample"]
)
def test_an_api_url_with_white_space(acme: Seeded, tmp_path: Path, url: str) -> None:
    env = acme.env(tmp_path / "secrets", ROTATOR_API_URL=url)
    assert_refused(acme, tmp_path, env, "ROTATOR_API_URL: must be an http(s) URL without white")


def test_a_sink_folder_that_cannot_be_created(acme: Seeded, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env = acme.env(tmp_path / "a-file" / "secrets")
    assert_refused(acme, tmp_path, env, "ROTATOR_SINK_FILE_DIR: ", "cannot be created")


def test_a_lock_folder_that_is_a_file(acme: Seeded, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    sink_dir = tmp_path / "secrets"
    env = acme.env(sink_dir, ROTATOR_LOCK_DIR=str(tmp_path / "a-file"))
    assert_refused(acme, tmp_path, env, "ROTATOR_LOCK_DIR: ", "is not a folder")
    assert not sink_dir.exists()


def test_a_lock_file_that_is_not_a_file(acme: Seeded, tmp_path: Path) -> None:
    sink_dir = tmp_path / "secrets"
    (sink_dir / ".rotator.lock").mkdir(parents=True)
    env = acme.env(sink_dir)
    assert_refused(acme, tmp_path, env, "ROTATOR_SINK_FILE_DIR: ", "is not a regular file")
    assert files_under(sink_dir) == [".rotator.lock"]


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("no-such-store-program put", "is not an executable file on PATH"),
        ("{tmp}/missing/store", "does not exist"),
        ("{tmp}/not-executable", "is not an executable file"),
        ("{tmp}", "is not an executable file"),
    ],
    ids=["not-on-path", "no-such-file", "not-executable", "a-folder"],
)
def test_an_exec_program_that_cannot_run(
    acme: Seeded, tmp_path: Path, command: str, fragment: str
) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\nexit 0\n")
    env = acme.env(
        tmp_path / "unused",
        ROTATOR_SINK="exec",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_EXEC_COMMAND=command.replace("{tmp}", str(tmp_path)),
        ROTATOR_LOCK_DIR=str(tmp_path / "lock"),
    )
    assert_refused(acme, tmp_path, env, "ROTATOR_SINK_EXEC_COMMAND: the program", fragment)
    assert not (tmp_path / "lock").exists()


def test_a_file_lock_outside_a_cluster_needs_a_folder_whatever_the_sink(
    acme: Seeded, tmp_path: Path
) -> None:
    # ROTATOR_LOCK=auto outside a cluster is a file lock: with the exec sink it has no folder.
    env = acme.env(
        tmp_path / "unused",
        ROTATOR_SINK="exec",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_EXEC_COMMAND=TRUE_PATH,
    )
    assert_refused(acme, tmp_path, env, "ROTATOR_LOCK_DIR: required when the pass lock is a file")


def test_every_command_refuses_at_start_the_same_way(acme: Seeded, tmp_path: Path) -> None:
    acme.add_key("app-billing", days_left=5)
    env = acme.env(
        tmp_path / "unused",
        ROTATOR_SINK="exec",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_EXEC_COMMAND="no-such-store-program",
        ROTATOR_LOCK_DIR=str(tmp_path / "lock"),
        ROTATOR_HTTP_PORT=str(closed_port()),
    )
    commands = [
        ["check-config"],
        ["run-once"],
        ["serve"],
        ["plan"],
        ["status", "--json"],
        ["rotate", "app-billing", "--now"],
    ]
    results = refused_alike(acme, tmp_path, env, commands)
    assert "ROTATOR_SINK_EXEC_COMMAND: the program 'no-such-store-program'" in results[0].stderr
    assert files_under(tmp_path) == []  # no lock, no sink file, nothing


# --- two workspaces, one place ----------------------------------------------------------------


def workspaces_env(
    acme: Seeded,
    tmp_path: Path,
    entries: list[dict[str, object]],
    secrets: tuple[str, ...] = (),
    **variables: str,
) -> dict[str, str]:
    """An environment with a workspaces file of ``entries`` (a name and a sink mapping each);
    each workspace's credential is the next of ``secrets``, else the emulator's admin key."""
    listed = []
    for index, entry in enumerate(entries):
        key_file = tmp_path / f"key-{index}"
        key_file.write_text(secrets[index] if index < len(secrets) else acme.admin_secret)
        listed.append({"api_key_file": str(key_file), **entry})
    path = tmp_path / "workspaces.yaml"
    path.write_text(json.dumps({"workspaces": listed}))
    env = acme.env(tmp_path / "secrets", ROTATOR_WORKSPACES_FILE=str(path), ROTATOR_API_KEY="")
    env.update(variables)
    return {name: value for name, value in env.items() if value}


def assert_shared(
    acme: Seeded, tmp_path: Path, env: dict[str, str], field: str, place: str
) -> None:
    lines = assert_refused(acme, tmp_path, env, "workspaces[1]")
    assert lines == [
        f"  ROTATOR_WORKSPACES_FILE: workspaces[1].{field}: workspace 'acme-us' and workspaces[0] "
        f"('acme-eu') would share {place}: two workspaces must never share a place"
    ]


@pytest.mark.parametrize("lock_dir", [False, True], ids=["lock-in-the-sink", "lock-dir-set"])
@pytest.mark.parametrize("spelling", ["{x}/../x", "{x}/./", "{link}"])
def test_two_workspaces_in_one_folder_by_two_spellings(
    acme: Seeded, tmp_path: Path, spelling: str, lock_dir: bool
) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    other = spelling.format(x=folder, link=tmp_path / "link")
    env = workspaces_env(
        acme,
        tmp_path,
        [
            {"name": "acme-eu", "sink": {"dir": str(folder)}},
            {"name": "acme-us", "sink": {"dir": other}},
        ],
        ROTATOR_LOCK_DIR=str(tmp_path / "locks") if lock_dir else "",
    )
    assert_shared(acme, tmp_path, env, "sink.dir", f"the folder {folder}")
    assert files_under(folder) == []
    assert not (tmp_path / "locks").exists()


def test_two_workspaces_locking_one_folder(acme: Seeded, tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    (locks / "acme-eu").mkdir(parents=True)
    (locks / "acme-us").symlink_to(locks / "acme-eu")
    env = workspaces_env(
        acme,
        tmp_path,
        [{"name": "acme-eu"}, {"name": "acme-us"}],
        ROTATOR_LOCK_DIR=str(locks),
    )
    assert_shared(acme, tmp_path, env, "lock folder", f"the lock folder {locks / 'acme-eu'}")
    assert files_under(locks) == ["acme-eu", "acme-us"]


def test_two_vault_workspaces_with_a_path_without_workspace(acme: Seeded, tmp_path: Path) -> None:
    env = workspaces_env(
        acme,
        tmp_path,
        [{"name": "acme-eu"}, {"name": "acme-us", "sink": {"addr": "HTTP://LOCALHOST:80/"}}],
        ROTATOR_SINK="vault",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_VAULT_ADDR="http://localhost",
        ROTATOR_SINK_VAULT_TOKEN="hvs.not-a-token",
        ROTATOR_SINK_VAULT_PATH="apps/{credential}",
        ROTATOR_LOCK_DIR=str(tmp_path / "locks"),
    )
    assert_shared(
        acme,
        tmp_path,
        env,
        "sink.path",
        "the Vault paths 'secret/apps/{credential}' of http://localhost:80",
    )


def test_two_kubernetes_workspaces_in_one_namespace_without_workspace(
    acme: Seeded, tmp_path: Path
) -> None:
    # Two kubeconfig files, one API server: one cluster.
    first = write_kubeconfig(tmp_path / "kubeconfig-1", "https://10.0.0.1:6443", "token-1")
    second = write_kubeconfig(tmp_path / "kubeconfig-2", "https://10.0.0.1:6443/", "token-2")
    env = workspaces_env(
        acme,
        tmp_path,
        [
            {"name": "acme-eu", "sink": {"kubeconfig": str(first)}},
            {"name": "acme-us", "sink": {"kubeconfig": str(second)}},
        ],
        ROTATOR_SINK="kubernetes",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_KUBERNETES_NAMESPACE="apps",
        ROTATOR_LOCK_DIR=str(tmp_path / "locks"),
    )
    assert_shared(
        acme,
        tmp_path,
        env,
        "sink.secret_name",
        "the Secrets 'pm-api-key-{credential}' in namespace 'apps' of https://10.0.0.1:6443",
    )


def test_two_exec_workspaces_with_one_program(acme: Seeded, tmp_path: Path) -> None:
    env = workspaces_env(
        acme,
        tmp_path,
        [
            {"name": "acme-eu", "sink": {"command": [TRUE_PATH, "--store"]}},
            {"name": "acme-us", "sink": {"command": ["true", "--store"]}},  # found on PATH
        ],
        ROTATOR_SINK="exec",
        ROTATOR_SINK_FILE_DIR="",
        ROTATOR_SINK_EXEC_COMMAND=TRUE_PATH,
        ROTATOR_LOCK_DIR=str(tmp_path / "locks"),
        PATH=os.path.dirname(os.path.realpath(TRUE_PATH)),
    )
    program = os.path.realpath(TRUE_PATH)
    assert_shared(
        acme, tmp_path, env, "sink.command", f"the program {program} with the arguments ['--store']"
    )


DISTINCT = {
    "file": ({}, [{}, {}]),
    "kubernetes": (
        {
            "ROTATOR_SINK": "kubernetes",
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME": "{workspace}-{credential}",
        },
        [{}, {}],
    ),
    "kubernetes-namespaces": (
        {"ROTATOR_SINK": "kubernetes"},
        [{"namespace": "eu"}, {"namespace": "us"}],
    ),
    "vault": (
        {
            "ROTATOR_SINK": "vault",
            "ROTATOR_SINK_VAULT_ADDR": "http://127.0.0.1:8200",
            "ROTATOR_SINK_VAULT_TOKEN": "hvs.not-a-token",
        },
        [{}, {}],
    ),
    "vault-mounts": (
        {
            "ROTATOR_SINK": "vault",
            "ROTATOR_SINK_VAULT_ADDR": "http://127.0.0.1:8200",
            "ROTATOR_SINK_VAULT_TOKEN": "hvs.not-a-token",
            "ROTATOR_SINK_VAULT_PATH": "apps/{credential}",
        },
        [{"mount": "eu"}, {"mount": "us"}],
    ),
    "aws-secrets-manager": (
        {
            "ROTATOR_SINK": "aws-secrets-manager",
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": "eu-west-1",
        },
        [{}, {}],
    ),
    "exec": (
        {"ROTATOR_SINK": "exec", "ROTATOR_SINK_EXEC_COMMAND": TRUE_PATH},
        [{"command": [TRUE_PATH, "eu"]}, {"command": [TRUE_PATH, "us"]}],
    ),
}


@pytest.mark.parametrize(("variables", "sinks"), DISTINCT.values(), ids=DISTINCT.keys())
def test_distinct_places_are_accepted(
    acme: Seeded,
    tmp_path: Path,
    variables: dict[str, str],
    sinks: list[dict[str, object]],
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.1:6443", "token")
    extra = {"KUBECONFIG": str(kubeconfig)}
    if variables:
        extra |= {"ROTATOR_SINK_FILE_DIR": "", "ROTATOR_LOCK_DIR": str(tmp_path / "locks")}
    entries = [
        {"name": name, **({"sink": sink} if sink else {})}
        for name, sink in zip(["acme-eu", "acme-us"], sinks, strict=True)
    ]
    env = workspaces_env(acme, tmp_path, entries, **variables, **extra)
    result = run_cli(["check-config"], env, tmp_path)
    assert result.returncode == 0, result.describe()


def test_two_workspaces_in_folders_of_their_own_rotate(acme: Seeded, tmp_path: Path) -> None:
    acme.add_key("app-billing", days_left=5)
    us = acme.emu.add_workspace("Acme US")
    _, us_admin = acme.emu.add_key(
        us, "rotator-admin", expires=acme.emu.now() + timedelta(days=700)
    )
    acme.emu.add_key(us, "app-billing", expires=acme.emu.now() + timedelta(days=5))
    env = workspaces_env(
        acme,
        tmp_path,
        [{"name": "acme-eu"}, {"name": "acme-us"}],
        (acme.admin_secret, us_admin),
        ROTATOR_GRACE_HOURS="0",
    )
    result = run_cli(["run-once"], env, tmp_path)
    assert result.returncode == 0, result.describe()
    for name in ("acme-eu", "acme-us"):
        assert sorted(files_under(tmp_path / "secrets" / name)) == [
            ".rotator.lock",
            "app-billing",
            "app-billing.history.json",
            "app-billing.meta.json",
        ]
