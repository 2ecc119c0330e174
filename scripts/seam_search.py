#!/usr/bin/env python3
"""Does the model find the seams on its own? Each fix of a seam between features (several
workspaces, a budget, the own key, the exec program, a workspace listed twice, a place spelled
twice) is put back the way it was broken, alone, on a scratch copy of the tree; the model's
generated search (``tests/model/test_model.py``, never the replays, which name each seam
outright) then runs against it with a fixed seed. Prints, per fix, whether the model found it,
after how many passing examples, which invariant broke, and the example Hypothesis shrank it
to; ``--write`` also regenerates ``tests/model/fixes_found.md`` from the results (which
``scripts/reliability_report.py`` copies into ``docs/reliability.md``).

Not part of the test run (each search takes minutes): ``python scripts/seam_search.py
[--examples N] [--seed S] [-k NAME ...] [--jobs J] [--write]``. Each re-break's text must match
exactly once, so a refactor that moves the code makes the script fail loudly, never test
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "tests" / "model" / "fixes_found.md"


@dataclass(frozen=True)
class Rebreak:
    """One seam fix, and the edit that takes it back out."""

    fix: str
    commit: str
    how: str
    #: (file, the fixed text, the broken text): each fixed text must occur exactly once.
    edits: tuple[tuple[str, str, str], ...]
    #: Why the model cannot find it by what the rotator does (another defence stops the same
    #: harm first), when that is so.
    masked: str = ""


REBREAKS = (
    Rebreak(
        "a deferred key expiring right at the next pass fails the pass", "2c9fae3",
        "`<=` back to `<`",
        (("rotator/plan.py", "(action.days_left or 0.0) <= days_to_next_pass",
          "(action.days_left or 0.0) < days_to_next_pass"),),
    ),
    Rebreak(
        "survey, allocate, act: the budget by urgency over all workspaces", "2d21b39",
        "`allocate` sorts by workspace before urgency",
        (("rotator/plan.py",
          "key=lambda i: (listed[i].urgency, listed[i].workspace, listed[i].credential)",
          "key=lambda i: (listed[i].workspace, listed[i].urgency, listed[i].credential)"),),
    ),
    Rebreak(
        "the own key delivered elsewhere fails the pass when it is due", "ccc4123",
        "the end-of-pass switch check dropped",
        (("rotator/runner.py", "                None\n                if run.report.failed or",
          "                None\n                if True or run.report.failed or"),),
    ),
    Rebreak(
        "one credential in two entries is one workspace listed twice", "1c05b60",
        "entries compared by credential need 100",
        (("rotator/app.py", "if len(names) > 1 and workspace.name in names:",
          "if len(names) > 100 and workspace.name in names:"),),
    ),
    Rebreak(
        "one workspace listed twice, by `me`'s workspace id", "2d21b39",
        "`duplicates` needs 100 entries",
        (("rotator/survey.py", "        if len(names) > 1\n        for name in names",
          "        if len(names) > 100\n        for name in names"),),
    ),
    Rebreak(
        "rotate without --workspace refuses while a workspace cannot be read",
        "6b44d74, 64de45a", "unread workspaces ignored",
        (("rotator/app.py", "unknown = {**found.unusable, **found.incomplete, **found.refused}",
          "unknown = {**found.incomplete, **found.refused}"),),
    ),
    Rebreak(
        "identity of places: one folder spelled two ways", "bd2ca59",
        "the folder not made canonical",
        (("rotator/settings/places.py", "folder = canonical_path(sink.dir)",
          "folder = sink.dir"),),
    ),
    Rebreak(
        "exec with several workspaces: one program and arguments each", "4b970f6",
        "the workspace added to the exec place",
        (("rotator/settings/places.py", '("exec", program, *arguments),',
          '("exec", program, *arguments, workspace),'),
         ("rotator/settings/places.py",
          "    del workspace  # the program is told its workspace, but stores wherever it was"
          " written to\n", "")),
    ),
    Rebreak(
        "one workspace listed twice under two admin keys, in two shards", "5de231d",
        "other shards' entries never asked `me`",
        (("rotator/app.py", "workspace.other_shards = tuple(elsewhere)",
          "workspace.other_shards = ()"),),
    ),
    Rebreak(
        "a sink that cannot list fails the pass", "2d21b39",
        "an incomplete survey no longer fails",
        (("rotator/runner.py",
          "        if found.incomplete is not None:\n            run.report.failed = True",
          "        if False:\n            run.report.failed = True"),),
    ),
    Rebreak(
        "a credential named to rotate is read when the sink cannot list", "ccc4123",
        "named credentials not read",
        (("rotator/survey.py", "credentials_of(grouped, [*remembered, *named], policy)",
          "credentials_of(grouped, [*remembered], policy)"),),
    ),
    Rebreak(
        "rotate sees the names of refused workspaces", "ccc4123", "refused rows left out",
        (("rotator/app.py", "for row in [*found.rows, *found.refused_rows]:",
          "for row in found.rows:"),),
        masked="rotate without --workspace refuses whenever any workspace is refused (the rule "
        "above, 6b44d74): the refused rows only make its message name the holders",
    ),
    Rebreak(
        "exec stderr blanked of a secret stored with a line break", "ccc4123",
        "only the bare token's hash",
        (("rotator/sinks/exec_stderr.py",
          '_STORED_ENDINGS: tuple[bytes, ...] = (b"", b"\\n", b"\\r\\n")',
          '_STORED_ENDINGS: tuple[bytes, ...] = (b"",)'),),
    ),
    Rebreak(
        "exec records name their workspace", "5845cea", "another workspace's record accepted",
        (("rotator/sinks/exec.py",
          "answer.metadata, where=where, credential=credential, workspace=self._workspace",
          "answer.metadata, where=where, credential=credential, workspace=None"),),
    ),
)  # fmt: skip


@dataclass
class Found:
    rebreak: Rebreak
    found: bool
    after: int | None
    invariant: str
    example: str
    seconds: float


def _apply(rebreak: Rebreak, tree: Path) -> None:
    for path, fixed, broken in rebreak.edits:
        target = tree / path
        text = target.read_text()
        if text.count(fixed) != 1:
            raise SystemExit(f"{rebreak.fix}: the fixed text in {path} is not found exactly once")
        target.write_text(text.replace(fixed, broken))


def _example(output: str) -> str:
    """The shrunk example Hypothesis printed (pytest prefixes its lines with ``E``): its
    steps, one per line, each call joined onto one line, the invariant checks left out."""
    lines = [re.sub(r"^E\s+", "", x).strip() for x in output.splitlines()]
    start = next((i for i, x in enumerate(lines) if x == "state = RotatorModel()"), None)
    if start is None:
        return ""
    steps: list[str] = []
    for line in lines[start + 1 :]:
        if line == "state.teardown()" or not line:
            break
        if line.startswith("Draw "):
            continue  # a value a step drew (which workspace, which key): not shown
        if line.startswith("state."):
            steps.append(line.removeprefix("state."))
        elif steps:
            steps[-1] += " " + line
    return "\n".join(s for s in steps if s != "safe()")


def search(rebreak: Rebreak, examples: int, seed: int, python: str) -> Found:
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "tree"
        shutil.copytree(
            ROOT,
            tree,
            ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", ".hypothesis"),
        )
        _apply(rebreak, tree)
        stats = Path(folder) / "stats.json"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")},
            "PYTHONPATH": str(tree),
            "HOME": folder,
            "ROTATOR_MODEL_EXAMPLES": str(examples),
            "ROTATOR_MODEL_STATS": str(stats),
        }
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "tests/model/test_model.py", f"--hypothesis-seed={seed}"],
            cwd=tree, env=env, capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        counts = json.loads(stats.read_text()) if stats.exists() else {}
        if os.environ.get("SEAM_SEARCH_KEEP"):
            Path(os.environ["SEAM_SEARCH_KEEP"]).write_text(done.stdout + done.stderr)
    first = counts.get("first_failure") or {}
    seconds = (datetime.now(UTC) - started).total_seconds()
    if done.returncode == 0:
        return Found(rebreak, False, None, "", "", seconds)
    if not first:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise SystemExit(f"{rebreak.fix}: the model run failed without an invariant:\n{tail}")
    return Found(
        rebreak,
        True,
        int(first["example"]) - 1,  # the examples that passed before the failing one
        str(first["tag"]),
        _example(done.stdout),
        seconds,
    )


def _shown(example: str) -> str:
    """One table cell: the steps, the deployment's fields that differ from a plain one."""
    steps = []
    for line in example.splitlines():
        if line.startswith("deploy("):
            fields = dict(
                re.findall(
                    r"\b(sink|exec_program|budget|shards|listed_twice|"
                    r"folder_spelled_twice|exec_shared_folder|"
                    r"twin_own_credential|grace_hours|first_pass)=([^,)]+)",
                    line,
                )
            )
            count = line.count("WorkspaceSpec(")
            own = sorted(set(re.findall(r"own_key='(\w+)'", line)) - {"none"})
            shown = [f"{count} workspace{'s' if count > 1 else ''}", f"sink {fields.get('sink')}"]
            if fields.get("sink") == "'exec'":
                shown.append(f"program {fields.get('exec_program')}")
            shown += [f"own key {o}" for o in own]
            shown += [
                f"{k} {v}"
                for k, v in fields.items()
                if (k, v) not in (("budget", "50"), ("shards", "1")) and k in ("budget", "shards")
            ]
            memory = line.count("memory=True")
            shown += [f"{memory} on a memory sink"] if memory else []
            shown += [k for k, v in fields.items() if v == "True"]
            steps.append("deploy(" + ", ".join(s.replace("'", "") for s in shown) + ")")
        else:
            steps.append(re.sub(r"\s+", " ", line))
    return "; ".join(steps).replace("|", "\\|")


