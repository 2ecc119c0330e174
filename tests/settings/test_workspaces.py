"""ROTATOR_WORKSPACES_FILE: several workspaces, each with its own credential, defaults from the
variables, its own sink values and folders; every problem as ``workspaces[i].FIELD``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from rotator.errors import ConfigError
from rotator.settings import (
    FileSinkSettings,
    KubernetesSinkSettings,
    Settings,
    credential_problems,
    load_settings,
    parse_settings,
    read_api_key,
    redacted,
    redacted_workspaces,
)
from rotator.settings.workspaces import INPUTS
from tests.settings.support import problems_of

W = "ROTATOR_WORKSPACES_FILE"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A folder with a key file per workspace: acme-eu, acme-us, acme-ap."""
    folder = tmp_path / "keys"
    folder.mkdir()
    for name in ("acme-eu", "acme-us", "acme-ap"):
        (folder / name).write_text(f"key-of-{name}\n")
    return folder


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workspaces.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def environ(path: Path, **variables: str) -> dict[str, str]:
    return {W: str(path), "ROTATOR_KEY_NAMES": "billing-*", **variables}


def entries_of(tmp_path: Path, keys: Path, *entries: str) -> Path:
    """A file of workspaces; ``{keys}`` in an entry is the key folder."""
    body = "".join("  - " + entry.replace("\n", "\n    ") + "\n" for entry in entries)
    return write(tmp_path, "workspaces:\n" + body.replace("{keys}", str(keys)))


# --- a valid file ------------------------------------------------------------------------------


def test_each_workspace_with_its_defaults_and_overrides(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu",
        "name: acme-us\napi_key_file: {keys}/acme-us\nworkspace_id: 12345\n"
        "key_names: [ops-*, ' ', sync]\nexclude_key_names: []\nself_key_name: me\n"
        "sink: {dir: /srv/us}",
        "name: acme-ap\napi_key_file: {keys}/acme-ap\nkey_names: 'a, b'\nworkspace_id:\n",
    )
    settings = load_settings(
        environ(
            path,
            ROTATOR_EXCLUDE_KEY_NAMES="billing-old",
            ROTATOR_SELF_KEY_NAME="rotator",
            ROTATOR_SINK_FILE_DIR="/srv/secrets",
        )
    )
    eu, us, ap = settings.workspaces
    assert eu.name == "acme-eu"
    assert eu.api_key is None
    assert eu.api_key_file == keys / "acme-eu"
    assert eu.workspace_id is None
    assert (eu.key_names, eu.exclude_key_names) == (("billing-*",), ("billing-old",))
    assert eu.self_key_name == "rotator"
    # Each workspace writes into a subfolder named after it; its lock is there too.
    assert eu.sink == FileSinkSettings(dir=Path("/srv/secrets/acme-eu"))
    assert eu.lock_dir == Path("/srv/secrets/acme-eu")
    assert us.workspace_id == "12345"
    assert (us.key_names, us.exclude_key_names, us.self_key_name) == (("ops-*", "sync"), (), "me")
    assert us.sink == FileSinkSettings(dir=Path("/srv/us"))  # its own folder, as written
    assert us.lock_dir == Path("/srv/us")
    assert ap.key_names == ("a", "b")
    assert ap.workspace_id is None  # empty counts as unset
    assert settings.sink == FileSinkSettings(dir=Path("/srv/secrets"))
    assert settings.workspaces_file == path
    assert [read_api_key(ws).reveal() for ws in settings.workspaces] == [
        "key-of-acme-eu",
        "key-of-acme-us",
        "key-of-acme-ap",
    ]


def test_the_lock_folder_gets_a_subfolder_per_workspace(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu",
        "name: acme-us\napi_key_file: {keys}/acme-us",
    )
    settings = load_settings(environ(path, ROTATOR_LOCK_DIR="/run/rotator"))
    assert [ws.lock_dir for ws in settings.workspaces] == [
        Path("/run/rotator/acme-eu"),
        Path("/run/rotator/acme-us"),
    ]
    assert settings.lock_dir == Path("/run/rotator")


def test_sink_values_per_workspace(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink:\n  namespace: acme-eu\n"
        "  rollout_timeout_minutes: 5\n  restart: billing-*=Deployment/billing",
        "name: acme-us\napi_key_file: {keys}/acme-us",
    )
    settings = parse_settings(
        environ(
            path,
            ROTATOR_SINK="kubernetes",
            ROTATOR_SINK_KUBERNETES_SECRET_KEY="key",
            ROTATOR_SINK_KUBERNETES_NAMESPACE="shared",
        )
    )
    eu, us = (ws.sink for ws in settings.workspaces)
    assert eu == KubernetesSinkSettings(
        namespace="acme-eu",
        secret_key="key",
        rollout_timeout_minutes=5,
        restart=(("billing-*", (("Deployment", "billing"),)),),
    )
    assert us == KubernetesSinkSettings(namespace="shared", secret_key="key")
    assert [ws.lock_dir for ws in settings.workspaces] == [None, None]


