"""Settings: every ROTATOR_* variable, parsed and validated once, at the edge.

``load_settings(environ)`` reads the environment mapping it is given (``os.environ`` only when
given nothing; nothing else in the rotator reads it) into a frozen :class:`Settings`, passed down
as a value. Its ``workspaces`` always hold at least one :class:`WorkspaceSettings`, each with its
effective sink settings (one model per ROTATOR_SINK value, a union tagged on ``kind``);
:func:`read_api_key` reads a workspace's credential anew at every call.

Rules: an empty value counts as unset; every variable may instead come as ``<NAME>_FILE``
(the stripped content of that file, which wins); booleans are true/false/1/0/yes/no; an unknown
ROTATOR_* variable is an error, with a hint, except those Kubernetes injects for a Service named
``rotator``; a sink variable set while ROTATOR_SINK names another sink is an error, unless a
target of the workspaces file's ``credentials:`` names that sink (its targets' defaults). Every
problem is one line naming its variable, all raised together as one
:class:`~rotator.errors.ConfigError`.
A secret's value is never part of a message, a repr or :func:`redacted`.

Values alone are not enough (``parse_settings`` stops there): ``load_settings``, what every
command calls, also checks what they name on this host (a folder that cannot be created, an exec
program not on PATH, a kubeconfig that is not one, a Lease outside a cluster) and that no two
workspaces name one place, so that what a pass would refuse is refused at start by every
command, ``check-config`` first.

Modules: ``_values`` (value types and checks), ``_loader`` (the generic ROTATOR_* machinery:
variable names, sources, problem lines), ``sinks``, ``workspaces``, ``model`` (the fields),
``host`` (what the settings name on this host), ``places`` (the identity of places), ``_api``
(the functions below). It must not know how the settings are used: no API calls, no sink I/O
(it reads, never writes), no logging.
"""

from rotator.settings._api import (
    check_no_unknown_variables,
    describe_variables,
    load_settings,
    parse_settings,
    redacted,
    redacted_workspaces,
)
from rotator.settings._loader import REDACTED
from rotator.settings.host import pass_lock_kind
from rotator.settings.model import Settings
from rotator.settings.sinks import (
    SINK_MODELS,
    AwsSecretsManagerSinkSettings,
    ExecSinkSettings,
    FileSinkSettings,
    KubernetesSinkSettings,
    SinkSettings,
    VaultSinkSettings,
)
from rotator.settings.workspaces import (
    CredentialRoute,
    WorkspaceSettings,
    credential_problems,
    read_api_key,
)

__all__ = [
    "REDACTED",
    "SINK_MODELS",
    "AwsSecretsManagerSinkSettings",
    "CredentialRoute",
    "ExecSinkSettings",
    "FileSinkSettings",
    "KubernetesSinkSettings",
    "Settings",
    "SinkSettings",
    "VaultSinkSettings",
    "WorkspaceSettings",
    "check_no_unknown_variables",
    "credential_problems",
    "describe_variables",
    "load_settings",
    "parse_settings",
    "pass_lock_kind",
    "read_api_key",
    "redacted",
    "redacted_workspaces",
]