def _git(*arguments: str) -> str:
    """What ``git ARGUMENTS`` prints in this repository (empty when it fails)."""
    git = shutil.which("git") or "git"
    done = subprocess.run([git, *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _measured_on() -> str:
    """The commit the tree was at (and whether it had changes not committed)."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head} with changes not yet committed" if dirty else head


def write_table(results: list[Found], examples: int, seed: int, measured_on: str) -> None:
    found = sum(r.found for r in results)
    masked = sum(bool(r.rebreak.masked) for r in results)
    lines = [
        "Generated by `scripts/seam_search.py --write` (never edited by hand). Each fix of a seam "
        "between features was put back the way it was broken, alone, on a scratch copy of the "
        "tree, and the model's generated search (`tests/model/test_model.py`, not the replays) "
        f"ran against it: at most {examples} examples, `--hypothesis-seed={seed}`, "
        f'{datetime.now(UTC):%Y-%m-%d}, on commit {measured_on}. "After" counts the examples that passed before the '
        "first failing one; the example is the one Hypothesis shrank it to.",
        "",
        "| fix (commit) | re-broken as | found | after | invariant broken | shrunk example |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        b = r.rebreak
        verdict = "yes" if r.found else ("masked" if b.masked else "no")
        detail = _shown(r.example) if r.found else (f"masked: {b.masked}" if b.masked else "")
        lines.append(
            f"| {b.fix} ({b.commit}) | {b.how} | {verdict} | "
            f"{'' if r.after is None else r.after} | {r.invariant} | {detail} |"
        )
    lines += [
        "",
        f"Found: {found} of {len(results)}"
        + (f"; masked: {masked} (another defence stops the same harm first)." if masked else "."),
    ]
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side")
    parser.add_argument(
        "-k", action="append", default=[], help="only fixes whose name contains this (repeatable)"
    )
    parser.add_argument("--write", action="store_true", help=f"regenerate {TABLE.name}")
    args = parser.parse_args()
    chosen = [r for r in REBREAKS if not args.k or any(k in r.fix for k in args.k)]
    measured_on = _measured_on()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(search, r, args.examples, args.seed, sys.executable) for r in chosen]
        results = []
        for future in futures:
            r = future.result()
            results.append(r)
            shown = f"after {r.after} ({r.invariant})" if r.found else "not found"
            print(f"{r.rebreak.fix}: {shown}, {r.seconds:.0f} s", flush=True)
            if r.example:
                print("    " + r.example.replace("\n", "\n    "), flush=True)
    if args.write:
        if args.k:
            raise SystemExit("--write needs every fix (no -k)")
        write_table(results, args.examples, args.seed, measured_on)
    return 0


if __name__ == "__main__":
    sys.exit(main())
