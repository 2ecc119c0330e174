"""Run the model of the whole rotator (tests/model) and write docs/reliability.md from what it
tried: the invariants it checks (from ``tests/model/invariants.py``'s ``INVARIANTS``), the crash
points, faults and bad inputs it used, with their counts, the seed, the number of examples and
the date, and what held. The document is never typed by hand: its every figure comes from the
counts the run wrote (``ROTATOR_MODEL_STATS``), and it says which command made it. The table of
seam fixes the model is measured against is ``tests/model/fixes_found.md``, written by
``scripts/seam_search.py --write`` (it re-breaks each fix on a scratch copy and runs the model's
search against it, which takes far longer than this run), and is copied in.

    python scripts/reliability_report.py                       # 400 examples, a few minutes
    python scripts/reliability_report.py --examples 3 --output /tmp/r.md
    python scripts/reliability_report.py --stats counts.json   # from counts of an earlier run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "reliability.md"
FIXES = ROOT / "tests" / "model" / "fixes_found.md"
DEFAULT_EXAMPLES = 400
DEFAULT_SEED = 20261207


def run_model(examples: int, seed: int, stats: Path) -> tuple[int, float]:
    """The model's long profile with ``examples`` examples and ``seed``, its counts written to
    ``stats``: its exit status and how long it took."""
    # The quick profile's machine (the slow one needs the servers its own module starts).
    env = {
        **{k: v for k, v in os.environ.items() if k != "ROTATOR_MODEL_PROFILE"},
        "PYTHONPATH": str(ROOT),
        "ROTATOR_MODEL_EXAMPLES": str(examples),
        "ROTATOR_MODEL_STATS": str(stats),
    }
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/model/test_model.py",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--hypothesis-seed={seed}",
    ]
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    return status, time.monotonic() - started


def _table(header: tuple[str, str], counts: dict[str, int], every: tuple[str, ...] = ()) -> str:
    """A two-column table of ``counts`` (with every name of ``every``, tried or not)."""
    rows = {**dict.fromkeys(every, 0), **counts}
    lines = [f"| {header[0]} | {header[1]} |", "| --- | ---: |"]
    lines += [f"| {name} | {count} |" for name, count in sorted(rows.items())]
    return "\n".join(lines)


def render(document: dict[str, Any], command: str, generated: datetime, seconds: float) -> str:
    """docs/reliability.md from one run's counts."""
    sys.path.insert(0, str(ROOT))
    from tests.model.invariants import INVARIANTS  # noqa: PLC0415 - the repository's own tests
    from tests.model.test_model import CHECKPOINTS, METADATA_EDITS  # noqa: PLC0415

    run = document["run"]
    held = document["invariants_held"]
    passed = bool(run["passed"])
    never_reached = [c for c in CHECKPOINTS if not document["crash_points"].get(c)]
    invariant_rows = "\n".join(
        f"| {tag} | {promise} | {held.get(tag, 0)} |" for tag, promise in INVARIANTS.items()
    )
    outcome = (
        f"Every invariant held after every step of all {document['examples']} examples run "
        "(counted at each deployment: Hypothesis also starts some it then discards as invalid, "
        "and reruns some while shrinking)."
        if passed
        else "**The run failed**: an invariant broke (the failing example is in the run's "
        "output; replay it in tests/model/test_replays.py). The counts cover the examples run "
        "until then."
    )
    idle = [tag for tag in INVARIANTS if not held.get(tag)]
    if idle:
        outcome += f" Never exercised in this run (no example reached them): {', '.join(idle)}."
    unreached = (
        f" Checkpoints no pass was killed at in this run: {', '.join(never_reached)}."
        if never_reached
        else ""
    )
    fixes = FIXES.read_text().strip() if FIXES.exists() else "(no table kept)"
    return f"""# Reliability: what the model of the whole rotator tried

<!-- Generated: do not edit by hand, run the command below again. The last section is
tests/model/fixes_found.md, written by scripts/seam_search.py --write. -->

_Generated on {generated:%Y-%m-%d} from the counts of one run of the model, by this command;
not typed by hand:_

    {command}

## What the model is

`tests/model/` is a Hypothesis rule-based state machine that drives the real rotator (the CLI's
own entry point, `rotator.cli.main`, against the bundled emulator over loopback, with real file
and exec sinks and the in-memory sink) through generated deployments and sequences of steps:
people making, revoking and naming keys, deleting and hand-editing sink entries; ops changing
the settings between passes; time passing; `run-once` (sharded or not) and `rotate NAME --now`;
API faults and sink failures; a pass killed at a checkpoint. After every step it checks the
invariants below against what the emulator and each sink really hold, never against the
rotator's own report. CI runs it derandomized (`./scripts/test.sh tests/model`).

## This run

| | |
| --- | --- |
| command | `{command}` |
| date | {generated:%Y-%m-%d %H:%M} UTC |
| seed | {run.get("seed")} |
| examples asked | {run.get("max_examples")} |
| examples run | {document["examples"]} |
| steps per example (at most) | {run.get("steps_per_example")} |
| profile | {run.get("profile")} |
| duration | {seconds:.0f} s |
| result | {"passed" if passed else "failed"} |

## What held

{outcome}

## Invariants checked

From `INVARIANTS` in tests/model/invariants.py; "checks held" counts each time the check ran
and found nothing wrong.

| invariant | promise | checks held |
| --- | --- | ---: |
{invariant_rows}

## Crash points

Passes killed (the process dying, as `kill -9` would) at each checkpoint; the next pass, whatever
step it is, must recover.{unreached}

{_table(("checkpoint", "passes killed there"), document["crash_points"], CHECKPOINTS)}

## Faults injected

API faults are queued for the next command (method, path, and what the emulator does); sink
faults make the next call of that operation of a memory sink fail.

{_table(("fault", "times injected"), document["faults"])}

## Bad inputs

What a person or a deployment got wrong: sink metadata edited by hand (each must block the
credential, never lead to a wrong revoke) and deployments ops should not have written.

{_table(("bad input", "times"), document["bad_inputs"], tuple(f"metadata: {e}" for e in METADATA_EDITS))}

## Steps taken

{_table(("step", "times"), document["steps"])}

## Deployments generated

{_table(("deployment", "examples"), document["deployments"])}

## The seam fixes the model is measured against

{fixes}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--keep-stats", type=Path, help="also keep the run's counts here")
    parser.add_argument(
        "--stats",
        type=Path,
        help="write from the counts an earlier run kept (--keep-stats) instead of running",
    )
    args = parser.parse_args(argv)
    if args.stats is not None:
        document = json.loads(args.stats.read_text())
        status = 0 if document["run"]["passed"] else 1
    else:
        with tempfile.TemporaryDirectory() as folder:
            stats = Path(folder) / "stats.json"
            status, seconds = run_model(args.examples, args.seed, stats)
            if not stats.exists():
                print("the model wrote no counts (did pytest start?)", file=sys.stderr)
                return 2
            document = json.loads(stats.read_text())
        document["run"].update(seconds=round(seconds), date=datetime.now(UTC).isoformat())
        if args.keep_stats is not None:
            args.keep_stats.write_text(json.dumps(document, indent=2) + "\n")
    run = document["run"]
    # The command that made these counts (the same one again, with --stats given).
    shown = (
        "python scripts/reliability_report.py "
        f"--examples {run['max_examples']} --seed {run['seed']}"
    )
    generated = datetime.fromisoformat(run["date"])
    args.output.write_text(render(document, shown, generated, float(run["seconds"])))
    print(f"wrote {args.output} ({document['examples']} examples, exit {status})")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
