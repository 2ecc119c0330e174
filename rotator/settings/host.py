"""What the settings name on this host, checked before anything runs: folders, programs, a
Kubernetes configuration, whether the process runs in a cluster.

A pass refuses what it cannot use (a sink folder under a file, an exec program not on PATH, a
kubeconfig that is not one, a Lease with no API server to hold it), and ``check-config`` must
refuse it first, the same way. So :func:`host_problems` is part of ``load_settings``: every
command that reads settings (check-config, run-once, serve, plan, status, rotate) refuses these
at start, exit 2, one line naming the variable (or the workspaces file's entry) and why.

It reads (``stat``, ``access``, a kubeconfig's text) and never changes anything: a folder that
does not exist yet is fine when it can be created, which is judged from the nearest existing
folder above it. The rules mirror what the sinks and locks do when they start (the file sink
and lock create their folder; the exec sink runs its program with the PATH of the rotator's
environment; the Kubernetes client loads an explicit kubeconfig, else the pod's service
account, else ``KUBECONFIG`` or ``~/.kube/config``); this module cannot import them (they sit
above the settings), so where it repeats a fact of theirs it says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import ssl
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from rotator.models import LOCK_FILE_NAME
from rotator.settings._loader import member_variable
from rotator.settings.model import Settings
from rotator.settings.sinks import (
    ExecSinkSettings,
    FileSinkSettings,
    KubernetesSinkSettings,
    SinkSettings,
    VaultSinkSettings,
)
from rotator.settings.workspaces import FILE_VARIABLE, WorkspaceSettings

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "Kubeconfig",
    "canonical_path",
    "host_problems",
    "in_cluster",
    "kubernetes_configuration",
    "pass_lock_kind",
    "pod_namespace",
    "resolve_program",
]

#: Where Kubernetes mounts a pod's service-account token and namespace (as rotator.kube has it).
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_DEFAULT_NAMESPACE: Final = "default"
_KUBECONFIG_VARIABLE: Final = member_variable("sink", "kubernetes", "kubeconfig")


# --- facts of this host ------------------------------------------------------------------------


def in_cluster() -> bool:
    """Whether a service-account token is mounted: the process runs in a pod that has one."""
    return (SERVICE_ACCOUNT_DIR / "token").exists()


def pass_lock_kind(lock: str) -> Literal["lease", "file"]:
    """The pass lock ROTATOR_LOCK chooses here: ``auto`` is a Lease in a cluster, else a file."""
    return "lease" if lock == "lease" or (lock == "auto" and in_cluster()) else "file"


def pod_namespace() -> str:
    """The namespace this pod runs in, else ``default`` (what the Kubernetes sink uses when
    ROTATOR_SINK_KUBERNETES_NAMESPACE is unset)."""
    try:
        namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        return _DEFAULT_NAMESPACE
    return namespace or _DEFAULT_NAMESPACE


def canonical_path(path: Path) -> Path:
    """``path`` as the place it names: absolute, every link and ``..`` resolved.

    A part that does not exist yet is taken as written (``os.path.realpath`` resolves the
    longest existing part), which is where creating it would put it.
    """
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):  # a loop of links; a NUL in the path
        return Path(os.path.abspath(path))


def resolve_program(word: str, environ: Mapping[str, str]) -> str | None:
    """The file an exec sink's program word runs, links resolved; None when there is none.

    A word with a ``/`` is a path (relative to the working folder); any other is looked up on
    the PATH of ``environ``, as ``subprocess`` does for the exec sink, which passes that PATH on.
    """
    search = os.pathsep.join(os.get_exec_path(dict(environ)))
    found = shutil.which(word, path=search)
    return os.path.realpath(found) if found else None


# --- folders -----------------------------------------------------------------------------------


def _folder_problem(path: Path) -> str | None:
    """Why the rotator could not write in the folder ``path`` (creating it first if need be),
    or None. Nothing is created."""
    try:
        absolute = Path(os.path.abspath(path))
        existing = next(p for p in (absolute, *absolute.parents) if os.path.lexists(p))
        if not existing.exists():
            return f"{str(existing)!r} is a symbolic link to nothing"
    except ValueError:  # a NUL in the path
        return f"{str(path)!r} is not a valid path"
    if not existing.is_dir():
        if existing == absolute:
            return f"{str(absolute)!r} is not a folder"
        return f"{str(absolute)!r} cannot be created: {str(existing)!r} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == absolute:
            return f"{str(absolute)!r} is not writable by this process"
        return (
            f"{str(absolute)!r} cannot be created: {str(existing)!r} is not writable by this "
            "process"
        )
    return None


def _lock_file_problem(folder: Path) -> str | None:
    """Why the file lock in ``folder`` could not be taken, or None (the lock refuses a link,
    a FIFO or anything but a regular file at its path)."""
    path = folder / LOCK_FILE_NAME
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return None  # absent (created at the first pass), or the folder's own problem says it
    if not stat.S_ISREG(mode):
        return f"{str(path)!r} is not a regular file (a link, a folder, a FIFO?): remove it"
    return None


# --- a Kubernetes configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Kubeconfig:
    """How the Kubernetes client would connect: the API server, or why it cannot."""

    #: The API server's URL (lower case, no trailing ``/``); None in a cluster or on a problem.
    server: str | None
    #: Why the client could not load it, or None.
    problem: str | None
    #: Where it comes from, for messages and as the cluster's identity without a server.
    source: str


def _default_kubeconfig_paths(environ: Mapping[str, str]) -> list[Path]:
    # As the client library reads them: KUBECONFIG (a list, like PATH), else ~/.kube/config.
    listed = environ.get("KUBECONFIG", "")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    home = environ.get("HOME") or str(Path.home())
    return [Path(home, ".kube", "config")]


def kubernetes_configuration(kubeconfig: Path | None, environ: Mapping[str, str]) -> Kubeconfig:
    """What the rotator's Kubernetes client would load: ``kubeconfig`` when given, else the
    pod's service account when in a cluster, else ``KUBECONFIG`` or ``~/.kube/config``."""
    if kubeconfig is not None:
        if not kubeconfig.is_file():
            return Kubeconfig(None, f"{str(kubeconfig)!r} is not a file", str(kubeconfig))
        return _read_kubeconfig([kubeconfig])
    if in_cluster():
        return Kubeconfig(None, None, "the pod's service account")
    paths = _default_kubeconfig_paths(environ)
    present = [p for p in paths if p.is_file()]
    if not present:
        shown = os.pathsep.join(str(p) for p in paths)
        return Kubeconfig(
            None,
            f"not in a cluster (no service-account token in {SERVICE_ACCOUNT_DIR}) and no "
            f"kubeconfig at {shown}",
            shown,
        )
    return _read_kubeconfig(present)


