"""Identity of places: two settings that name the same real place are the same place, whatever
their spelling, and no two workspaces may share one.

A *place* is where a workspace writes: its sink's target, and its file lock's folder. Each has
a canonical key (:func:`sink_place`, one function per sink kind; :func:`lock_place`), and equal
keys mean one real place:

- file: the folder, absolute, with ``..`` and links resolved (the longest existing part; the
  rest as written, where creating it would put it);
- kubernetes: the cluster (the kubeconfig's API server), the namespace (unset: the pod's own)
  and the Secret name template with ``{workspace}`` filled in;
- vault: the server (scheme, host, port), the Vault namespace, the mount and the path template
  with ``{workspace}`` filled in;
- aws-secrets-manager: the region, the endpoint and the secret id template with ``{workspace}``
  filled in;
- exec: the program (found on PATH, links resolved) and its arguments;
- a file lock: its folder, resolved as a file sink's.

A template without ``{workspace}`` renders the same names in every workspace: two workspaces
with it in the same namespace (server, region) would write each other's secrets.
:func:`shared_place_problems` is the one rule over the keys: two workspaces sharing one is a
problem naming both (``ROTATOR_WORKSPACES_FILE: workspaces[i]...``), refused at start. A
workspace's places are its sink, its lock folder and every target of its ``credentials:``
routes (``workspaces[i].credentials[j].targets[k]...``), each keyed as a sink of its kind.

Within one workspace, routes may share a place when each credential has its own name there
(every file and exec place; a template with ``{credential}``). A place that stores every
credential under one fixed name (a Kubernetes Secret name without ``{credential}``) holds one
credential: its route must name one credential (no wildcard, since a glob could match several)
and no other route, nor the workspace's sink, may name it too.

It reads the file system (links) and the PATH of the environment it is given, and changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rotator.settings.host import (
    canonical_path,
    in_cluster,
    kubernetes_configuration,
    pass_lock_kind,
    pod_namespace,
    resolve_program,
)
from rotator.settings.model import Settings
from rotator.settings.sinks import (
    AwsSecretsManagerSinkSettings,
    ExecSinkSettings,
    FileSinkSettings,
    KubernetesSinkSettings,
    SinkSettings,
    VaultSinkSettings,
)
from rotator.settings.workspaces import FILE_VARIABLE, WorkspaceSettings

__all__ = [
    "Place",
    "lock_place",
    "route_place_problems",
    "shared_place_problems",
    "sink_place",
    "target_places",
]


@dataclass(frozen=True)
class Place:
    """One real place a workspace writes to."""

    #: Equal keys are one real place, however the settings spelt them.
    key: tuple[str, ...]
    #: The place in words, canonical: ``the folder /srv/secrets/acme``.
    shown: str
    #: Where a workspace's entry names it: ``sink.dir``, ``lock folder``.
    field: str
    #: Whether each credential has a name of its own there; False: one fixed name for all.
    per_credential: bool = True


def _with_workspace(template: str, workspace: str) -> str:
    # Workspace names are lower-case letters, digits and '-': every sink puts them into a
    # name as they are, so the rendered template is the sink's own.
    return template.replace("{workspace}", workspace)


def _server(url: str) -> str:
    """A URL's server as one spelling: scheme and host in lower case, the port always there."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _file_place(sink: FileSinkSettings, workspace: str, environ: Mapping[str, str]) -> Place:
    del workspace, environ  # a folder's identity depends on neither
    folder = canonical_path(sink.dir)
    return Place(("file", str(folder)), f"the folder {folder}", "sink.dir")


def _kubernetes_place(
    sink: KubernetesSinkSettings, workspace: str, environ: Mapping[str, str]
) -> Place:
    found = kubernetes_configuration(sink.kubeconfig, environ)
    if found.server is not None:
        cluster = found.server
    elif sink.kubeconfig is None and in_cluster():
        cluster = "the cluster this pod runs in"
    else:
        cluster = f"the cluster of {found.source}"  # unreadable: its own problem is reported
    namespace = sink.namespace or pod_namespace()
    names = _with_workspace(sink.secret_name, workspace)
    return Place(
        ("kubernetes", cluster, namespace, names),
        f"the Secrets {names!r} in namespace {namespace!r} of {cluster}",
        "sink.secret_name",
        per_credential="{credential}" in sink.secret_name,
    )


def _vault_place(sink: VaultSinkSettings, workspace: str, environ: Mapping[str, str]) -> Place:
    del environ
    server = _server(sink.addr)
    namespace = (sink.namespace or "").strip("/")
    path = f"{sink.mount}/{_with_workspace(sink.path, workspace)}"
    within = f" (namespace {namespace!r})" if namespace else ""
    return Place(
        ("vault", server, namespace, path),
        f"the Vault paths {path!r} of {server}{within}",
        "sink.path",
        per_credential="{credential}" in sink.path,
    )