def test_vault_auth_per_workspace_rederives_its_mount(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {auth: kubernetes, role: eu}",
    )
    settings = parse_settings(
        environ(
            path,
            ROTATOR_SINK="vault",
            ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
            ROTATOR_SINK_VAULT_TOKEN="hvs.x",
        )
    )
    sink = settings.workspaces[0].sink
    assert (sink.auth, sink.auth_mount, sink.role) == ("kubernetes", "kubernetes", "eu")  # type: ignore[union-attr]
    assert sink.token == SecretStr("hvs.x")  # type: ignore[union-attr]


def test_json_is_yaml_too(tmp_path: Path, keys: Path) -> None:
    path = write(
        tmp_path,
        json.dumps({"workspaces": [{"name": "acme-eu", "api_key_file": str(keys / "acme-eu")}]}),
    )
    assert [ws.name for ws in load_settings(environ(path)).workspaces] == ["acme-eu"]


def test_key_names_are_required_only_for_workspaces_without_them(
    tmp_path: Path, keys: Path
) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu\nkey_names: [a]",
        "name: acme-us\napi_key_file: {keys}/acme-us",
    )
    assert problems_of({W: str(path)}) == [
        f"{W}: workspaces[1].key_names: required, as ROTATOR_KEY_NAMES is not set"
    ]
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu\nkey_names: a")
    (ws,) = load_settings({W: str(path)}).workspaces
    assert ws.key_names == ("a",)


def test_each_credential_is_read_again_at_every_call(tmp_path: Path, keys: Path) -> None:
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu")
    (ws,) = load_settings(environ(path)).workspaces
    (keys / "acme-eu").write_text("rotated\n")
    assert read_api_key(ws).reveal() == "rotated"
    (keys / "acme-eu").unlink()
    with pytest.raises(ConfigError) as caught:
        read_api_key(ws)
    assert caught.value.problems == [
        f"{W}: workspaces[0].api_key_file: cannot read {str(keys / 'acme-eu')!r}: "
        "No such file or directory"
    ]


def test_the_single_workspace_helper_refuses_several(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu",
        "name: acme-us\napi_key_file: {keys}/acme-us",
    )
    with pytest.raises(ConfigError, match="several workspaces"):
        load_settings(environ(path)).read_api_key()


def test_what_check_config_shows(tmp_path: Path, keys: Path) -> None:
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu")
    settings = load_settings(environ(path))
    assert redacted(settings)[W] == str(path)
    assert redacted(settings)["ROTATOR_API_KEY"] is None
    shown = redacted_workspaces(settings)
    assert shown == [
        {
            "name": "acme-eu",
            "api_key": None,
            "api_key_file": str(keys / "acme-eu"),
            "workspace_id": None,
            "key_names": ["billing-*"],
            "exclude_key_names": [],
            "self_key_name": None,
            "sink": {"kind": "file", "dir": "secrets/acme-eu"},
            "lock_dir": "secrets/acme-eu",
        }
    ]
    assert json.loads(json.dumps(shown)) == shown


# --- problems ----------------------------------------------------------------------------------