@dataclass
class _Merged:
    """Kubeconfig files merged as the client library merges them: the first of each wins."""

    current_context: object = None
    #: contexts, clusters and users: name -> (its mapping, the file that defined it).
    entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = field(
        default_factory=lambda: {"contexts": {}, "clusters": {}, "users": {}}
    )


class _KubeconfigError(Exception):
    """A kubeconfig the client library would refuse, or crash on."""


def _load_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _KubeconfigError(f"{str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise _KubeconfigError(
            f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The problem and its line only: YAML's own message quotes the text (a token, maybe).
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise _KubeconfigError(f"{str(path)!r} is not valid YAML: {problem}{where}") from None
    if not isinstance(document, dict):
        raise _KubeconfigError(f"{str(path)!r} is not a kubeconfig: not a YAML mapping")
    return document


def _merge(merged: _Merged, path: Path, document: Mapping[str, Any]) -> None:
    if merged.current_context is None:
        merged.current_context = document.get("current-context")
    for section, entries in merged.entries.items():
        item_key = section.removesuffix("s")
        listed = document.get(section) or []
        if not isinstance(listed, list):
            raise _KubeconfigError(f"{str(path)!r}: {section} must be a list")
        for entry in listed:
            name = entry.get("name") if isinstance(entry, dict) else None
            item = entry.get(item_key) if isinstance(entry, dict) else None
            if not isinstance(name, str) or not isinstance(item, dict):
                raise _KubeconfigError(
                    f"{str(path)!r}: each of {section} must be a mapping with a name and a "
                    f"{item_key} mapping"
                )
            entries.setdefault(name, (item, path))


def _referenced_files(item: Mapping[str, Any], defined_in: Path) -> Iterator[tuple[str, Path]]:
    # Files a cluster or user names, relative to the kubeconfig that names them; the client
    # reads none of them when the same content is given inline (``...-data``).
    for name in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        value = item.get(name)
        if isinstance(value, str) and value and not item.get(f"{name}-data"):
            yield name, defined_in.parent / value


def _read_kubeconfig(paths: Sequence[Path]) -> Kubeconfig:
    source = os.pathsep.join(str(p) for p in paths)
    try:
        server = _server_of(paths, source)
    except _KubeconfigError as exc:
        return Kubeconfig(None, str(exc), source)
    return Kubeconfig(server.lower().rstrip("/"), None, source)


def _server_of(paths: Sequence[Path], source: str) -> str:
    """The API server of the merged kubeconfig's current context, checked as far as the client
    library needs it (where it would crash or refuse); _KubeconfigError says what is wrong."""
    merged = _Merged()
    for path in paths:
        _merge(merged, path, _load_mapping(path))
    current = merged.current_context
    if not isinstance(current, str) or not current:
        raise _KubeconfigError(f"{source!r} has no current-context")
    context = merged.entries["contexts"].get(current)
    if context is None:
        raise _KubeconfigError(
            f"{source!r}: the current-context {current!r} is not among its contexts"
        )
    cluster_name, user_name = context[0].get("cluster"), context[0].get("user")
    cluster = merged.entries["clusters"].get(str(cluster_name))
    if cluster is None:
        raise _KubeconfigError(f"{source!r}: the context {current!r} names no cluster it defines")
    server = cluster[0].get("server")
    if not isinstance(server, str) or not server:
        raise _KubeconfigError(f"{source!r}: the cluster {cluster_name!r} has no server")
    user = merged.entries["users"].get(str(user_name))
    for item, defined_in in (cluster, *((user,) if user is not None else ())):
        for name, file in _referenced_files(item, defined_in):
            if not file.is_file():
                raise _KubeconfigError(f"{source!r}: its {name} {str(file)!r} is not a file")
    return server


# --- the checks --------------------------------------------------------------------------------


def _sink_label(settings: Settings, index: int, ws: WorkspaceSettings, field: str) -> str:
    """What a problem with ``ws``'s sink ``field`` names: the workspaces file's entry when the
    entry set it, else the variable."""
    variable = member_variable("sink", ws.sink.kind, field)
    if settings.workspaces_file is None:
        return variable
    inherited: object = getattr(settings.sink, field, None)
    if isinstance(settings.sink, FileSinkSettings) and field == "dir":
        inherited = settings.sink.dir / ws.name  # each workspace's own subfolder
    if getattr(ws.sink, field) == inherited:
        return variable
    return f"{FILE_VARIABLE}: workspaces[{index}].sink.{field}"


def _sink_problems(
    sink: SinkSettings, label: Callable[[str], str], environ: Mapping[str, str]
) -> list[str]:
    """What the sink could not use here; ``label(field)`` names where a field was set. The
    aws-secrets-manager sink has nothing to check: its region is a value, and its credentials
    come from AWS's own chain at its first call."""
    if isinstance(sink, FileSinkSettings):
        problem = _folder_problem(sink.dir)
        return [] if problem is None else [f"{label('dir')}: {problem}"]
    if isinstance(sink, KubernetesSinkSettings):
        found = kubernetes_configuration(sink.kubeconfig, environ)
        if found.problem is None:
            return []
        if sink.kubeconfig is None:
            return [
                f"{label('kubeconfig')}: unset, and no Kubernetes configuration: {found.problem}"
            ]
        return [f"{label('kubeconfig')}: cannot be used: {found.problem}"]
    if isinstance(sink, VaultSinkSettings) and sink.cacert is not None:
        try:
            ssl.create_default_context(cafile=str(sink.cacert))
        except ssl.SSLError:
            return [
                f"{label('cacert')}: cannot load {str(sink.cacert)!r}: not a PEM bundle of CA "
                "certificates"
            ]
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or "not a valid path"
            return [f"{label('cacert')}: cannot load {str(sink.cacert)!r}: {reason}"]
    if isinstance(sink, ExecSinkSettings):
        return _program_problems(sink.command[0], label("command"), environ)
    return []


def _program_problems(program: str, label: str, environ: Mapping[str, str]) -> list[str]:
    if resolve_program(program, environ) is not None:
        return []
    if os.sep in program:
        if not os.path.lexists(program):
            return [f"{label}: the program {program!r} does not exist"]
        return [f"{label}: the program {program!r} is not an executable file"]
    search = os.pathsep.join(os.get_exec_path(dict(environ)))
    return [f"{label}: the program {program!r} is not an executable file on PATH ({search})"]


def _lock_problems(
    settings: Settings,
    ws: WorkspaceSettings,
    label_of_sink: Callable[[str], str],
    environ: Mapping[str, str],
) -> list[str]:
    if pass_lock_kind(settings.lock) == "lease":
        if settings.lock != "lease" or isinstance(ws.sink, KubernetesSinkSettings):
            # In a cluster (auto) there is the pod's own; with the kubernetes sink the Lease
            # uses the sink's configuration, whose problems the sink's check names.
            return []
        found = kubernetes_configuration(None, environ)
        if found.problem is None:
            return []
        return [
            f"ROTATOR_LOCK: lease needs a Kubernetes API server: {found.problem}; outside a "
            "cluster use ROTATOR_LOCK=file (or auto), or set KUBECONFIG"
        ]
    if ws.lock_dir is None:
        return [
            "ROTATOR_LOCK_DIR: required when the pass lock is a file (ROTATOR_LOCK="
            f"{settings.lock}, not in a cluster) and the sink is not (it is {ws.sink.kind})"
        ]
    if settings.lock_dir is None:
        # The lock shares the file sink's folder, whose own check covers the folder.
        label, problem = label_of_sink("dir"), None
    else:
        label, problem = "ROTATOR_LOCK_DIR", _folder_problem(ws.lock_dir)
    problem = problem or _lock_file_problem(ws.lock_dir)
    return [] if problem is None else [f"{label}: {problem}"]


def host_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """A line for each thing the settings name that a pass could not use on this host: each
    workspace's sink, lock and the targets of its credentials routes."""
    problems: list[str] = []
    for index, ws in enumerate(settings.workspaces):
        label = functools.partial(_sink_label, settings, index, ws)
        problems.extend(_sink_problems(ws.sink, label, environ))
        problems.extend(_lock_problems(settings, ws, label, environ))
        for j, route in enumerate(ws.credentials):
            for k, target in enumerate(route.targets):
                where = f"{FILE_VARIABLE}: workspaces[{index}].credentials[{j}].targets[{k}]"
                problems.extend(_sink_problems(target, f"{where}.{{}}".format, environ))
    return problems
