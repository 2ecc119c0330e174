"""Settings: every ROTATOR_* variable of contract.md, parsed and validated once, at the edge.

Responsible for reading the environment mapping it is given (``load_settings(environ)``; it
reads ``os.environ`` only when given nothing, and nothing else in the rotator reads it at all),
and for turning it into frozen models that are passed down as values: :class:`Settings`, with the
chosen sink's settings in ``Settings.sink`` (a union tagged on ``kind``: a new sink adds one model
to :data:`SinkSettings` and one entry to :data:`SINK_MODELS`).

Rules (contract.md): an empty value counts as unset; surrounding white space is dropped; every
variable may instead come as ``<NAME>_FILE``, the path of a file holding its value (the file wins
over the plain variable); booleans are true/false/1/0/yes/no; an unknown ROTATOR_* variable is an
error, except those Kubernetes injects for a Service named ``rotator``. Every problem is
collected and raised together as one :class:`~rotator.errors.ConfigError`, one line per problem,
each naming its variable. A secret's value is never part of a message, a repr or ``redacted``.

It must not know how the settings are used: no API calls, no sink I/O, no logging.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import SplitResult, urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

from rotator.errors import ConfigError
from rotator.models import Secret, is_loopback_host
from rotator.schedule import load_zone, parse_schedule

__all__ = [
    "SINK_MODELS",
    "FileSinkSettings",
    "Settings",
    "SinkSettings",
    "WorkspaceSettings",
    "describe_variables",
    "load_settings",
    "read_api_key",
    "redacted",
]

PREFIX = "ROTATOR_"
REDACTED = "**********"

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
#: Kubernetes injects these for a Service named ``rotator``; they are not settings.
_KUBERNETES_SERVICE_VARIABLE = re.compile(r"^ROTATOR_(SERVICE_HOST|SERVICE_PORT(_.*)?|PORT(_.*)?)$")


# --- value types and checks (each ValueError's text becomes "<VAR>: <text>, got '<value>'") ---


def _parse_bool(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("must be one of true, false, yes, no, 1, 0")
    return value


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _at_least_one(patterns: tuple[str, ...]) -> tuple[str, ...]:
    if not patterns:
        raise ValueError("must list at least one glob pattern")
    return patterns


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _split_url(value: str) -> SplitResult:
    """The URL's parts; ValueError unless it is http(s) with a host (and a valid port)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http(s) URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return parts


def _check_api_url(value: str) -> str:
    parts = _split_url(value)
    if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
        # The rotator's own admin key travels in every request: never in clear text off-host.
        raise ValueError("must be https unless the host is loopback")
    return value.rstrip("/")


def _check_http_url(value: str) -> str:
    _split_url(value)
    return value.rstrip("/")


def _check_timezone(value: str) -> str:
    try:
        load_zone(value)
    except ConfigError:
        raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
    return value


def _check_schedule(value: str) -> str:
    try:
        parse_schedule(value, "UTC")
    except ConfigError as exc:
        raise ValueError("; ".join(p.split(": ", 1)[-1] for p in exc.problems)) from None
    return value


_Bool = Annotated[bool, BeforeValidator(_parse_bool)]
_Patterns = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
_ApiUrl = Annotated[str, AfterValidator(_check_api_url)]
_HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


# --- sinks -------------------------------------------------------------------------------------


class FileSinkSettings(BaseModel):
    """ROTATOR_SINK=file: one file per credential, plus its ``.meta.json`` (contract.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["file"] = "file"
    dir: Path = Field(
        default=Path("./secrets"),
        description=(
            "The folder holding each credential's file, its metadata and "
            "the pass lock. Default ./secrets: relative to the working directory, so a local try "
            "writes next to where it runs; a deployment mounts a volume and sets a path."
        ),
    )


def _split_command(value: object) -> object:
    if isinstance(value, str):
        try:
            words = tuple(shlex.split(value))
        except ValueError as exc:
            raise ValueError(f"cannot be split into words: {exc}") from None
        if not words:
            raise ValueError("must name a program")
        return words
    return value


class ExecSinkSettings(BaseModel):
    """ROTATOR_SINK=exec: a program of the ops team's, called per operation (contract.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["exec"] = "exec"
    command: Annotated[tuple[str, ...], BeforeValidator(_split_command)] = Field(
        description=(
            "The program and its arguments, split into words as a POSIX shell would and never "
            "run through one. Required: there is no sensible default program."
        ),
    )
    timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds per call; a call past it is killed and its outcome counts as unknown. "
            "Default 30: a local program answers in well under a second."
        ),
    )


