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

for turning it (or, without it, ROTATOR_API_KEY[_FILE], ROTATOR_WORKSPACE_NAME, ...) into
:class:`WorkspaceSettings`, each with its effective sink settings and lock folder, and for
reading a workspace's credential (:func:`read_api_key`), from its file again at every call.
A problem in the file reads ``ROTATOR_WORKSPACES_FILE: workspaces[i].FIELD: what is wrong``.

It must not know how workspaces are used, nor the environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, YamlConfigSettingsSource
from pydantic_settings.sources.types import ConfigFileSourceType

from rotator.errors import ConfigError
from rotator.models import Secret
from rotator.settings._loader import describe_error, is_secret, read_text_file
from rotator.settings._values import (
    Patterns,
    SomePatterns,
    WorkspaceName,
    header_value_problem,
    problem_lines,
)
from rotator.settings.sinks import FileSinkSettings, SinkSettings

__all__ = [
    "WorkspaceSettings",
    "WorkspacesFileSource",
    "credential_problems",
    "read_api_key",
    "resolve_workspaces",
]

FILE_VARIABLE = "ROTATOR_WORKSPACES_FILE"
_SINGLE_KEY_FILE = "ROTATOR_API_KEY_FILE"


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
        info = _Entry.model_fields.get(str(detail["loc"][0])) if detail["loc"] else None
        lines.append(describe_error(detail, info, label, detail.get("input")))
    return lines


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
            variable = f"ROTATOR_SINK_{kind.upper().replace('-', '_')}_{str(key).upper()}"
            problems.append(
                f"{where}.sink.{key}: a secret is not taken from the workspaces file (usually a "
                f"ConfigMap); set {variable}_FILE instead"
            )
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
