"""The workspaces of a rotator: ROTATOR_WORKSPACES_FILE, or the one workspace of the variables.

Responsible for the file's format (YAML, of which JSON is a part)::

    workspaces:
      - name: acme-eu                 # required, unique: a-z, 0-9 and '-', at most 40
        api_key_file: /var/run/...    # required: its own credential, read at every pass
        workspace_id: "..."           # optional
        key_names: ["billing-*"]      # optional: default ROTATOR_KEY_NAMES
        exclude_key_names: []         # optional: default ROTATOR_EXCLUDE_KEY_NAMES
        self_key_name: rotator        # optional: default ROTATOR_SELF_KEY_NAME
        sink: {namespace: acme-eu}    # optional: the chosen sink's variables, by lower-case suffix
        credentials:                  # optional: where each credential's consumers read it
          - name: billing-*           # a base name or a glob; the first entry that matches wins
            targets:                  # one or more, each a sink kind and its variables
              - {sink: kubernetes, namespace: billing, restart: "Deployment/billing-sync"}

for turning it (or, without it, ROTATOR_API_KEY[_FILE], ROTATOR_WORKSPACE_NAME, ...) into
:class:`WorkspaceSettings`, each with its effective sink settings, its credential routes (each
target validated by its kind's settings model, with that kind's variables as defaults) and lock
folder, and for
reading a workspace's credential (:func:`read_api_key`), from its file again at every call.
A problem in the file reads ``ROTATOR_WORKSPACES_FILE: workspaces[i].FIELD: what is wrong``
(``workspaces[i].credentials[j].targets[k].FIELD`` for a target).

It must not know how workspaces are used, nor the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, YamlConfigSettingsSource
from pydantic_settings.sources.types import ConfigFileSourceType

from rotator.errors import ConfigError
from rotator.models import Secret
from rotator.settings._loader import describe_error, is_secret, member_variable, read_text_file
from rotator.settings._values import (
    Patterns,
    SomePatterns,
    WorkspaceName,
    header_value_problem,
    problem_lines,
)
from rotator.settings.sinks import SINK_MODELS, FileSinkSettings, SinkSettings

__all__ = [
    "CredentialRoute",
    "SinkVariable",
    "WorkspaceSettings",
    "WorkspacesFileSource",
    "credential_problems",
    "read_api_key",
    "resolve_workspaces",
    "target_kinds",
]

FILE_VARIABLE = "ROTATOR_WORKSPACES_FILE"
_SINGLE_KEY_FILE = "ROTATOR_API_KEY_FILE"


def _check_glob(value: str) -> str:
    """A credential glob as ``fnmatch`` reads it, refusing what it would take literally by
    accident: an empty name, a ``[`` with no ``]`` to close it."""
    if not value.strip() or value != value.strip():
        raise ValueError("must be a credential's base name or a glob, without surrounding spaces")
    index = 0
    while index < len(value):
        if value[index] == "[":
            end = index + 1
            if end < len(value) and value[end] == "!":
                end += 1
            if end < len(value) and value[end] == "]":
                end += 1  # a ']' first is part of the set
            end = value.find("]", end)
            if end < 0:
                raise ValueError(
                    f"the '[' at position {index + 1} has no ']' (write [[] for a literal '[')"
                )
            index = end
        index += 1
    return value


class CredentialRoute(BaseModel):
    """One entry of a workspace's ``credentials:``: the credentials whose base name matches
    ``name`` (the first entry that matches wins) are delivered to every one of ``targets``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Annotated[str, AfterValidator(_check_glob)] = Field(
        description="A credential's base name, or a glob (fnmatch: *, ?, [...])."
    )
    targets: tuple[SinkSettings, ...] = Field(
        min_length=1,
        description=(
            "Where they are delivered, each a sink kind's settings used as given (a file "
            "target's dir is the folder itself)."
        ),
    )

    @property
    def is_one_name(self) -> bool:
        """Whether ``name`` matches one credential only (it has no wildcard)."""
        return not any(char in self.name for char in "*?[")


@dataclass(frozen=True)
class SinkVariable:
    """A set variable of a sink kind that a target names: a default of those targets."""

    #: The variable it came from, as a problem names it (``ROTATOR_SINK_VAULT_TOKEN_FILE``).
    source: str
    #: Its value: the text found, or the chosen sink's value. Never shown: it may be a secret.
    value: Any = field(repr=False)