#: The chosen sink's settings, tagged on ``kind``.
SinkSettings = Annotated[FileSinkSettings | ExecSinkSettings, Field(discriminator="kind")]

#: Every ROTATOR_SINK value contract.md names: the settings model of each sink this version has,
#: None for a sink it does not have yet.
SINK_MODELS: Mapping[str, type[BaseModel] | None] = {
    "file": FileSinkSettings,
    "kubernetes": None,
    "vault": None,
    "aws-secrets-manager": None,
    "exec": ExecSinkSettings,
}


# --- the settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceSettings:
    """One workspace's settings, resolved: its credential's source, globs, sink and lock folder."""

    name: str
    api_key: SecretStr | None
    api_key_file: Path | None
    workspace_id: str | None
    key_names: tuple[str, ...]
    exclude_key_names: tuple[str, ...]
    self_key_name: str | None
    sink: SinkSettings
    lock_dir: Path | None


def read_api_key(ws: WorkspaceSettings) -> Secret:
    """A workspace's own credential, read now: the file's content, else ROTATOR_API_KEY."""
    if ws.api_key_file is not None:
        return Secret(_read_api_key_file(ws.api_key_file))
    if ws.api_key is not None:
        return Secret(ws.api_key.get_secret_value())
    raise ConfigError([f"{PREFIX}API_KEY: required (or ROTATOR_API_KEY_FILE)"])


