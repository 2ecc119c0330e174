"""What the model tried during one run, counted: every step kind taken, every checkpoint a pass
was killed at, every fault injected (by kind), every bad input (by kind), every invariant check
that held, and how many examples ran.

Responsible only for counting and for writing the counts as JSON (``ROTATOR_MODEL_STATS=PATH``
asks for it; ``tests/model/conftest.py`` writes them when the pytest session ends), which
``scripts/reliability_report.py`` turns into ``docs/reliability.md``. One :data:`STATS` per
process: the counts cover every example Hypothesis ran, shrinking included.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The variable naming the file the counts are written to at the end of a run.
STATS_VARIABLE = "ROTATOR_MODEL_STATS"


@dataclass
class Stats:
    """The counters of one run (each a kind -> how many times)."""

    examples: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    crash_points: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    bad_inputs: Counter[str] = field(default_factory=Counter)
    invariants_held: Counter[str] = field(default_factory=Counter)
    deployments: Counter[str] = field(default_factory=Counter)
    #: The first invariant that broke in this run, and in which example (counted from 1):
    #: ``scripts/seam_search.py`` reads it.
    first_failure: dict[str, Any] | None = None

    def failed(self, tag: str) -> None:
        """Note an invariant breaking (only the first one of the run is kept)."""
        if self.first_failure is None:
            self.first_failure = {"example": self.examples, "tag": tag}

    def document(self) -> dict[str, Any]:
        """The counts as plain JSON data, each counter sorted by kind."""
        return {
            "examples": self.examples,
            "first_failure": self.first_failure,
            **{
                name: dict(sorted(getattr(self, name).items()))
                for name in (
                    "steps",
                    "crash_points",
                    "faults",
                    "bad_inputs",
                    "invariants_held",
                    "deployments",
                )
            },
        }

    def write(self, path: Path, run: dict[str, Any]) -> None:
        """The counts and ``run`` (how the run was made: seed, examples asked, profile)."""
        path.write_text(json.dumps({"run": run, **self.document()}, indent=2) + "\n")


STATS = Stats()


def requested_path() -> Path | None:
    """Where ROTATOR_MODEL_STATS asks the counts to go, or None."""
    value = os.environ.get(STATS_VARIABLE, "")
    return Path(value) if value else None
