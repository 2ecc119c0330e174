"""Values that check-config used to accept and that then crashed or misled a pass: each is now
refused at load (exit 2), one line naming its variable, never showing a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.errors import ConfigError
from rotator.settings import credential_problems, load_settings, read_api_key, redacted
from tests.settings.support import MINIMAL, SECRET, load, problems

# (variable, value, the line's text after "VARIABLE: "; the value follows as ", got '...'")
OUT_OF_BOUNDS = [
    ("ROTATOR_GRACE_HOURS", "100000000", "must be a number >= 0 and <= 8760"),
    ("ROTATOR_GRACE_HOURS", "1e300", "must be a number >= 0 and <= 8760"),
    ("ROTATOR_GRACE_HOURS", "8760.5", "must be a number >= 0 and <= 8760"),
    ("ROTATOR_VALIDITY_DAYS", "1000000", "must be an integer > 0 and <= 3650"),
    ("ROTATOR_ROTATE_BEFORE_DAYS", "1e300", "must be a number >= 0 and <= 3650"),
    ("ROTATOR_MAX_AGE_DAYS", "1e300", "must be a number > 0 and <= 3650"),
    ("ROTATOR_ORPHAN_MIN_AGE_MINUTES", "1e300", "must be a number >= 0 and <= 10080"),
    ("ROTATOR_HTTP_TIMEOUT_SECONDS", "1e300", "must be a number > 0 and <= 300"),
    ("ROTATOR_HTTP_TIMEOUT_SECONDS", "301", "must be a number > 0 and <= 300"),
    ("ROTATOR_HTTP_MAX_RETRIES", "1000", "must be an integer >= 0 and <= 10"),
    ("ROTATOR_EMERGENCY_GRACE_HOURS", "1e300", "must be a number >= 0 and <= 168"),
    ("ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "1e300", "must be a number > 0 and <= 3600"),
    ("ROTATOR_LEASE_DURATION_SECONDS", "100000000", "must be an integer >= 10 and <= 3600"),
    ("ROTATOR_CONCURRENCY", "100000", "must be an integer >= 1 and <= 64"),
    ("ROTATOR_WORKSPACE_CONCURRENCY", "100000", "must be an integer >= 1 and <= 64"),
    ("ROTATOR_MAX_ROTATIONS_PER_PASS", "100000000", "must be an integer >= 1 and <= 10000"),
    ("ROTATOR_SHARDS", "100000", "must be an integer >= 1 and <= 1000"),
    ("ROTATOR_INTEGRATION_NAME", "x" * 101, "must be text of at most 100 characters"),
]

SINKS = {
    "kubernetes": {"ROTATOR_SINK": "kubernetes"},
    "exec": {"ROTATOR_SINK": "exec", "ROTATOR_SINK_EXEC_COMMAND": "/bin/true"},
}
SINK_OUT_OF_BOUNDS = [
    (
        "kubernetes",
        "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES",
        "100000",
        "must be an integer >= 1 and <= 1440",
    ),
    (
        "kubernetes",
        "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES",
        "0",
        "must be an integer >= 1 and <= 1440",
    ),
    ("exec", "ROTATOR_SINK_EXEC_TIMEOUT_SECONDS", "1e300", "must be a number > 0 and <= 600"),
    ("exec", "ROTATOR_SINK_EXEC_TIMEOUT_SECONDS", "0", "must be a number > 0 and <= 600"),
]


@pytest.mark.parametrize(("variable", "value", "expected"), OUT_OF_BOUNDS)
def test_every_number_has_a_sane_bound(variable: str, value: str, expected: str) -> None:
    assert problems(**{variable: value}) == [f"{variable}: {expected}, got {value!r}"]


@pytest.mark.parametrize(("sink", "variable", "value", "expected"), SINK_OUT_OF_BOUNDS)
def test_every_sink_number_has_a_sane_bound(
    sink: str, variable: str, value: str, expected: str
) -> None:
    assert problems(**SINKS[sink], **{variable: value}) == [
        f"{variable}: {expected}, got {value!r}"
    ]


def test_the_bounds_themselves_are_accepted() -> None:
    settings = load(
        ROTATOR_GRACE_HOURS="8760",
        ROTATOR_VALIDITY_DAYS="3650",
        ROTATOR_HTTP_TIMEOUT_SECONDS="300",
        ROTATOR_EMERGENCY_GRACE_HOURS="168",
        ROTATOR_SHUTDOWN_TIMEOUT_SECONDS="3600",
        ROTATOR_LEASE_DURATION_SECONDS="3600",
        ROTATOR_HTTP_MAX_RETRIES="10",
    )
    assert settings.grace_hours == 8760


# --- credentials: only what an HTTP header can carry -------------------------------------------

BAD_CREDENTIALS = [
    ("pm key", "must not contain white space (a credential is one word)"),
    ("pm\tkey", "must not contain white space (a credential is one word)"),
    ("Bearer pm-key", "must be the key alone, without a 'Bearer ' prefix"),
    ("bearer pm-key", "must be the key alone, without a 'Bearer ' prefix"),
    ("pm-kéy", "must be ASCII: an HTTP header cannot carry other characters"),
    ("pm-key\x00", "must not contain control characters"),
    ("pm-\x7fkey", "must not contain control characters"),
    ("\ufeffpm-key", "starts with a byte-order mark: save the file without one"),
]


@pytest.mark.parametrize(("value", "expected"), BAD_CREDENTIALS)
def test_api_key_must_fit_an_http_header(value: str, expected: str) -> None:
    found = problems(ROTATOR_API_KEY=value)
    assert found == [f"ROTATOR_API_KEY: {expected}"]
    assert value not in found[0], "the value never shows"


@pytest.mark.parametrize(("value", "expected"), BAD_CREDENTIALS)
def test_api_key_file_content_must_fit_an_http_header(
    value: str, expected: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(value + "\n", encoding="utf-8")
    found = problems(ROTATOR_API_KEY="", ROTATOR_API_KEY_FILE=str(key_file))
    assert found == [f"ROTATOR_API_KEY_FILE: the key in {str(key_file)!r} {expected}"]


@pytest.mark.parametrize(("value", "expected"), BAD_CREDENTIALS)
def test_a_workspace_key_file_must_fit_an_http_header(
    value: str, expected: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "acme"
    key_file.write_text(value, encoding="utf-8")
    workspaces = tmp_path / "workspaces.yaml"
    workspaces.write_text(f"workspaces:\n  - name: acme\n    api_key_file: {key_file}\n")
    settings = load_settings({"ROTATOR_KEY_NAMES": "*", "ROTATOR_WORKSPACES_FILE": str(workspaces)})
    # Loading succeeds (a pass fails that workspace alone); checking names the problem.
    found = credential_problems(settings.workspaces)
    assert found == [
        f"ROTATOR_WORKSPACES_FILE: workspaces[0].api_key_file: the key in {str(key_file)!r} "
        f"{expected}"
    ]


@pytest.mark.parametrize(("value", "expected"), BAD_CREDENTIALS)
def test_vault_token_must_fit_an_http_header(value: str, expected: str) -> None:
    found = problems(
        ROTATOR_SINK="vault",
        ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
        ROTATOR_SINK_VAULT_TOKEN=value,
    )
    assert found == [f"ROTATOR_SINK_VAULT_TOKEN: {expected}"]


def test_a_key_file_spoiled_after_load_is_refused_at_the_next_read(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text(SECRET)
    (ws,) = load(ROTATOR_API_KEY="", ROTATOR_API_KEY_FILE=str(key_file)).workspaces
    key_file.write_text("Bearer " + SECRET)
    with pytest.raises(ConfigError) as caught:
        read_api_key(ws)
    assert SECRET not in str(caught.value)
    assert caught.value.problems[0].startswith("ROTATOR_API_KEY_FILE: the key in")


# --- URLs and the integration name -------------------------------------------------------------

BAD_TEXT = [
    (
        "ROTATOR_API_URL",
        "https://u:hunter2@pm.example.com",
        "must not contain a user name or password (the API takes its key in a header)",
        "https://u:**********@pm.example.com",
    ),
    (
        "ROTATOR_API_URL",
        "https://hunter2@pm.example.com",
        "must not contain a user name or password (the API takes its key in a header)",
        "https://**********@pm.example.com",
    ),
    (
        "ROTATOR_PUSHGATEWAY_URL",
        "https://u:hunter2@pgw.example.com",
        "must not contain a user name or password: the URL is shown by check-config and in "
        "logs; put basic auth in a proxy in front of the gateway instead",
        "https://u:**********@pgw.example.com",
    ),
    (
        "ROTATOR_INTEGRATION_NAME",
        "rotätor",
        "must be printable ASCII: it is sent as an HTTP header",
        "rotätor",
    ),
    (
        "ROTATOR_INTEGRATION_NAME",
        "rot\x01ator",
        "must be printable ASCII: it is sent as an HTTP header",
        "rot\x01ator",
    ),
]


@pytest.mark.parametrize(("variable", "value", "expected", "shown"), BAD_TEXT)
def test_text_values_that_cannot_be_sent_are_refused(
    variable: str, value: str, expected: str, shown: str
) -> None:
    found = problems(**{variable: value})
    assert found == [f"{variable}: {expected}, got {shown!r}"]
    assert "hunter2" not in found[0]


def test_a_token_in_a_query_is_redacted_wherever_a_url_is_shown() -> None:
    settings = load(
        ROTATOR_PUSHGATEWAY_URL="https://pgw.example.com/push?token=hunter2&team=ops",
        ROTATOR_API_URL="https://pm.example.com/?sig=hunter2",
    )
    effective = redacted(settings)
    assert effective["ROTATOR_PUSHGATEWAY_URL"] == (
        "https://pgw.example.com/push?token=**********&team=**********"
    )
    assert effective["ROTATOR_API_URL"] == "https://pm.example.com/?sig=**********"
    (problem,) = problems(ROTATOR_API_URL="http://pm.example.com/?token=hunter2")
    assert "hunter2" not in problem
    assert problem.endswith("got 'http://pm.example.com/?token=**********'")


def test_every_hardening_refusal_is_a_config_error_at_load() -> None:
    # All at once, each on its own line: what check-config prints and exits 2 for.
    environ = {
        **MINIMAL,
        "ROTATOR_GRACE_HOURS": "1e300",
        "ROTATOR_VALIDITY_DAYS": "1000000",
        "ROTATOR_API_KEY": "Bearer x",
        "ROTATOR_API_URL": "https://u:p@pm.example.com",
        "ROTATOR_INTEGRATION_NAME": "é",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert [line.split(":")[0] for line in caught.value.problems] == [
        "ROTATOR_API_KEY",
        "ROTATOR_API_URL",
        "ROTATOR_GRACE_HOURS",
        "ROTATOR_INTEGRATION_NAME",
        "ROTATOR_VALIDITY_DAYS",
    ]
