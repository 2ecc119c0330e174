"""The deployment files agree with the code and the contract: Dockerfile, .dockerignore,
config/rotator.env.example and the Kubernetes manifests in config/kubernetes/.

Standard library only (no YAML parser is a dependency): each manifest holds one pod spec at
most, so plain-text patterns over one file are unambiguous. What is checked is what would break
a deployment silently or unsafely: a ROTATOR_* name the settings do not know (exit 2 at start),
a grace period shorter than the rotator's own shutdown timeout (killed between create and
deliver), Service links injected, a root user, the image built without the tested pins.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from rotator.settings import Settings, describe_variables, load_settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
KUBERNETES = CONFIG / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = CONFIG / "rotator.env.example"
CLUSTER_ENV = KUBERNETES / "rotator.env"
DEPLOYMENT = KUBERNETES / "deployment.yaml"
CRONJOB = KUBERNETES / "cronjob.yaml"
POD_MANIFESTS = (DEPLOYMENT, CRONJOB)

_VARIABLE = re.compile(r"\bROTATOR_[A-Z0-9][A-Z0-9_]*")
_POD_ENV = re.compile(r"- name: (ROTATOR_[A-Z0-9_]+)\n\s+value: (.+)")


# --- helpers -----------------------------------------------------------------------------------


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _env_file(path: Path) -> dict[str, str]:
    """The active NAME=value lines of an env file (docker --env-file / kustomize envs syntax)."""
    values: dict[str, str] = {}
    for line in _read(path).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        assert separator, f"{path.name}: not NAME=value: {line!r}"
        assert name not in values, f"{path.name}: {name} set twice"
        values[name] = value
    return values


def _pod_env(path: Path) -> dict[str, str]:
    """The ROTATOR_* variables a manifest's container sets with `env: - name/value`."""
    return {name: value.strip().strip('"') for name, value in _POD_ENV.findall(_read(path))}


def _mount_path(path: Path, volume: str) -> str:
    """The mountPath of the volumeMount named ``volume`` in a manifest."""
    found = re.findall(rf"- name: {volume}\n\s+mountPath: (\S+)", _read(path))
    assert len(found) == 1, f"{path.name}: expected one mount of {volume}, found {found}"
    return str(found[0])


def _single(pattern: str, text: str, where: str) -> str:
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert len(found) == 1, f"{where}: expected one match of {pattern!r}, found {found}"
    return str(found[0])


def _cluster_settings(manifest: Path, tmp_path: Path) -> Settings:
    """Settings of the pod ``manifest`` describes: its ConfigMap plus its own env.

    The mounted paths do not exist here: the API key file is replaced by a temporary one (the
    settings read it now), everything else is used as written.
    """
    env = _env_file(CLUSTER_ENV) | _pod_env(manifest)
    key_file = tmp_path / "api-key"
    key_file.write_text("not-a-real-key\n", encoding="utf-8")
    env["ROTATOR_API_KEY_FILE"] = str(key_file)
    return load_settings(env)


# --- every ROTATOR_* name exists ---------------------------------------------------------------


def _deployment_files() -> list[Path]:
    return [DOCKERFILE, *sorted(p for p in CONFIG.rglob("*") if p.is_file())]


def test_every_rotator_variable_named_in_config_and_dockerfile_is_a_setting() -> None:
    known = set(describe_variables())
    accepted = known | {name + "_FILE" for name in known}
    named = {
        (path.relative_to(ROOT).as_posix(), variable)
        for path in _deployment_files()
        for variable in _VARIABLE.findall(_read(path))
    }
    unknown = sorted(
        f"{where}: {variable}" for where, variable in named if variable not in accepted
    )
    assert unknown == []
    # The scan really found the files and their names (an empty scan would pass vacuously).
    variables = {variable for _, variable in named}
    assert {"ROTATOR_API_KEY_FILE", "ROTATOR_SINK_FILE_DIR", "ROTATOR_KEY_NAMES"} <= variables
    assert "ROTATOR_SHUTDOWN_TIMEOUT_SECONDS" in variables


def test_the_variable_scan_would_catch_a_typo() -> None:
    known = set(describe_variables())
    assert "ROTATOR_SINK_FILE_DIR" in known
    assert "ROTATOR_GRACE_HOUR" not in known
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


