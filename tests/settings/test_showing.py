"""What the settings show: redacted effective values, descriptions, the variable list of --help,
and that no secret ever appears in a repr, a message or redacted()."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rotator.errors import ConfigError
from rotator.settings import (
    REDACTED,
    SINK_MODELS,
    Settings,
    check_no_unknown_variables,
    describe_variables,
    load_settings,
    redacted,
)
from rotator.settings._loader import catalogue
from rotator.variables import VARIABLES
from tests.settings.support import SECRET, load, problems

VAULT = {
    "ROTATOR_SINK": "vault",
    "ROTATOR_SINK_VAULT_ADDR": "https://vault.example.com",
    "ROTATOR_SINK_VAULT_AUTH": "approle",
    "ROTATOR_SINK_VAULT_ROLE_ID": "role-1",
    "ROTATOR_SINK_VAULT_SECRET_ID": "approle-s3cret",
    "ROTATOR_SINK_VAULT_TOKEN": "hvs.t0ken",
}


def test_no_secret_shows_in_a_repr_or_redacted() -> None:
    settings = load(**VAULT)
    for secret in (SECRET, "approle-s3cret", "hvs.t0ken"):
        assert secret not in repr(settings)
        assert secret not in str(settings)
        assert secret not in repr(settings.workspaces)
        assert secret not in json.dumps(redacted(settings))
    effective = redacted(settings)
    assert effective["ROTATOR_API_KEY"] == REDACTED
    assert effective["ROTATOR_SINK_VAULT_TOKEN"] == REDACTED
    assert effective["ROTATOR_SINK_VAULT_SECRET_ID"] == REDACTED
    assert effective["ROTATOR_SINK_VAULT_ROLE_ID"] == "role-1"  # an id, not a secret


def test_a_bad_url_with_a_password_is_not_echoed() -> None:
    (problem,) = problems(ROTATOR_API_URL="http://user:hunter2@pm.example.com")
    assert "hunter2" not in problem
    assert problem.startswith("ROTATOR_API_URL: must not contain a user name or password")


def test_a_direct_construction_error_does_not_echo_a_secret() -> None:
    with pytest.raises(ValueError, match="white space") as caught:
        Settings(key_names=("*",), api_key="pm key with spaces")  # type: ignore[arg-type]
    assert "with spaces" not in str(caught.value)


def test_redacted_lists_every_variable_of_the_chosen_sink_as_json(tmp_path: Path) -> None:
    settings = load(ROTATOR_SINK_FILE_DIR=str(tmp_path), ROTATOR_EXCLUDE_KEY_NAMES="x,y")
    effective = redacted(settings)
    assert json.loads(json.dumps(effective)) == effective
    assert effective["ROTATOR_API_KEY"] == REDACTED
    assert effective["ROTATOR_API_KEY_FILE"] is None
    assert effective["ROTATOR_SINK"] == "file"
    assert effective["ROTATOR_SINK_FILE_DIR"] == str(tmp_path)
    assert effective["ROTATOR_EXCLUDE_KEY_NAMES"] == ["x", "y"]
    assert effective["ROTATOR_GRACE_HOURS"] == 24
    assert "ROTATOR_SHARD_INDEX" in effective
    others = {name for name in describe_variables() if name.startswith("ROTATOR_SINK_")}
    assert set(effective) == (set(describe_variables()) - others) | {"ROTATOR_SINK_FILE_DIR"}
    assert list(effective) == sorted(effective)


def test_redacted_shows_the_sink_it_uses() -> None:
    effective = redacted(
        load(ROTATOR_SINK="kubernetes", ROTATOR_SINK_KUBERNETES_RESTART="b=Deployment/b")
    )
    assert effective["ROTATOR_SINK"] == "kubernetes"
    assert effective["ROTATOR_SINK_KUBERNETES_RESTART"] == [["b", [["Deployment", "b"]]]]
    assert "ROTATOR_SINK_FILE_DIR" not in effective


def test_redacted_shows_an_unset_api_key_as_none(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    effective = redacted(
        load_settings({"ROTATOR_KEY_NAMES": "*", "ROTATOR_API_KEY_FILE": str(key_file)})
    )
    assert effective["ROTATOR_API_KEY"] is None
    assert effective["ROTATOR_API_KEY_FILE"] == str(key_file)


def test_every_variable_is_described_with_its_default_and_why() -> None:
    described = describe_variables()
    assert "ROTATOR_SINK_FILE_DIR" in described
    assert all(len(text) > 20 for text in described.values()), [
        name for name, text in described.items() if len(text) <= 20
    ]
    for name in ("ROTATOR_GRACE_HOURS", "ROTATOR_VALIDITY_DAYS", "ROTATOR_LEASE_DURATION_SECONDS"):
        assert "at most" in described[name] or "to 3600" in described[name]


def test_every_sink_variable_of_the_contract_is_known() -> None:
    contract = {
        "ROTATOR_SINK_FILE_DIR",
        "ROTATOR_SINK_KUBERNETES_NAMESPACE",
        "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
        "ROTATOR_SINK_KUBERNETES_SECRET_KEY",
        "ROTATOR_SINK_KUBERNETES_KUBECONFIG",
        "ROTATOR_SINK_KUBERNETES_RESTART",
        "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES",
        "ROTATOR_SINK_VAULT_ADDR",
        "ROTATOR_SINK_VAULT_MOUNT",
        "ROTATOR_SINK_VAULT_PATH",
        "ROTATOR_SINK_VAULT_FIELD",
        "ROTATOR_SINK_VAULT_AUTH",
        "ROTATOR_SINK_VAULT_TOKEN",
        "ROTATOR_SINK_VAULT_ROLE_ID",
        "ROTATOR_SINK_VAULT_SECRET_ID",
        "ROTATOR_SINK_VAULT_ROLE",
        "ROTATOR_SINK_VAULT_AUTH_MOUNT",
        "ROTATOR_SINK_VAULT_NAMESPACE",
        "ROTATOR_SINK_VAULT_CACERT",
        "ROTATOR_SINK_AWS_SECRETS_MANAGER_REGION",
        "ROTATOR_SINK_AWS_SECRETS_MANAGER_SECRET_ID",
        "ROTATOR_SINK_AWS_SECRETS_MANAGER_JSON_KEY",
        "ROTATOR_SINK_AWS_SECRETS_MANAGER_ENDPOINT_URL",
        "ROTATOR_SINK_AWS_SECRETS_MANAGER_KMS_KEY_ID",
        "ROTATOR_SINK_EXEC_COMMAND",
        "ROTATOR_SINK_EXEC_TIMEOUT_SECONDS",
    }
    sink_variables = {name for name in describe_variables() if name.startswith("ROTATOR_SINK_")}
    assert sink_variables == contract
    assert len(SINK_MODELS) == 5


# --- rotator.variables: the list --help shows without importing pydantic -----------------------


def test_the_variable_list_is_exactly_what_the_settings_accept() -> None:
    assert list(VARIABLES) == sorted(VARIABLES)
    assert set(VARIABLES) == set(describe_variables()) == set(catalogue(Settings).variables)
    # Each of them is accepted by load_settings, none is an "unknown variable".
    check_no_unknown_variables(dict.fromkeys(VARIABLES, "x"))
    check_no_unknown_variables({f"{name}_FILE": "/x" for name in VARIABLES})


def test_the_variable_list_is_what_the_settings_models_say_now() -> None:
    """rotator/variables.py is generated (scripts/generate_variables.py): never stale."""
    from pathlib import Path  # noqa: PLC0415

    from rotator.settings._help import help_entries, variables_module  # noqa: PLC0415

    module = Path(__file__).resolve().parents[2] / "rotator" / "variables.py"
    assert module.read_text() == variables_module(), "run python scripts/generate_variables.py"
    for name, (default, meaning, kind) in help_entries().items():
        assert default and meaning, name
        assert kind == "" or name.startswith("ROTATOR_SINK_" + kind.upper().replace("-", "_"))
    assert VARIABLES["ROTATOR_GRACE_HOURS"][:1] == ("24",)
    assert VARIABLES["ROTATOR_SHARD_INDEX"][0] == "JOB_COMPLETION_INDEX, else 0"
    assert VARIABLES["ROTATOR_SINK_VAULT_ADDR"][0] == "required"
    assert VARIABLES["ROTATOR_LOCK_DIR"][0] == "the file sink's folder"
    assert VARIABLES["ROTATOR_SINK"][0] == "file"


def test_the_variable_list_imports_nothing() -> None:
    code = (
        "import sys, rotator.variables as v; "
        "assert v.VARIABLES; "
        "bad = [m for m in ('pydantic', 'pydantic_settings', 'yaml', 'rotator.settings') "
        "if m in sys.modules]; "
        "print(bad)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


# --- check_no_unknown_variables ----------------------------------------------------------------


def test_check_no_unknown_variables() -> None:
    check_no_unknown_variables(
        {"ROTATOR_GRACE_HOURS": "x", "ROTATOR_SERVICE_HOST": "1", "HOME": "/"}
    )
    check_no_unknown_variables({"ROTATOR_TYPO": ""})  # empty counts as unset
    with pytest.raises(ConfigError) as caught:
        check_no_unknown_variables({"ROTATOR_GRACE_HOUR": "1", "ROTATOR_SINK_VAULT_ADR": "x"})
    assert caught.value.problems == [
        "ROTATOR_GRACE_HOUR: unknown variable; did you mean ROTATOR_GRACE_HOURS?",
        "ROTATOR_SINK_VAULT_ADR: unknown variable; did you mean ROTATOR_SINK_VAULT_ADDR?",
    ]


def test_check_no_unknown_variables_reads_os_environ_when_given_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROTATOR_NO_SUCH_THING", "1")
    with pytest.raises(ConfigError, match="ROTATOR_NO_SUCH_THING: unknown variable"):
        check_no_unknown_variables()
