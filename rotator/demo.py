"""``rotator demo``: the main job, for real, against the bundled emulator, in seconds.

It starts the emulator on a free loopback port with one workspace whose keys have several ages
(one expiring, one past the company's maximum age, one healthy, one excluded because its
consumer reads no sink), runs one real pass with the file sink in a temporary folder and a grace
period of 0, and prints the inventory before and after and the steps the pass took. It goes
through the same settings, wiring and engine as ``run-once``; it ignores the caller's ROTATOR_*
variables, and it leaves nothing running or on disk.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from rotator.app import build_runner, open_workspaces
from rotator.logging import configure as configure_logging
from rotator.report import KeyStatus
from rotator.rotation import StepRecord
from rotator.settings import load_settings

_DEMO_KEYS = (
    # (name, days until it expires, why it is there)
    ("billing-sync", 12, "expires in 12 days: inside the 30-day window"),
    ("warehouse-etl", 330, "400 days old: past the 365-day maximum age"),
    ("crm-bridge", 650, "80 days old: healthy"),
    ("powerbi-odata", 20, "an OData feed password: excluded, never touched"),
)


def run_demo(out: TextIO) -> int:
    """Run the demo, printing to ``out``; returns the pass's exit code."""
    from rotator.emulator import Emulator  # noqa: PLC0415 - only demo and emulator load it

    now = datetime.now(UTC)
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="rotator-demo-") as folder:
        workspace_id = emulator.add_workspace("Demo Co")
        _key_id, admin_secret = emulator.add_key(
            workspace_id, "rotator-admin", expires=now + timedelta(days=700)
        )
        for name, days, _why in _DEMO_KEYS:
            emulator.add_key(workspace_id, name, expires=now + timedelta(days=days))
        sink_dir = Path(folder) / "secrets"
        settings = load_settings(
            {
                "ROTATOR_API_URL": emulator.url,
                "ROTATOR_API_KEY": admin_secret,
                "ROTATOR_WORKSPACE_NAME": "demo",
                "ROTATOR_KEY_NAMES": "*",
                "ROTATOR_EXCLUDE_KEY_NAMES": "rotator-admin,powerbi-*",
                "ROTATOR_MAX_AGE_DAYS": "365",
                "ROTATOR_GRACE_HOURS": "0",
                "ROTATOR_SINK": "file",
                "ROTATOR_SINK_FILE_DIR": str(sink_dir),
                "ROTATOR_LOG_FORMAT": "console",
                "ROTATOR_LOG_LEVEL": "error",
            }
        )
        configure_logging(log_format=settings.log_format, level=settings.log_level)
        engine = build_runner(settings)

        print(
            f"Emulator of the ProjectManager API on {emulator.url}, workspace 'Demo Co'.", file=out
        )
        print(
            "Policy: rotate keys named '*' except 'rotator-admin' and 'powerbi-*', when fewer "
            "than 30 days are left or older than 365 days; grace 0 hours.\n",
            file=out,
        )
        for name, _days, why in _DEMO_KEYS:
            print(f"  {name:<14} {why}", file=out)
        with open_workspaces(settings) as workspaces:
            _print_inventory("Before the pass", engine.inventory(workspaces).rows, out)
            report = engine.run_pass(workspaces)
            print("\nWhat the pass did:", file=out)
            for step in report.steps:
                _print_step(step, out)
            _print_inventory("After the pass", engine.inventory(workspaces).rows, out)
        print(
            f"\nFiles the consumers read, in {sink_dir} (mode 0600, secrets not shown):", file=out
        )
        for path in sorted(sink_dir.iterdir()):
            print(f"  {path.name:<30} {oct(path.stat().st_mode & 0o777)}", file=out)
        print(
            f"\nPass {report.run_id}: exit code {report.exit_code} "
            f"({report.rotations_succeeded} rotated, {report.rotations_failed} failed) "
            f"in {report.duration_s:.2f} s. The emulator is stopped and the folder removed.",
            file=out,
        )
        return report.exit_code


def _print_inventory(title: str, statuses: list[KeyStatus], out: TextIO) -> None:
    print(f"\n{title}:", file=out)
    print(f"  {'KEY NAME':<36} {'DAYS LEFT':>9} {'AGE':>6}  {'ROLE':<10} DUE", file=out)
    for s in statuses:
        due = f"yes ({s.reason})" if s.due else "no"
        days = "-" if s.days_left is None else f"{s.days_left:.1f}"
        age = "-" if s.age_days is None else f"{s.age_days:.0f}"
        print(f"  {s.name:<36} {days:>9} {age:>6}  {s.role:<10} {due}", file=out)


def _print_step(step: StepRecord, out: TextIO) -> None:
    key = f" key {step.key_id}" if step.key_id else ""
    detail = f" ({step.detail})" if step.detail else ""
    print(f"  {step.credential:<14} {step.event:<20}{key}{detail}", file=out)