def test_env_example_holds_no_secret() -> None:
    env = _env_file(ENV_EXAMPLE)
    assert "ROTATOR_API_KEY" not in env
    assert "ROTATOR_API_KEY_FILE" in env


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_cluster_settings_load(manifest: Path, tmp_path: Path) -> None:
    settings = _cluster_settings(manifest, tmp_path)
    assert settings.sink.kind == "file"
    assert settings.api_key is None, "the key comes from the mounted Secret, never the env"


# --- pod specs -------------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_grace_period_exceeds_shutdown_timeout(manifest: Path, tmp_path: Path) -> None:
    settings = _cluster_settings(manifest, tmp_path)
    grace = int(_single(r"terminationGracePeriodSeconds: (\d+)$", _read(manifest), manifest.name))
    assert grace > settings.shutdown_timeout_seconds
    # Margin for the process to exit and the kubelet to notice after the rotator gives up.
    assert grace - settings.shutdown_timeout_seconds >= 10


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_service_links_are_off_in_every_pod_spec(manifest: Path) -> None:
    text = _read(manifest)
    pod_specs = len(re.findall(r"^\s+containers:$", text, flags=re.MULTILINE))
    assert pod_specs == 1
    assert len(re.findall(r"^\s+enableServiceLinks: false$", text, flags=re.MULTILINE)) == 1
    assert "enableServiceLinks: true" not in text


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_pod_runs_locked_down(manifest: Path) -> None:
    text = _read(manifest)
    for setting in (
        r"runAsNonRoot: true",
        r"runAsUser: 10001",
        r"readOnlyRootFilesystem: true",
        r"allowPrivilegeEscalation: false",
        r'drop: \["ALL"\]',
        r"type: RuntimeDefault",
        r"automountServiceAccountToken: false",
        r"serviceAccountName: rotator",
    ):
        assert re.search(rf"^\s+{setting}$", text, flags=re.MULTILINE), setting
    assert "privileged: true" not in text
    assert "runAsUser: 0" not in text


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_pod_resources(manifest: Path) -> None:
    text = _read(manifest)
    requests = _single(r"requests:\n((?:\s+\w+: \S+\n)+)", text, manifest.name)
    limits = _single(r"limits:\n((?:\s+\w+: \S+\n)+)", text, manifest.name)
    assert re.search(r"memory: 64Mi", requests)
    assert re.search(r"memory: 128Mi", limits)


@pytest.mark.parametrize("manifest", POD_MANIFESTS, ids=lambda p: p.name)
def test_key_file_and_sink_folder_are_on_their_volumes(manifest: Path) -> None:
    env = _pod_env(manifest)
    secret_mount = _mount_path(manifest, "api-key")
    state_mount = _mount_path(manifest, "state")
    assert Path(env["ROTATOR_API_KEY_FILE"]).parent == Path(secret_mount)
    assert Path(state_mount) in Path(env["ROTATOR_SINK_FILE_DIR"]).parents
    text = _read(manifest)
    assert re.search(r"secretName: rotator-api-key\n\s+defaultMode: 0440", text)
    assert re.search(r"claimName: rotator-state$", text, flags=re.MULTILINE)
    # A subPath mount of a Secret never sees updates: the rotated own key would not arrive.
    assert "subPath" not in text


def test_deployment_serves(tmp_path: Path) -> None:
    text = _read(DEPLOYMENT)
    settings = _cluster_settings(DEPLOYMENT, tmp_path)
    assert re.search(r"^  replicas: 1$", text, flags=re.MULTILINE)
    assert re.search(r"strategy:\n\s+type: Recreate", text)
    assert _single(r"^\s+args: (\[.*\])$", text, "deployment") == '["serve"]'
    port = _single(r"- name: http\n\s+containerPort: (\d+)", text, "deployment")
    assert int(port) == settings.http_port
    assert re.search(r"livenessProbe:\n\s+httpGet:\n\s+path: /healthz\n\s+port: http", text)
    assert re.search(r"readinessProbe:\n\s+httpGet:\n\s+path: /readyz\n\s+port: http", text)
    annotations = re.findall(r'prometheus\.io/(\w+): "?([^"\n]+)"?', text)
    assert ("scrape", "true") in annotations
    assert ("port", str(settings.http_port)) in annotations
    assert ("path", "/metrics") in annotations
    assert re.search(r"kind: Service\n", text)
    assert re.search(r"targetPort: http$", text, flags=re.MULTILINE)


