"""The environment: defaults, parsing of each variable, empty values, _FILE forms, unknown names,
the rules between variables, and every problem reported at once, one line each."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from rotator.errors import ConfigError
from rotator.settings import (
    FileSinkSettings,
    Settings,
    WorkspaceSettings,
    load_settings,
    parse_settings,
    read_api_key,
)
from tests.settings.support import MINIMAL, SECRET, load, problems, problems_of

# --- defaults ----------------------------------------------------------------------------------


def test_defaults_match_the_contract() -> None:
    settings = load_settings(MINIMAL)
    assert settings.api_url == "https://api.projectmanager.com"
    assert settings.api_key == SecretStr(SECRET)
    assert settings.api_key_file is None
    assert settings.workspace_name == "default"
    assert settings.workspace_id is None
    assert settings.key_names == ("billing-*",)
    assert settings.exclude_key_names == ()
    assert settings.validity_days == 730
    assert settings.rotate_before_days == 30
    assert settings.max_age_days is None
    assert settings.grace_hours == 24
    assert settings.orphan_min_age_minutes == 10
    assert settings.dry_run is False
    assert settings.sink == FileSinkSettings(kind="file", dir=Path("./secrets"))
    assert settings.schedule == "0 3 * * *"
    assert settings.timezone == "UTC"
    assert settings.http_port == 8080
    assert settings.http_host == "0.0.0.0"
    assert settings.log_format == "auto"
    assert settings.log_level == "info"
    assert settings.integration_name == "key-rotator"
    assert settings.http_timeout_seconds == 10
    assert settings.http_max_retries == 4
    assert settings.run_on_start is True
    assert settings.shutdown_timeout_seconds == 60
    assert settings.pushgateway_url is None
    assert settings.workspaces_file is None
    assert settings.concurrency == 8
    assert settings.workspace_concurrency == 2
    assert settings.self_key_name is None
    assert settings.emergency_grace_hours == 0
    assert settings.max_failure_ratio == 0.5
    assert settings.max_rotations_per_pass == 50
    assert settings.shards == 1
    assert settings.shard_index == 0
    assert settings.lock == "auto"
    assert settings.lock_dir is None
    assert settings.lease_namespace is None
    assert settings.lease_duration_seconds == 60


def test_without_a_workspaces_file_there_is_one_workspace_from_the_variables() -> None:
    settings = load(
        ROTATOR_WORKSPACE_NAME="acme",
        ROTATOR_WORKSPACE_ID="ws-1",
        ROTATOR_EXCLUDE_KEY_NAMES="billing-old",
        ROTATOR_SELF_KEY_NAME="rotator",
        ROTATOR_SINK_FILE_DIR="/srv/secrets",
    )
    assert settings.workspaces == (
        WorkspaceSettings(
            name="acme",
            api_key=SecretStr(SECRET),
            workspace_id="ws-1",
            key_names=("billing-*",),
            exclude_key_names=("billing-old",),
            self_key_name="rotator",
            # One workspace writes straight into the folder, with no subfolder; so does its lock.
            sink=FileSinkSettings(dir=Path("/srv/secrets")),
            lock_dir=Path("/srv/secrets"),
        ),
    )
    assert read_api_key(settings.workspaces[0]).reveal() == SECRET


def test_the_lock_dir_is_the_variable_when_set() -> None:
    (ws,) = load(ROTATOR_LOCK_DIR="/run/locks").workspaces
    assert ws.lock_dir == Path("/run/locks")


def test_settings_are_frozen() -> None:
    settings = load_settings(MINIMAL)
    with pytest.raises(ValidationError):
        settings.grace_hours = 1
    with pytest.raises(ValidationError):
        settings.sink.dir = Path("/elsewhere")  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        settings.workspaces[0].name = "other"


# --- parsing each variable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("ROTATOR_API_URL", "https://pm.example.com/", "api_url", "https://pm.example.com"),
        ("ROTATOR_API_URL", "http://127.0.0.1:8123", "api_url", "http://127.0.0.1:8123"),
        ("ROTATOR_API_URL", "http://127.9.9.9", "api_url", "http://127.9.9.9"),
        ("ROTATOR_API_URL", "http://localhost:1", "api_url", "http://localhost:1"),
        ("ROTATOR_API_URL", "http://[::1]:8000", "api_url", "http://[::1]:8000"),
        ("ROTATOR_WORKSPACE_NAME", "acme", "workspace_name", "acme"),
        ("ROTATOR_WORKSPACE_NAME", "a" * 40, "workspace_name", "a" * 40),
        ("ROTATOR_WORKSPACE_ID", "ws-1", "workspace_id", "ws-1"),
        ("ROTATOR_KEY_NAMES", " a , b-* ,, c ", "key_names", ("a", "b-*", "c")),
        ("ROTATOR_KEY_NAMES", "*", "key_names", ("*",)),
        ("ROTATOR_EXCLUDE_KEY_NAMES", "x,,y", "exclude_key_names", ("x", "y")),
        ("ROTATOR_VALIDITY_DAYS", "365", "validity_days", 365),
        ("ROTATOR_VALIDITY_DAYS", "3650", "validity_days", 3650),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "0", "rotate_before_days", 0),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "7.5", "rotate_before_days", 7.5),
        ("ROTATOR_MAX_AGE_DAYS", "90", "max_age_days", 90),
        ("ROTATOR_MAX_AGE_DAYS", "730", "max_age_days", 730),
        ("ROTATOR_GRACE_HOURS", "0", "grace_hours", 0),
        ("ROTATOR_GRACE_HOURS", "0.25", "grace_hours", 0.25),
        ("ROTATOR_GRACE_HOURS", "8760", "grace_hours", 8760),
        ("ROTATOR_ORPHAN_MIN_AGE_MINUTES", "0", "orphan_min_age_minutes", 0),
        ("ROTATOR_SCHEDULE", "*/15 * * * 1-5", "schedule", "*/15 * * * 1-5"),
        ("ROTATOR_TIMEZONE", "Europe/Berlin", "timezone", "Europe/Berlin"),
        ("ROTATOR_HTTP_PORT", "1", "http_port", 1),
        ("ROTATOR_HTTP_PORT", "65535", "http_port", 65535),
        ("ROTATOR_HTTP_HOST", "127.0.0.1", "http_host", "127.0.0.1"),
        ("ROTATOR_HTTP_HOST", "::", "http_host", "::"),
        ("ROTATOR_HTTP_HOST", "rotator.internal", "http_host", "rotator.internal"),
        ("ROTATOR_LOG_FORMAT", "console", "log_format", "console"),
        ("ROTATOR_LOG_LEVEL", "DEBUG", "log_level", "debug"),
        ("ROTATOR_LOG_LEVEL", "warning", "log_level", "warning"),
        ("ROTATOR_INTEGRATION_NAME", "rot-prod", "integration_name", "rot-prod"),
        (
            "ROTATOR_INTEGRATION_NAME",
            "key rotator (prod)",
            "integration_name",
            "key rotator (prod)",
        ),
        ("ROTATOR_HTTP_TIMEOUT_SECONDS", "2.5", "http_timeout_seconds", 2.5),
        ("ROTATOR_HTTP_MAX_RETRIES", "0", "http_max_retries", 0),
        ("ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "5", "shutdown_timeout_seconds", 5),
        ("ROTATOR_PUSHGATEWAY_URL", "http://pgw:9091/", "pushgateway_url", "http://pgw:9091"),
        ("ROTATOR_CONCURRENCY", "1", "concurrency", 1),
        ("ROTATOR_WORKSPACE_CONCURRENCY", "3", "workspace_concurrency", 3),
        ("ROTATOR_SELF_KEY_NAME", "rotator", "self_key_name", "rotator"),
        ("ROTATOR_EMERGENCY_GRACE_HOURS", "1.5", "emergency_grace_hours", 1.5),
        ("ROTATOR_MAX_FAILURE_RATIO", "0", "max_failure_ratio", 0),
        ("ROTATOR_MAX_FAILURE_RATIO", "1", "max_failure_ratio", 1),
        ("ROTATOR_MAX_ROTATIONS_PER_PASS", "1", "max_rotations_per_pass", 1),
        ("ROTATOR_SHARDS", "1", "shards", 1),
        ("ROTATOR_SHARDS", "4", "shards", 4),
        ("ROTATOR_LOCK", "lease", "lock", "lease"),
        ("ROTATOR_LOCK", "FILE", "lock", "file"),
        ("ROTATOR_LOCK_DIR", "/run/rotator", "lock_dir", Path("/run/rotator")),
        ("ROTATOR_LEASE_NAMESPACE", "ops", "lease_namespace", "ops"),
        ("ROTATOR_LEASE_DURATION_SECONDS", "15", "lease_duration_seconds", 15),
    ],
)
def test_each_variable_is_parsed(variable: str, value: str, field: str, expected: object) -> None:
    assert getattr(load(**{variable: value}), field) == expected


def test_shards_above_one_with_an_index_below_them() -> None:
    settings = load(ROTATOR_SHARDS="3", ROTATOR_SHARD_INDEX="2")
    assert (settings.shards, settings.shard_index) == (3, 2)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("0", False),
        (" yes ", True),
    ],
)
def test_booleans(word: str, expected: bool) -> None:
    assert load(ROTATOR_DRY_RUN=word).dry_run is expected
    assert load(ROTATOR_RUN_ON_START=word).run_on_start is expected


@pytest.mark.parametrize("word", ["on", "off", "y", "n", "2", "truthy"])
def test_other_boolean_words_are_refused(word: str) -> None:
    assert problems(ROTATOR_DRY_RUN=word) == [
        f"ROTATOR_DRY_RUN: must be one of true, false, yes, no, 1, 0, got {word!r}"
    ]


def test_shard_index_defaults_to_the_job_completion_index() -> None:
    environ = {**MINIMAL, "ROTATOR_SHARDS": "3", "JOB_COMPLETION_INDEX": "2"}
    assert load_settings(environ).shard_index == 2
    explicit = {**environ, "ROTATOR_SHARD_INDEX": "1"}
    assert load_settings(explicit).shard_index == 1
    assert problems_of({**MINIMAL, "JOB_COMPLETION_INDEX": "x"}) == [
        "JOB_COMPLETION_INDEX (default of ROTATOR_SHARD_INDEX): must be an integer >= 0, got 'x'"
    ]
    assert problems_of({**MINIMAL, "JOB_COMPLETION_INDEX": "1"}) == [
        "JOB_COMPLETION_INDEX (default of ROTATOR_SHARD_INDEX): must be below ROTATOR_SHARDS (1), "
        "got 1"
    ]


def test_empty_values_count_as_unset() -> None:
    settings = load(
        ROTATOR_GRACE_HOURS="",
        ROTATOR_DRY_RUN="   ",
        ROTATOR_SINK="",
        ROTATOR_MAX_AGE_DAYS="",
        ROTATOR_API_KEY_FILE="",
        ROTATOR_TYPO_BUT_EMPTY="",
        ROTATOR_SINK_VAULT_ADDR="",  # not "a vault variable while the sink is file"
        JOB_COMPLETION_INDEX=" ",
    )
    assert settings.grace_hours == 24
    assert settings.dry_run is False
    assert settings.sink.kind == "file"
    assert settings.max_age_days is None
    assert settings.api_key_file is None
    assert settings.shard_index == 0
    assert problems_of({"ROTATOR_KEY_NAMES": "", "ROTATOR_API_KEY": SECRET}) == [
        "ROTATOR_KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
        "('*' for all)"
    ]


def test_only_upper_case_rotator_names_are_settings() -> None:
    # Variable names are case-sensitive: a lower-case name is nobody's setting, not a typo.
    assert load(rotator_grace_hours="1", OTHER_GRACE_HOURS="x").grace_hours == 24


# --- rejections --------------------------------------------------------------------------------


_NAME = "must be lower-case letters, digits and '-' (not first or last), at most 40"
_HOST = "must be an IP address or a host name (no scheme, no port)"
_NAMESPACE = (
    "must be a Kubernetes namespace name: lower-case letters, digits and '-', at most 63, "
    "starting and ending with a letter or digit"
)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ROTATOR_API_URL", "http://pm.example.com", "must be https unless the host is loopback"),
        ("ROTATOR_API_URL", "http://10.0.0.1", "must be https unless the host is loopback"),
        (
            "ROTATOR_API_URL",
            "http://localhost.attacker.example",
            "must be https unless the host is loopback",
        ),
        ("ROTATOR_API_URL", "ftp://pm.example.com", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "https://", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "https://host:99999", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "pm.example.com", "must be an http(s) URL with a host"),
        ("ROTATOR_KEY_NAMES", ",,", "must list at least one glob pattern"),
        (
            "ROTATOR_WORKSPACE_NAME",
            "Acme",
            _NAME,
        ),
        ("ROTATOR_WORKSPACE_NAME", "acme_eu", _NAME),
        ("ROTATOR_WORKSPACE_NAME", "-acme", _NAME),
        ("ROTATOR_WORKSPACE_NAME", "a" * 41, _NAME),
        ("ROTATOR_VALIDITY_DAYS", "0", "must be an integer > 0 and <= 3650"),
        ("ROTATOR_VALIDITY_DAYS", "1.5", "must be an integer > 0 and <= 3650"),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "-1", "must be a number >= 0 and <= 3650"),
        ("ROTATOR_MAX_AGE_DAYS", "0", "must be a number > 0 and <= 3650"),
        ("ROTATOR_MAX_AGE_DAYS", "inf", "must be a number > 0 and <= 3650"),
        ("ROTATOR_GRACE_HOURS", "abc", "must be a number >= 0 and <= 8760"),
        ("ROTATOR_GRACE_HOURS", "-0.5", "must be a number >= 0 and <= 8760"),
        ("ROTATOR_GRACE_HOURS", "nan", "must be a number >= 0 and <= 8760"),
        ("ROTATOR_ORPHAN_MIN_AGE_MINUTES", "-1", "must be a number >= 0 and <= 10080"),
        ("ROTATOR_DRY_RUN", "maybe", "must be one of true, false, yes, no, 1, 0"),
        ("ROTATOR_RUN_ON_START", "maybe", "must be one of true, false, yes, no, 1, 0"),
        ("ROTATOR_HTTP_PORT", "0", "must be an integer >= 1 and <= 65535"),
        ("ROTATOR_HTTP_PORT", "65536", "must be an integer >= 1 and <= 65535"),
        ("ROTATOR_HTTP_PORT", "http", "must be an integer >= 1 and <= 65535"),
        (
            "ROTATOR_HTTP_HOST",
            "http://0.0.0.0",
            _HOST,
        ),
        ("ROTATOR_HTTP_HOST", "0.0.0.0:8080", _HOST),
        ("ROTATOR_LOG_FORMAT", "xml", "must be one of auto, json, console"),
        ("ROTATOR_LOG_LEVEL", "trace", "must be one of debug, info, warning, error"),
        ("ROTATOR_HTTP_TIMEOUT_SECONDS", "0", "must be a number > 0 and <= 300"),
        ("ROTATOR_HTTP_MAX_RETRIES", "-1", "must be an integer >= 0 and <= 10"),
        ("ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "0", "must be a number > 0 and <= 3600"),
        ("ROTATOR_PUSHGATEWAY_URL", "pgw:9091", "must be an http(s) URL with a host"),
        ("ROTATOR_CONCURRENCY", "0", "must be an integer >= 1 and <= 64"),
        ("ROTATOR_WORKSPACE_CONCURRENCY", "0", "must be an integer >= 1 and <= 64"),
        ("ROTATOR_EMERGENCY_GRACE_HOURS", "-1", "must be a number >= 0 and <= 168"),
        ("ROTATOR_MAX_FAILURE_RATIO", "1.5", "must be a number >= 0 and <= 1"),
        ("ROTATOR_MAX_FAILURE_RATIO", "-0.1", "must be a number >= 0 and <= 1"),
        ("ROTATOR_MAX_ROTATIONS_PER_PASS", "0", "must be an integer >= 1 and <= 10000"),
        ("ROTATOR_SHARDS", "0", "must be an integer >= 1 and <= 1000"),
        ("ROTATOR_SHARD_INDEX", "-1", "must be an integer >= 0"),
        ("ROTATOR_TIMEZONE", "Mars/Olympus", "must be an IANA time zone such as Europe/Berlin"),
        ("ROTATOR_SINK", "s3", "must be one of file, kubernetes, vault, aws-secrets-manager, exec"),
        ("ROTATOR_LOCK", "redis", "must be one of auto, lease, file"),
        (
            "ROTATOR_LEASE_NAMESPACE",
            "Ops",
            _NAMESPACE,
        ),
        ("ROTATOR_LEASE_DURATION_SECONDS", "5", "must be an integer >= 10 and <= 3600"),
    ],
)
def test_each_invalid_value_names_its_variable(variable: str, value: str, expected: str) -> None:
    assert problems(**{variable: value}) == [f"{variable}: {expected}, got {value!r}"]


def test_invalid_schedule_names_the_variable_once() -> None:
    assert problems(ROTATOR_SCHEDULE="0 3 * * 8") == [
        "ROTATOR_SCHEDULE: day of week 8 is out of range (0-7), got '0 3 * * 8'"
    ]
    assert problems(ROTATOR_SCHEDULE="@daily") == [
        "ROTATOR_SCHEDULE: must have five fields (minute hour day-of-month month day-of-week), "
        "got '@daily'"
    ]


def test_rotate_before_must_be_below_validity() -> None:
    assert problems(ROTATOR_ROTATE_BEFORE_DAYS="730") == [
        "ROTATOR_ROTATE_BEFORE_DAYS: must be below ROTATOR_VALIDITY_DAYS (730), got 730"
    ]
    assert problems(ROTATOR_VALIDITY_DAYS="30") == [
        "ROTATOR_ROTATE_BEFORE_DAYS: must be below ROTATOR_VALIDITY_DAYS (30), got 30"
    ]
    assert load(ROTATOR_VALIDITY_DAYS="31").rotate_before_days == 30


def test_max_age_must_not_exceed_validity() -> None:
    assert problems(ROTATOR_MAX_AGE_DAYS="731") == [
        "ROTATOR_MAX_AGE_DAYS: must be at most ROTATOR_VALIDITY_DAYS (730), got 731"
    ]


def test_shard_index_must_be_below_shards() -> None:
    assert problems(ROTATOR_SHARDS="2", ROTATOR_SHARD_INDEX="2") == [
        "ROTATOR_SHARD_INDEX: must be below ROTATOR_SHARDS (2), got 2",
    ]


def test_a_rule_between_variables_is_skipped_when_one_of_them_is_invalid() -> None:
    # Only the bad value is reported, not "must be below ROTATOR_VALIDITY_DAYS" on top.
    assert problems(ROTATOR_VALIDITY_DAYS="x") == [
        "ROTATOR_VALIDITY_DAYS: must be an integer > 0 and <= 3650, got 'x'"
    ]
    assert problems(ROTATOR_SHARDS="x", ROTATOR_SHARD_INDEX="5") == [
        "ROTATOR_SHARDS: must be an integer >= 1 and <= 1000, got 'x'"
    ]


def test_a_file_lock_needs_a_folder_when_the_sink_is_not_a_folder() -> None:
    exec_sink = {"ROTATOR_SINK": "exec", "ROTATOR_SINK_EXEC_COMMAND": "/bin/true"}
    assert problems(**exec_sink, ROTATOR_LOCK="file") == [
        "ROTATOR_LOCK_DIR: required with ROTATOR_LOCK=file when ROTATOR_SINK is not file "
        "(it is exec)"
    ]
    (ws,) = load(**exec_sink, ROTATOR_LOCK="file", ROTATOR_LOCK_DIR="/run/l").workspaces
    assert ws.lock_dir == Path("/run/l")
    # auto may still become a Lease in a cluster: whether a folder is needed is known later.
    (ws,) = load(**exec_sink).workspaces
    assert ws.lock_dir is None


def test_a_credential_is_required() -> None:
    assert problems_of({"ROTATOR_KEY_NAMES": "*"}) == [
        "ROTATOR_API_KEY: required (or ROTATOR_API_KEY_FILE)"
    ]


def test_features_of_the_contract_are_accepted() -> None:
    settings = load(ROTATOR_SELF_KEY_NAME="rotator", ROTATOR_SHARDS="2", ROTATOR_SHARD_INDEX="1")
    assert settings.self_key_name == "rotator"
    assert settings.workspaces[0].self_key_name == "rotator"
    assert (settings.shards, settings.shard_index) == (2, 1)


# --- unknown variables -------------------------------------------------------------------------


def test_misspelt_variable_gets_a_hint() -> None:
    assert problems(ROTATOR_GRACE_HOUR="1") == [
        "ROTATOR_GRACE_HOUR: unknown variable; did you mean ROTATOR_GRACE_HOURS?"
    ]
    assert problems(ROTATOR_SINK_FILE_DIRS="/x") == [
        "ROTATOR_SINK_FILE_DIRS: unknown variable; did you mean ROTATOR_SINK_FILE_DIR?"
    ]
    assert problems(ROTATOR_SINK_VAULT_TOKEN_FIL="/x") == [
        "ROTATOR_SINK_VAULT_TOKEN_FIL: unknown variable; "
        "did you mean ROTATOR_SINK_VAULT_TOKEN_FILE?"
    ]
    assert problems(ROTATOR_COMPLETELY_DIFFERENT="1") == [
        "ROTATOR_COMPLETELY_DIFFERENT: unknown variable"
    ]


def test_kubernetes_service_variables_are_ignored() -> None:
    settings = load(
        ROTATOR_SERVICE_HOST="10.0.0.7",
        ROTATOR_SERVICE_PORT="8080",
        ROTATOR_SERVICE_PORT_HTTP="8080",
        ROTATOR_PORT="tcp://10.0.0.7:8080",
        ROTATOR_PORT_8080_TCP="tcp://10.0.0.7:8080",
        ROTATOR_PORT_8080_TCP_PROTO="tcp",
        ROTATOR_PORT_8080_TCP_PORT="8080",
        ROTATOR_PORT_8080_TCP_ADDR="10.0.0.7",
    )
    assert settings.http_port == 8080
    # Only those exact shapes: something that merely starts alike is still a typo.
    assert problems(ROTATOR_SERVICE_HOSTS="x")[0].startswith("ROTATOR_SERVICE_HOSTS: unknown")


# --- every problem at once ---------------------------------------------------------------------


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of(
        {
            "ROTATOR_API_URL": "http://pm.example.com",
            "ROTATOR_GRACE_HOURS": "abc",
            "ROTATOR_GRACE_HOUR": "1",
            "ROTATOR_HTTP_PORT": "0",
            "ROTATOR_SINK": "vault",
            "ROTATOR_SINK_FILE_DIR": "/x",
            "ROTATOR_VALIDITY_DAYS": "10",
        }
    )
    assert sorted(found) == [
        "ROTATOR_API_KEY: required (or ROTATOR_API_KEY_FILE)",
        "ROTATOR_API_URL: must be https unless the host is loopback, got 'http://pm.example.com'",
        "ROTATOR_GRACE_HOUR: unknown variable; did you mean ROTATOR_GRACE_HOURS?",
        "ROTATOR_GRACE_HOURS: must be a number >= 0 and <= 8760, got 'abc'",
        "ROTATOR_HTTP_PORT: must be an integer >= 1 and <= 65535, got '0'",
        "ROTATOR_KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
        "('*' for all)",
        "ROTATOR_ROTATE_BEFORE_DAYS: must be below ROTATOR_VALIDITY_DAYS (10), got 30",
        "ROTATOR_SINK_FILE_DIR: only used with ROTATOR_SINK=file, but ROTATOR_SINK is 'vault'",
        "ROTATOR_SINK_VAULT_ADDR: required: the Vault server's URL",
        "ROTATOR_SINK_VAULT_TOKEN: required with ROTATOR_SINK_VAULT_AUTH=token",
    ]
    assert found == sorted(found, key=lambda line: line.split(":")[0]), "grouped by variable"


def test_messages_carry_no_pydantic_wording() -> None:
    found = problems(
        ROTATOR_HTTP_PORT="x",
        ROTATOR_LOG_LEVEL="x",
        ROTATOR_GRACE_HOURS="x",
        ROTATOR_SINK="kubernetes",
        ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES="x",
    )
    text = "\n".join(found)
    assert "pydantic" not in text
    assert "Input should" not in text
    assert "errors.pydantic.dev" not in text
    assert "kubernetes.rollout" not in text


def test_the_error_is_one_config_error_whose_text_lists_each_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**MINIMAL, "ROTATOR_GRACE_HOURS": "x", "ROTATOR_HTTP_PORT": "0"})
    assert len(caught.value.problems) == 2
    assert str(caught.value) == "; ".join(caught.value.problems)


# --- the _FILE forms ---------------------------------------------------------------------------


def test_any_variable_may_come_from_a_file(tmp_path: Path) -> None:
    grace = tmp_path / "grace"
    grace.write_text(" 6\n")
    names = tmp_path / "names"
    names.write_text("a,b\n")
    sink = tmp_path / "sink"
    sink.write_text("exec\n")
    settings = parse_settings(
        {
            "ROTATOR_API_KEY": SECRET,
            "ROTATOR_KEY_NAMES_FILE": str(names),
            "ROTATOR_GRACE_HOURS_FILE": str(grace),
            "ROTATOR_GRACE_HOURS": "12",  # the file wins, as ROTATOR_API_KEY_FILE does
            "ROTATOR_SINK_FILE": str(sink),  # the sink's name, from a file, chooses its variables
            "ROTATOR_SINK_EXEC_COMMAND": "/bin/true",
        }
    )
    assert settings.grace_hours == 6
    assert settings.key_names == ("a", "b")
    assert settings.sink.kind == "exec"


def test_a_bad_value_from_a_file_names_the_file_variable(tmp_path: Path) -> None:
    grace = tmp_path / "grace"
    grace.write_text("soon\n")
    assert problems(ROTATOR_GRACE_HOURS_FILE=str(grace)) == [
        "ROTATOR_GRACE_HOURS_FILE: must be a number >= 0 and <= 8760, got 'soon'"
    ]


def test_an_unreadable_value_file_is_a_problem(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert problems(ROTATOR_GRACE_HOURS_FILE=str(missing)) == [
        f"ROTATOR_GRACE_HOURS_FILE: cannot read {str(missing)!r}: No such file or directory"
    ]
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    assert problems(ROTATOR_GRACE_HOURS_FILE=str(binary)) == [
        f"ROTATOR_GRACE_HOURS_FILE: {str(binary)!r} is not UTF-8 text"
    ]


def test_an_unreadable_file_of_a_required_variable_is_reported_once(tmp_path: Path) -> None:
    missing = tmp_path / "names"
    assert problems_of({"ROTATOR_API_KEY": SECRET, "ROTATOR_KEY_NAMES_FILE": str(missing)}) == [
        f"ROTATOR_KEY_NAMES_FILE: cannot read {str(missing)!r}: No such file or directory"
    ]


def test_an_empty_value_file_counts_as_unset(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert load(ROTATOR_GRACE_HOURS_FILE=str(empty)).grace_hours == 24


def test_api_key_file_wins_and_is_read_at_every_call(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("first-key\n")
    settings = load(ROTATOR_API_KEY_FILE=str(key_file))
    assert settings.api_key_file == key_file
    (ws,) = settings.workspaces
    assert read_api_key(ws).reveal() == "first-key"
    key_file.write_text("  second-key  ")
    assert read_api_key(ws).reveal() == "second-key"
    assert settings.read_api_key().reveal() == "second-key"  # the single workspace's, too


def test_api_key_from_the_variable() -> None:
    key = read_api_key(load_settings(MINIMAL).workspaces[0])
    assert key.reveal() == SECRET
    assert SECRET not in repr(key)


def test_api_key_file_must_be_readable_and_not_empty_at_load(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert problems_of({"ROTATOR_KEY_NAMES": "*", "ROTATOR_API_KEY_FILE": str(missing)}) == [
        f"ROTATOR_API_KEY_FILE: cannot read {str(missing)!r}: No such file or directory"
    ]
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    assert problems_of({"ROTATOR_KEY_NAMES": "*", "ROTATOR_API_KEY_FILE": str(empty)}) == [
        f"ROTATOR_API_KEY_FILE: {str(empty)!r} is empty"
    ]


def test_api_key_file_that_goes_away_later_names_the_variable(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(SECRET)
    settings = load_settings({"ROTATOR_KEY_NAMES": "*", "ROTATOR_API_KEY_FILE": str(key_file)})
    key_file.unlink()
    with pytest.raises(ConfigError) as caught:
        read_api_key(settings.workspaces[0])
    assert caught.value.problems == [
        f"ROTATOR_API_KEY_FILE: cannot read {str(key_file)!r}: No such file or directory"
    ]
    key_file.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        read_api_key(settings.workspaces[0])


# --- direct construction (tests of other modules) ----------------------------------------------


def test_direct_construction_checks_the_same_rules() -> None:
    settings = Settings(key_names=("*",), api_key=SecretStr("k"))
    assert settings.sink.kind == "file"
    assert [ws.name for ws in settings.workspaces] == ["default"]
    with pytest.raises(ValidationError, match="ROTATOR_VALIDITY_DAYS"):
        Settings(key_names=("*",), api_key=SecretStr("k"), validity_days=10)
    with pytest.raises(ValidationError):
        Settings(key_names=(), api_key=SecretStr("k"))
    with pytest.raises(ValidationError, match="ROTATOR_API_KEY: required"):
        Settings(key_names=("*",))


def test_direct_construction_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATOR_GRACE_HOURS", "5")
    assert Settings(key_names=("*",), api_key=SecretStr("k")).grace_hours == 24


def test_a_copy_keeps_its_workspaces() -> None:
    settings = load_settings(MINIMAL)
    copy = settings.model_copy(update={"dry_run": True})
    assert copy.workspaces == settings.workspaces
    rebuilt = Settings(**{**dict(settings), "dry_run": True})
    assert rebuilt.workspaces == settings.workspaces


def test_load_settings_reads_os_environ_when_given_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("ROTATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ROTATOR_API_KEY", SECRET)
    monkeypatch.setenv("ROTATOR_KEY_NAMES", "from-os-environ")
    assert load_settings().key_names == ("from-os-environ",)