def _aws_place(
    sink: AwsSecretsManagerSinkSettings, workspace: str, environ: Mapping[str, str]
) -> Place:
    del environ
    endpoint = _server(sink.endpoint_url) if sink.endpoint_url else ""
    names = _with_workspace(sink.secret_id, workspace)
    at = f" at {endpoint}" if endpoint else ""
    return Place(
        ("aws-secrets-manager", sink.region, endpoint, names),
        f"the secrets {names!r} of {sink.region}{at}",
        "sink.secret_id",
        per_credential="{credential}" in sink.secret_id,
    )


def _exec_place(sink: ExecSinkSettings, workspace: str, environ: Mapping[str, str]) -> Place:
    del workspace  # the program is told its workspace, but stores wherever it was written to
    word, *arguments = sink.command
    program = resolve_program(word, environ) or word  # none: its own problem is reported
    shown_arguments = f" with the arguments {arguments}" if arguments else ""
    return Place(
        ("exec", program, *arguments),
        f"the program {program}{shown_arguments}",
        "sink.command",
    )


#: Each sink kind's canonical place; every ROTATOR_SINK value has one.
_SINK_PLACES: Mapping[str, Callable[[Any, str, Mapping[str, str]], Place]] = {
    "file": _file_place,
    "kubernetes": _kubernetes_place,
    "vault": _vault_place,
    "aws-secrets-manager": _aws_place,
    "exec": _exec_place,
}


def sink_place(sink: SinkSettings, workspace: str, environ: Mapping[str, str]) -> Place:
    """Where ``workspace``'s sink writes, as a canonical key."""
    return _SINK_PLACES[sink.kind](sink, workspace, environ)


def lock_place(folder: Path) -> Place:
    """Where a file lock lives, as a canonical key."""
    resolved = canonical_path(folder)
    return Place(("file-lock", str(resolved)), f"the lock folder {resolved}", "lock folder")


def target_places(ws: WorkspaceSettings, environ: Mapping[str, str]) -> list[list[Place]]:
    """The place of each target of each of ``ws``'s routes, named as its entry names it
    (``credentials[j].targets[k].FIELD``)."""
    return [
        [
            replace(
                place,
                field=f"credentials[{j}].targets[{k}].{place.field.removeprefix('sink.')}",
            )
            for k, place in enumerate(sink_place(t, ws.name, environ) for t in route.targets)
        ]
        for j, route in enumerate(ws.credentials)
    ]


def route_place_problems(
    ws: WorkspaceSettings, index: int, environ: Mapping[str, str]
) -> list[str]:
    """A line for each route target of ``ws`` that no credential may write as routed: one
    route naming a place twice, a fixed-name place (one name for every credential) behind a
    glob, or one held by another route or the workspace's sink."""
    where = f"{FILE_VARIABLE}: workspaces[{index}]"
    default = sink_place(ws.sink, ws.name, environ)
    #: Fixed-name places, and who stores its one credential there.
    held = {} if default.per_credential else {default.key: "the workspace's sink"}
    problems = []
    for route, places in zip(ws.credentials, target_places(ws, environ), strict=True):
        in_route: set[tuple[str, ...]] = set()
        for place in places:
            label = f"{where}.{place.field}"
            if place.key in in_route:
                problems.append(f"{label}: names {place.shown} a second time in this entry")
                continue
            in_route.add(place.key)
            if place.per_credential:
                continue  # each credential has its own name there
            if not route.is_one_name:
                problems.append(
                    f"{label}: {place.shown} hold every credential under one name, but "
                    f"{route.name!r} may match several credentials: name one credential (no "
                    "wildcard), or put {credential} in the name"
                )
                continue
            owner = held.setdefault(place.key, f"the entry {route.name!r}")
            if owner != f"the entry {route.name!r}":
                problems.append(
                    f"{label}: {route.name!r} and {owner} would share {place.shown}: two "
                    "credentials must never share a place"
                )
    return problems


def shared_place_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """A line for each workspace that shares a place with one listed before it (one line per
    workspace: the first place it shares), and for each route target its own workspace may not
    write as routed (:func:`route_place_problems`)."""
    if settings.workspaces_file is None:
        return []
    file_lock = pass_lock_kind(settings.lock) == "file"
    first: dict[tuple[str, ...], tuple[int, str, str]] = {}
    problems = []
    for index, ws in enumerate(settings.workspaces):
        problems.extend(route_place_problems(ws, index, environ))
        places = [sink_place(ws.sink, ws.name, environ)]
        if file_lock and ws.lock_dir is not None:
            places.append(lock_place(ws.lock_dir))
        places.extend(place for route in target_places(ws, environ) for place in route)
        for place in places:
            other_index, other, other_field = first.setdefault(
                place.key, (index, ws.name, place.field)
            )
            if other_index != index:
                there = "" if other_field == place.field else f".{other_field}"
                problems.append(
                    f"{FILE_VARIABLE}: workspaces[{index}].{place.field}: workspace {ws.name!r} "
                    f"and workspaces[{other_index}]{there} ({other!r}) would share "
                    f"{place.shown}: two workspaces must never share a place"
                )
                break
    return problems