def test_cronjob_runs_once_daily(tmp_path: Path) -> None:
    text = _read(CRONJOB)
    settings = _cluster_settings(CRONJOB, tmp_path)
    schedule = _single(r'^  schedule: "(.+)"$', text, "cronjob")
    assert schedule == "0 3 * * *"
    # Switching between serve and run-once keeps the time of day.
    assert schedule == settings.schedule
    assert re.search(r"^  concurrencyPolicy: Forbid$", text, flags=re.MULTILINE)
    assert _single(r"^\s+args: (\[.*\])$", text, "cronjob") == '["run-once"]'
    backoff = int(_single(r"backoffLimit: (\d+)$", text, "cronjob"))
    assert 0 < backoff <= 3
    assert re.search(r"restartPolicy: Never$", text, flags=re.MULTILINE)
    # Exit 2 is a configuration error: retrying cannot help.
    assert re.search(r"action: FailJob\n\s+onExitCodes:\n(?:\s+.*\n)*?\s+values: \[2\]", text)


def test_kustomization_lists_existing_files_and_one_way_to_run() -> None:
    text = _read(KUBERNETES / "kustomization.yaml")
    block = _single(r"^resources:\n((?:  .*\n)+)", text, "kustomization")
    resources = re.findall(r"^  - (\S+)", block, flags=re.MULTILINE)
    assert resources, "no resources listed"
    for name in resources:
        assert (KUBERNETES / name).is_file(), name
    assert "secret.example.yaml" not in resources
    assert ("deployment.yaml" in resources) != ("cronjob.yaml" in resources)
    assert {"serviceaccount.yaml", "persistentvolumeclaim.yaml"} <= set(resources)
    assert re.search(r"envs:\n\s+- rotator.env$", text, flags=re.MULTILINE)
    for manifest in POD_MANIFESTS:
        assert "name: rotator-config" in _read(manifest)


def test_secret_example_holds_a_placeholder_only() -> None:
    text = _read(KUBERNETES / "secret.example.yaml")
    value = _single(r"^  api-key: (\S+)$", text, "secret.example.yaml")
    assert value.startswith("REPLACE")


# --- the image ---------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def test_dockerfile_builds_with_the_pins_in_two_stages() -> None:
    instructions = _instructions(_read(DOCKERFILE))
    bases = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(bases) == 2
    assert all(base.startswith("python:3.11-slim") for base in bases)
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert "pip install --no-cache-dir -c constraints.txt ." in runs
    assert any(
        instruction == "COPY" and arguments.startswith("--from=build ")
        for instruction, arguments in instructions
    )


def test_dockerfile_runs_as_non_root_with_the_contract_entrypoint() -> None:
    instructions = _instructions(_read(DOCKERFILE))
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit(), "numeric, so runAsNonRoot can verify it"
    assert int(user) != 0
    assert int(user) == 10001  # the manifests' runAsUser
    last = dict(instructions)  # the last of each instruction wins, as in Docker
    assert last["ENTRYPOINT"] == '["rotator"]'
    assert last["CMD"] == '["serve"]'
    assert last["EXPOSE"] == "8080"


def test_dockerfile_bakes_in_no_secret() -> None:
    instructions = _instructions(_read(DOCKERFILE))
    for instruction, arguments in instructions:
        if instruction in {"ENV", "ARG"}:
            assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD", arguments, flags=re.I), arguments


def test_dockerignore_lets_only_the_package_through() -> None:
    lines = [
        line.strip()
        for line in _read(DOCKERIGNORE).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    project = tomllib.loads(_read(ROOT / "pyproject.toml"))["project"]
    needed = {"pyproject.toml", "constraints.txt", "rotator", project["readme"]}
    assert needed <= allowed
    assert not allowed & {"secrets", ".venv", ".git", "tests", "config"}
