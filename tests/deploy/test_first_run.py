"""README's "First run" (and operations.md's onboarding) show a real run: the blocks are what
scripts/first_run.py printed, the seed and commands shown are the ones it runs, and they still
run: every step ends as the walk-through says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

REPOSITORY = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "first_run", REPOSITORY / "scripts" / "first_run.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_blocks_shown_are_the_steps_run_with_the_seed_shown() -> None:
    script = _script()
    commands = {name: command for name, command, _ in script.STEPS}
    readme = (REPOSITORY / "README.md").read_text()
    assert script.SEED in readme  # the seed the reader types is the one that was run
    for doc in script.DOCS:
        text = doc.read_text()
        blocks = re.findall(
            r"<!-- first-run:([a-z-]+) -->\n```console\n\$ (.*?)\n(.*?)```\n<!-- /first-run:\1 -->",
            text,
            flags=re.DOTALL,
        )
        assert blocks, doc
        for name, command, output in blocks:
            assert commands[name] == command, (doc.name, name)
            assert output.strip(), (doc.name, name)
    assert set(re.findall(r"<!-- first-run:([a-z-]+) -->", readme)) == set(commands)


def test_the_walkthrough_still_runs() -> None:
    blocks = _script().run_walkthrough()
    assert "2 rotated, 0 retired" in blocks["rotate"]
    assert "retire" in blocks["plan-after"]
    assert "Every workspace usable (1)." in blocks["check"]
