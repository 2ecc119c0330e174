"""The project's own documentation in docs/: every alert has a runbook entry its runbook_url
points at, every link between the pages resolves (files and #anchors, as GitHub renders them),
and no file of the deployment or the docs points a reader outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import CONFIG, ROOT

DOCS = ROOT / "docs"
PAGES = ("how-it-works.md", "operations.md", "runbooks.md")
ALERTS_FILE = CONFIG / "prometheus" / "rotator-alerts.yaml"
#: Placeholder for where the repository is published (README says to replace it).
RUNBOOK_BASE = "https://github.com/key-rotator/key-rotator/blob/main/docs/runbooks.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")
#: What would send a reader to files users do not have: the design notes the project was built
#: from live outside the repository, and nothing here may refer to them.
_OUTSIDE = re.compile(
    r"\.\./shared|/work/|shared/docs|\b(?:contract|design|environment|style|emulator-api)\.md\b"
)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as '-'."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {_anchor(match) for match in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _alerts() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_the_pages_exist_and_say_something() -> None:
    for name in PAGES:
        assert len((DOCS / name).read_text(encoding="utf-8")) > 2000, name


def test_every_alert_has_a_runbook_entry_its_runbook_url_points_at() -> None:
    runbooks = (DOCS / "runbooks.md").read_text(encoding="utf-8")
    entries = re.split(r"^## ", runbooks, flags=re.MULTILINE)[1:]
    by_name = {entry.split("\n", 1)[0].strip(): entry for entry in entries}
    alerts = _alerts()
    assert alerts
    assert [alert["alert"] for alert in alerts] == list(by_name)
    for alert in alerts:
        name = str(alert["alert"])
        for part in ("**What it means.**", "**How to diagnose.**", "**How to fix.**"):
            assert part in by_name[name], f"{name}: no {part}"
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{_anchor(name)}"
        assert _anchor(name) in _anchors(DOCS / "runbooks.md")


@pytest.mark.parametrize("name", PAGES)
def test_every_link_resolves(name: str) -> None:
    page = DOCS / name
    links = _LINK.findall(page.read_text(encoding="utf-8"))
    for link in links:
        assert not link.startswith(("http://", "https://")), f"{name}: {link} leaves the repository"
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.is_file(), f"{name}: {link}"
        assert ROOT in path.parents, f"{name}: {link} leaves the repository"
        if anchor:
            assert anchor in _anchors(path), f"{name}: no heading for #{anchor} in {path.name}"


def test_the_anchor_rule_matches_githubs() -> None:
    assert _anchor("A leaked key: `rotator rotate NAME --now`") == (
        "a-leaked-key-rotator-rotate-name---now"
    )
    assert _anchor("Switching the rotator's admin credential") == (
        "switching-the-rotators-admin-credential"
    )


def _own_files() -> list[Path]:
    """Every file of the repository (what git tracks, or would), code and tests included."""
    import subprocess  # noqa: PLC0415

    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    files = [ROOT / name for name in listed]
    return [p for p in files if p.is_file() and p.suffix not in (".png", ".gz")]


def test_no_file_of_the_repository_points_outside_it() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _own_files()
        if path != Path(__file__)
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if _OUTSIDE.search(line)
    ]
    assert found == []


def test_the_outside_pattern_catches_what_it_must() -> None:
    for line in ("see ../shared/docs/x", "docs/contract.md", "the design.md invariants"):
        assert _OUTSIDE.search(line), line
    assert not _OUTSIDE.search("docs/how-it-works.md and docs/operations.md")


def test_readme_names_every_variable() -> None:
    from rotator.variables import VARIABLES  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name in VARIABLES if name not in readme] == []