class Settings(BaseModel):
    """Every setting of one rotator process; frozen, passed down as a value.

    Field names are the variable names without ROTATOR_, in lower case. Each description states
    the unit and why the default is what it is.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: _ApiUrl = Field(
        default="https://api.projectmanager.com",
        description=(
            "Base URL of the ProjectManager API (a trailing / is dropped). Default: the public "
            "API; https required except for a loopback host (the emulator, tests)."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "The rotator's own credential: an admin's API key for the workspace. No default: "
            "required unless ROTATOR_API_KEY_FILE or ROTATOR_WORKSPACES_FILE is set."
        ),
    )
    api_key_file: Path | None = Field(
        default=None,
        description=(
            "Path of a file holding the rotator's API key (a mounted Secret); wins over "
            "ROTATOR_API_KEY and is read again at every pass, so a rotated own key is picked up "
            "without a restart."
        ),
    )
    workspace_name: str = Field(
        default="default",
        description="The workspace's label in logs and metrics. Default 'default': one workspace.",
    )
    workspace_id: str | None = Field(
        default=None,
        description=(
            "When set, a credential whose `me` answers for another workspace id is refused. "
            "Unset by default: most deployments have one workspace and one key."
        ),
    )
    key_names: Annotated[_Patterns, AfterValidator(_at_least_one)] = Field(
        description=(
            "Comma-separated glob patterns of the base names of the keys to manage. No default: "
            "which keys the rotator may replace is a deliberate choice ('*' is allowed)."
        ),
    )
    exclude_key_names: _Patterns = Field(
        default=(),
        description="Comma-separated glob patterns never managed, whatever key_names says.",
    )
    validity_days: int = Field(
        default=730,
        gt=0,
        description=(
            "Days: a key's lifetime; its creation time is `expires` minus this. Default 730: "
            "ProjectManager keys live two years and that cannot be changed."
        ),
    )
    rotate_before_days: float = Field(
        default=30,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Days: rotate when fewer are left; below validity_days. Default 30: a month leaves "
            "room for many failed passes to be noticed and fixed before a key expires."
        ),
    )
    max_age_days: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Days: also rotate a key older than this (a company's rotation policy); at most "
            "validity_days. Unset by default: expiry alone drives rotation."
        ),
    )
    grace_hours: float = Field(
        default=24,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Hours the previous key stays valid after its replacement was delivered; may be 0 or "
            "fractional. Default 24: consumers that read their secret once a day catch up."
        ),
    )
    orphan_min_age_minutes: float = Field(
        default=10,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Minutes: a rotator-made key no sink holds is revoked once this old. Default 10: far "
            "longer than one credential's create-verify-deliver, so a pass in flight is safe."
        ),
    )
    dry_run: _Bool = Field(
        default=False,
        description="Plan and log, change nothing. Default false: the rotator's job is to act.",
    )
    sink: SinkSettings = Field(
        default_factory=FileSinkSettings,
        description=(
            "ROTATOR_SINK: where secrets are delivered. Default file: needs no other system, so "
            "a first run works anywhere."
        ),
    )
    schedule: Annotated[str, AfterValidator(_check_schedule)] = Field(
        default="0 3 * * *",
        description=(
            "POSIX cron expression of `serve`'s passes. Default daily at 03:00: a quiet hour, and "
            "with a 30-day margin one pass a day is plenty."
        ),
    )
    timezone: Annotated[str, AfterValidator(_check_timezone)] = Field(
        default="UTC",
        description="IANA zone of the schedule. Default UTC: no daylight-saving surprises.",
    )
    http_port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        description="TCP port of /healthz, /readyz and /metrics. Default 8080: unprivileged.",
    )
    log_format: Annotated[Literal["json", "console"], BeforeValidator(_lower)] = Field(
        default="json",
        description="json (one object a line) or console. Default json: what log shippers read.",
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)] = (
        Field(
            default="info",
            description="Lowest level logged. Default info: every event of a pass, no debug noise.",
        )
    )
    integration_name: str = Field(
        default="key-rotator",
        description=(
            "Sent as x-integration-name; shows in ProjectManager's audit log. Default: the "
            "project's name, so auditors can tell its changes from a person's."
        ),
    )
    http_timeout_seconds: float = Field(
        default=10,
        gt=0,
        allow_inf_nan=False,
        description="Seconds per API request. Default 10: the API answers in well under a second.",
    )
    http_max_retries: int = Field(
        default=4,
        ge=0,
        description=(
            "Retries of a request after a connection error, 429 or 5xx (exponential backoff "
            "with jitter). Default 4: rides out a minute-long blip without stalling a pass."
        ),
    )
    run_on_start: _Bool = Field(
        default=True,
        description=(
            "`serve` runs a pass as soon as it starts. Default true: a restart never delays a "
            "due rotation until the next scheduled time."
        ),
    )
    shutdown_timeout_seconds: float = Field(
        default=60,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Seconds `serve` may take after SIGTERM to finish the credential in flight. Default "
            "60: within Kubernetes' default 30 s grace plus a raised terminationGracePeriod."
        ),
    )
    pushgateway_url: _HttpUrl | None = Field(
        default=None,
        description="`run-once` pushes its metrics there. Unset by default: nothing pushed.",
    )
    workspaces_file: Path | None = Field(
        default=None,
        description=(
            "A file listing several workspaces, each with its own credential (replaces "
            "ROTATOR_API_KEY). Unset by default: one workspace."
        ),
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        description="Rotations in flight at once, over all workspaces. Default 8: modest load.",
    )
    workspace_concurrency: int = Field(
        default=2,
        ge=1,
        description=(
            "Rotations in flight at once in one workspace. Default 2: keeps within one "
            "workspace's rate limit."
        ),
    )
    self_key_name: str | None = Field(
        default=None,
        description=(
            "Base name of the rotator's own key, rotated last. Unset by default: the rotator "
            "leaves its own key alone unless told where to deliver it."
        ),
    )
    emergency_grace_hours: float = Field(
        default=0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "Hours of grace for `rotate --now`. Default 0: a leaked key is revoked at once."
        ),
    )
    max_failure_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description=(
            "Share (0 to 1) of a workspace's rotations that may fail (after at least 3) before "
            "it stops creating keys. Default 0.5: a systematic fault stops early, a flaky one not."
        ),
    )
    max_rotations_per_pass: int = Field(
        default=50,
        ge=1,
        description=(
            "Most rotations in one pass, most urgent first. Default 50: bounds the damage of a "
            "bad policy change while still catching up quickly."
        ),
    )
    shards: int = Field(
        default=1,
        ge=1,
        description="Split the workspaces over this many pods. Default 1: one pod does all.",
    )
    shard_index: int = Field(
        default=0,
        ge=0,
        description=(
            "Which share this pod takes, below shards. Default: JOB_COMPLETION_INDEX (set by an "
            "Indexed Job), else 0."
        ),
    )

    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - a pod's port is reached through its Service
        description=(
            "Address `serve` listens on. Default 0.0.0.0: in a pod the Service reaches it; set "
            "127.0.0.1 outside a pod to keep it local."
        ),
    )
    lock: Annotated[Literal["auto", "lease", "file"], BeforeValidator(_lower)] = Field(
        default="auto",
        description=(
            "The pass lock of a workspace: auto (a Lease in a cluster, else a file), lease or "
            "file. Default auto: the right lock wherever it runs."
        ),
    )
    lock_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of the file lock .rotator.lock. Default: the file sink's folder; required "
            "when the lock is a file and the sink is another."
        ),
    )
    lease_namespace: str | None = Field(
        default=None,
        description="Namespace of the Leases. Default: the pod's own namespace.",
    )
    lease_duration_seconds: float = Field(
        default=60,
        ge=5,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds: a Lease not renewed for this long is free again (a killed pod's lock "
            "expires). Default 60: renewed every 20 s, a dead pod's lock is free within a minute."
        ),
    )

    @property
    def workspaces(self) -> tuple[WorkspaceSettings, ...]:
        """Every workspace of this process: here the one the single-workspace variables name."""
        return (
            WorkspaceSettings(
                name=self.workspace_name,
                api_key=self.api_key,
                api_key_file=self.api_key_file,
                workspace_id=self.workspace_id,
                key_names=self.key_names,
                exclude_key_names=self.exclude_key_names,
                self_key_name=self.self_key_name,
                sink=self.sink,
                lock_dir=self.lock_dir,
            ),
        )

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        problems = _relation_problems(dict(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def read_api_key(self) -> Secret:
        """The credential of the (first) workspace, read now."""
        return read_api_key(self.workspaces[0])


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """A value as found, and the variable it came from (``ROTATOR_X`` or ``ROTATOR_X_FILE``)."""

    value: str
    source: str


def _variable(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _sink_prefix(kind: str) -> str:
    return f"{PREFIX}SINK_{kind.upper().replace('-', '_')}_"


def _sink_variables(kind: str, model: type[BaseModel]) -> dict[str, str]:
    """Variable name -> field name, for each setting of one sink."""
    prefix = _sink_prefix(kind)
    return {prefix + name.upper(): name for name in model.model_fields if name != "kind"}


def _settings_variables() -> dict[str, str]:
    """Variable name -> field name, for each setting outside the sink."""
    return {_variable(name): name for name in Settings.model_fields if name != "sink"}


def _known_variables() -> frozenset[str]:
    names = set(_settings_variables()) | {f"{PREFIX}SINK"}
    for kind, model in SINK_MODELS.items():
        if model is not None:
            names.update(_sink_variables(kind, model))
    return frozenset(names)


def _is_secret(info: FieldInfo) -> bool:
    annotation = info.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _mask_url_password(value: str) -> str:
    """``value`` with any password in a URL's user-info replaced by the redaction mark."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None:
        return value
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{REDACTED}@{host}").geturl()