ENTRY_PROBLEMS = [
    (
        ["api_key_file: {keys}/acme-eu"],
        ["workspaces[0].name: required"],
    ),
    (
        ["name: Acme\napi_key_file: {keys}/acme-eu"],
        [
            "workspaces[0].name: must be lower-case letters, digits and '-' (not first or "
            "last), at most 40, got 'Acme'"
        ],
    ),
    (
        [f"name: {'a' * 41}\napi_key_file: {{keys}}/acme-eu"],
        [
            "workspaces[0].name: must be lower-case letters, digits and '-' (not first or "
            f"last), at most 40, got {'a' * 41!r}"
        ],
    ),
    (
        [
            "name: acme-eu\napi_key_file: {keys}/acme-eu",
            "name: acme-eu\napi_key_file: {keys}/acme-us",
        ],
        ["workspaces[1].name: 'acme-eu' is also the name of workspaces[0]: names must be unique"],
    ),
    (
        [
            "name: acme-eu\napi_key_file: {keys}/acme-eu\nworkspace_id: ws-1",
            "name: acme-us\napi_key_file: {keys}/acme-us\nworkspace_id: ws-1",
        ],
        [
            "workspaces[1].workspace_id: 'ws-1' is also the workspace of workspaces[0]: one "
            "workspace must be listed once"
        ],
    ),
    (
        ["name: acme-eu"],
        ["workspaces[0].api_key_file: required"],
    ),
    (
        ["name: acme-eu\napi_key: pm-live-x\napi_key_file: {keys}/acme-eu"],
        [
            "workspaces[0].api_key: unknown field (a workspace has name, api_key_file, "
            "workspace_id, key_names, exclude_key_names, self_key_name, sink, credentials); a "
            "credential is read from api_key_file"
        ],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nkeynames: [a]"],
        [
            "workspaces[0].keynames: unknown field (a workspace has name, api_key_file, "
            "workspace_id, key_names, exclude_key_names, self_key_name, sink, credentials)"
        ],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nkey_names: [' ']"],
        ["workspaces[0].key_names: must list at least one glob pattern, got [' ']"],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {namespace: acme}"],
        [
            "workspaces[0].sink.namespace: not a variable of the file sink (ROTATOR_SINK is "
            "'file'; its variables: dir)"
        ],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {kind: vault}"],
        [
            "workspaces[0].sink.kind: not a variable of the file sink (ROTATOR_SINK is "
            "'file'; its variables: dir)"
        ],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: [dir]"],
        ["workspaces[0].sink: must be a mapping of the sink's variables, by lowercase suffix"],
    ),
    (
        ["name: acme-eu\napi_key_file: {keys}/acme-eu\nkey_names: 5"],
        ["workspaces[0].key_names: must be a list, got 5"],
    ),
    (
        ["- name: acme-eu"],
        ["workspaces[0]: must be a mapping with at least name and api_key_file"],
    ),
]


def test_an_unreadable_credential_file_is_named_by_checking_not_by_loading(
    tmp_path: Path, keys: Path
) -> None:
    # A pass fails only that workspace (the others are served); check-config names it.
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/nope")
    settings = load_settings(environ(path))
    assert credential_problems(settings.workspaces) == [
        f"{W}: workspaces[0].api_key_file: cannot read '{keys}/nope': No such file or directory"
    ]


@pytest.mark.parametrize(("entries", "expected"), ENTRY_PROBLEMS)
def test_each_problem_of_an_entry_names_it(
    entries: list[str], expected: list[str], tmp_path: Path, keys: Path
) -> None:
    path = entries_of(tmp_path, keys, *entries)
    assert problems_of(environ(path)) == [
        f"{W}: " + line.replace("{keys}", str(keys)) for line in expected
    ]


def test_a_bad_sink_value_of_a_workspace_names_it(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {namespace: Acme, token: x}",
        "name: acme-us\napi_key_file: {keys}/acme-us\nsink: {rollout_timeout_minutes: 99999}",
    )
    assert problems_of(environ(path, ROTATOR_SINK="kubernetes")) == [
        f"{W}: workspaces[0].sink.token: not a variable of the kubernetes sink (ROTATOR_SINK is "
        "'kubernetes'; its variables: namespace, secret_name, secret_key, kubeconfig, restart, "
        "rollout_timeout_minutes)",
        f"{W}: workspaces[1].sink.rollout_timeout_minutes: must be an integer >= 1 and <= 1440, "
        "got 99999",
    ]
    path = entries_of(
        tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {namespace: Acme}"
    )
    assert problems_of(environ(path, ROTATOR_SINK="kubernetes")) == [
        f"{W}: workspaces[0].sink.namespace: must be a Kubernetes namespace name: lower-case "
        "letters, digits and '-', at most 63, starting and ending with a letter or digit, "
        "got 'Acme'"
    ]


def test_a_secret_is_not_taken_from_the_workspaces_file(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {token: hvs.secret}"
    )
    found = problems_of(
        environ(
            path,
            ROTATOR_SINK="vault",
            ROTATOR_SINK_VAULT_ADDR="https://vault.example.com",
            ROTATOR_SINK_VAULT_TOKEN="hvs.x",
        )
    )
    assert found == [
        f"{W}: workspaces[0].sink.token: a secret is not taken from the workspaces file "
        "(usually a ConfigMap); set ROTATOR_SINK_VAULT_TOKEN_FILE instead"
    ]


def test_a_workspace_key_file_must_not_be_empty(tmp_path: Path, keys: Path) -> None:
    (keys / "acme-eu").write_text("\n")
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu")
    assert credential_problems(load_settings(environ(path)).workspaces) == [
        f"{W}: workspaces[0].api_key_file: {str(keys / 'acme-eu')!r} is empty"
    ]


