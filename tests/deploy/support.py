"""Shared by the deployment tests: where the files are, the command-line tools of the dev extra,
and the kustomizations rendered and parsed once.

The tools (kubectl, kubernetes-validate, hadolint) are Python packages of the dev extra, so they
are installed wherever the tests run: a missing one is a failure naming the install command,
never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
KUBERNETES = CONFIG / "kubernetes"
OVERLAYS = ("cronjob", "service", "sharded")
COMPONENTS = KUBERNETES / "components"
UID = 10001


def tool(name: str) -> str:
    """The path of a dev-extra command: beside this interpreter first (the venv), else PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} not found: pip install -c constraints.txt -e '.[dev]'"
    return found


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kustomize(directory: Path) -> str:
    """``kubectl kustomize DIRECTORY``: the rendered YAML (fails the test on an error)."""
    result = run(tool("kubectl"), "kustomize", directory)
    assert result.returncode == 0, result.stderr
    return result.stdout


@cache
def rendered(overlay: str) -> str:
    return kustomize(KUBERNETES / "overlays" / overlay)


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in docs if document["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``Kind/name``, pod spec) of every workload that makes pods."""
    for document in docs:
        spec = document.get("spec") or {}
        where = f"{document['kind']}/{document['metadata']['name']}"
        match document["kind"]:
            case "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet":
                yield where, spec["template"]["spec"]
            case "CronJob":
                yield where, spec["jobTemplate"]["spec"]["template"]["spec"]
            case "Pod":
                yield where, spec


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The ``env`` entries with a plain value (valueFrom ones are not settings of ours)."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def config_map_data(docs: list[dict[str, Any]], prefix: str = "rotator-config") -> dict[str, str]:
    """The data of the (hash-suffixed) ConfigMap generated as ``prefix``."""
    found = [
        document
        for document in of_kind(docs, "ConfigMap")
        if document["metadata"]["name"].startswith(prefix + "-")
    ]
    assert len(found) == 1, [document["metadata"]["name"] for document in found]
    return dict(found[0].get("data") or {})


def mount_of(container: Mapping[str, Any], volume: str) -> str:
    mounts = [item["mountPath"] for item in container["volumeMounts"] if item["name"] == volume]
    assert len(mounts) == 1, f"expected one mount of {volume}, found {mounts}"
    return str(mounts[0])
