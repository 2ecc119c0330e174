"""Settings from a ROTATOR_* mapping: defaults, parsing, every rejection, _FILE forms, redaction."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from rotator.errors import ConfigError
from rotator.models import Secret
from rotator.settings import (
    REDACTED,
    SINK_MODELS,
    FileSinkSettings,
    Settings,
    describe_variables,
    load_settings,
    redacted,
)

SECRET = "pm-live-0123456789abcdef"
MINIMAL = {"ROTATOR_API_KEY": SECRET, "ROTATOR_KEY_NAMES": "billing-*"}


def load(**variables: str) -> Settings:
    return load_settings({**MINIMAL, **variables})


def problems_of(environ: Mapping[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


def problems(**variables: str) -> list[str]:
    return problems_of({**MINIMAL, **variables})


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
    assert settings.log_format == "json"
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


def test_settings_are_frozen() -> None:
    settings = load_settings(MINIMAL)
    with pytest.raises(ValidationError):
        settings.grace_hours = 1
    with pytest.raises(ValidationError):
        settings.sink.dir = Path("/elsewhere")


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
        ("ROTATOR_WORKSPACE_ID", "ws-1", "workspace_id", "ws-1"),
        ("ROTATOR_KEY_NAMES", " a , b-* ,, c ", "key_names", ("a", "b-*", "c")),
        ("ROTATOR_KEY_NAMES", "*", "key_names", ("*",)),
        ("ROTATOR_EXCLUDE_KEY_NAMES", "x,,y", "exclude_key_names", ("x", "y")),
        ("ROTATOR_VALIDITY_DAYS", "365", "validity_days", 365),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "0", "rotate_before_days", 0),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "7.5", "rotate_before_days", 7.5),
        ("ROTATOR_MAX_AGE_DAYS", "90", "max_age_days", 90),
        ("ROTATOR_MAX_AGE_DAYS", "730", "max_age_days", 730),
        ("ROTATOR_GRACE_HOURS", "0", "grace_hours", 0),
        ("ROTATOR_GRACE_HOURS", "0.25", "grace_hours", 0.25),
        ("ROTATOR_ORPHAN_MIN_AGE_MINUTES", "0", "orphan_min_age_minutes", 0),
        ("ROTATOR_SCHEDULE", "*/15 * * * 1-5", "schedule", "*/15 * * * 1-5"),
        ("ROTATOR_TIMEZONE", "Europe/Berlin", "timezone", "Europe/Berlin"),
        ("ROTATOR_HTTP_PORT", "1", "http_port", 1),
        ("ROTATOR_HTTP_PORT", "65535", "http_port", 65535),
        ("ROTATOR_LOG_FORMAT", "console", "log_format", "console"),
        ("ROTATOR_LOG_LEVEL", "DEBUG", "log_level", "debug"),
        ("ROTATOR_LOG_LEVEL", "warning", "log_level", "warning"),
        ("ROTATOR_INTEGRATION_NAME", "rot-prod", "integration_name", "rot-prod"),
        ("ROTATOR_HTTP_TIMEOUT_SECONDS", "2.5", "http_timeout_seconds", 2.5),
        ("ROTATOR_HTTP_MAX_RETRIES", "0", "http_max_retries", 0),
        ("ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "5", "shutdown_timeout_seconds", 5),
        ("ROTATOR_PUSHGATEWAY_URL", "http://pgw:9091/", "pushgateway_url", "http://pgw:9091"),
        ("ROTATOR_CONCURRENCY", "1", "concurrency", 1),
        ("ROTATOR_WORKSPACE_CONCURRENCY", "3", "workspace_concurrency", 3),
        ("ROTATOR_EMERGENCY_GRACE_HOURS", "1.5", "emergency_grace_hours", 1.5),
        ("ROTATOR_MAX_FAILURE_RATIO", "0", "max_failure_ratio", 0),
        ("ROTATOR_MAX_FAILURE_RATIO", "1", "max_failure_ratio", 1),
        ("ROTATOR_MAX_ROTATIONS_PER_PASS", "1", "max_rotations_per_pass", 1),
        ("ROTATOR_SHARDS", "1", "shards", 1),
    ],
)
def test_each_variable_is_parsed(variable: str, value: str, field: str, expected: object) -> None:
    assert getattr(load(**{variable: value}), field) == expected


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


def test_file_sink_dir() -> None:
    settings = load(ROTATOR_SINK="file", ROTATOR_SINK_FILE_DIR="/var/lib/rotator")
    assert settings.sink == FileSinkSettings(dir=Path("/var/lib/rotator"))
    assert load(ROTATOR_SINK="FILE").sink.kind == "file"


def test_shard_index_defaults_to_the_job_completion_index() -> None:
    environ = {**MINIMAL, "JOB_COMPLETION_INDEX": "0"}
    assert load_settings(environ).shard_index == 0
    explicit = {**environ, "ROTATOR_SHARD_INDEX": "0"}
    assert load_settings(explicit).shard_index == 0
    assert problems_of({**MINIMAL, "JOB_COMPLETION_INDEX": "x"}) == [
        "JOB_COMPLETION_INDEX (default of ROTATOR_SHARD_INDEX): must be an integer >= 0, got 'x'"
    ]
    assert problems_of({**MINIMAL, "JOB_COMPLETION_INDEX": "1"}) == [
        "ROTATOR_SHARD_INDEX: must be below ROTATOR_SHARDS (1), got 1"
    ]


def test_empty_values_count_as_unset() -> None:
    settings = load(
        ROTATOR_GRACE_HOURS="",
        ROTATOR_DRY_RUN="   ",
        ROTATOR_SINK="",
        ROTATOR_MAX_AGE_DAYS="",
        ROTATOR_API_KEY_FILE="",
        ROTATOR_TYPO_BUT_EMPTY="",
    )
    assert settings.grace_hours == 24
    assert settings.dry_run is False
    assert settings.sink.kind == "file"
    assert settings.max_age_days is None
    assert settings.api_key_file is None
    assert problems_of({"ROTATOR_KEY_NAMES": "", "ROTATOR_API_KEY": SECRET}) == [
        "ROTATOR_KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
        "('*' for all)"
    ]


# --- rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ROTATOR_API_URL", "http://pm.example.com", "must be https unless the host is loopback"),
        ("ROTATOR_API_URL", "http://10.0.0.1", "must be https unless the host is loopback"),
        ("ROTATOR_API_URL", "ftp://pm.example.com", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "https://", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "https://host:99999", "must be an http(s) URL with a host"),
        ("ROTATOR_API_URL", "pm.example.com", "must be an http(s) URL with a host"),
        ("ROTATOR_KEY_NAMES", ",,", "must list at least one glob pattern"),
        ("ROTATOR_VALIDITY_DAYS", "0", "must be an integer > 0"),
        ("ROTATOR_VALIDITY_DAYS", "1.5", "must be an integer > 0"),
        ("ROTATOR_ROTATE_BEFORE_DAYS", "-1", "must be a number >= 0"),
        ("ROTATOR_MAX_AGE_DAYS", "0", "must be a number > 0"),
        ("ROTATOR_MAX_AGE_DAYS", "inf", "must be a number > 0"),
        ("ROTATOR_GRACE_HOURS", "abc", "must be a number >= 0"),
        ("ROTATOR_GRACE_HOURS", "-0.5", "must be a number >= 0"),
        ("ROTATOR_GRACE_HOURS", "nan", "must be a number >= 0"),
        ("ROTATOR_ORPHAN_MIN_AGE_MINUTES", "-1", "must be a number >= 0"),
        ("ROTATOR_DRY_RUN", "maybe", "must be one of true, false, yes, no, 1, 0"),
        ("ROTATOR_RUN_ON_START", "maybe", "must be one of true, false, yes, no, 1, 0"),
        ("ROTATOR_HTTP_PORT", "0", "must be an integer >= 1 and <= 65535"),
        ("ROTATOR_HTTP_PORT", "65536", "must be an integer >= 1 and <= 65535"),
        ("ROTATOR_HTTP_PORT", "http", "must be an integer >= 1 and <= 65535"),
        ("ROTATOR_LOG_FORMAT", "xml", "must be one of json, console"),
        ("ROTATOR_LOG_LEVEL", "trace", "must be one of debug, info, warning, error"),
        ("ROTATOR_HTTP_TIMEOUT_SECONDS", "0", "must be a number > 0"),
        ("ROTATOR_HTTP_MAX_RETRIES", "-1", "must be an integer >= 0"),
        ("ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "0", "must be a number > 0"),
        ("ROTATOR_PUSHGATEWAY_URL", "pgw:9091", "must be an http(s) URL with a host"),
        ("ROTATOR_CONCURRENCY", "0", "must be an integer >= 1"),
        ("ROTATOR_WORKSPACE_CONCURRENCY", "0", "must be an integer >= 1"),
        ("ROTATOR_EMERGENCY_GRACE_HOURS", "-1", "must be a number >= 0"),
        ("ROTATOR_MAX_FAILURE_RATIO", "1.5", "must be a number >= 0 and <= 1"),
        ("ROTATOR_MAX_FAILURE_RATIO", "-0.1", "must be a number >= 0 and <= 1"),
        ("ROTATOR_MAX_ROTATIONS_PER_PASS", "0", "must be an integer >= 1"),
        ("ROTATOR_SHARDS", "0", "must be an integer >= 1"),
        ("ROTATOR_SHARD_INDEX", "-1", "must be an integer >= 0"),
        ("ROTATOR_TIMEZONE", "Mars/Olympus", "must be an IANA time zone such as Europe/Berlin"),
        ("ROTATOR_SINK", "s3", "must be one of file, kubernetes, vault, aws-secrets-manager, exec"),
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
        "ROTATOR_SHARDS: sharding is not available in this version, got 2",
    ]


def test_features_not_built_yet_are_refused_not_ignored(tmp_path: Path) -> None:
    workspaces = tmp_path / "workspaces.yaml"
    workspaces.write_text("[]")
    assert problems(ROTATOR_WORKSPACES_FILE=str(workspaces), ROTATOR_SELF_KEY_NAME="me") == [
        "ROTATOR_WORKSPACES_FILE: managing several workspaces is not available in this version",
        "ROTATOR_SELF_KEY_NAME: rotating the rotator's own key is not available in this version",
    ]


def test_a_credential_is_required() -> None:
    assert problems_of({"ROTATOR_KEY_NAMES": "*"}) == [
        "ROTATOR_API_KEY: required (or ROTATOR_API_KEY_FILE)"
    ]


def test_workspaces_file_must_be_readable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems(ROTATOR_WORKSPACES_FILE=str(missing)) == [
        f"ROTATOR_WORKSPACES_FILE: cannot read {str(missing)!r}: No such file or directory",
        "ROTATOR_WORKSPACES_FILE: managing several workspaces is not available in this version",
    ]


def test_sinks_not_built_yet_are_named() -> None:
    assert problems(ROTATOR_SINK="exec") == [
        "ROTATOR_SINK_EXEC_COMMAND: required with ROTATOR_SINK=exec"
    ]
    for kind in ("kubernetes", "vault", "aws-secrets-manager"):
        assert problems(ROTATOR_SINK=kind) == [
            f"ROTATOR_SINK: {kind!r} is not available in this version (available: file, exec)"
        ]
    assert SINK_MODELS["file"] is FileSinkSettings


def test_file_sink_variables_with_another_sink_are_a_problem() -> None:
    assert problems(ROTATOR_SINK="vault", ROTATOR_SINK_FILE_DIR="/x") == [
        "ROTATOR_SINK: 'vault' is not available in this version (available: file, exec)",
        "ROTATOR_SINK_FILE_DIR: only used with ROTATOR_SINK=file, but ROTATOR_SINK is 'vault'",
    ]


def test_variables_of_a_sink_not_built_yet_are_named() -> None:
    assert problems(ROTATOR_SINK_VAULT_ADDR="https://vault:8200") == [
        "ROTATOR_SINK_VAULT_ADDR: the vault sink is not available in this version "
        "(available: file, exec)"
    ]


def test_misspelt_variable_gets_a_hint() -> None:
    assert problems(ROTATOR_GRACE_HOUR="1") == [
        "ROTATOR_GRACE_HOUR: unknown variable; did you mean ROTATOR_GRACE_HOURS?"
    ]
    assert problems(ROTATOR_SINK_FILE_DIRS="/x") == [
        "ROTATOR_SINK_FILE_DIRS: unknown variable; did you mean ROTATOR_SINK_FILE_DIR?"
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


def test_all_problems_are_reported_at_once() -> None:
    found = problems_of(
        {
            "ROTATOR_API_URL": "http://pm.example.com",
            "ROTATOR_GRACE_HOURS": "abc",
            "ROTATOR_GRACE_HOUR": "1",
            "ROTATOR_HTTP_PORT": "0",
            "ROTATOR_SINK": "vault",
            "ROTATOR_VALIDITY_DAYS": "10",
        }
    )
    assert sorted(found) == [
        "ROTATOR_API_KEY: required (or ROTATOR_API_KEY_FILE)",
        "ROTATOR_API_URL: must be https unless the host is loopback, got 'http://pm.example.com'",
        "ROTATOR_GRACE_HOUR: unknown variable; did you mean ROTATOR_GRACE_HOURS?",
        "ROTATOR_GRACE_HOURS: must be a number >= 0, got 'abc'",
        "ROTATOR_HTTP_PORT: must be an integer >= 1 and <= 65535, got '0'",
        "ROTATOR_KEY_NAMES: required: comma-separated glob patterns of the keys to rotate "
        "('*' for all)",
        "ROTATOR_ROTATE_BEFORE_DAYS: must be below ROTATOR_VALIDITY_DAYS (10), got 30",
        "ROTATOR_SINK: 'vault' is not available in this version (available: file, exec)",
    ]


def test_messages_carry_no_pydantic_wording() -> None:
    found = problems(ROTATOR_HTTP_PORT="x", ROTATOR_LOG_LEVEL="x", ROTATOR_GRACE_HOURS="x")
    text = "\n".join(found)
    assert "pydantic" not in text
    assert "Input should" not in text
    assert "errors.pydantic.dev" not in text


# --- the _FILE forms ---------------------------------------------------------------------------


def test_any_variable_may_come_from_a_file(tmp_path: Path) -> None:
    grace = tmp_path / "grace"
    grace.write_text(" 6\n")
    names = tmp_path / "names"
    names.write_text("a,b\n")
    settings = load_settings(
        {
            "ROTATOR_API_KEY": SECRET,
            "ROTATOR_KEY_NAMES_FILE": str(names),
            "ROTATOR_GRACE_HOURS_FILE": str(grace),
            "ROTATOR_GRACE_HOURS": "12",  # the file wins, as ROTATOR_API_KEY_FILE does
        }
    )
    assert settings.grace_hours == 6
    assert settings.key_names == ("a", "b")


def test_a_bad_value_from_a_file_names_the_file_variable(tmp_path: Path) -> None:
    grace = tmp_path / "grace"
    grace.write_text("soon\n")
    assert problems(ROTATOR_GRACE_HOURS_FILE=str(grace)) == [
        "ROTATOR_GRACE_HOURS_FILE: must be a number >= 0, got 'soon'"
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


def test_an_empty_value_file_counts_as_unset(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert load(ROTATOR_GRACE_HOURS_FILE=str(empty)).grace_hours == 24


def test_api_key_file_wins_and_is_read_at_every_call(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("first-key\n")
    settings = load(ROTATOR_API_KEY_FILE=str(key_file))
    assert settings.api_key_file == key_file
    assert settings.read_api_key() == Secret("first-key")
    key_file.write_text("  second-key  ")
    assert settings.read_api_key() == Secret("second-key")


def test_api_key_from_the_variable() -> None:
    key = load_settings(MINIMAL).read_api_key()
    assert isinstance(key, Secret)
    assert key.reveal() == SECRET


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
        settings.read_api_key()
    assert caught.value.problems == [
        f"ROTATOR_API_KEY_FILE: cannot read {str(key_file)!r}: No such file or directory"
    ]
    key_file.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        settings.read_api_key()


# --- secrets and redaction ---------------------------------------------------------------------


def test_the_secret_shows_nowhere() -> None:
    settings = load(ROTATOR_API_URL="https://user:hunter2@pm.example.com")
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    dumped = json.dumps(redacted(settings))
    assert SECRET not in dumped
    assert "hunter2" not in dumped
    assert redacted(settings)["ROTATOR_API_URL"] == f"https://user:{REDACTED}@pm.example.com"


def test_a_bad_url_with_a_password_is_not_echoed() -> None:
    (problem,) = problems(ROTATOR_API_URL="http://user:hunter2@pm.example.com")
    assert "hunter2" not in problem
    assert problem.startswith("ROTATOR_API_URL: must be https unless the host is loopback")


def test_redacted_lists_every_variable_as_json(tmp_path: Path) -> None:
    settings = load(ROTATOR_SINK_FILE_DIR=str(tmp_path), ROTATOR_EXCLUDE_KEY_NAMES="x,y")
    effective = redacted(settings)
    assert json.loads(json.dumps(effective)) == effective
    assert effective["ROTATOR_API_KEY"] == REDACTED
    assert effective["ROTATOR_API_KEY_FILE"] is None
    assert effective["ROTATOR_SINK"] == "file"
    assert effective["ROTATOR_SINK_FILE_DIR"] == str(tmp_path)
    assert effective["ROTATOR_EXCLUDE_KEY_NAMES"] == ["x", "y"]
    assert effective["ROTATOR_GRACE_HOURS"] == 24
    # Every variable but those of the sinks not chosen.
    others = {v for v in describe_variables() if v.startswith("ROTATOR_SINK_EXEC_")}
    assert set(effective) == set(describe_variables()) - others
    assert "ROTATOR_SHARD_INDEX" in effective


def test_redacted_shows_an_unset_api_key_as_none(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    effective = redacted(
        load_settings({"ROTATOR_KEY_NAMES": "*", "ROTATOR_API_KEY_FILE": str(key_file)})
    )
    assert effective["ROTATOR_API_KEY"] is None
    assert effective["ROTATOR_API_KEY_FILE"] == str(key_file)


def test_every_variable_is_described() -> None:
    described = describe_variables()
    assert "ROTATOR_SINK_FILE_DIR" in described
    assert all(text for text in described.values())


# --- direct construction (tests of other modules) ----------------------------------------------


def test_direct_construction_checks_the_same_rules() -> None:
    settings = Settings(key_names=("*",), api_key=SecretStr("k"))
    assert settings.sink.kind == "file"
    with pytest.raises(ValidationError, match="ROTATOR_ROTATE_BEFORE_DAYS"):
        Settings(key_names=("*",), api_key=SecretStr("k"), validity_days=10)
    with pytest.raises(ValidationError):
        Settings(key_names=(), api_key=SecretStr("k"))


def test_load_settings_reads_os_environ_when_given_nothing() -> None:
    if os.environ.get("ROTATOR_KEY_NAMES", "").strip():
        pytest.skip("this process's environment sets ROTATOR_KEY_NAMES")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert any(p.startswith("ROTATOR_KEY_NAMES: required") for p in caught.value.problems)


def test_the_help_list_of_variables_is_what_settings_accept() -> None:
    from rotator.settings import _known_variables  # noqa: PLC0415
    from rotator.variables import VARIABLES  # noqa: PLC0415

    assert sorted(VARIABLES) == sorted(_known_variables())


def test_help_imports_no_heavy_library() -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys, contextlib, io\n"
        "from rotator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['run-once', '--help'])\n"
        "heavy = [m for m in ('pydantic', 'structlog', 'httpx', 'apscheduler', 'prometheus_client')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
