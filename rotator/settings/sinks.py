"""The settings of each sink: one frozen model per ROTATOR_SINK value, a union tagged on ``kind``.

A sink's variables are ``ROTATOR_SINK_<KIND>_<FIELD>`` (kind in capitals, ``-`` as ``_``): the
loader derives them from the field names here, so a new sink adds one model to
:data:`SinkSettings` and nothing else. Every field says its unit and why its default is what it
is. These are values only: the sinks themselves (rotator/sinks/) take them as plain arguments and
resolve what needs a cluster or a network (the pod's own namespace, the in-cluster config).

It must not know how a sink works, nor read anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from rotator.settings._values import (
    Command,
    DnsLabel,
    Fallback,
    HeaderSafe,
    Lowered,
    PathSegments,
    Required,
    SecureUrl,
    Shown,
    Slashless,
    WorkloadKind,
    check_dns_subdomain,
    complete,
    name_template,
)

__all__ = [
    "SINK_MODELS",
    "AwsSecretsManagerSinkSettings",
    "ExecSinkSettings",
    "FileSinkSettings",
    "KubernetesSinkSettings",
    "Restart",
    "SinkSettings",
    "VaultSinkSettings",
]

_MODEL = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


class FileSinkSettings(BaseModel):
    """ROTATOR_SINK=file: one file per credential, plus its ``.meta.json``."""

    model_config = _MODEL

    kind: Literal["file"] = "file"
    dir: Annotated[Path, Shown("./secrets")] = Field(
        default=Path("./secrets"),
        description=(
            "The folder holding each credential's file and its metadata (with several "
            "workspaces, a subfolder per workspace). Default ./secrets: relative to the working "
            "directory, so a local try writes next to where it runs; a deployment mounts a "
            "volume and sets a path."
        ),
    )


# --- kubernetes --------------------------------------------------------------------------------

_WORKLOAD_KINDS: Mapping[str, WorkloadKind] = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
}
_RESTART_SYNTAX = "CREDENTIAL=Kind/name,Kind/name;CREDENTIAL=..."

#: Workloads restarted after a delivery: (credential glob, ((kind, name), ...)), in order.
Restart = tuple[tuple[str, tuple[tuple[WorkloadKind, str], ...]], ...]


def _parse_workload(text: str, entry: str) -> tuple[WorkloadKind, str]:
    kind_text, slash, name = text.strip().partition("/")
    kind = _WORKLOAD_KINDS.get(kind_text.strip().lower())
    if not slash or kind is None:
        raise complete(
            f"each workload is Kind/name with Kind one of Deployment, StatefulSet, DaemonSet; "
            f"{text.strip()!r} in {entry!r} is not"
        )
    try:
        return kind, check_dns_subdomain(name.strip())
    except ValueError as exc:
        raise complete(f"workload name {name.strip()!r} in {entry!r} {exc}") from None


def _parse_restart(value: object) -> object:
    """``CRED=Kind/name,Kind/name;CRED2=...`` into :data:`Restart`; other input passes through."""
    if not isinstance(value, str):
        return value
    parsed: list[tuple[str, tuple[tuple[WorkloadKind, str], ...]]] = []
    for raw_entry in value.split(";"):
        entry = raw_entry.strip()
        if not entry:
            continue  # a trailing ';' is harmless
        credential, equals, workloads = entry.partition("=")
        if not equals or not credential.strip() or not workloads.strip():
            raise complete(f"must be written {_RESTART_SYNTAX}; {entry!r} is not")
        parsed.append(
            (
                credential.strip(),
                tuple(_parse_workload(w, entry) for w in workloads.split(",") if w.strip()),
            )
        )
    return tuple(parsed)


def _unique_credentials(value: Restart) -> Restart:
    seen: set[str] = set()
    for credential, _ in value:
        if credential in seen:
            raise ValueError(f"names {credential!r} twice: list all its workloads in one entry")
        seen.add(credential)
    return value


_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def _secret_key(value: str) -> str:
    if not _SECRET_KEY.match(value):
        raise ValueError("must be a Secret data key: letters, digits, '-', '_' and '.'")
    return value


class KubernetesSinkSettings(BaseModel):
    """ROTATOR_SINK=kubernetes: one Secret per credential, metadata in its annotations."""

    model_config = _MODEL

    kind: Literal["kubernetes"] = "kubernetes"
    namespace: Annotated[DnsLabel | None, Shown("the pod's own, else default")] = Field(
        default=None,
        description=(
            "Namespace of the Secrets. Unset by default: the pod's own namespace (else "
            "'default'), where its consumers usually run."
        ),
    )
    secret_name: Annotated[
        str, name_template(r"[a-z0-9.-]*", "lower-case letters, digits, '-' and '.'")
    ] = Field(
        default="pm-api-key-{credential}",
        description=(
            "Name template of each credential's Secret ({workspace}, {credential}; their values "
            "are made DNS-1123 safe). Default pm-api-key-{credential}: says what it holds."
        ),
    )
    secret_key: Annotated[str, AfterValidator(_secret_key)] = Field(
        default="api-key",
        description=(
            "The Secret's data key that holds the secret. Default api-key: the file name a "
            "volume mount shows."
        ),
    )
    kubeconfig: Annotated[
        Path | None, Shown("the in-cluster account, else KUBECONFIG or ~/.kube/config")
    ] = Field(
        default=None,
        description=(
            "A kubeconfig for running outside a cluster. Unset by default: the in-cluster "
            "service account, else KUBECONFIG or ~/.kube/config."
        ),
    )
    restart: Annotated[
        Restart, BeforeValidator(_parse_restart), AfterValidator(_unique_credentials)
    ] = Field(
        default=(),
        description=(
            f"Workloads restarted after a delivery, as {_RESTART_SYNTAX} (Kind: Deployment, "
            "StatefulSet, DaemonSet; CREDENTIAL may be a glob). Unset by default: consumers "
            "that read the mounted file again need no restart."
        ),
    )
    rollout_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description=(
            "Minutes a restart may take before it is reported stalled (the previous key stays "
            "until it completes). Default 30: a large Deployment rolls in minutes; at most 1440 "
            "(a day), since a restart stalled that long needs a person."
        ),
    )


# --- vault -------------------------------------------------------------------------------------

VaultAuth = Literal["token", "approle", "kubernetes"]


_MOUNT = re.compile(r"^[A-Za-z0-9._/-]*$")


def _mount_characters(value: str) -> str:
    if not _MOUNT.match(value):
        raise ValueError("may hold only letters, digits, '.', '_', '-' and '/'")
    return value


class VaultSinkSettings(BaseModel):
    """ROTATOR_SINK=vault: a KV version 2 engine (HashiCorp Vault or OpenBao)."""

    model_config = _MODEL

    kind: Literal["vault"] = "vault"
    addr: Annotated[SecureUrl, Required("required: the Vault server's URL")] = Field(
        description=(
            "URL of the Vault server. No default: there is no usual place. https unless the "
            "host is loopback, since the token travels in every request."
        ),
    )
    mount: Annotated[
        str,
        Slashless,
        AfterValidator(_not_empty),
        AfterValidator(_mount_characters),
        PathSegments,
    ] = Field(
        default="secret",
        description="The KV v2 mount. Default secret: the mount a new Vault server has.",
    )
    path: Annotated[
        str,
        Slashless,
        name_template(
            r"[A-Za-z0-9._/-]*", "letters, digits, '.', '_', '-' and '/'", per_credential=True
        ),
        PathSegments,
    ] = Field(
        default="key-rotator/{workspace}/{credential}",
        description=(
            "Path template inside the mount ({workspace}, {credential}; {credential} required). "
            "Default key-rotator/{workspace}/{credential}: one subtree a policy can grant."
        ),
    )
    field: Annotated[str, AfterValidator(_not_empty)] = Field(
        default="api_key",
        description="The field of the secret's data that holds the key. Default api_key.",
    )
    auth: Annotated[VaultAuth, Lowered] = Field(
        default="token",
        description=(
            "token, approle or kubernetes. Default token: works with every Vault; in a "
            "cluster, kubernetes needs no long-lived secret."
        ),
    )
    token: Annotated[SecretStr | None, HeaderSafe, Shown("required with auth token")] = Field(
        default=None,
        validate_default=True,
        description=(
            "The Vault token (auth token), usually as ROTATOR_SINK_VAULT_TOKEN_FILE. Required "
            "with auth token."
        ),
    )
    role_id: Annotated[str | None, Shown("required with auth approle")] = Field(
        default=None,
        validate_default=True,
        description="The AppRole role id. Required with auth approle.",
    )
    secret_id: Annotated[SecretStr | None, Shown("required with auth approle")] = Field(
        default=None,
        validate_default=True,
        description=(
            "The AppRole secret id, usually as ROTATOR_SINK_VAULT_SECRET_ID_FILE. Required "
            "with auth approle."
        ),
    )
    role: Annotated[str | None, Shown("required with auth kubernetes")] = Field(
        default=None,
        validate_default=True,
        description=(
            "The Vault role the pod's service-account token logs in as. Required with auth "
            "kubernetes."
        ),
    )
    auth_mount: Annotated[str, Slashless, Shown("the auth method's name")] = Field(
        default="",
        validate_default=True,
        description=(
            "Where the auth method is mounted. Default: the method's own name (approle, "
            "kubernetes), where Vault mounts it unless told otherwise."
        ),
    )
    namespace: str | None = Field(
        default=None,
        description="A Vault (Enterprise) namespace. Unset by default: the root namespace.",
    )
    cacert: Path | None = Field(
        default=None,
        description=(
            "A CA bundle for Vault's certificate. Unset by default: the system's trusted CAs."
        ),
    )

    @field_validator("token", "role_id", "secret_id", "role")
    @classmethod
    def _required_by_auth(cls, value: object, info: ValidationInfo) -> object:
        auth = info.data.get("auth")
        needs = {"token": ("token",), "approle": ("role_id", "secret_id"), "kubernetes": ("role",)}
        if auth is not None and value is None and info.field_name in needs[auth]:
            raise complete(f"required with ROTATOR_SINK_VAULT_AUTH={auth}")
        return value

    @field_validator("auth_mount")
    @classmethod
    def _default_auth_mount(cls, value: str, info: ValidationInfo) -> str:
        return value or str(info.data.get("auth", "token"))


# --- aws-secrets-manager -----------------------------------------------------------------------

_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def _check_region(value: str) -> str:
    if not _AWS_REGION.match(value):
        raise ValueError("must be an AWS region such as eu-west-1")
    return value


class AwsSecretsManagerSinkSettings(BaseModel):
    """ROTATOR_SINK=aws-secrets-manager: one secret per credential, metadata in its tags.

    AWS credentials come from the standard chain (environment, IRSA, instance profile), never
    from a ROTATOR_ variable.
    """

    model_config = _MODEL

    kind: Literal["aws-secrets-manager"] = "aws-secrets-manager"
    region: Annotated[
        str,
        AfterValidator(_check_region),
        Fallback(("AWS_REGION", "AWS_DEFAULT_REGION")),
        Required("required (or AWS_REGION, or AWS_DEFAULT_REGION)"),
    ] = Field(
        description=(
            "The AWS region of the secrets. Default: AWS_REGION, else AWS_DEFAULT_REGION, as "
            "every AWS tool reads them."
        ),
    )
    secret_id: Annotated[
        str,
        name_template(r"[A-Za-z0-9/_+=.@-]*", "letters, digits and /_+=.@-", per_credential=True),
    ] = Field(
        default="key-rotator/{workspace}/{credential}",
        description=(
            "Name template of each credential's secret ({workspace}, {credential}; {credential} "
            "required); a name, not a secret. Default key-rotator/{workspace}/{credential}: one "
            "prefix an IAM policy can grant."
        ),
    )
    json_key: str | None = Field(
        default=None,
        description=(
            "When set, the SecretString is a JSON object and the key is this field of it (other "
            "fields are kept). Unset by default: the SecretString is the key itself."
        ),
    )
    endpoint_url: SecureUrl | None = Field(
        default=None,
        description=(
            "Another endpoint (a VPC endpoint, a test server); https unless loopback. Unset by "
            "default: the region's public endpoint."
        ),
    )
    kms_key_id: str | None = Field(
        default=None,
        description=(
            "KMS key for secrets the rotator creates. Unset by default: the account's "
            "aws/secretsmanager key."
        ),
    )


# --- exec --------------------------------------------------------------------------------------


class ExecSinkSettings(BaseModel):
    """ROTATOR_SINK=exec: a program of the ops team's, called as ``COMMAND VERB [CREDENTIAL]``."""

    model_config = _MODEL

    kind: Literal["exec"] = "exec"
    command: Annotated[Command, Required("required: the program and its arguments")] = Field(
        description=(
            "The program and its arguments, split into words as a POSIX shell would, never run "
            "through a shell. No default: it is the ops team's own program."
        ),
    )
    timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        allow_inf_nan=False,
        description=(
            "Seconds per call; a call past it is killed and its outcome counts as unknown. "
            "Default 30: storing a secret takes a second or two; at most 600 (ten minutes), as a "
            "pass waits for each call."
        ),
    )


#: The chosen sink's settings, tagged on ``kind`` (the ROTATOR_SINK value).
SinkSettings = Annotated[
    FileSinkSettings
    | KubernetesSinkSettings
    | VaultSinkSettings
    | AwsSecretsManagerSinkSettings
    | ExecSinkSettings,
    Field(discriminator="kind"),
]

#: Every ROTATOR_SINK value and its settings model.
SINK_MODELS: Mapping[str, type[BaseModel]] = {
    "file": FileSinkSettings,
    "kubernetes": KubernetesSinkSettings,
    "vault": VaultSinkSettings,
    "aws-secrets-manager": AwsSecretsManagerSinkSettings,
    "exec": ExecSinkSettings,
}
