"""The rotator's settings: every ROTATOR_* field, its bounds, its default and why.

A field ``f`` is the variable ``ROTATOR_F`` (the sink's as ``ROTATOR_SINK_<KIND>_<FIELD>``, in
rotator.settings.sinks); the loader (rotator.settings._loader) derives the names, so a field is
declared once, here. Every number has a bound an operator would call sane, because values far
outside it are typos that would otherwise crash a pass (a 1e300-hour grace period overflows a
date) long after ``check-config`` said yes. The rules between fields are validators of the later
field, so they hold for a Settings built directly too (tests of other modules do).

It must not read anything itself: ``load_settings`` gives it its sources.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rotator.errors import ConfigError
from rotator.models import Secret
from rotator.schedule import load_zone, parse_schedule
from rotator.settings._values import (
    ApiUrl,
    Bool,
    DnsLabel,
    Fallback,
    HeaderSafe,
    HeaderText,
    Host,
    Lowered,
    NotAVariable,
    NotWith,
    Patterns,
    PushgatewayUrl,
    SecureUrl,
    Shown,
    SomePatterns,
    WorkspaceName,
    complete,
)
from rotator.settings.notify import NotifyOn, NotifyUrls, WebhookSecret
from rotator.settings.sinks import FileSinkSettings, SinkSettings
from rotator.settings.workspaces import (
    SinkVariable,
    WorkspaceSettings,
    read_api_key,
    resolve_workspaces,
)

__all__ = ["Settings"]

_ONE_WORKSPACE = "each workspace there names its own api_key_file"


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


#: A trigger token shorter than this is refused: it could be guessed.
_MIN_TOKEN_LENGTH = 16


def _check_trigger_token(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < _MIN_TOKEN_LENGTH:
        raise ValueError(
            f"must be at least {_MIN_TOKEN_LENGTH} characters (a short token can be guessed)"
        )
    return value


class Settings(BaseSettings):
    """Every setting of one rotator process; frozen, passed down as a value.

    Field names are the variable names without ROTATOR_, in lower case. ``workspaces`` always
    holds at least one workspace: the file's, or the one the variables describe.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="ROTATOR_",
        case_sensitive=False,
        # Values arrive as text and each field parses its own (comma lists, not JSON).
        enable_decoding=False,
        env_ignore_empty=True,
        validate_default=False,
        hide_input_in_errors=True,
    )

    # --- the API and the rotator's own credential --------------------------------------------

    api_url: ApiUrl = Field(
        default="https://api.projectmanager.com",
        description=(
            "Base URL of the ProjectManager API (a trailing / is dropped). Default: the public "
            "API; https required except for a loopback host (the emulator, tests); no user info."
        ),
    )
    api_key: Annotated[
        SecretStr | None,
        HeaderSafe,
        NotWith("workspaces_file", _ONE_WORKSPACE),
        Shown("required, or ROTATOR_API_KEY_FILE"),
    ] = Field(
        default=None,
        description=(
            "The rotator's own credential: an admin's API key for the workspace. No "
            "default: required unless ROTATOR_API_KEY_FILE or ROTATOR_WORKSPACES_FILE is set."
        ),
    )
    api_key_file: Annotated[Path | None, NotWith("workspaces_file", _ONE_WORKSPACE)] = Field(
        default=None,
        description=(
            "Path of a file holding the rotator's API key (a mounted Secret); wins over "
            "ROTATOR_API_KEY and is read again at every pass, so a rotated own key is picked up "
            "without a restart."
        ),
    )
    workspace_name: Annotated[
        WorkspaceName, NotWith("workspaces_file", "each workspace there has its name")
    ] = Field(
        default="default",
        description=(
            "The workspace's label in logs and metrics, and part of its Lease's name. "
            "Default 'default': one workspace."
        ),
    )
    workspace_id: Annotated[
        str | None, NotWith("workspaces_file", "set each workspace's there")
    ] = Field(
        default=None,
        description=(
            "When set, a credential whose `me` answers for another workspace id is refused. "
            "Unset by default: most deployments have one workspace and one key."
        ),
    )
    integration_name: HeaderText = Field(
        default="key-rotator",
        max_length=100,
        description=(
            "Sent as x-integration-name; shows in ProjectManager's audit log. Default: the "
            "project's name, so auditors can tell its changes from a person's."
        ),
    )
    http_timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description=(
            "Seconds per API request. Default 10: the API answers in well under a second; at "
            "most 300, as a pass waits on each request."
        ),
    )
    http_max_retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description=(
            "Retries of a request after a connection error, 429 or 5xx (exponential backoff "
            "with jitter, each wait at most 30 s). Default 4: rides out a minute-long blip "
            "without stalling a pass; at most 10 (about five minutes of waiting)."
        ),
    )

    # --- which keys, and when ----------------------------------------------------------------

    key_names: Annotated[SomePatterns, Shown("required")] = Field(
        default=(),
        description=(
            "Comma-separated glob patterns of the base names of the keys to manage. No default: "
            "which keys the rotator may replace is a deliberate choice ('*' is allowed); with "
            "ROTATOR_WORKSPACES_FILE, required only for workspaces that list none."
        ),
    )
    exclude_key_names: Patterns = Field(
        default=(),
        description="Comma-separated glob patterns never managed, whatever key_names says.",
    )
    self_key_name: str | None = Field(
        default=None,
        description=(
            "Base name of the rotator's own key: rotated last in its workspace and delivered "
            "through the sink (mount that target as ROTATOR_API_KEY_FILE). Unset by default."
        ),
    )
    validity_days: int = Field(
        default=730,
        gt=0,
        le=3650,
        description=(
            "Days: a key's lifetime; its creation time is `expires` minus this. Default 730: "
            "ProjectManager keys live two years and that cannot be changed; at most 3650."
        ),
    )
    rotate_before_days: float = Field(
        default=30,
        ge=0,
        le=3650,
        allow_inf_nan=False,
        validate_default=True,
        description=(
            "Days: rotate when fewer are left; below validity_days. Default 30: a month leaves "
            "room for many failed passes to be noticed and fixed before a key expires."
        ),
    )
    max_age_days: float | None = Field(
        default=None,
        gt=0,
        le=3650,
        allow_inf_nan=False,
        description=(
            "Days: also rotate a key older than this (a company's rotation policy); at most "
            "validity_days. Unset by default: expiry alone drives rotation."
        ),
    )
    grace_hours: float = Field(
        default=24,
        ge=0,
        le=8760,
        allow_inf_nan=False,
        description=(
            "Hours the previous key stays valid after its replacement was delivered; may be 0 or "
            "fractional. Default 24: consumers that read their secret once a day catch up; at "
            "most 8760 (a year): a longer overlap defeats rotating at all."
        ),
    )
    emergency_grace_hours: float = Field(
        default=0,
        ge=0,
        le=168,
        allow_inf_nan=False,
        description=(
            "Hours of grace for `rotate --now`. Default 0: a leaked key is revoked at once; at "
            "most 168 (a week): a leaked key must not live on."
        ),
    )
    orphan_min_age_minutes: float = Field(
        default=10,
        ge=0,
        le=10080,
        allow_inf_nan=False,
        description=(
            "Minutes: a rotator-made key no sink holds is revoked once this old. Default 10: far "
            "longer than one credential's create-verify-deliver, so a pass in flight is safe; at "
            "most 10080 (a week)."
        ),
    )
    dry_run: Bool = Field(
        default=False,
        description="Plan and log, change nothing. Default false: the rotator's job is to act.",
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
        le=10000,
        description=(
            "Most rotations in one pass, most urgent first. Default 50: bounds the damage of a "
            "bad policy change while still catching up quickly; at most 10000."
        ),
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description=(
            "Rotations in flight at once, over all workspaces. Default 8: modest load; at most "
            "64, far more than an API's rate limit allows."
        ),
    )
    workspace_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description=(
            "Rotations in flight at once in one workspace. Default 2: keeps within one "
            "workspace's rate limit; at most 64."
        ),
    )

    # --- where secrets go --------------------------------------------------------------------

    sink: SinkSettings = Field(
        default_factory=FileSinkSettings,
        description=(
            "ROTATOR_SINK: where secrets are delivered: file, kubernetes, vault, "
            "aws-secrets-manager or exec. Default file: needs no other system, so a first run "
            "works anywhere."
        ),
    )

    # Not variables: the variables of the sink kinds that credentials targets name besides
    # ROTATOR_SINK's, kept apart (they are no part of `sink`) as those targets' defaults.
    sink_variables: Annotated[dict[str, dict[str, SinkVariable]], NotAVariable()] = Field(
        default_factory=dict,
        repr=False,
        exclude=True,
        description=(
            "By sink kind, then field: the set variables of each kind a target in "
            "ROTATOR_WORKSPACES_FILE names, other than ROTATOR_SINK's."
        ),
    )

    # --- serve, and the process -------------------------------------------------------------

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
    http_host: Host = Field(
        default="0.0.0.0",  # noqa: S104 - a pod's port must be reachable by its probes
        description=(
            "Address `serve` listens on. Default 0.0.0.0: a pod's probes and Prometheus reach "
            "it; set 127.0.0.1 outside a pod to keep it local."
        ),
    )
    log_format: Annotated[Literal["auto", "json", "console"], Lowered] = Field(
        default="auto",
        description=(
            "json (one object a line), console, or auto: console when standard error is a "
            "terminal, else json. Default auto: a person at a terminal reads console lines, while "
            "a pod's logs (never a terminal) stay the JSON log shippers read."
        ),
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], Lowered] = Field(
        default="info",
        description="Lowest level logged. Default info: every event of a pass, no debug noise.",
    )
    run_on_start: Bool = Field(
        default=True,
        description=(
            "`serve` runs a pass as soon as it starts. Default true: a restart never delays a "
            "due rotation until the next scheduled time."
        ),
    )
    shutdown_timeout_seconds: float = Field(
        default=60,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "Seconds `serve` may take after SIGTERM to finish the credential in flight. Default "
            "60: fits a raised terminationGracePeriodSeconds; at most 3600 (an hour)."
        ),
    )
    trigger_token: Annotated[
        SecretStr | None,
        HeaderSafe,
        AfterValidator(_check_trigger_token),
        Shown("unset: no trigger endpoints"),
    ] = Field(
        default=None,
        description=(
            "Bearer token that `serve`'s POST /v1/rotate and POST /v1/leaks require (usually "
            "given as ROTATOR_TRIGGER_TOKEN_FILE); at least 16 characters: a short token is "
            "guessed. Unset by default: those paths answer 404, as if they did not exist."
        ),
    )
    pushgateway_url: PushgatewayUrl | None = Field(
        default=None,
        description=(
            "`run-once` pushes its metrics there. Unset by default: nothing pushed. No user "
            "info: put basic auth in a proxy in front of the gateway."
        ),
    )

    # --- several workspaces, shards, locks ---------------------------------------------------

    workspaces_file: Path | None = Field(
        default=None,
        description=(
            "A YAML file listing several workspaces, each with its own credential (replaces "
            "ROTATOR_API_KEY). Unset by default: one workspace."
        ),
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=1000,
        description=(
            "Split the workspaces over this many pods (an Indexed Job). Default 1: one pod does "
            "all; at most 1000."
        ),
    )
    shard_index: Annotated[int, Fallback(("JOB_COMPLETION_INDEX",))] = Field(
        default=0,
        ge=0,
        validate_default=True,
        description=(
            "Which share this pod takes, below shards. Default: JOB_COMPLETION_INDEX (set by an "
            "Indexed Job), else 0."
        ),
    )
    lock: Annotated[Literal["auto", "lease", "file"], Lowered] = Field(
        default="auto",
        description=(
            "The pass lock of a workspace: auto (a Kubernetes Lease when the service-account "
            "token is mounted, else a file lock), lease or file. Default auto: right in a pod "
            "and outside one."
        ),
    )
    lock_dir: Annotated[Path | None, Shown("the file sink's folder")] = Field(
        default=None,
        validate_default=True,
        description=(
            "Folder of the file lock .rotator.lock (a subfolder per workspace when there are "
            "several). Default: the file sink's folder; required when the lock is a file and "
            "the sink is not."
        ),
    )
    lease_namespace: Annotated[DnsLabel | None, Shown("the pod's own namespace")] = Field(
        default=None,
        description=(
            "Where the Leases live. Unset by default: the pod's own namespace, which its Role "
            "already covers."
        ),
    )
    lease_duration_seconds: int = Field(
        default=60,
        ge=10,
        le=3600,
        description=(
            "Seconds after which a Lease not renewed is free again (a killed pod's lock "
            "expires); renewed well within it. Default 60: a crashed pass blocks the next one "
            "only a minute; 10 to 3600."
        ),
    )

    # --- telling people and machines (rotator.events) ----------------------------------------

    notify_urls: NotifyUrls = Field(
        default=(),
        description=(
            "Where people are told: Apprise URLs (slack://, msteams://, mailto://, json://, ...) "
            "separated by spaces or commas; one message per pass. Unset by default: nobody is "
            "told but the logs and metrics. Needs the notify extra; shown with every part that "
            "may be a credential masked."
        ),
    )
    notify_on: NotifyOn = Field(
        default=("failure",),
        description=(
            "Which events notify (people and the webhook): comma-separated of failure, rotation, "
            "leak, all. Default failure: people hear when they must act, not of every success."
        ),
    )
    webhook_url: SecureUrl | None = Field(
        default=None,
        description=(
            "Where machines are told: each event is POSTed there as JSON, signed per Standard "
            "Webhooks. https unless the host is loopback. Unset by default: no webhook."
        ),
    )
    webhook_secret: Annotated[WebhookSecret, Shown("required with ROTATOR_WEBHOOK_URL")] = Field(
        default=None,
        validate_default=True,
        description=(
            "The Standard Webhooks signing secret, whsec_ + base64; usually as "
            "ROTATOR_WEBHOOK_SECRET_FILE. No default: required with ROTATOR_WEBHOOK_URL. "
            "`serve`'s trigger endpoints also accept a request signed with it, for scanners "
            "that sign."
        ),
    )

    # Last: built from the fields above (the file's entries, or the single workspace's).
    workspaces: Annotated[tuple[WorkspaceSettings, ...], NotAVariable()] = Field(
        default=(),
        validate_default=True,
        description="The workspaces of a pass: ROTATOR_WORKSPACES_FILE's, else the one above.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built directly, a Settings takes its arguments only: nothing but load_settings reads
        # the environment, and it passes its own sources.
        return (init_settings,)

    @field_validator("rotate_before_days")
    @classmethod
    def _below_validity(cls, value: float, info: ValidationInfo) -> float:
        validity = info.data.get("validity_days")
        if validity is not None and value >= validity:
            raise complete(f"must be below ROTATOR_VALIDITY_DAYS ({validity}), got {value:g}")
        return value

    @field_validator("max_age_days")
    @classmethod
    def _within_validity(cls, value: float | None, info: ValidationInfo) -> float | None:
        validity = info.data.get("validity_days")
        if value is not None and validity is not None and value > validity:
            raise complete(f"must be at most ROTATOR_VALIDITY_DAYS ({validity}), got {value:g}")
        return value

    @field_validator("shard_index")
    @classmethod
    def _below_shards(cls, value: int, info: ValidationInfo) -> int:
        shards = info.data.get("shards")
        if shards is not None and value >= shards:
            raise complete(f"must be below ROTATOR_SHARDS ({shards}), got {value}")
        return value

    @field_validator("lock_dir")
    @classmethod
    def _lock_dir_needed(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        sink = info.data.get("sink")
        if (
            value is None
            and info.data.get("lock") == "file"
            and sink is not None
            and not isinstance(sink, FileSinkSettings)
        ):
            raise complete(
                f"required with ROTATOR_LOCK=file when ROTATOR_SINK is not file (it is {sink.kind})"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_with_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("webhook_url") is None:
            return value
        if value is None:
            raise complete("required with ROTATOR_WEBHOOK_URL: the webhook's signing secret")
        if importlib.util.find_spec("standardwebhooks") is None:
            # Refused at start, as a missing sink SDK is: not at the end of every pass of serve.
            raise complete(
                "ROTATOR_WEBHOOK_URL needs the notify extra (standardwebhooks): "
                "pip install 'key-rotator[notify]'"
            )
        return value

    @field_validator("workspaces", mode="before")
    @classmethod
    def _workspaces(cls, value: Any, info: ValidationInfo) -> tuple[WorkspaceSettings, ...]:
        return resolve_workspaces(value, info.data)

    def read_api_key(self) -> Secret:
        """The single workspace's credential, read now (``read_api_key(ws)`` for any workspace).

        Kept for the callers that predate several workspaces; ConfigError when there are several.
        """
        if len(self.workspaces) != 1:
            raise ConfigError(
                ["ROTATOR_WORKSPACES_FILE: several workspaces: read each one's credential"]
            )
        return read_api_key(self.workspaces[0])