class WorkspaceSettings(BaseModel):
    """One workspace as a pass sees it: its credential, which keys, where secrets go."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: WorkspaceName = Field(
        description="The workspace's label in logs, metrics, plan and status; its subfolder."
    )
    api_key: SecretStr | None = Field(
        default=None, description="The credential itself (ROTATOR_API_KEY); None with a file."
    )
    api_key_file: Path | None = Field(
        default=None, description="File holding the credential; wins over api_key; read anew."
    )
    workspace_id: str | None = Field(
        default=None, description="When set, a credential answering for another id is refused."
    )
    key_names: SomePatterns = Field(description="Glob patterns of the base names managed.")
    exclude_key_names: Patterns = Field(default=(), description="Globs never managed.")
    self_key_name: str | None = Field(
        default=None, description="Base name of the rotator's own key, rotated last."
    )
    sink: SinkSettings = Field(
        description=(
            "The sink settings with this workspace's overrides; the file sink's dir is "
            "<ROTATOR_SINK_FILE_DIR>/<name> with a workspaces file."
        )
    )
    credentials: tuple[CredentialRoute, ...] = Field(
        default=(),
        description=(
            "Where its credentials go, by name (first match wins); a credential no entry "
            "matches goes to sink."
        ),
    )
    lock_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of the file lock: ROTATOR_LOCK_DIR (/<name> with a workspaces file), else "
            "the file sink's folder, else None (the sink is not a file and no folder is set)."
        ),
    )
    api_key_origin: str = Field(
        default=_SINGLE_KEY_FILE,
        description="What a problem with api_key_file names: the variable, or the file's entry.",
    )

    def route_of(self, credential: str) -> CredentialRoute | None:
        """The entry of ``credentials`` a credential goes by (the first whose name matches its
        base name), or None: it goes to ``sink``."""
        return next((r for r in self.credentials if fnmatchcase(credential, r.name)), None)

    def targets_of(self, credential: str) -> tuple[SinkSettings, ...]:
        """Where a credential is delivered: its route's targets, else the workspace's sink."""
        route = self.route_of(credential)
        return route.targets if route is not None else (self.sink,)


def read_api_key(ws: WorkspaceSettings) -> Secret:
    """The workspace's credential, read now: its file's content, else ROTATOR_API_KEY.

    Raises ConfigError naming where the file is configured when it cannot be read, is empty, or
    holds something an HTTP header cannot carry (the line never shows the content).
    """
    if ws.api_key_file is not None:
        try:
            content = read_text_file(ws.api_key_origin, ws.api_key_file)
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
        problem = header_value_problem(content)
        if problem is not None:
            raise ConfigError(
                [f"{ws.api_key_origin}: the key in {str(ws.api_key_file)!r} {problem}"]
            )
        return Secret(content)
    if ws.api_key is not None:
        return Secret(ws.api_key.get_secret_value())
    raise ConfigError([f"ROTATOR_API_KEY: not set for workspace {ws.name!r}"])


def credential_problems(workspaces: Iterable[WorkspaceSettings]) -> list[str]:
    """What is wrong with each workspace's credential, read now (``check-config``). A pass
    reads them again and fails only the workspace whose credential cannot be read."""
    problems: list[str] = []
    for ws in workspaces:
        try:
            read_api_key(ws)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return problems


# --- the file ----------------------------------------------------------------------------------


class WorkspacesFileSource(YamlConfigSettingsSource):
    """ROTATOR_WORKSPACES_FILE as a settings source: its ``workspaces`` list, unvalidated.

    What cannot be read at all (no file, not YAML, not a mapping holding a list) is kept in
    ``problems``, one line each, and the source then supplies nothing.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path, label: str) -> None:
        self.problems: list[str] = []
        self._label = label
        super().__init__(settings_cls, yaml_file=path)

    def _read_files(
        self,
        files: ConfigFileSourceType | None,
        deep_merge: bool = False,  # noqa: ARG002 - one file, nothing to merge
    ) -> dict[str, Any]:
        path = str(files)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.problems.append(f"{self._label}: {path!r} is not UTF-8 text")
            return {}
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problems.append(f"{self._label}: cannot read {path!r}: {reason}")
            return {}
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            # The problem and its line only: YAML's own message quotes the text around it.
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            self.problems.append(f"{self._label}: {path!r} is not valid YAML: {problem}{where}")
            return {}
        if not isinstance(data, dict) or not isinstance(data.get("workspaces"), list):
            self.problems.append(
                f"{self._label}: {path!r} must be a mapping with a 'workspaces' list"
            )
            return {}
        others = sorted(str(key) for key in data if key != "workspaces")
        if others:
            self.problems.append(
                f"{self._label}: unknown key {others[0]!r}: the file holds only 'workspaces'"
            )
            return {}
        return {"workspaces": data["workspaces"]}

    def _read_file(self, path: Any) -> dict[str, Any]:  # pragma: no cover - _read_files reads
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self._label!r})"