def _shown(value: str) -> str:
    return repr(_mask_url_password(value))


def _expectation(info: FieldInfo) -> str:
    """What a field accepts, in words, from its type and constraints: 'an integer >= 1'."""
    kind: Any = info.annotation
    if get_origin(kind) is Union or type(kind).__name__ == "UnionType":
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(kind))
    noun = {int: "an integer", float: "a number"}.get(kind, "a valid value")
    bounds = []
    for constraint in info.metadata:
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(constraint, attribute, None)
            if isinstance(constraint, annotated_types.BaseMetadata) and bound is not None:
                bounds.append(f"{symbol} {bound:g}")
    return " ".join([noun, " and ".join(bounds)]).strip()


def _describe(error: ValidationError, info: FieldInfo, raw: _Raw) -> str:
    """One problem line for a value pydantic refused: no pydantic wording, no URL, no secret."""
    details = error.errors(include_url=False)
    context: dict[str, Any] = dict(details[0].get("ctx", {})) if details else {}
    if details and details[0]["type"] == "value_error" and "error" in context:
        text = str(context["error"])
    else:
        text = "must be " + _expectation(info)
    got = f", got {_shown(raw.value)}"
    if _is_secret(info) or text.endswith(got):
        return f"{raw.source}: {text}"
    return f"{raw.source}: {text}{got}"


