"""Each sink's variables: defaults, parsing, what is required, and a sink variable set while
ROTATOR_SINK names another sink."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from rotator.settings import (
    SINK_MODELS,
    AwsSecretsManagerSinkSettings,
    ExecSinkSettings,
    FileSinkSettings,
    KubernetesSinkSettings,
    VaultSinkSettings,
)
from tests.settings.support import load, problems

VAULT = {"ROTATOR_SINK": "vault", "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com:8200"}
VAULT_TOKEN = {**VAULT, "ROTATOR_SINK_VAULT_TOKEN": "hvs.not-a-real-token"}
AWS = {
    "ROTATOR_SINK": "aws-secrets-manager",
    "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION": "eu-west-1",
}
EXEC = {"ROTATOR_SINK": "exec", "ROTATOR_SINK_EXEC_COMMAND": "/usr/local/bin/store-secret"}
KUBERNETES = {"ROTATOR_SINK": "kubernetes"}


def test_every_sink_of_the_contract_has_a_model_tagged_with_its_name() -> None:
    assert list(SINK_MODELS) == ["file", "kubernetes", "vault", "aws-secrets-manager", "exec"]
    for kind, model in SINK_MODELS.items():
        assert model.model_fields["kind"].default == kind


def test_sink_defaults() -> None:
    assert load(ROTATOR_SINK="FILE").sink == FileSinkSettings(dir=Path("./secrets"))
    assert load(**KUBERNETES).sink == KubernetesSinkSettings(
        namespace=None,
        secret_name="pm-api-key-{credential}",
        secret_key="api-key",
        kubeconfig=None,
        restart=(),
        rollout_timeout_minutes=30,
    )
    assert load(**VAULT_TOKEN).sink == VaultSinkSettings(
        addr="https://vault.example.com:8200",
        mount="secret",
        path="key-rotator/{workspace}/{credential}",
        field="api_key",
        auth="token",
        token=SecretStr("hvs.not-a-real-token"),
        auth_mount="token",
    )
    assert load(**AWS).sink == AwsSecretsManagerSinkSettings(
        region="eu-west-1",
        secret_id="key-rotator/{workspace}/{credential}",
        json_key=None,
        endpoint_url=None,
        kms_key_id=None,
    )
    assert load(**EXEC).sink == ExecSinkSettings(
        command=("/usr/local/bin/store-secret",), timeout_seconds=30
    )


# --- every variable of every sink, parsed ------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "variable", "value", "field", "expected"),
    [
        ({}, "ROTATOR_SINK_FILE_DIR", "/var/lib/rotator", "dir", Path("/var/lib/rotator")),
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_NAMESPACE", "apps", "namespace", "apps"),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
            "{workspace}.{credential}-key",
            "secret_name",
            "{workspace}.{credential}-key",
        ),
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_SECRET_KEY", "API_KEY", "secret_key", "API_KEY"),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_KUBECONFIG",
            "/home/ops/.kube/config",
            "kubeconfig",
            Path("/home/ops/.kube/config"),
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "billing-*=Deployment/billing,StatefulSet/billing-db; ops=daemonset/agent;",
            "restart",
            (
                ("billing-*", (("Deployment", "billing"), ("StatefulSet", "billing-db"))),
                ("ops", (("DaemonSet", "agent"),)),
            ),
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES",
            "5",
            "rollout_timeout_minutes",
            5,
        ),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_ADDR",
            "http://127.0.0.1:8200/",
            "addr",
            "http://127.0.0.1:8200",
        ),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_MOUNT", "/kv/", "mount", "kv"),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_PATH",
            "/apps/{credential}/",
            "path",
            "apps/{credential}",
        ),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_FIELD", "key", "field", "key"),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_AUTH", "TOKEN", "auth", "token"),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_AUTH_MOUNT", "/token-2/", "auth_mount", "token-2"),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_NAMESPACE", "team-a", "namespace", "team-a"),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_CACERT",
            "/etc/vault/ca.pem",
            "cacert",
            Path("/etc/vault/ca.pem"),
        ),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION",
            "us-gov-west-1",
            "region",
            "us-gov-west-1",
        ),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID",
            "prod/{workspace}/{credential}",
            "secret_id",
            "prod/{workspace}/{credential}",
        ),
        (AWS, "ROTATOR_SINK_AWS_SECRETS_MANAGER_JSON_KEY", "api_key", "json_key", "api_key"),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL",
            "http://127.0.0.1:5000",
            "endpoint_url",
            "http://127.0.0.1:5000",
        ),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_KMS_KEY_ID",
            "alias/rotator",
            "kms_key_id",
            "alias/rotator",
        ),
        (
            EXEC,
            "ROTATOR_SINK_EXEC_COMMAND",
            "/opt/store --vault 'team a' \"x y\" z\\ w",
            "command",
            ("/opt/store", "--vault", "team a", "x y", "z w"),
        ),
        (EXEC, "ROTATOR_SINK_EXEC_TIMEOUT_SECONDS", "2.5", "timeout_seconds", 2.5),
    ],
)
def test_each_sink_variable_is_parsed(
    base: dict[str, str], variable: str, value: str, field: str, expected: object
) -> None:
    settings = load(**{**base, variable: value})
    assert getattr(settings.sink, field) == expected
    assert getattr(settings.workspaces[0].sink, field) == expected


def test_vault_auth_methods_and_their_mounts() -> None:
    approle = load(
        **VAULT,
        ROTATOR_SINK_VAULT_AUTH="approle",
        ROTATOR_SINK_VAULT_ROLE_ID="role-1",
        ROTATOR_SINK_VAULT_SECRET_ID="not-a-real-secret-id",
    ).sink
    assert isinstance(approle, VaultSinkSettings)
    assert (approle.auth, approle.auth_mount, approle.role_id) == ("approle", "approle", "role-1")
    assert approle.secret_id == SecretStr("not-a-real-secret-id")
    kubernetes = load(
        **VAULT,
        ROTATOR_SINK_VAULT_AUTH="kubernetes",
        ROTATOR_SINK_VAULT_ROLE="rotator",
        ROTATOR_SINK_VAULT_AUTH_MOUNT="k8s-prod",
    ).sink
    assert isinstance(kubernetes, VaultSinkSettings)
    assert (kubernetes.auth_mount, kubernetes.role) == ("k8s-prod", "rotator")


def test_aws_region_defaults_to_the_aws_variables() -> None:
    aws = {"ROTATOR_SINK": "aws-secrets-manager"}
    assert load(**aws, AWS_REGION="eu-central-1", AWS_DEFAULT_REGION="us-east-1").sink == (
        AwsSecretsManagerSinkSettings(region="eu-central-1")
    )
    assert load(**aws, AWS_DEFAULT_REGION="us-east-1").sink.region == "us-east-1"  # type: ignore[union-attr]
    explicit = load(
        **aws, AWS_REGION="eu-central-1", ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION="ap-south-1"
    )
    assert explicit.sink.region == "ap-south-1"  # type: ignore[union-attr]
    # AWS_REGION matters only to this sink: with another sink it is nobody's business.
    assert load(AWS_REGION="not a region").sink.kind == "file"


def test_sink_variables_may_come_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("hvs.from-a-file\n")
    sink = load(**VAULT, ROTATOR_SINK_VAULT_TOKEN_FILE=str(token)).sink
    assert isinstance(sink, VaultSinkSettings)
    assert sink.token == SecretStr("hvs.from-a-file")
    directory = tmp_path / "dir"
    directory.write_text("/srv/secrets\n")
    assert load(ROTATOR_SINK_FILE_DIR_FILE=str(directory)).sink == FileSinkSettings(
        dir=Path("/srv/secrets")
    )


# --- refusals ----------------------------------------------------------------------------------

_NAMESPACE = (
    "must be a Kubernetes namespace name: lower-case letters, digits and '-', at most 63, "
    "starting and ending with a letter or digit"
)
_PLACEHOLDERS = "may use only the placeholders {workspace} and {credential}"
_BRACES = "is not a valid name template: write braces only as {workspace} or {credential}"
_HTTPS = "must be https unless the host is loopback"


@pytest.mark.parametrize(
    ("base", "variable", "value", "expected"),
    [
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_NAMESPACE", "Apps", _NAMESPACE),
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_NAMESPACE", "a" * 64, _NAMESPACE),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
            "pm-{name}",
            f"{_PLACEHOLDERS}, not {{name}}",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
            "pm-{credential!r}",
            f"{_PLACEHOLDERS}, not {{credential!r}}",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
            "pm-{credential:>5}",
            f"{_PLACEHOLDERS}, not {{credential:>5}}",
        ),
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_SECRET_NAME", "pm-{credential", _BRACES),
        (KUBERNETES, "ROTATOR_SINK_KUBERNETES_SECRET_NAME", "pm-}", _BRACES),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
            "PM_{credential}",
            "may hold only lower-case letters, digits, '-' and '.' besides its placeholders",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_SECRET_KEY",
            "api key",
            "must be a Secret data key: letters, digits, '-', '_' and '.'",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "billing",
            "must be written CREDENTIAL=Kind/name,Kind/name;CREDENTIAL=...; 'billing' is not",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "billing=Pod/x",
            "each workload is Kind/name with Kind one of Deployment, StatefulSet, DaemonSet; "
            "'Pod/x' in 'billing=Pod/x' is not",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "billing=Deployment",
            "each workload is Kind/name with Kind one of Deployment, StatefulSet, DaemonSet; "
            "'Deployment' in 'billing=Deployment' is not",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "billing=Deployment/Billing_App",
            "workload name 'Billing_App' in 'billing=Deployment/Billing_App' must be a Kubernetes "
            "object name: lower-case letters, digits, '-' and '.', at most 253, starting and "
            "ending with a letter or digit",
        ),
        (
            KUBERNETES,
            "ROTATOR_SINK_KUBERNETES_RESTART",
            "a=Deployment/x;a=Deployment/y",
            "names 'a' twice: list all its workloads in one entry",
        ),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_ADDR", "http://vault.example.com", _HTTPS),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_ADDR",
            "vault:8200",
            "must be an http(s) URL with a host",
        ),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_ADDR",
            "https://u:**********@vault.example.com",
            "must not contain a user name or password (credentials are never part of a URL)",
        ),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_AUTH",
            "ldap",
            "must be one of token, approle, kubernetes",
        ),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_PATH",
            "{workspace}/{key}",
            f"{_PLACEHOLDERS}, not {{key}}",
        ),
        (
            VAULT_TOKEN,
            "ROTATOR_SINK_VAULT_PATH",
            "apps/{credential} key",
            "may hold only letters, digits, '.', '_', '-' and '/' besides its placeholders",
        ),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_MOUNT", "/", "must not be empty"),
        (VAULT_TOKEN, "ROTATOR_SINK_VAULT_PATH", "//", "must not be empty"),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION",
            "Europe",
            "must be an AWS region such as eu-west-1",
        ),
        (
            AWS,
            "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID",
            "rotator/{workspace}/{credential}/{region}",
            f"{_PLACEHOLDERS}, not {{region}}",
        ),
        (AWS, "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL", "http://vpce.example.com", _HTTPS),
        (
            EXEC,
            "ROTATOR_SINK_EXEC_COMMAND",
            "/opt/store 'unclosed",
            "cannot be split into words as a POSIX shell would: No closing quotation",
        ),
        (EXEC, "ROTATOR_SINK_EXEC_COMMAND", "''", "must name a program (and its arguments)"),
    ],
)
def test_each_invalid_sink_value_names_its_variable(
    base: dict[str, str], variable: str, value: str, expected: str
) -> None:
    # A refusal that quotes the part at fault does not repeat the whole value.
    quoted = expected.startswith(("each workload", "workload name", "must be written"))
    got = "" if quoted else f", got {value!r}"
    assert problems(**{**base, variable: value}) == [f"{variable}: {expected}{got}"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"ROTATOR_SINK": "vault"},
            [
                "ROTATOR_SINK_VAULT_ADDR: required: the Vault server's URL",
                "ROTATOR_SINK_VAULT_TOKEN: required with ROTATOR_SINK_VAULT_AUTH=token",
            ],
        ),
        (
            {**VAULT, "ROTATOR_SINK_VAULT_AUTH": "approle"},
            [
                "ROTATOR_SINK_VAULT_ROLE_ID: required with ROTATOR_SINK_VAULT_AUTH=approle",
                "ROTATOR_SINK_VAULT_SECRET_ID: required with ROTATOR_SINK_VAULT_AUTH=approle",
            ],
        ),
        (
            {**VAULT, "ROTATOR_SINK_VAULT_AUTH": "kubernetes"},
            ["ROTATOR_SINK_VAULT_ROLE: required with ROTATOR_SINK_VAULT_AUTH=kubernetes"],
        ),
        (
            {"ROTATOR_SINK": "aws-secrets-manager"},
            [
                "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION: required (or AWS_REGION, or "
                "AWS_DEFAULT_REGION)"
            ],
        ),
        (
            {"ROTATOR_SINK": "exec"},
            ["ROTATOR_SINK_EXEC_COMMAND: required: the program and its arguments"],
        ),
    ],
)
def test_what_each_sink_requires(environ: dict[str, str], expected: list[str]) -> None:
    assert problems(**environ) == expected


def test_a_bad_aws_region_variable_names_where_it_came_from() -> None:
    assert problems(ROTATOR_SINK="aws-secrets-manager", AWS_REGION="Europe") == [
        "AWS_REGION (default of ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION): must be an AWS region "
        "such as eu-west-1, got 'Europe'"
    ]


@pytest.mark.parametrize(
    ("chosen", "variable", "owner"),
    [
        ({}, "ROTATOR_SINK_VAULT_ADDR", "vault"),
        ({}, "ROTATOR_SINK_KUBERNETES_NAMESPACE", "kubernetes"),
        ({}, "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION", "aws-secrets-manager"),
        ({}, "ROTATOR_SINK_EXEC_COMMAND", "exec"),
        (VAULT_TOKEN, "ROTATOR_SINK_FILE_DIR", "file"),
        (EXEC, "ROTATOR_SINK_KUBERNETES_RESTART", "kubernetes"),
    ],
)
def test_a_sink_variable_with_another_sink_is_a_problem(
    chosen: dict[str, str], variable: str, owner: str
) -> None:
    kind = chosen.get("ROTATOR_SINK", "file")
    assert problems(**{**chosen, variable: "x"}) == [
        f"{variable}: only used with ROTATOR_SINK={owner}, but ROTATOR_SINK is {kind!r}"
    ]


def test_a_sink_variable_from_a_file_with_another_sink_names_the_file_variable(
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text("hvs.x")
    assert problems(ROTATOR_SINK_VAULT_TOKEN_FILE=str(token)) == [
        "ROTATOR_SINK_VAULT_TOKEN_FILE: only used with ROTATOR_SINK=vault, but ROTATOR_SINK is "
        "'file'"
    ]


def test_with_an_unknown_sink_only_the_sink_is_reported() -> None:
    assert problems(ROTATOR_SINK="s3", ROTATOR_SINK_VAULT_ADDR="https://v") == [
        "ROTATOR_SINK: must be one of file, kubernetes, vault, aws-secrets-manager, exec, got 's3'"
    ]


def test_secrets_of_the_sinks_never_show(tmp_path: Path) -> None:
    sink = load(
        **VAULT,
        ROTATOR_SINK_VAULT_AUTH="approle",
        ROTATOR_SINK_VAULT_ROLE_ID="role-1",
        ROTATOR_SINK_VAULT_SECRET_ID="s3cr3t-id",
        ROTATOR_SINK_VAULT_TOKEN="hvs.t0ken",
    ).sink
    assert "s3cr3t-id" not in repr(sink)
    assert "hvs.t0ken" not in repr(sink)
    # A bad secret is refused without being repeated.
    (problem,) = problems(**VAULT, ROTATOR_SINK_VAULT_TOKEN="hvs t0ken")
    assert "t0ken" not in problem