class _Entry(BaseModel):
    """One item of the file's ``workspaces`` list, as written."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, coerce_numbers_to_str=True
    )

    name: WorkspaceName
    api_key_file: Path
    workspace_id: str | None = None
    key_names: SomePatterns | None = None
    exclude_key_names: Patterns | None = None
    self_key_name: str | None = None
    sink: dict[str, Any] = Field(default_factory=dict)
    credentials: list[Any] | None = None  # checked entry by entry, for precise labels

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: object) -> object:
        # As with the variables: an empty value counts as unset (YAML's `key:` is null).
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and v != ""}
        return data


_ENTRY_FIELDS = ", ".join(_Entry.model_fields)


def _entry_problems(error: ValidationError, where: str) -> list[str]:
    lines = []
    for detail in error.errors(include_url=False):
        path = ".".join(str(part) for part in detail["loc"])
        label = f"{where}.{path}" if path else where
        if detail["type"] == "extra_forbidden":
            hint = "; a credential is read from api_key_file" if path == "api_key" else ""
            lines.append(f"{label}: unknown field (a workspace has {_ENTRY_FIELDS}){hint}")
            continue
        if detail["type"] == "model_type":
            lines.append(f"{label}: must be a mapping with at least name and api_key_file")
            continue
        if detail["type"] == "dict_type":
            lines.append(f"{label}: must be a mapping of the sink's variables, by lowercase suffix")
            continue
        if detail["type"] == "list_type" and path == "credentials":
            lines.append(f"{label}: must be a list of entries, each with name and targets")
            continue
        info = _Entry.model_fields.get(str(detail["loc"][0])) if detail["loc"] else None
        lines.append(describe_error(detail, info, label, detail.get("input")))
    return lines


def _secret_in_the_file(label: str, kind: str, field_name: str) -> str:
    variable = member_variable("sink", kind, field_name)
    return (
        f"{label}: a secret is not taken from the workspaces file (usually a ConfigMap); set "
        f"{variable}_FILE instead"
    )


def _workspace_sink(
    overrides: Mapping[str, Any], base: SinkSettings, name: str, where: str
) -> tuple[SinkSettings | None, list[str]]:
    """``base`` with this workspace's ``sink:`` values applied (and its own file folder)."""
    model = type(base)
    kind = base.kind
    variables = [field for field in model.model_fields if field != "kind"]
    problems = []
    for key in overrides:
        info = model.model_fields.get(str(key))
        if info is None or key == "kind":
            problems.append(
                f"{where}.sink.{key}: not a variable of the {kind} sink "
                f"(ROTATOR_SINK is {kind!r}; its variables: {', '.join(variables)})"
            )
        elif is_secret(info):
            problems.append(_secret_in_the_file(f"{where}.sink.{key}", kind, str(key)))
    if problems:
        return None, problems
    values = base.model_dump(exclude_unset=True) | {
        k: v for k, v in overrides.items() if v is not None and v != ""
    }
    if isinstance(base, FileSinkSettings) and "dir" not in overrides:
        values["dir"] = base.dir / name  # each workspace in its own subfolder
    try:
        return model.model_validate(values), []
    except ValidationError as exc:
        return None, [
            describe_error(
                detail,
                model.model_fields.get(str(detail["loc"][0])) if detail["loc"] else None,
                f"{where}.sink.{'.'.join(str(part) for part in detail['loc'])}",
                detail.get("input") if detail["loc"] and detail["loc"][0] in overrides else None,
            )
            for detail in exc.errors(include_url=False)
        ]


# --- credentials: routes and their targets ------------------------------------------------------

#: Each sink kind's variables by field: the defaults of that kind's targets.
TargetDefaults = Mapping[str, Mapping[str, SinkVariable]]

_KINDS = ", ".join(SINK_MODELS)
#: Characters the restart syntax (CREDENTIAL=Kind/name,...;...) gives a meaning to.
_RESTART_SEPARATORS = "=;,"