def _adapter(info: FieldInfo) -> TypeAdapter[Any]:
    annotated: Any = (
        Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    )
    return TypeAdapter(annotated)


def _parse_fields(
    model: type[BaseModel], variables: Mapping[str, str], raw: Mapping[str, _Raw]
) -> tuple[dict[str, Any], set[str], list[str]]:
    """Each set variable parsed into its field: (values, names of fields that failed, problems)."""
    values: dict[str, Any] = {}
    failed: set[str] = set()
    problems: list[str] = []
    for variable, field_name in variables.items():
        found = raw.get(variable)
        if found is None:
            continue
        info = model.model_fields[field_name]
        try:
            values[field_name] = _adapter(info).validate_python(found.value)
        except ValidationError as exc:
            failed.add(field_name)
            problems.append(_describe(exc, info, found))
    return values, failed, problems


def _read_value_file(variable: str, path: str) -> tuple[str | None, str | None]:
    """(content without surrounding white space, problem) of a ``<NAME>_FILE`` variable."""
    try:
        return Path(path).read_text(encoding="utf-8").strip(), None
    except UnicodeDecodeError:
        return None, f"{variable}: {path!r} is not UTF-8 text"
    except OSError as exc:
        return None, f"{variable}: cannot read {path!r}: {exc.strerror or type(exc).__name__}"


def _read_api_key_file(path: Path) -> str:
    variable = f"{PREFIX}API_KEY_FILE"
    content, problem = _read_value_file(variable, str(path))
    if problem is not None:
        raise ConfigError([problem])
    if not content:
        raise ConfigError([f"{variable}: {str(path)!r} is empty"])
    return content


def _unknown_variable_problem(name: str, known: frozenset[str]) -> str:
    for kind, model in SINK_MODELS.items():
        if model is None and name.startswith(_sink_prefix(kind)):
            available = ", ".join(k for k, m in SINK_MODELS.items() if m is not None)
            return (
                f"{name}: the {kind} sink is not available in this version (available: {available})"
            )
    candidates = sorted(known | {name + "_FILE" for name in known})
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name}: unknown variable{hint}"


def _collect(
    environ: Mapping[str, str], known: frozenset[str]
) -> tuple[dict[str, _Raw], list[str]]:
    """The set ROTATOR_* values by variable name, ``_FILE`` forms resolved; and the problems."""
    direct: dict[str, _Raw] = {}
    from_files: dict[str, _Raw] = {}
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or _KUBERNETES_SERVICE_VARIABLE.match(name):
            continue
        value = environ[name].strip()
        if not value:
            continue  # an empty value counts as unset
        if name in known:
            direct[name] = _Raw(value, name)
        elif name.endswith("_FILE") and name.removesuffix("_FILE") in known:
            content, problem = _read_value_file(name, value)
            if problem is not None:
                problems.append(problem)
            elif content:
                from_files[name.removesuffix("_FILE")] = _Raw(content, name)
        else:
            problems.append(_unknown_variable_problem(name, known))
    return direct | from_files, problems


