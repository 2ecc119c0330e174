"""The configuration files ops start from agree with the code: config/rotator.env.example and
base/rotator.env load as settings, and every ROTATOR_* name written anywhere in config/ or the
Dockerfile is one the rotator knows (an unknown one stops it with exit 2).

Names the contract defines for parts still being built (the Kubernetes sink, the lease lock)
may appear in comments before the settings know them, and the example exec-sink program reads
the variables the rotator sets for it; both are listed below by name, so a typo in any other is
still caught.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rotator.settings import describe_variables, load_settings
from tests.deploy.support import CONFIG, KUBERNETES, ROOT

ENV_EXAMPLE = CONFIG / "rotator.env.example"
CLUSTER_ENV = KUBERNETES / "base" / "rotator.env"
_VARIABLE = re.compile(r"\bROTATOR_[A-Z0-9][A-Z0-9_]*")

#: Contract names whose settings other parts of the project are adding.
CONTRACT_NAMES_BEING_BUILT = frozenset(
    {
        "ROTATOR_LOCK",
        "ROTATOR_LOCK_DIR",
        "ROTATOR_LEASE_NAMESPACE",
        "ROTATOR_LEASE_DURATION_SECONDS",
        "ROTATOR_SINK_KUBERNETES_NAMESPACE",
        "ROTATOR_SINK_KUBERNETES_SECRET_NAME",
        "ROTATOR_SINK_KUBERNETES_SECRET_KEY",
        "ROTATOR_SINK_KUBERNETES_KUBECONFIG",
        "ROTATOR_SINK_KUBERNETES_RESTART",
        "ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES",
    }
)

#: What the rotator puts in the exec sink's program's environment (the example program reads
#: it): set for the program, never settings of the rotator's.
EXEC_PROGRAM_VARIABLES = frozenset({"ROTATOR_WORKSPACE", "ROTATOR_CREDENTIAL"})


def _env_file(path: Path) -> dict[str, str]:
    """The active NAME=value lines of an env file (docker --env-file / kustomize envs syntax)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        assert separator, f"{path.name}: not NAME=value: {line!r}"
        assert name not in values, f"{path.name}: {name} set twice"
        # docker --env-file and kustomize keep quotes as part of the value.
        assert not value.startswith(('"', "'")), f"{path.name}: {name} is quoted"
        values[name] = value
    return values


def _deployment_files() -> list[Path]:
    # Python's byte-code caches (a test may import an example program) are not configuration.
    return [
        ROOT / "Dockerfile",
        *sorted(p for p in CONFIG.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
    ]


def test_every_rotator_variable_named_in_config_and_dockerfile_is_known() -> None:
    known = set(describe_variables())
    accepted = (
        known
        | {name + "_FILE" for name in known}
        | CONTRACT_NAMES_BEING_BUILT
        | EXEC_PROGRAM_VARIABLES
    )
    named = {
        (path.relative_to(ROOT).as_posix(), variable)
        for path in _deployment_files()
        for variable in _VARIABLE.findall(path.read_text(encoding="utf-8"))
    }
    unknown = sorted(
        f"{where}: {variable}" for where, variable in named if variable not in accepted
    )
    assert unknown == []
    # The scan really found the files and their names (an empty scan would pass vacuously).
    variables = {variable for _, variable in named}
    assert {"ROTATOR_API_KEY_FILE", "ROTATOR_SINK_FILE_DIR", "ROTATOR_KEY_NAMES"} <= variables
    assert {"ROTATOR_SHUTDOWN_TIMEOUT_SECONDS", "ROTATOR_SHARDS"} <= variables


def test_the_variable_scan_would_catch_a_typo() -> None:
    known = set(describe_variables())
    assert "ROTATOR_SINK_FILE_DIR" in known
    assert "ROTATOR_GRACE_HOUR" not in known | CONTRACT_NAMES_BEING_BUILT
    assert _VARIABLE.findall("ROTATOR_GRACE_HOUR=1 and ROTATOR_* globs") == ["ROTATOR_GRACE_HOUR"]


def test_env_example_loads(tmp_path: Path) -> None:
    env = _env_file(ENV_EXAMPLE)
    key_file = tmp_path / "api-key"
    key_file.write_text("not-a-real-key\n", encoding="utf-8")
    env["ROTATOR_API_KEY_FILE"] = str(key_file)
    settings = load_settings(env)
    assert settings.key_names
    assert settings.read_api_key().reveal() == "not-a-real-key"  # trailing newline dropped
    assert settings.sink.kind == "file"
    assert settings.sink.dir == Path(env["ROTATOR_SINK_FILE_DIR"])


def test_env_example_reads_the_same_in_a_shell_as_with_docker_env_file() -> None:
    """`set -a; . FILE` (what the file's header says) gives exactly what --env-file gives."""
    import subprocess  # noqa: PLC0415

    shell = subprocess.run(
        ["bash", "-c", f'set -a; . "{ENV_EXAMPLE}"; set +a; env -0'],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    )
    sourced = dict(
        item.split("=", 1)
        for item in shell.stdout.decode().split("\0")
        if item.startswith("ROTATOR_")
    )
    assert shell.stderr == b""  # no line ran a command (an unquoted space would)
    assert sourced == _env_file(ENV_EXAMPLE)


def test_env_example_holds_no_secret() -> None:
    env = _env_file(ENV_EXAMPLE)
    assert "ROTATOR_API_KEY" not in env
    assert "ROTATOR_API_KEY_FILE" in env


def test_the_cluster_settings_are_plain_env_lines_without_paths_or_secrets() -> None:
    env = _env_file(CLUSTER_ENV)
    assert env["ROTATOR_KEY_NAMES"]
    # Paths belong beside their mounts in the pod specs; the key to a mounted Secret.
    assert not {"ROTATOR_API_KEY", "ROTATOR_API_KEY_FILE", "ROTATOR_SINK_FILE_DIR"} & set(env)


def test_the_secret_example_holds_a_placeholder_only() -> None:
    text = (KUBERNETES / "base" / "api-key-secret.example.yaml").read_text(encoding="utf-8")
    values = re.findall(r"^  api-key: (\S+)$", text, flags=re.MULTILINE)
    assert len(values) == 1
    assert values[0].startswith("REPLACE")
    # Not rendered by any kustomization: kubectl apply -k must never put a key back.
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text(encoding="utf-8")).get("resources", [])
        assert "api-key-secret.example.yaml" not in listed, kustomization
