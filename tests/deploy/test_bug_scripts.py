"""The scripts that put bugs back on purpose (scripts/mutation_check.py's mutants and
scripts/seam_search.py's re-broken seam fixes) still match the code they edit: each edit's text
occurs exactly once in its file. Run by hand they would stop at a stale entry after minutes of
work; here a refactor that moves the code fails at once, naming the entry to update."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    path = REPOSITORY / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


MUTANTS = _script("mutation_check").MUTANTS
REBREAKS = _script("seam_search").REBREAKS


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_every_mutant_matches_its_code_once(mutant: object) -> None:
    text = (REPOSITORY / mutant.path).read_text()  # type: ignore[attr-defined]
    assert text.count(mutant.old) == 1, f"update {mutant.name!r}: its code moved"  # type: ignore[attr-defined]
    assert mutant.old != mutant.new  # type: ignore[attr-defined]


@pytest.mark.parametrize("rebreak", REBREAKS, ids=[r.fix for r in REBREAKS])
def test_every_rebroken_seam_fix_matches_its_code_once(rebreak: object) -> None:
    for path, fixed, broken in rebreak.edits:  # type: ignore[attr-defined]
        text = (REPOSITORY / path).read_text()
        assert text.count(fixed) == 1, f"update {rebreak.fix!r}: its code moved in {path}"  # type: ignore[attr-defined]
        assert fixed != broken


def test_the_names_are_unique() -> None:
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert len({r.fix for r in REBREAKS}) == len(REBREAKS)