def _relation_problems(values: Mapping[str, Any], failed: Collection[str] = ()) -> list[str]:
    """Rules between settings; a rule is skipped when one of its own settings failed to parse."""

    def usable(*names: str) -> bool:
        return not any(name in failed for name in names)

    problems: list[str] = []
    validity = values.get("validity_days", 730)
    rotate_before = values.get("rotate_before_days", 30)
    if usable("validity_days", "rotate_before_days") and rotate_before >= validity:
        problems.append(
            f"{PREFIX}ROTATE_BEFORE_DAYS: must be below ROTATOR_VALIDITY_DAYS ({validity}), "
            f"got {rotate_before:g}"
        )
    max_age = values.get("max_age_days")
    if usable("validity_days", "max_age_days") and max_age is not None and max_age > validity:
        problems.append(
            f"{PREFIX}MAX_AGE_DAYS: must be at most ROTATOR_VALIDITY_DAYS ({validity}), "
            f"got {max_age:g}"
        )
    shards = values.get("shards", 1)
    shard_index = values.get("shard_index", 0)
    if usable("shards", "shard_index") and shard_index >= shards:
        problems.append(
            f"{PREFIX}SHARD_INDEX: must be below ROTATOR_SHARDS ({shards}), got {shard_index}"
        )
    # Contract variables whose feature this version does not build yet: refused, never ignored,
    # so that nobody believes a setting is in force when it is not.
    for name, feature in _NOT_BUILT.items():
        if values.get(name) is not None and name not in failed:
            problems.append(f"{_variable(name)}: {feature} is not available in this version")
    if usable("shards") and values.get("shards", 1) > 1:
        problems.append(f"{PREFIX}SHARDS: sharding is not available in this version, got {shards}")
    has_credential = any(
        values.get(name) is not None or name in failed for name in ("api_key", "api_key_file")
    )
    if not has_credential:
        problems.append(f"{PREFIX}API_KEY: required (or ROTATOR_API_KEY_FILE)")
    return problems


_NOT_BUILT = {
    "workspaces_file": "managing several workspaces",
    "self_key_name": "rotating the rotator's own key",
}


def _load_sink(
    raw: Mapping[str, _Raw],
) -> tuple[SinkSettings | None, list[str]]:
    problems: list[str] = []
    chosen = raw.get(f"{PREFIX}SINK")
    kind = chosen.value.lower() if chosen else "file"
    if chosen is not None and kind not in SINK_MODELS:
        problems.append(
            f"{chosen.source}: must be one of {', '.join(SINK_MODELS)}, got {_shown(chosen.value)}"
        )
    elif SINK_MODELS[kind] is None:
        available = ", ".join(k for k, m in SINK_MODELS.items() if m is not None)
        problems.append(
            f"{PREFIX}SINK: {kind!r} is not available in this version (available: {available})"
        )
    sink: SinkSettings | None = None
    for other_kind, model in SINK_MODELS.items():
        if model is None:
            continue
        variables = _sink_variables(other_kind, model)
        if other_kind != kind:
            problems.extend(
                f"{raw[variable].source}: only used with ROTATOR_SINK={other_kind}, "
                f"but ROTATOR_SINK is {kind!r}"
                for variable in variables
                if variable in raw
            )
            continue
        values, failed, field_problems = _parse_fields(model, variables, raw)
        problems.extend(field_problems)
        missing = [
            variable
            for variable, name in variables.items()
            if model.model_fields[name].is_required() and name not in values | dict.fromkeys(failed)
        ]
        problems.extend(f"{variable}: required with ROTATOR_SINK={kind}" for variable in missing)
        if not field_problems and not missing:
            sink = model.model_validate(values)  # type: ignore[assignment]
    return sink, problems


