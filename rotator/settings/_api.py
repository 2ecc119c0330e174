"""The settings' public functions: load them from an environment mapping, show them, list them.

``load_settings`` is the one place the rotator reads its environment (``os.environ`` only when
given nothing), and what every command calls: it scans the mapping, hands the values to
:class:`Settings` through pydantic-settings sources (``parse_settings``, the values alone), turns
every problem into one line naming its variable, all of them raised together as one
:class:`~rotator.errors.ConfigError`, and then checks what the values name on this host and
that no two workspaces share a place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import InitSettingsSource, PydanticBaseSettingsSource

from rotator.errors import ConfigError
from rotator.settings._loader import (
    EnvironSource,
    FallbackSource,
    ValueFileSource,
    arrange,
    catalogue,
    descriptions,
    effective,
    plain,
    problems_of,
    scan,
    unknown_variables,
)
from rotator.settings.host import host_problems
from rotator.settings.model import Settings
from rotator.settings.places import shared_place_problems
from rotator.settings.workspaces import (
    FILE_VARIABLE,
    SinkVariable,
    WorkspacesFileSource,
    target_kinds,
)

__all__ = [
    "check_no_unknown_variables",
    "describe_variables",
    "load_settings",
    "parse_settings",
    "redacted",
    "redacted_workspaces",
]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting from ``environ`` (default ``os.environ``), usable here, or ConfigError
    listing each problem; what every command loads.

    Each problem is one line naming its variable and what is wrong with it, e.g.
    ``ROTATOR_GRACE_HOURS: must be a number >= 0 and <= 8760, got 'abc'``. The values first
    (:func:`parse_settings`), all their problems together; then, with every value valid, what
    they name on this host (rotator.settings.host: folders, programs, a kubeconfig, a Lease's
    API server) and whether two workspaces name one place (rotator.settings.places). So what a
    pass would refuse, every command refuses at start, ``check-config`` first.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    settings = parse_settings(env)
    problems = host_problems(settings, env) + shared_place_problems(settings, env)
    if problems:
        raise ConfigError(arrange(problems, []))
    return settings


def parse_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting from ``environ`` (default ``os.environ``) as values, or ConfigError listing
    each problem; nothing they name on this host is looked at (:func:`load_settings` does).

    All problems are collected before raising. ROTATOR_WORKSPACES_FILE and every credential
    file it or ROTATOR_API_KEY_FILE names must be readable now.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    scanned = scan(env, catalogue(Settings))
    workspaces_file = scanned.values.get(FILE_VARIABLE)
    workspaces = None
    if workspaces_file is not None:
        workspaces = WorkspacesFileSource(
            Settings, Path(workspaces_file.value), workspaces_file.source
        )
        # A sink's variables are allowed when ROTATOR_SINK or any target names that sink.
        scanned = scan(
            env,
            catalogue(Settings),
            in_use={"sink": target_kinds(workspaces())},
            in_use_where=f" or when a target in {FILE_VARIABLE} names that sink",
        )
    unreadable = list(scanned.problems)
    sink_variables = {
        kind: {name: SinkVariable(raw.source, raw.value) for name, raw in variables.items()}
        for kind, variables in scanned.other_members("sink").items()
    }
    sources: list[PydanticBaseSettingsSource] = [
        ValueFileSource(Settings, scanned),
        EnvironSource(Settings, scanned),
        FallbackSource(Settings, scanned),
        InitSettingsSource(Settings, {"sink_variables": sink_variables}),
    ]
    if workspaces is not None:
        unreadable.extend(workspaces.problems)
        sources.append(workspaces)
    try:
        # mypy sees the __init__ pydantic synthesises from the fields, not BaseSettings' own.
        settings = Settings(_build_sources=(tuple(sources), {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(arrange(problems_of(exc, scanned), unreadable)) from None
    if unreadable:
        raise ConfigError(arrange([], unreadable))
    return settings


def redacted(settings: Settings) -> dict[str, object]:
    """The effective settings keyed by variable name, every secret shown as ``**********``.

    A URL's password and the values of its query are masked too. The values are JSON types.
    """
    return effective(settings)


def redacted_workspaces(settings: Settings) -> list[dict[str, object]]:
    """Each workspace's effective settings (its sink's by field name), secrets masked."""
    shown = []
    for ws in settings.workspaces:
        fields = {name: plain(getattr(ws, name)) for name in type(ws).model_fields}
        fields["sink"] = {name: plain(value) for name, value in ws.sink}
        if ws.credentials:
            fields["credentials"] = [
                {
                    "name": route.name,
                    "targets": [{name: plain(value) for name, value in t} for t in route.targets],
                }
                for route in ws.credentials
            ]
        else:
            fields.pop("credentials")  # every credential goes to the sink, as before routes
        fields.pop("api_key_origin")
        shown.append(fields)
    return shown


def describe_variables() -> dict[str, str]:
    """Each variable the settings read, with its description (for ``--help``)."""
    return descriptions(Settings)


def check_no_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """ConfigError naming each unknown ROTATOR_* variable, for commands that read no setting.

    ``demo`` and ``emulator`` take nothing from the environment, but a typo must never pass
    silently in any command.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    problems = unknown_variables(env, catalogue(Settings))
    if problems:
        raise ConfigError(problems)