FILE_PROBLEMS = [
    (
        "workspaces: [\n",
        "is not valid YAML: expected the node content, but found '<stream end>' (line 2)",
    ),
    (
        "workspaces:\n\t- name: x\n",
        "is not valid YAML: found character '\\t' that cannot start any token (line 2)",
    ),
    ("- name: acme\n", "must be a mapping with a 'workspaces' list"),
    ("name: acme\n", "must be a mapping with a 'workspaces' list"),
    ("", "must be a mapping with a 'workspaces' list"),
    ("workspaces: {name: acme}\n", "must be a mapping with a 'workspaces' list"),
]


@pytest.mark.parametrize(("text", "expected"), FILE_PROBLEMS)
def test_a_file_that_cannot_be_used_at_all(text: str, expected: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    assert problems_of(environ(path)) == [f"{W}: {str(path)!r} {expected}"]


def test_other_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems_of(environ(missing)) == [
        f"{W}: cannot read {str(missing)!r}: No such file or directory"
    ]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe")
    assert problems_of(environ(binary)) == [f"{W}: {str(binary)!r} is not UTF-8 text"]
    path = write(tmp_path, "workspaces: []\nsink: file\n")
    assert problems_of(environ(path)) == [
        f"{W}: unknown key 'sink': the file holds only 'workspaces'"
    ]
    path = write(tmp_path, "workspaces: []\n")
    assert problems_of(environ(path)) == [
        f"{W}: lists no workspace (the 'workspaces' list is empty)"
    ]


@pytest.mark.parametrize(
    ("variable", "why"),
    [
        ("ROTATOR_API_KEY", "each workspace there names its own api_key_file"),
        ("ROTATOR_API_KEY_FILE", "each workspace there names its own api_key_file"),
        ("ROTATOR_WORKSPACE_NAME", "each workspace there has its name"),
        ("ROTATOR_WORKSPACE_ID", "set each workspace's there"),
    ],
)
def test_single_workspace_variables_are_errors_with_the_file(
    variable: str, why: str, tmp_path: Path, keys: Path
) -> None:
    path = entries_of(tmp_path, keys, "name: acme-eu\napi_key_file: {keys}/acme-eu")
    assert problems_of(environ(path, **{variable: "acme"})) == [
        f"{variable}: not used with {W}: {why}"
    ]


def test_every_problem_at_once_with_the_variables(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: Bad\napi_key_file: {keys}/acme-eu",
        "name: acme-us",
        "name: acme-ap\napi_key_file: {keys}/acme-ap",
    )
    found = problems_of(environ(path, ROTATOR_GRACE_HOURS="x", ROTATOR_API_KEY="k"))
    assert [line.split(": ")[0:2] for line in found] == [
        ["ROTATOR_API_KEY", "not used with ROTATOR_WORKSPACES_FILE"],
        ["ROTATOR_GRACE_HOURS", "must be a number >= 0 and <= 8760, got 'x'"],
        [W, "workspaces[0].name"],
        [W, "workspaces[1].api_key_file"],
    ]


def test_a_settings_built_directly_from_workspaces(tmp_path: Path, keys: Path) -> None:
    settings = Settings(
        workspaces_file=tmp_path / "w.yaml",
        key_names=("*",),
        workspaces=[{"name": "acme-eu", "api_key_file": str(keys / "acme-eu")}],  # type: ignore[arg-type]
    )
    assert [ws.name for ws in settings.workspaces] == ["acme-eu"]


def test_with_a_bad_sink_the_entries_are_still_checked(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path, keys, "name: Bad\napi_key_file: {keys}/acme-eu\nsink: {addr: https://v}"
    )
    found = problems_of(environ(path, ROTATOR_SINK="vault"))
    assert [line.split(": ")[0:2] for line in found] == [
        ["ROTATOR_SINK_VAULT_ADDR", "required"],
        ["ROTATOR_SINK_VAULT_TOKEN", "required with ROTATOR_SINK_VAULT_AUTH=token"],
        [W, "workspaces[0].name"],
    ]


def test_an_exec_command_may_be_a_list_of_words(tmp_path: Path, keys: Path) -> None:
    path = entries_of(
        tmp_path,
        keys,
        "name: acme-eu\napi_key_file: {keys}/acme-eu\nsink: {command: [/opt/store, eu west]}",
    )
    settings = parse_settings(environ(path, ROTATOR_SINK="exec", ROTATOR_SINK_EXEC_COMMAND="/x"))
    assert settings.workspaces[0].sink.command == ("/opt/store", "eu west")  # type: ignore[union-attr]
    assert settings.sink.command == ("/x",)  # type: ignore[union-attr]


def test_the_workspaces_are_built_from_fields_declared_before_them() -> None:
    # A field validator sees only the fields above it: `workspaces` must stay the last one.
    names = list(Settings.model_fields)
    assert names[-1] == "workspaces"
    assert set(INPUTS) <= set(names[:-1])
