"""docs/reliability.md: scripts/reliability_report.py writes the right sections from a real (tiny)
run of the model, and the committed document is not stale in structure: it lists every invariant
the code defines, every checkpoint, every kind of
metadata edit, and the table of seam fixes found."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.model.invariants import INVARIANTS
from tests.model.test_model import CHECKPOINTS, METADATA_EDITS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import reliability_report  # noqa: E402 - scripts/ is no package

SECTIONS = (
    "## What the model is",
    "## This run",
    "## What held",
    "## Invariants checked",
    "## Crash points",
    "## Faults injected",
    "## Bad inputs",
    "## Steps taken",
    "## Deployments generated",
    "## The seam fixes the model is measured against",
)


def _count_of(text: str, name: str) -> int:
    """The count in the table row whose first cell is ``name``."""
    match = re.search(rf"^\| {re.escape(name)} \|(?: [^|]* \|)? (\d+) \|$", text, re.MULTILINE)
    assert match is not None, f"no row for {name!r}"
    return int(match.group(1))


def _check_structure(text: str) -> None:
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions), "sections out of order"
    assert "not typed by hand" in text and "python scripts/reliability_report.py" in text
    for tag, promise in INVARIANTS.items():
        assert f"| {tag} | {promise} |" in text, f"{tag} is not listed with its promise"
    for checkpoint in CHECKPOINTS:
        _count_of(text, checkpoint)
    for edit in METADATA_EDITS:
        _count_of(text, f"metadata: {edit}")


def test_a_tiny_run_writes_every_section_with_real_counts(tmp_path: Path) -> None:
    output = tmp_path / "reliability.md"
    status = reliability_report.main(["--examples", "3", "--seed", "5", "--output", str(output)])
    assert status == 0
    text = output.read_text()
    _check_structure(text)
    assert "--examples 3 --seed 5" in text
    assert "| seed | 5 |" in text and "| examples asked | 3 |" in text
    # Counted, not typed: every example checks I1 after its first step, at least.
    examples = int(re.search(r"\| examples run \| (\d+) \|", text).group(1))  # type: ignore[union-attr]
    assert examples >= 3
    assert _count_of(text, "I1") >= examples
    assert "| result | passed |" in text


def test_docs_reliability_md_lists_what_the_code_defines() -> None:
    document = ROOT / "docs" / "reliability.md"
    if not document.exists():
        pytest.fail("docs/reliability.md is missing: python scripts/reliability_report.py")
    text = document.read_text()
    _check_structure(text)
    kept = (ROOT / "tests" / "model" / "fixes_found.md").read_text().strip()
    assert kept in text, "fixes_found.md changed: run scripts/reliability_report.py again"