# --- public ------------------------------------------------------------------------------------


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting from ``environ`` (default ``os.environ``), or ConfigError listing each problem.

    Each problem is one line naming its variable and what is wrong with it, e.g.
    ``ROTATOR_GRACE_HOURS: must be a number >= 0, got 'abc'``. All problems are collected before
    raising. ROTATOR_API_KEY_FILE and ROTATOR_WORKSPACES_FILE must be readable now.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    known = _known_variables()
    raw, problems = _collect(env, known)

    settings_variables = _settings_variables()
    job_index = env.get("JOB_COMPLETION_INDEX", "").strip()
    shard_variable = _variable("shard_index")
    if shard_variable not in raw and job_index:
        raw[shard_variable] = _Raw(
            job_index, "JOB_COMPLETION_INDEX (default of ROTATOR_SHARD_INDEX)"
        )

    values, failed, field_problems = _parse_fields(Settings, settings_variables, raw)
    problems.extend(field_problems)
    if _variable("key_names") not in raw:
        failed.add("key_names")
        problems.append(
            f"{PREFIX}KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
            "('*' for all)"
        )

    sink, sink_problems = _load_sink(raw)
    problems.extend(sink_problems)

    api_key_file = values.get("api_key_file")
    if api_key_file is not None:
        try:
            _read_api_key_file(api_key_file)
        except ConfigError as exc:
            problems.extend(exc.problems)
    workspaces_file = values.get("workspaces_file")
    if workspaces_file is not None:
        _, problem = _read_value_file(
            raw[_variable("workspaces_file")].source, str(workspaces_file)
        )
        if problem is not None:
            problems.append(problem)

    problems.extend(_relation_problems(values, failed))
    if problems:
        raise ConfigError(problems)
    if sink is not None:
        values["sink"] = sink
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:  # every rule is checked above; this is a safety net
        raise ConfigError(
            [f"settings: {error['msg']}" for error in exc.errors(include_url=False)]
        ) from None


def _plain(value: object) -> object:
    """A JSON-serialisable form of one setting's value, secrets masked."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return _mask_url_password(value)
    return value


def redacted(settings: Settings) -> dict[str, object]:
    """The effective settings keyed by variable name, every secret shown as ``**********``."""
    effective: dict[str, object] = {}
    for variable, field_name in _settings_variables().items():
        effective[variable] = _plain(getattr(settings, field_name))
    sink = settings.sink
    effective[f"{PREFIX}SINK"] = sink.kind
    for variable, field_name in _sink_variables(sink.kind, type(sink)).items():
        effective[variable] = _plain(getattr(sink, field_name))
    return dict(sorted(effective.items()))


def describe_variables() -> dict[str, str]:
    """Each variable this version reads, with its description (for ``--help``)."""
    described = {
        variable: Settings.model_fields[field_name].description or ""
        for variable, field_name in _settings_variables().items()
    }
    described[f"{PREFIX}SINK"] = Settings.model_fields["sink"].description or ""
    for kind, model in SINK_MODELS.items():
        if model is not None:
            for variable, field_name in _sink_variables(kind, model).items():
                described[variable] = model.model_fields[field_name].description or ""
    return dict(sorted(described.items()))


def check_no_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """ConfigError naming each unknown ROTATOR_* variable, for commands that read no setting.

    ``demo`` and ``emulator`` take nothing from the environment, but a typo must never pass
    silently in any command (contract.md).
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    known = _known_variables()
    problems = [
        _unknown_variable_problem(name, known)
        for name in sorted(env)
        if name.startswith(PREFIX)
        and not _KUBERNETES_SERVICE_VARIABLE.match(name)
        and env[name].strip()
        and name not in known
        and not (name.endswith("_FILE") and name.removesuffix("_FILE") in known)
    ]
    if problems:
        raise ConfigError(problems)
