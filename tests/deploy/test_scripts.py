"""The set-up scripts (scripts/_venv.sh, which demo.sh and test.sh source): they install only
when what the install depends on changed, so `./scripts/demo.sh` starts in a second."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path) -> Path:
    """A copy of what _venv.sh reads, and a venv whose python only records pip installs."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "constraints.txt", "scripts/_venv.sh"):
        shutil.copy(REPOSITORY / name, project / name)
    fake = project / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-m" ]; then echo "$*" >> "{project}/installs"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    fake.chmod(0o755)
    return project


def _venv(project: Path, extras: str = "") -> list[str]:
    subprocess.run(
        ["bash", "-c", f'source scripts/_venv.sh "{extras}"'],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        check=True,
    )
    installs = project / "installs"
    return installs.read_text().splitlines() if installs.exists() else []


def test_the_install_runs_only_when_the_project_or_the_extras_changed(tmp_path: Path) -> None:
    project = _project(tmp_path)

    assert len(_venv(project)) == 1  # the first time
    assert len(_venv(project)) == 1  # nothing changed: no install (demo.sh starts at once)
    (project / "rotator-code-change.py").write_text("# editable install: no reinstall\n")
    assert len(_venv(project)) == 1
    assert len(_venv(project, "[dev]")) == 2  # other extras
    with (project / "constraints.txt").open("a") as constraints:
        constraints.write("# a pin moved\n")
    installs = _venv(project, "[dev]")
    assert len(installs) == 3
    assert installs[-1].endswith("-c constraints.txt -e .[dev]")