def target_kinds(data: Mapping[str, Any]) -> set[str]:
    """The sink kinds the targets of the file's raw data name (lower case), whatever else is
    wrong with it: their variables are allowed in the environment."""
    kinds: set[str] = set()
    for entry in _items(data.get("workspaces")):
        for route in _items(entry.get("credentials")):
            for target in _items(route.get("targets")):
                kind = target.get("sink")
                if isinstance(kind, str):
                    kinds.add(kind.strip().lower())
    return kinds


def _items(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def target_defaults(sink: SinkSettings, others: TargetDefaults) -> TargetDefaults:
    """Each kind's defaults for targets: the chosen sink's variables as set (validated), and
    ``others``, the variables set for kinds a target names."""
    chosen = {
        name: SinkVariable(member_variable("sink", sink.kind, name), getattr(sink, name))
        for name in sink.model_fields_set
        if name != "kind"
    }
    return {**others, sink.kind: chosen}


def _routes(
    raw: list[Any], defaults: TargetDefaults, where: str
) -> tuple[tuple[CredentialRoute, ...], list[str]]:
    """A workspace entry's ``credentials:`` list as routes, or its problems."""
    routes: list[CredentialRoute] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        here = f"{where}.credentials[{index}]"
        route, route_problems = _route(item, defaults, here)
        problems.extend(route_problems)
        if route is not None:
            routes.append(route)
    return tuple(routes), problems


def _route(
    item: object, defaults: TargetDefaults, here: str
) -> tuple[CredentialRoute | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"{here}: must be a mapping with name and targets"]
    problems = [
        f"{here}.{key}: unknown field (a credentials entry has name and targets)"
        for key in item
        if key not in CredentialRoute.model_fields
    ]
    name, name_problems = _route_name(item.get("name"), here)
    problems.extend(name_problems)
    raw_targets = item.get("targets")
    if raw_targets is None or raw_targets == "":
        problems.append(
            f"{here}.targets: required: one or more targets (a credential no entry matches goes "
            "to the workspace's sink)"
        )
        raw_targets = []
    elif not isinstance(raw_targets, list):
        problems.append(f"{here}.targets: must be a list of targets, each a mapping with sink")
        raw_targets = []
    elif not raw_targets:
        problems.append(
            f"{here}.targets: must list at least one target (a credential no entry matches goes "
            "to the workspace's sink)"
        )
    targets = []
    for index, raw_target in enumerate(raw_targets):
        target, target_problems = _target(
            raw_target, name or "", defaults, f"{here}.targets[{index}]"
        )
        problems.extend(target_problems)
        if target is not None:
            targets.append(target)
    if len(targets) == len(raw_targets):
        problems.extend(_second_program(targets, here))
    if problems or name is None:
        return None, problems
    return CredentialRoute(name=name, targets=tuple(targets)), []


def _route_name(name: object, here: str) -> tuple[str | None, list[str]]:
    """A route's ``name`` as a glob, or its problem."""
    if isinstance(name, int | float) and not isinstance(name, bool):
        name = str(name)  # YAML reads a name of digits as a number
    if name is None or name == "":
        return None, [f"{here}.name: required: a credential's base name or a glob"]
    if not isinstance(name, str):
        return None, [f"{here}.name: must be a credential's base name or a glob (text)"]
    try:
        return _check_glob(name), []
    except ValueError as exc:
        return None, [f"{here}.name: {exc}, got {name!r}"]


def _second_program(targets: list[SinkSettings], here: str) -> list[str]:
    # Mirrors the target set (rotator.sinks.targets), which refuses it when built: refused at
    # start here, by every command.
    programs = [index for index, target in enumerate(targets) if target.kind == "exec"]
    if len(programs) < 2:  # one is allowed, a second is not
        return []
    return [
        f"{here}.targets[{programs[1]}].sink: a second exec target: a credential may have at "
        "most one target that cannot give its secret back (an exec program only stores it), so "
        "that a target failing after the others can be brought up to date from them"
    ]


def _target(
    item: object, glob: str, defaults: TargetDefaults, here: str
) -> tuple[SinkSettings | None, list[str]]:
    """One target: its kind's model over that kind's defaults and the target's own values."""
    if not isinstance(item, dict):
        return None, [f"{here}: must be a mapping with sink and that sink's variables"]
    kind = item.get("sink")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    if kind is None or kind == "":
        return None, [f"{here}.sink: required: one of {_KINDS}"]
    model = SINK_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [f"{here}.sink: must be one of {_KINDS}, got {kind!r}"]
    variables = ", ".join(name for name in model.model_fields if name != "kind")
    given: dict[str, Any] = {}
    problems = []
    for key, value in item.items():
        info = model.model_fields.get(str(key))
        if key == "sink" or value is None or value == "":
            continue  # as everywhere, an empty value counts as unset
        if info is None or key == "kind":
            problems.append(
                f"{here}.{key}: not a variable of the {kind} sink (its variables: {variables})"
            )
        elif is_secret(info):
            problems.append(_secret_in_the_file(f"{here}.{key}", kind, str(key)))
        elif kind == "kubernetes" and key == "restart":
            restart, problem = _route_restart(value, glob)
            if problem is not None:
                problems.append(f"{here}.restart: {problem}")
            given[key] = restart
        else:
            given[key] = value
    if problems:
        return None, problems
    inherited = defaults.get(kind, {})
    values = {name: default.value for name, default in inherited.items()} | given
    try:
        # As a target, a Vault path or AWS secret id may be one fixed name (see places).
        return model.model_validate(values, context={"target": True}), []  # type: ignore[return-value]
    except ValidationError as exc:
        return None, [
            _target_problem(detail, model, here, given, inherited)
            for detail in exc.errors(include_url=False)
        ]


def _route_restart(value: object, glob: str) -> tuple[str, str | None]:
    """A target's ``restart`` (workloads: ``Kind/name`` text, comma-separated, or a list) as
    the Kubernetes sink's ``CREDENTIAL=Kind/name,...``, for the credentials of its route."""
    workloads = value if isinstance(value, list) else [value]
    if not all(isinstance(w, str) for w in workloads):
        return "", "must be Kind/name, or a list of them"
    joined = ",".join(str(w) for w in workloads)
    if "=" in joined or ";" in joined:
        return "", (
            f"names workloads only (Kind/name, ...), got {joined!r}: they are restarted after a "
            "delivery of the credentials of this entry"
        )
    if any(char in glob for char in _RESTART_SEPARATORS):
        return "", (
            f"cannot name the credentials {glob!r}: a name with '=', ';' or ',' cannot be "
            "written in ROTATOR_SINK_KUBERNETES_RESTART's form"
        )
    return f"{glob}={joined}", None


def _target_problem(
    detail: Any,
    model: type[BaseModel],
    here: str,
    given: Mapping[str, Any],
    inherited: Mapping[str, SinkVariable],
) -> str:
    """One line for a target's refused field, naming where its value came from: the target,
    the variable it inherited, or (set in neither) both places it may be set."""
    name = str(detail["loc"][0]) if detail["loc"] else ""
    info = model.model_fields.get(name)
    if name in given:
        return describe_error(detail, info, f"{here}.{name}", given[name])
    if name in inherited:
        value = inherited[name].value
        return describe_error(
            detail, info, inherited[name].source, value if isinstance(value, str) else None
        )
    line = describe_error(detail, info, f"{here}.{name}" if name else here, None)
    variable = member_variable("sink", str(model.model_fields["kind"].default), name)
    if info is not None and is_secret(info):
        return f"{line}; set {variable} or {variable}_FILE (a secret is not taken from the file)"
    return f"{line}; set it in this target or as {variable}"


def _lock_dir(global_dir: Path | None, sink: BaseModel, name: str | None) -> Path | None:
    if global_dir is not None:
        return global_dir / name if name is not None else global_dir
    return sink.dir if isinstance(sink, FileSinkSettings) else None


_MISSING: Any = object()

#: The Settings fields a workspace is built from; the `workspaces` field comes after them all.
INPUTS = (
    "api_key",
    "api_key_file",
    "workspace_name",
    "workspace_id",
    "key_names",
    "exclude_key_names",
    "self_key_name",
    "sink",
    "sink_variables",
    "lock_dir",
    "workspaces_file",
)


def _single(data: Mapping[str, Any]) -> tuple[WorkspaceSettings | None, list[str]]:
    """The one workspace of ROTATOR_API_KEY[_FILE], ROTATOR_WORKSPACE_NAME, ..."""
    problems = []
    if data["api_key"] is None and data["api_key_file"] is None:
        problems.append("ROTATOR_API_KEY: required (or ROTATOR_API_KEY_FILE)")
    if data["key_names"] is not _MISSING and not data["key_names"]:
        problems.append(
            "ROTATOR_KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
            "('*' for all)"
        )
    if problems or any(value is _MISSING for value in data.values()):
        return None, problems
    ws = WorkspaceSettings(
        name=data["workspace_name"],
        api_key=data["api_key"],
        api_key_file=data["api_key_file"],
        workspace_id=data["workspace_id"],
        key_names=data["key_names"],
        exclude_key_names=data["exclude_key_names"],
        self_key_name=data["self_key_name"],
        sink=data["sink"],
        lock_dir=_lock_dir(data["lock_dir"], data["sink"], None),
    )
    if ws.api_key_file is not None:
        try:
            read_api_key(ws)
        except ConfigError as exc:
            return None, exc.problems
    return ws, []


def _from_file(
    entries: list[object], data: Mapping[str, Any]
) -> tuple[list[WorkspaceSettings], list[str]]:
    """Each workspace the file lists, with the variables' values as its defaults."""
    if not entries:
        return [], [f"{FILE_VARIABLE}: lists no workspace (the 'workspaces' list is empty)"]
    built: list[WorkspaceSettings] = []
    problems: list[str] = []
    names: dict[str, int] = {}
    ids: dict[str, int] = {}
    for index, item in enumerate(entries):
        where = f"{FILE_VARIABLE}: workspaces[{index}]"
        try:
            entry = _Entry.model_validate(item)
        except ValidationError as exc:
            problems.extend(_entry_problems(exc, where))
            continue
        entry_problems: list[str] = []
        if entry.name in names:
            entry_problems.append(
                f"{where}.name: {entry.name!r} is also the name of workspaces[{names[entry.name]}]"
                ": names must be unique"
            )
        names.setdefault(entry.name, index)
        if entry.workspace_id and entry.workspace_id in ids:
            # One workspace listed twice: each entry would revoke the other's delivered key.
            entry_problems.append(
                f"{where}.workspace_id: {entry.workspace_id!r} is also the workspace of "
                f"workspaces[{ids[entry.workspace_id]}]: one workspace must be listed once"
            )
        if entry.workspace_id:
            ids.setdefault(entry.workspace_id, index)
        key_names = entry.key_names or data["key_names"]
        if key_names is not _MISSING and not key_names:
            entry_problems.append(f"{where}.key_names: required, as ROTATOR_KEY_NAMES is not set")
        sink = None
        if data["sink"] is not _MISSING:
            sink, sink_problems = _workspace_sink(entry.sink, data["sink"], entry.name, where)
            entry_problems.extend(sink_problems)
        routes: tuple[CredentialRoute, ...] = ()
        if entry.credentials and _MISSING not in (data["sink"], data["sink_variables"]):
            defaults = target_defaults(data["sink"], data["sink_variables"])
            routes, route_problems = _routes(entry.credentials, defaults, where)
            entry_problems.extend(route_problems)
        problems.extend(entry_problems)
        if entry_problems or sink is None or any(value is _MISSING for value in data.values()):
            continue
        ws = WorkspaceSettings(
            name=entry.name,
            api_key_file=entry.api_key_file,
            workspace_id=entry.workspace_id,
            key_names=key_names,
            exclude_key_names=(
                entry.exclude_key_names
                if entry.exclude_key_names is not None
                else data["exclude_key_names"]
            ),
            self_key_name=entry.self_key_name or data["self_key_name"],
            sink=sink,
            credentials=routes,
            lock_dir=_lock_dir(data["lock_dir"], sink, entry.name),
            api_key_origin=f"{where}.api_key_file",
        )
        # Its credential file is read at each pass, not here: one workspace whose file is gone
        # fails that pass alone (named, exit 1), while the others are still served.
        built.append(ws)
    return built, problems


def resolve_workspaces(value: object, data: Mapping[str, Any]) -> tuple[WorkspaceSettings, ...]:
    """The workspaces of a Settings: ``value`` is the file's raw list, or empty without a file.

    ``data`` holds the Settings fields validated so far; a field missing from it failed and has
    its own problem, so the rules needing it are skipped. Raises the problems as finished lines.
    """
    if (
        isinstance(value, tuple | list)
        and value
        and all(isinstance(ws, WorkspaceSettings) for ws in value)
    ):
        return tuple(value)  # built already: a copy of a Settings, a test
    inputs = {name: data.get(name, _MISSING) for name in INPUTS}
    entries = list(value) if isinstance(value, tuple | list) else []
    if inputs["workspaces_file"] is None and not entries:
        single, problems = _single(inputs)
        built = [single] if single is not None else []
    else:
        built, problems = _from_file(entries, inputs)
    if problems:
        raise problem_lines(problems)
    return tuple(built)
