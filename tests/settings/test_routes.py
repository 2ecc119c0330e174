"""``credentials:`` in ROTATOR_WORKSPACES_FILE: each workspace's routes of credentials to their
targets, each target validated by its kind's settings model over that kind's variables; every
problem as ``workspaces[i].credentials[j].targets[k].FIELD``; the places targets name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from rotator.errors import ConfigError
from rotator.settings import (
    AwsSecretsManagerSinkSettings,
    ExecSinkSettings,
    FileSinkSettings,
    KubernetesSinkSettings,
    VaultSinkSettings,
    load_settings,
    parse_settings,
    redacted_workspaces,
)
from tests.k8s.apiserver import write_kubeconfig
from tests.settings.support import MINIMAL, problems_of

W = "ROTATOR_WORKSPACES_FILE"
TOKEN = "hvs.route-target-token"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text("pm-0123456789abcdef")
    return path


def workspaces(tmp_path: Path, key: Path, *routes_of_each: list[Any] | None) -> Path:
    """A workspaces file of acme-eu, acme-us, ... with the given ``credentials:`` each (None:
    no ``credentials:`` at all)."""
    names = ("acme-eu", "acme-us", "acme-ap")
    entries: list[dict[str, Any]] = []
    for name, routes in zip(names, routes_of_each, strict=False):
        entry: dict[str, Any] = {"name": name, "api_key_file": str(key)}
        if routes is not None:
            entry["credentials"] = routes
        entries.append(entry)
    path = tmp_path / "workspaces.json"
    path.write_text(json.dumps({"workspaces": entries}))
    return path


def environ(path: Path, **variables: str) -> dict[str, str]:
    return {W: str(path), "ROTATOR_KEY_NAMES": "*", **variables}


# --- parsing -------------------------------------------------------------------------------------


def test_routes_with_their_targets_and_the_variables_as_defaults(tmp_path: Path, key: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    path = workspaces(
        tmp_path,
        key,
        [
            {
                "name": "billing-*",
                "targets": [
                    {
                        "sink": "kubernetes",
                        "namespace": "billing",
                        "restart": "Deployment/billing-sync",
                    },
                    {"sink": "Vault", "path": "apps/billing/{credential}", "mount": "kv2"},
                ],
            },
            {"name": "sync", "targets": [{"sink": "file", "dir": "/srv/sync"}]},
            {
                "name": 2024,  # YAML reads digits as a number: still a name
                "targets": [{"sink": "kubernetes", "restart": ["Deployment/a", "StatefulSet/b"]}],
            },
        ],
    )
    settings = parse_settings(
        environ(
            path,
            ROTATOR_SINK_FILE_DIR="/srv/secrets",
            ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
            ROTATOR_SINK_VAULT_MOUNT="kv",
            ROTATOR_SINK_VAULT_TOKEN_FILE=str(token_file),
            ROTATOR_SINK_KUBERNETES_NAMESPACE="apps",
        )
    )
    (ws,) = settings.workspaces
    # The workspace's own sink is as it always was: ROTATOR_SINK's, in its subfolder.
    assert ws.sink == FileSinkSettings(dir=Path("/srv/secrets/acme-eu"))
    assert settings.sink == FileSinkSettings(dir=Path("/srv/secrets"))
    billing, sync, numbered = ws.credentials
    assert billing.name == "billing-*"
    assert not billing.is_one_name
    assert billing.targets == (
        KubernetesSinkSettings(
            namespace="billing", restart=(("billing-*", (("Deployment", "billing-sync"),)),)
        ),
        VaultSinkSettings(
            addr="https://vault.example.com",
            mount="kv2",  # the target's value wins over ROTATOR_SINK_VAULT_MOUNT
            path="apps/billing/{credential}",
            token=SecretStr(TOKEN),  # from ROTATOR_SINK_VAULT_TOKEN_FILE, never from the file
        ),
    )
    # A file target's folder is the folder itself: no workspace subfolder.
    assert (sync.name, sync.is_one_name) == ("sync", True)
    assert sync.targets == (FileSinkSettings(dir=Path("/srv/sync")),)
    assert numbered.name == "2024"
    assert numbered.targets == (
        KubernetesSinkSettings(
            namespace="apps",  # ROTATOR_SINK_KUBERNETES_NAMESPACE, as the target sets none
            restart=(("2024", (("Deployment", "a"), ("StatefulSet", "b"))),),
        ),
    )


def test_a_target_of_the_chosen_kind_takes_its_variables_not_the_workspaces_sink_values(
    tmp_path: Path, key: Path
) -> None:
    path = tmp_path / "workspaces.yaml"
    path.write_text(
        "workspaces:\n"
        f"  - {{name: acme-eu, api_key_file: {key}, sink: {{namespace: eu}},\n"
        "     credentials: [{name: sync, targets: [{sink: kubernetes, secret_key: key}]}]}\n"
    )
    settings = parse_settings(
        environ(
            path,
            ROTATOR_SINK="kubernetes",
            ROTATOR_SINK_KUBERNETES_SECRET_NAME="pm-{workspace}-{credential}",
            ROTATOR_SINK_KUBERNETES_RESTART="sync=Deployment/sync",
        )
    )
    (target,) = settings.workspaces[0].credentials[0].targets
    assert target == KubernetesSinkSettings(
        secret_name="pm-{workspace}-{credential}",
        secret_key="key",
        restart=(("sync", (("Deployment", "sync"),)),),  # the variable's, as the target sets none
    )
    assert settings.workspaces[0].sink.namespace == "eu"  # type: ignore[union-attr]


def test_an_aws_target_takes_the_region_as_every_aws_tool_does(tmp_path: Path, key: Path) -> None:
    path = workspaces(
        tmp_path, key, [{"name": "sync", "targets": [{"sink": "aws-secrets-manager"}]}]
    )
    settings = parse_settings(environ(path, AWS_REGION="eu-west-1"))
    assert settings.workspaces[0].credentials[0].targets == (
        AwsSecretsManagerSinkSettings(region="eu-west-1"),
    )


def test_without_credentials_nothing_changes(tmp_path: Path, key: Path) -> None:
    path = workspaces(tmp_path, key, None, [])
    settings = parse_settings(environ(path))
    assert [ws.credentials for ws in settings.workspaces] == [(), ()]
    assert all("credentials" not in shown for shown in redacted_workspaces(settings))
    # One workspace without a file has none either, and no other sink's variable is allowed.
    assert parse_settings(MINIMAL).workspaces[0].credentials == ()
    assert problems_of({**MINIMAL, "ROTATOR_SINK_VAULT_ADDR": "https://v"}) == [
        "ROTATOR_SINK_VAULT_ADDR: only used with ROTATOR_SINK=vault, but ROTATOR_SINK is 'file'"
    ]


def test_a_sinks_variables_need_rotator_sink_or_a_target_to_name_that_sink(
    tmp_path: Path, key: Path
) -> None:
    path = workspaces(tmp_path, key, [{"name": "sync", "targets": [{"sink": "exec"}]}])
    assert problems_of(
        environ(path, ROTATOR_SINK_EXEC_COMMAND="/bin/store", ROTATOR_SINK_VAULT_ADDR="https://v")
    ) == [
        "ROTATOR_SINK_VAULT_ADDR: only used with ROTATOR_SINK=vault or when a target in "
        f"{W} names that sink, but ROTATOR_SINK is 'file'"
    ]
    settings = parse_settings(environ(path, ROTATOR_SINK_EXEC_COMMAND="/bin/store --eu"))
    assert settings.workspaces[0].credentials[0].targets == (
        ExecSinkSettings(command=("/bin/store", "--eu")),
    )


def test_check_config_shows_routes_with_secrets_redacted(tmp_path: Path, key: Path) -> None:
    path = workspaces(
        tmp_path,
        key,
        [{"name": "billing-*", "targets": [{"sink": "vault", "path": "b/{credential}"}]}],
    )
    settings = parse_settings(
        environ(path, ROTATOR_SINK_VAULT_ADDR="https://v.example", ROTATOR_SINK_VAULT_TOKEN=TOKEN)
    )
    (shown,) = redacted_workspaces(settings)
    assert shown["credentials"] == [
        {
            "name": "billing-*",
            "targets": [
                {
                    "kind": "vault",
                    "addr": "https://v.example",
                    "mount": "secret",
                    "path": "b/{credential}",
                    "field": "api_key",
                    "auth": "token",
                    "token": "**********",
                    "role_id": None,
                    "secret_id": None,
                    "role": None,
                    "auth_mount": "token",
                    "namespace": None,
                    "cacert": None,
                }
            ],
        }
    ]
    assert TOKEN not in repr(settings)
    assert TOKEN not in json.dumps(shown)


# --- every problem, named where it is ------------------------------------------------------------

TARGET = f"{W}: workspaces[0].credentials[0].targets[0]"
ROUTE = f"{W}: workspaces[0].credentials[0]"
ROUTE_PROBLEMS: list[tuple[object, list[str]]] = [
    (
        [{"name": "a", "targets": [{"sink": "s3"}]}],
        [
            f"{TARGET}.sink: must be one of file, kubernetes, vault, aws-secrets-manager, exec, "
            "got 's3'"
        ],
    ),
    (
        [{"name": "a", "targets": [{"namespace": "x"}]}],
        [f"{TARGET}.sink: required: one of file, kubernetes, vault, aws-secrets-manager, exec"],
    ),
    (
        [{"name": "a", "targets": [{"sink": "file", "namespace": "x"}]}],
        [f"{TARGET}.namespace: not a variable of the file sink (its variables: dir)"],
    ),
    (
        [{"name": "a", "targets": [{"sink": "vault", "token": "t"}]}],
        [
            f"{TARGET}.token: a secret is not taken from the workspaces file (usually a "
            "ConfigMap); set ROTATOR_SINK_VAULT_TOKEN_FILE instead"
        ],
    ),
    (
        [{"name": "a", "targets": [{"sink": "vault", "auth": "kubernetes"}]}],
        [
            f"{TARGET}.addr: required: the Vault server's URL; set it in this target or as "
            "ROTATOR_SINK_VAULT_ADDR",
            f"{TARGET}.role: required with ROTATOR_SINK_VAULT_AUTH=kubernetes; set it in this "
            "target or as ROTATOR_SINK_VAULT_ROLE",
        ],
    ),
    (
        [{"name": "a", "targets": [{"sink": "vault", "addr": "https://v"}]}],
        [
            f"{TARGET}.token: required with ROTATOR_SINK_VAULT_AUTH=token; set "
            "ROTATOR_SINK_VAULT_TOKEN or ROTATOR_SINK_VAULT_TOKEN_FILE (a secret is not taken "
            "from the file)"
        ],
    ),
    (
        [{"name": "a", "targets": [{"sink": "exec", "command": "/x", "timeout_seconds": 0}]}],
        [f"{TARGET}.timeout_seconds: must be a number > 0 and <= 600, got 0"],
    ),
    (
        [{"name": "a", "targets": [{"sink": "kubernetes", "namespace": "Billing"}]}],
        [
            f"{TARGET}.namespace: must be a Kubernetes namespace name: lower-case letters, "
            "digits and '-', at most 63, starting and ending with a letter or digit, got 'Billing'"
        ],
    ),
    (
        [{"name": "a", "targets": [{"sink": "kubernetes", "restart": "a=Deployment/x"}]}],
        [
            f"{TARGET}.restart: names workloads only (Kind/name, ...), got 'a=Deployment/x': "
            "they are restarted after a delivery of the credentials of this entry"
        ],
    ),
    (
        [{"name": "a", "targets": [{"sink": "kubernetes", "restart": "Pod/x"}]}],
        [
            f"{TARGET}.restart: each workload is Kind/name with Kind one of Deployment, "
            "StatefulSet, DaemonSet; 'Pod/x' in 'a=Pod/x' is not"
        ],
    ),
    (
        [{"name": "a", "targets": []}],
        [
            f"{ROUTE}.targets: must list at least one target (a credential no entry matches goes "
            "to the workspace's sink)"
        ],
    ),
    (
        [{"name": "a"}],
        [
            f"{ROUTE}.targets: required: one or more targets (a credential no entry matches goes "
            "to the workspace's sink)"
        ],
    ),
    (
        [{"name": "a", "targets": {"sink": "file"}}],
        [f"{ROUTE}.targets: must be a list of targets, each a mapping with sink"],
    ),
    (
        [{"name": "a", "targets": ["file"]}],
        [f"{TARGET}: must be a mapping with sink and that sink's variables"],
    ),
    (
        [{"targets": [{"sink": "file"}]}],
        [f"{ROUTE}.name: required: a credential's base name or a glob"],
    ),
    (
        [{"name": "billing-[ab", "targets": [{"sink": "file"}]}],
        [
            f"{ROUTE}.name: the '[' at position 9 has no ']' (write [[] for a literal '['), "
            "got 'billing-[ab'"
        ],
    ),
    (
        [{"name": " a", "targets": [{"sink": "file"}]}],
        [
            f"{ROUTE}.name: must be a credential's base name or a glob, without surrounding "
            "spaces, got ' a'"
        ],
    ),
    (
        [{"name": "a", "target": [{"sink": "file"}]}],
        [
            f"{ROUTE}.target: unknown field (a credentials entry has name and targets)",
            f"{ROUTE}.targets: required: one or more targets (a credential no entry matches goes "
            "to the workspace's sink)",
        ],
    ),
    (
        [
            {
                "name": "a",
                "targets": [
                    {"sink": "exec", "command": "/bin/one"},
                    {"sink": "file"},
                    {"sink": "exec", "command": "/bin/two"},
                ],
            }
        ],
        [
            f"{ROUTE}.targets[2].sink: a second exec target: a credential may have at most one "
            "target that cannot give its secret back (an exec program only stores it), so that "
            "a target failing after the others can be brought up to date from them"
        ],
    ),
    (["a"], [f"{ROUTE}: must be a mapping with name and targets"]),
    (
        {"name": "a"},
        [f"{W}: workspaces[0].credentials: must be a list of entries, each with name and targets"],
    ),
]


@pytest.mark.parametrize(("routes", "expected"), ROUTE_PROBLEMS)
def test_each_problem_of_a_route_names_it(
    routes: Any, expected: list[str], tmp_path: Path, key: Path
) -> None:
    path = workspaces(tmp_path, key, routes)
    assert problems_of(environ(path)) == expected


def test_a_bad_variable_is_named_once_however_many_targets_inherit_it(
    tmp_path: Path, key: Path
) -> None:
    target = {"sink": "vault", "path": "a/{credential}"}
    path = workspaces(
        tmp_path,
        key,
        [{"name": "a", "targets": [target]}, {"name": "b", "targets": [target]}],
        [{"name": "c", "targets": [target]}],
    )
    assert problems_of(
        environ(path, ROTATOR_SINK_VAULT_ADDR="ftp://vault", ROTATOR_SINK_VAULT_TOKEN=TOKEN)
    ) == ["ROTATOR_SINK_VAULT_ADDR: must be an http(s) URL with a host, got 'ftp://vault'"]


def test_every_problem_of_every_route_at_once(tmp_path: Path, key: Path) -> None:
    path = workspaces(
        tmp_path,
        key,
        [
            {"name": "a", "targets": [{"sink": "file", "dir": "/x"}, {"sink": "nope"}]},
            {"name": "b", "targets": [{"sink": "exec"}]},
        ],
        [{"name": "c", "targets": []}],
    )
    assert [line.split(": ")[1] for line in problems_of(environ(path))] == [
        "workspaces[0].credentials[0].targets[1].sink",
        "workspaces[0].credentials[1].targets[0].command",
        "workspaces[1].credentials[0].targets",
    ]


# --- places ------------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path, key: Path) -> dict[str, str]:
    """Variables for load_settings with a kubeconfig (no cluster is called)."""
    home = tmp_path / "home"
    home.mkdir()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://10.0.0.1:6443", "t")
    return {
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
        "PATH": "/usr/bin:/bin",
    }


def refused(variables: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(variables)
    return caught.value.problems


def kube(namespace: str, secret_name: str = "pm-{credential}") -> dict[str, str]:  # noqa: S107
    return {"sink": "kubernetes", "namespace": namespace, "secret_name": secret_name}


def test_two_workspaces_routing_to_one_folder_however_spelt(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    folder = tmp_path / "same"
    path = workspaces(
        tmp_path,
        key,
        [{"name": "a", "targets": [{"sink": "file", "dir": str(folder)}]}],
        [{"name": "b", "targets": [{"sink": "file", "dir": f"{tmp_path}/x/../same"}]}],
    )
    assert refused(environ(path, **cluster)) == [
        f"{W}: workspaces[1].credentials[0].targets[0].dir: workspace 'acme-us' and "
        f"workspaces[0] ('acme-eu') would share the folder {folder}: two workspaces must never "
        "share a place"
    ]


def test_a_target_may_not_be_another_workspaces_sink(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    theirs = tmp_path / "secrets" / "acme-us"  # acme-us's own sink folder
    path = workspaces(
        tmp_path, key, [{"name": "a", "targets": [{"sink": "file", "dir": str(theirs)}]}], None
    )
    assert refused(environ(path, **cluster)) == [
        f"{W}: workspaces[1].sink.dir: workspace 'acme-us' and "
        f"workspaces[0].credentials[0].targets[0].dir ('acme-eu') would share the folder "
        f"{theirs}: two workspaces must never share a place"
    ]


def test_two_workspaces_routing_to_one_namespace_with_one_template(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    path = workspaces(
        tmp_path,
        key,
        [{"name": "a", "targets": [kube("billing")]}],
        [{"name": "b", "targets": [kube("billing")]}],
    )
    (line,) = refused(environ(path, **cluster))
    assert line.startswith(f"{W}: workspaces[1].credentials[0].targets[0].secret_name: ")
    assert "workspace 'acme-us' and workspaces[0] ('acme-eu') would share the Secrets" in line
    # With {workspace} in the name, each workspace has its own Secrets there.
    per_workspace = kube("billing", "pm-{workspace}-{credential}")
    path = workspaces(
        tmp_path,
        key,
        [{"name": "a", "targets": [per_workspace]}],
        [{"name": "b", "targets": [per_workspace]}],
    )
    load_settings(environ(path, **cluster))


def test_routes_of_one_workspace_share_a_place_where_each_credential_has_its_own_name(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    path = workspaces(
        tmp_path,
        key,
        [
            {"name": "billing-*", "targets": [kube("billing"), {"sink": "file"}]},
            {"name": "sync-*", "targets": [kube("billing")]},
            # The workspace's own sink folder, as a target: each credential has its own file.
            {
                "name": "ops",
                "targets": [{"sink": "file", "dir": str(tmp_path / "secrets/acme-eu")}],
            },
        ],
    )
    settings = load_settings(environ(path, **cluster))
    assert [r.name for r in settings.workspaces[0].credentials] == ["billing-*", "sync-*", "ops"]


def test_a_fixed_name_holds_one_credential(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    fixed = kube("billing", "pm-billing-key")
    prefix = f"{W}: workspaces[0].credentials"
    secret = "the Secrets 'pm-billing-key' in namespace 'billing' of https://10.0.0.1:6443"
    # A glob could match several credentials: each delivery would overwrite the other's.
    path = workspaces(tmp_path, key, [{"name": "billing-*", "targets": [fixed]}])
    assert refused(environ(path, **cluster)) == [
        f"{prefix}[0].targets[0].secret_name: {secret} hold every credential under one name, "
        "but 'billing-*' may match several credentials: name one credential (no wildcard), or "
        "put {credential} in the name"
    ]
    # One credential by name: allowed.
    path = workspaces(tmp_path, key, [{"name": "billing", "targets": [fixed]}])
    assert load_settings(environ(path, **cluster)).workspaces[0].credentials[0].is_one_name
    # Two credentials by name, one fixed name: refused, naming both.
    path = workspaces(
        tmp_path,
        key,
        [{"name": "billing", "targets": [fixed]}, {"name": "invoices", "targets": [fixed]}],
    )
    assert refused(environ(path, **cluster)) == [
        f"{prefix}[1].targets[0].secret_name: 'invoices' and the entry 'billing' would share "
        f"{secret}: two credentials must never share a place"
    ]


def test_one_entry_naming_a_place_twice(tmp_path: Path, key: Path, cluster: dict[str, str]) -> None:
    path = workspaces(
        tmp_path,
        key,
        [{"name": "a", "targets": [kube("billing"), kube("billing", "pm-{credential}")]}],
    )
    assert refused(environ(path, **cluster)) == [
        f"{W}: workspaces[0].credentials[0].targets[1].secret_name: names the Secrets "
        "'pm-{credential}' in namespace 'billing' of https://10.0.0.1:6443 a second time in "
        "this entry"
    ]


def test_what_a_target_names_on_this_host_is_checked(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    under_a_file = tmp_path / "key" / "sub"
    path = workspaces(
        tmp_path,
        key,
        [
            {
                "name": "a",
                "targets": [
                    {"sink": "exec", "command": "no-such-program-here"},
                    {"sink": "file", "dir": str(under_a_file)},
                ],
            }
        ],
    )
    assert refused(environ(path, **cluster)) == [
        f"{W}: workspaces[0].credentials[0].targets[0].command: the program "
        "'no-such-program-here' is not an executable file on PATH (/usr/bin:/bin)",
        f"{W}: workspaces[0].credentials[0].targets[1].dir: {str(under_a_file)!r} cannot be "
        f"created: {str(tmp_path / 'key')!r} is not a folder",
    ]


def test_a_fixed_name_of_the_workspaces_sink_is_held_by_its_credentials(
    tmp_path: Path, key: Path, cluster: dict[str, str]
) -> None:
    path = workspaces(
        tmp_path, key, [{"name": "billing", "targets": [kube("apps", "pm-billing-key")]}]
    )
    variables = {
        **{k: v for k, v in cluster.items() if k != "ROTATOR_SINK_FILE_DIR"},
        "ROTATOR_LOCK_DIR": str(tmp_path / "locks"),
        "ROTATOR_SINK": "kubernetes",
        "ROTATOR_SINK_KUBERNETES_NAMESPACE": "apps",
        "ROTATOR_SINK_KUBERNETES_SECRET_NAME": "pm-billing-key",
    }
    assert refused(environ(path, **variables)) == [
        f"{W}: workspaces[0].credentials[0].targets[0].secret_name: 'billing' and the "
        "workspace's sink would share the Secrets 'pm-billing-key' in namespace 'apps' of "
        "https://10.0.0.1:6443: two credentials must never share a place"
    ]


def test_a_vault_or_aws_target_may_be_one_fixed_name_for_one_credential(
    tmp_path: Path, key: Path
) -> None:
    vault = {"sink": "vault", "addr": "https://vault.example:8200", "path": "apps/billing/pm-key"}
    aws = {"sink": "aws-secrets-manager", "region": "eu-west-1", "secret_id": "apps/billing"}
    variables = {"ROTATOR_SINK_VAULT_TOKEN": TOKEN}
    path = workspaces(tmp_path, key, [{"name": "billing-sync", "targets": [vault, aws]}])
    (route,) = load_settings(environ(path, **variables)).workspaces[0].credentials
    assert [t.kind for t in route.targets] == ["vault", "aws-secrets-manager"]
    # Behind a glob, one fixed name would be overwritten by each credential in turn.
    path = workspaces(tmp_path, key, [{"name": "billing-*", "targets": [vault]}])
    (problem,) = refused(environ(path, **variables))
    assert "targets[0].path" in problem and "may match several credentials" in problem
    # The workspace's own sink keeps one place per credential.
    assert any(
        "ROTATOR_SINK_VAULT_PATH" in line and "must contain {credential}" in line
        for line in refused(
            {
                **environ(workspaces(tmp_path, key, None), **variables),
                "ROTATOR_SINK": "vault",
                "ROTATOR_SINK_VAULT_ADDR": "https://vault.example:8200",
                "ROTATOR_SINK_VAULT_PATH": "apps/billing/pm-key",
            }
        )
    )
